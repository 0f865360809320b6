import * as assert from 'assert';
import { ManualClock } from '../../../shared/clock';
import { MemoryNetwork, MemoryTransport } from '../../helpers/memory-transport';
import { isHeptoError } from '../../../shared/errors';
import { Recorder } from '../../helpers/transport-contract';

const text = (s: string) => new Uint8Array(Buffer.from(s));

async function nodes(net: MemoryNetwork, ...names: string[]): Promise<{ t: MemoryTransport; rec: Recorder }[]> {
  const out = [];
  for (const name of names) {
    const rec = new Recorder();
    const t = net.transport({ name, events: rec.events });
    await t.start();
    out.push({ t, rec });
  }
  return out;
}

describe('MemoryTransport specifics', () => {
  it('partition cuts connections both ways and refuses new ones until heal', async () => {
    const net = new MemoryNetwork();
    const [a, b, c] = await nodes(net, 'a', 'b', 'c');
    await a.t.send({ name: 'b', addresses: ['b:7947'] }, text('1'));
    await a.t.send({ name: 'c', addresses: ['c:7947'] }, text('1'));
    await net.flush();
    net.partition(['a'], ['b', 'c']);
    await net.flush();
    assert.deepStrictEqual(a.rec.disconnects.map((p) => p.name).sort(), ['b', 'c']);
    assert.deepStrictEqual(
      b.rec.disconnects.map((p) => p.name),
      ['a'],
    );
    await assert.rejects(a.t.send({ name: 'b', addresses: ['b:7947'] }, text('2')), /partitioned/);
    await b.t.send({ name: 'c', addresses: ['c:7947'] }, text('same side'));
    await net.flush();
    assert.deepStrictEqual(
      c.rec.messages.map((m) => m.text),
      ['1', 'same side'],
    );
    net.heal();
    await a.t.send({ name: 'b', addresses: ['b:7947'] }, text('3'));
    await net.flush();
    assert.deepStrictEqual(
      b.rec.messages.map((m) => m.text),
      ['1', '3'],
    );
  });

  it('drop() crashes a node: peers see disconnected, its address stops answering', async () => {
    const net = new MemoryNetwork();
    const [a, b] = await nodes(net, 'a', 'b');
    await a.t.send({ name: 'b', addresses: ['b:7947'] }, text('1'));
    await net.flush();
    net.drop('b');
    await net.flush();
    assert.deepStrictEqual(
      a.rec.disconnects.map((p) => p.name),
      ['b'],
    );
    await assert.rejects(a.t.send({ name: 'b', addresses: ['b:7947'] }, text('2')), /connection refused/);
    assert.strictEqual(b.rec.disconnects.length, 0, 'a crashed node reports nothing');
    // The same name can come back (a restart) on the same address.
    const [b2] = await nodes(net, 'b');
    await a.t.send({ name: 'b', addresses: ['b:7947'] }, text('again'));
    await net.flush();
    assert.deepStrictEqual(
      b2.rec.messages.map((m) => m.text),
      ['again'],
    );
  });

  it('refuses a second node claiming a connected name with another identity', async () => {
    const net = new MemoryNetwork();
    const [a, b] = await nodes(net, 'a', 'b');
    await b.t.send({ name: 'a', addresses: ['a:7947'] }, text('hi'));
    const impostor = net.transport({ name: 'b', addresses: ['b2:7947'], idPub: 'AAAA', events: new Recorder().events });
    await impostor.start();
    await assert.rejects(impostor.send({ name: 'a', addresses: ['a:7947'] }, text('x')), (e: unknown) => {
      assert.ok(isHeptoError(e) && e.code === 'NAME_CONFLICT' && /another identity/.test(e.message), String(e));
      return true;
    });
    await net.flush();
    assert.strictEqual(a.rec.rejections.length, 1);
    assert.strictEqual(a.rec.rejections[0].peer, 'b');
    assert.deepStrictEqual(
      a.rec.messages.map((m) => m.from.idPub),
      [b.t.idPub],
    );
  });

  it('refuses to dial itself', async () => {
    const net = new MemoryNetwork();
    const [a] = await nodes(net, 'a');
    await assert.rejects(a.t.send({ addresses: ['a:7947'] }, text('x')), /itself/);
  });

  it('delivers in virtual time with a manual clock and latency', async () => {
    const clock = new ManualClock();
    const net = new MemoryNetwork({ clock, latencyMs: 50 });
    const [a, b] = await nodes(net, 'a', 'b');
    await a.t.send({ name: 'b', addresses: ['b:7947'] }, text('x'));
    clock.advance(49);
    assert.strictEqual(b.rec.messages.length, 0);
    clock.advance(1);
    assert.strictEqual(b.rec.messages.length, 1);
  });
  it('like a WebSocket close, a stop delivers what was sent before it; a crash or a partition loses what was in flight', async () => {
    const clock = new ManualClock();
    const net = new MemoryNetwork({ clock, latencyMs: 50 });
    const [a, b, c, d] = await nodes(net, 'a', 'b', 'c', 'd');
    await a.t.send({ name: 'b', addresses: ['b:7947'] }, text('goodbye'));
    await a.t.stop();
    await c.t.send({ name: 'b', addresses: ['b:7947'] }, text('lost in a crash'));
    net.drop('c');
    await b.t.send({ name: 'd', addresses: ['d:7947'] }, text('lost in a cut'));
    net.partition(['b'], ['d']);
    clock.advance(50);
    assert.deepStrictEqual(
      b.rec.messages.map((m) => m.text),
      ['goodbye'],
    );
    assert.deepStrictEqual(
      d.rec.messages.map((m) => m.text),
      [],
    );
    // Each of the three closes is seen all the same.
    assert.deepStrictEqual(b.rec.disconnects.map((p) => p.name).sort(), ['a', 'c', 'd']);
  });
});
