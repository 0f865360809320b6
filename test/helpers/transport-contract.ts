/**
 * The Transport contract as one mocha suite, run against every implementation
 * (MemoryTransport in test/unit/net, WsTransport in test/integration/transport).
 */
import type { AdmissionProof } from '../../shared/member';
import * as assert from 'assert';
import type { Destination, PeerInfo, Transport, TransportEvents, VetRefusal } from '../../agent/net/transport';
import { isHeptoError } from '../../shared/errors';

/** Records everything a transport reports. */
export class Recorder {
  readonly messages: { from: PeerInfo; text: string }[] = [];
  readonly disconnects: PeerInfo[] = [];
  readonly rejections: { remote: string; reason: string; peer?: string }[] = [];
  /** Peers that refused us as not admitted. */
  readonly refusedBy: { remote: string; reason: string; peer?: string }[] = [];
  /** Set to vet peers (the membership's checkPeer in the agent). */
  vet: ((peer: PeerInfo) => VetRefusal | undefined) | undefined;
  /** The admission this node shows in handshakes. */
  admission: AdmissionProof | undefined;
  readonly events: TransportEvents = {
    message: (from, payload) => this.messages.push({ from, text: Buffer.from(payload).toString('utf8') }),
    disconnected: (peer) => this.disconnects.push(peer),
    rejected: (info) => this.rejections.push(info),
    vet: (peer) => this.vet?.(peer),
    ownAdmission: () => this.admission,
    refusedBy: (info) => this.refusedBy.push(info),
  };
}

/** Polls `cond` until it is true or `ms` elapse (then fails with `what`). */
export async function waitFor(what: string, cond: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export interface ContractNode {
  name: string;
  idPub: string;
  /** Addresses others dial to reach it. */
  addresses: string[];
  transport: Transport;
  rec: Recorder;
}

export interface ContractHarness {
  /** A started node. */
  node(name: string): Promise<ContractNode>;
  /** An address where nothing listens. */
  deadAddress(): string;
  /** Stops every node it made. */
  cleanup(): Promise<void>;
}

const text = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'));

async function rejects(p: Promise<unknown>, match: RegExp): Promise<Error> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof Error, 'rejects with an Error');
    assert.match(e.message, match);
    return e;
  }
  assert.fail(`expected a rejection matching ${match}`);
}

export function transportContract(label: string, makeHarness: () => Promise<ContractHarness>): void {
  describe(`Transport contract: ${label}`, function () {
    let h: ContractHarness;
    beforeEach(async () => {
      h = await makeHarness();
    });
    afterEach(async () => {
      await h.cleanup();
    });

    it('delivers in both directions and reports who sent it', async () => {
      const a = await h.node('alpha');
      const b = await h.node('bravo');
      const to: Destination = { name: 'bravo', addresses: b.addresses };
      const got = await a.transport.send(to, text('hello bravo'));
      assert.strictEqual(got.name, 'bravo');
      assert.strictEqual(got.idPub, b.idPub);
      await waitFor('bravo receives', () => b.rec.messages.length === 1);
      assert.strictEqual(b.rec.messages[0].text, 'hello bravo');
      assert.strictEqual(b.rec.messages[0].from.name, 'alpha');
      assert.strictEqual(b.rec.messages[0].from.idPub, a.idPub);
      await b.transport.send({ name: 'alpha', addresses: a.addresses }, text('hello alpha'));
      await waitFor('alpha receives', () => a.rec.messages.length === 1);
      assert.strictEqual(a.rec.messages[0].text, 'hello alpha');
      assert.strictEqual(a.rec.messages[0].from.name, 'bravo');
    });

    it('reuses one connection in both directions (the reply needs no address)', async () => {
      const a = await h.node('alpha');
      const b = await h.node('bravo');
      await a.transport.send({ name: 'bravo', addresses: b.addresses }, text('1'));
      await waitFor('first message', () => b.rec.messages.length === 1);
      // bravo knows no address for alpha: only the existing connection can carry this.
      await b.transport.send({ name: 'alpha', addresses: [] }, text('reply'));
      for (let i = 2; i <= 20; i++) await a.transport.send({ name: 'bravo', addresses: b.addresses }, text(String(i)));
      await waitFor('all messages', () => b.rec.messages.length === 20 && a.rec.messages.length === 1);
      assert.deepStrictEqual(
        b.rec.messages.map((m) => m.text),
        Array.from({ length: 20 }, (_, i) => String(i + 1)),
        'in order',
      );
      assert.strictEqual(a.transport.stats().connections, 1);
      assert.strictEqual(b.transport.stats().connections, 1);
      assert.ok(a.transport.stats().bytesSent > 20, 'bytes counted');
      assert.ok(b.transport.stats().bytesReceived > 20, 'bytes counted');
    });

    it('shows each side the admission the other presents, and closes a connection the vet hook refuses, both ways', async () => {
      const a = await h.node('alpha');
      const b = await h.node('bravo');
      const proof = { at: 1_700_000_000_123, sig: Buffer.alloc(64, 7).toString('base64') };
      a.rec.admission = proof;
      const seen: PeerInfo[] = [];
      b.rec.vet = (peer) => {
        seen.push(peer);
        return undefined;
      };
      await a.transport.send({ name: 'bravo', addresses: b.addresses }, text('with proof'));
      await waitFor('bravo receives', () => b.rec.messages.length === 1);
      assert.deepStrictEqual(
        seen.map((p) => [p.name, p.idPub, p.admission]),
        [['alpha', a.idPub, proof]],
        'vetted once, with the admission',
      );
      assert.deepStrictEqual(b.rec.messages[0].from.admission, proof);

      // The listener refuses: the dialer gets NOT_ADMITTED and a refusedBy event, the listener a rejection.
      const c = await h.node('charlie');
      b.rec.vet = (peer) => (peer.name === 'charlie' ? { reason: 'identity of "charlie" is not admitted', tell: 'not admitted' } : undefined);
      const e = await rejects(c.transport.send({ name: 'bravo', addresses: b.addresses }, text('no proof')), /does not admit our identity under our name/);
      assert.ok(isHeptoError(e) && e.code === 'NOT_ADMITTED', String(e));
      await waitFor('bravo reports the refusal', () => b.rec.rejections.some((r) => r.peer === 'charlie' && /not admitted/.test(r.reason)));
      await waitFor('charlie hears it was refused', () => c.rec.refusedBy.length === 1);
      assert.match(c.rec.refusedBy[0].reason, /does not admit our identity/);
      // A removed identity is told so.
      const e2 = await h.node('echo');
      b.rec.vet = (peer) => (peer.name === 'echo' ? { reason: 'identity of "echo" was removed by the admin', tell: 'removed' } : undefined);
      const removed = await rejects(e2.transport.send({ name: 'bravo', addresses: b.addresses }, text('x')), /the admin removed this identity/);
      assert.ok(isHeptoError(removed) && removed.code === 'NOT_ADMITTED', String(removed));
      await waitFor('echo hears why', () => e2.rec.refusedBy.length === 1);
      assert.match(e2.rec.refusedBy[0].reason, /the admin removed this identity/);
      assert.strictEqual(b.rec.messages.length, 1, 'nothing from charlie got through');

      // The dialer refuses the listener: the send fails, and nothing reaches the listener.
      const d = await h.node('delta');
      d.rec.vet = () => ({ reason: 'the listener is not admitted', tell: 'not admitted' });
      await rejects(d.transport.send({ name: 'bravo', addresses: b.addresses }, text('x')), /not admitted/);
      await waitFor('delta reports it', () => d.rec.rejections.some((r) => r.peer === 'bravo'));
      assert.strictEqual(b.rec.messages.length, 1);
    });

    it('dials an anchor whose name is unknown and reports its name', async () => {
      const a = await h.node('alpha');
      const b = await h.node('bravo');
      const got = await a.transport.send({ addresses: [h.deadAddress(), ...b.addresses] }, text('join'));
      assert.strictEqual(got.name, 'bravo');
      await waitFor('anchor receives', () => b.rec.messages.length === 1);
    });

    it('rejects an unreachable destination, naming the address', async () => {
      const a = await h.node('alpha');
      const dead = h.deadAddress();
      const e = await rejects(a.transport.send({ name: 'ghost', addresses: [dead] }, text('x')), /ghost/);
      assert.ok(e.message.includes(dead), e.message);
      assert.ok(isHeptoError(e) && e.code === 'PEER_UNREACHABLE', String(e));
      await rejects(a.transport.send({ name: 'ghost', addresses: [] }, text('x')), /no address/);
    });

    it('rejects a send whose address answers with another name', async () => {
      const a = await h.node('alpha');
      const b = await h.node('bravo');
      const e = await rejects(a.transport.send({ name: 'charlie', addresses: b.addresses }, text('x')), /answered as "bravo"/);
      assert.ok(e.message.includes(b.addresses[0]));
      assert.strictEqual(b.rec.messages.length, 0, 'nothing delivered to the wrong peer');
    });

    it('refuses a payload over the frame limit without sending it', async () => {
      const a = await h.node('alpha');
      const b = await h.node('bravo');
      const e = await rejects(a.transport.send({ name: 'bravo', addresses: b.addresses }, new Uint8Array(1024 * 1024 + 1)), /frame limit/);
      assert.ok(isHeptoError(e) && e.code === 'FRAME_REJECTED');
    });

    it('fires disconnected once when the peer stops; later sends fail', async () => {
      const a = await h.node('alpha');
      const b = await h.node('bravo');
      await a.transport.send({ name: 'bravo', addresses: b.addresses }, text('x'));
      await waitFor('delivered', () => b.rec.messages.length === 1);
      await b.transport.stop();
      await waitFor('alpha sees bravo go', () => a.rec.disconnects.length >= 1);
      assert.strictEqual(a.rec.disconnects[0].name, 'bravo');
      await rejects(a.transport.send({ name: 'bravo', addresses: b.addresses }, text('y')), /bravo/);
      assert.strictEqual(a.rec.disconnects.length, 1, 'exactly once');
      assert.strictEqual(a.transport.stats().connections, 0);
    });

    it('disconnect(name) drops the connection and the peer notices', async () => {
      const a = await h.node('alpha');
      const b = await h.node('bravo');
      await a.transport.send({ name: 'bravo', addresses: b.addresses }, text('x'));
      await waitFor('delivered', () => b.rec.messages.length === 1);
      a.transport.disconnect('bravo');
      await waitFor('bravo sees alpha go', () => b.rec.disconnects.length === 1);
      assert.strictEqual(b.rec.disconnects[0].name, 'alpha');
      await a.transport.send({ name: 'bravo', addresses: b.addresses }, text('again'));
      await waitFor('delivered again', () => b.rec.messages.length === 2);
    });

    it('keeps working when an event handler throws', async () => {
      const a = await h.node('alpha');
      const b = await h.node('bravo');
      const original = b.rec.events.message;
      let thrown = 0;
      b.rec.events.message = (from, payload) => {
        original(from, payload);
        thrown++;
        throw new Error('handler bug');
      };
      await a.transport.send({ name: 'bravo', addresses: b.addresses }, text('1'));
      await a.transport.send({ name: 'bravo', addresses: b.addresses }, text('2'));
      await waitFor('both delivered despite the throwing handler', () => b.rec.messages.length === 2);
      assert.strictEqual(thrown, 2);
      assert.strictEqual(a.rec.disconnects.length, 0);
    });

    it('settles on one connection when both sides dial each other at once', async () => {
      for (let round = 0; round < 5; round++) {
        const a = await h.node(`alpha${round}`);
        const b = await h.node(`bravo${round}`);
        const [toB, toA] = await Promise.all([
          a.transport.send({ name: b.name, addresses: b.addresses }, text('a->b')),
          b.transport.send({ name: a.name, addresses: a.addresses }, text('b->a')),
        ]);
        assert.strictEqual(toB.name, b.name);
        assert.strictEqual(toA.name, a.name);
        await waitFor('both delivered', () => a.rec.messages.length === 1 && b.rec.messages.length === 1);
        await waitFor('one connection each', () => a.transport.stats().connections === 1 && b.transport.stats().connections === 1);
        await a.transport.send({ name: b.name, addresses: [] }, text('again'));
        await b.transport.send({ name: a.name, addresses: [] }, text('again'));
        await waitFor('reused', () => a.rec.messages.length === 2 && b.rec.messages.length === 2);
        assert.strictEqual(a.rec.disconnects.length + b.rec.disconnects.length, 0, 'no disconnected for the dropped duplicate');
      }
    });

    it('start and stop are idempotent; a stopped transport refuses to send', async () => {
      const a = await h.node('alpha');
      await a.transport.start();
      await a.transport.stop();
      await a.transport.stop();
      const e = await rejects(a.transport.send({ name: 'x', addresses: [h.deadAddress()] }, text('x')), /stopped/);
      assert.ok(isHeptoError(e) && e.code === 'TRANSPORT_STOPPED', String(e));
    });
  });
}
