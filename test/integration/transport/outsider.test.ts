/**
 * Outsiders cannot keep machines out, and nobody holds connections without
 * bound (issue 14, items 5 and 8), with real sockets on loopback: pending
 * sockets counted per IPv4 address or IPv6 /64, a first-bytes deadline, the
 * busiest source's oldest socket evicted instead of the newcomer refused, a
 * pool of pending slots for known members, and caps on authenticated
 * connections in total, for strangers, per source and per identity.
 */
import * as assert from 'assert';
import * as net from 'net';
import { generateIdentity } from '../../../agent/net/identity';
import { sourceKey } from '../../../agent/net/ws-listener';
import { waitFor } from '../../helpers/transport-contract';
import { Cleanup, rawSession, startNode, text, type TestNode } from './fixtures';

interface Held {
  socket: net.Socket;
  closed: boolean;
  closedAfterMs: number;
}

/** A TCP socket to `node` from `from` that sends `bytes` (if any) and then stalls. */
function hold(cleanup: Cleanup, node: TestNode, from: string, bytes?: string): Promise<Held> {
  const a = node.t.address()[0];
  const started = Date.now();
  const socket = net.connect({ port: a.port, host: a.host, localAddress: from });
  cleanup.add(() => void socket.destroy());
  const h: Held = { socket, closed: false, closedAfterMs: -1 };
  socket.on('error', () => undefined);
  socket.resume();
  socket.on('close', () => {
    h.closed = true;
    h.closedAfterMs = Date.now() - started;
  });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => {
      if (bytes !== undefined) socket.write(bytes);
      resolve(h);
    });
    socket.once('close', () => reject(new Error('closed before connecting')));
  });
}

/** Opens the sockets one after the other, each counted by the node before the next (so their age order is known). */
async function holdInOrder(cleanup: Cleanup, node: TestNode, froms: string[], bytes?: string): Promise<Held[]> {
  const out: Held[] = [];
  for (const from of froms) {
    const before = node.t.pending();
    out.push(await hold(cleanup, node, from, bytes));
    await waitFor('the node to count the socket', () => {
      const p = node.t.pending();
      return p.strangers + p.known > before.strangers + before.known || out[out.length - 1].closed;
    });
  }
  return out;
}

const PARTIAL = 'GET / HTTP/1.1\r\n'; // a request line, then nothing: past the first-bytes deadline, short of a handshake
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('outsiders and connection caps (issue 14: items 5 and 8)', function () {
  this.timeout(20_000);
  const cleanup = new Cleanup();
  afterEach(() => cleanup.run());

  describe('sourceKey: what pending and authenticated sockets are counted by', () => {
    it('keys IPv4 by address and IPv6 by /64', () => {
      assert.strictEqual(sourceKey('192.0.2.7'), '192.0.2.7');
      assert.strictEqual(sourceKey('::ffff:192.0.2.7'), '192.0.2.7');
      assert.strictEqual(sourceKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
      assert.strictEqual(sourceKey('2001:db8:1:2::1'), '2001:db8:1:2::/64');
      assert.strictEqual(sourceKey('2001:0DB8:0001:0002:ffff::'), '2001:db8:1:2::/64');
      assert.strictEqual(sourceKey('2001:db8::1'), '2001:db8::/64');
      assert.strictEqual(sourceKey('2001:db8:0:1::9'), '2001:db8:0:1::/64');
      assert.strictEqual(sourceKey('::1'), '::/64');
      assert.strictEqual(sourceKey('fe80::1%eth0'), 'fe80::/64');
      assert.strictEqual(sourceKey('64:ff9b::192.0.2.1'), '64:ff9b::/64');
      assert.strictEqual(sourceKey('1:2:3:4:5:6:7:8'), '1:2:3:4::/64');
      // Every address of one /64 is one source; the next /64 is another.
      const keys = new Set(Array.from({ length: 40 }, (_, i) => sourceKey(`2001:db8:5:6:${i.toString(16)}::${((i * 7919) % 0x10000).toString(16)}`)));
      assert.deepStrictEqual([...keys], ['2001:db8:5:6::/64']);
      assert.notStrictEqual(sourceKey('2001:db8:5:7::1'), sourceKey('2001:db8:5:6::1'));
    });

    it('leaves what is not an address as it is', () => {
      assert.strictEqual(sourceKey('unknown'), 'unknown');
      assert.strictEqual(sourceKey('1::2::3'), '1::2::3');
    });
  });

  describe('pending (unauthenticated) sockets', () => {
    it('counts IPv6 sockets per /64, IPv4 sockets per address', async () => {
      const limits = { maxPendingPerSource: 2, firstBytesMs: 10_000, handshakeTimeoutMs: 10_000 };
      const v6 = await startNode(cleanup, 'bravo', { host: '::1', limits });
      const six = await Promise.all([0, 1].map(() => hold(cleanup, v6, '::1', PARTIAL)));
      await waitFor('two pending', () => v6.t.pending().strangers === 2);
      const third = await hold(cleanup, v6, '::1', PARTIAL);
      await waitFor('the third from the /64 refused', () => third.closed);
      assert.ok(six.every((h) => !h.closed));
      assert.ok(
        v6.rec.rejections.some((r) => r.reason === 'too many unauthenticated sockets from ::/64 (limit 2)'),
        JSON.stringify(v6.rec.rejections),
      );

      const v4 = await startNode(cleanup, 'charlie', { limits });
      const held = await Promise.all(['127.0.0.3', '127.0.0.3', '127.0.0.4', '127.0.0.4'].map((f) => hold(cleanup, v4, f, PARTIAL)));
      await waitFor('four pending: two per IPv4 address', () => v4.t.pending().strangers === 4);
      const over = await hold(cleanup, v4, '127.0.0.4', PARTIAL);
      await waitFor('a third from one IPv4 address refused', () => over.closed);
      assert.ok(held.every((h) => !h.closed));
      assert.ok(v4.rec.rejections.some((r) => r.reason === 'too many unauthenticated sockets from 127.0.0.4 (limit 2)'));
    });

    it('closes a socket that sends nothing within firstBytesMs, and keeps one that did', async () => {
      const bravo = await startNode(cleanup, 'bravo', { limits: { firstBytesMs: 300, handshakeTimeoutMs: 4_000 } });
      const idle = await hold(cleanup, bravo, '127.0.0.3');
      const talking = await hold(cleanup, bravo, '127.0.0.3', PARTIAL);
      await waitFor('the idle socket closed', () => idle.closed, 3_000);
      console.log(`      idle socket closed after ${idle.closedAfterMs} ms (firstBytesMs 300)`);
      assert.ok(
        bravo.rec.rejections.some((r) => /^no bytes within 300 ms of connecting$/.test(r.reason)),
        JSON.stringify(bravo.rec.rejections),
      );
      await sleep(500);
      assert.ok(!talking.closed, 'a socket that sent its first bytes waits for the handshake deadline');
      await waitFor('the stalled socket cut by the handshake deadline', () => talking.closed, 6_000);
      assert.ok(bravo.rec.rejections.some((r) => /no authenticated handshake within 4000 ms/.test(r.reason)));
    });

    it('when full, evicts the oldest socket of the busiest source and lets the newcomer join', async () => {
      const limits = { maxPendingTotal: 4, maxPendingPerSource: 3, firstBytesMs: 10_000, handshakeTimeoutMs: 10_000 };
      const bravo = await startNode(cleanup, 'bravo', { limits });
      // .3 holds the oldest socket but only one; .4 holds three.
      const [lone, ...busy] = await holdInOrder(cleanup, bravo, ['127.0.0.3', '127.0.0.4', '127.0.0.4', '127.0.0.4'], PARTIAL);
      assert.strictEqual(bravo.t.pending().strangers, 4);

      const alpha = await startNode(cleanup, 'alpha', { bind: '127.0.0.5', limits });
      await alpha.t.send({ name: 'bravo', addresses: [bravo.addr] }, text('through a full pool'));
      await waitFor('the newcomer delivered', () => bravo.rec.messages.length === 1);
      assert.strictEqual(bravo.rec.messages[0].text, 'through a full pool');

      await waitFor('one socket evicted', () => busy[0].closed);
      assert.ok(!lone.closed && !busy[1].closed && !busy[2].closed, 'only the busiest source paid, with its oldest socket');
      const evicted = bravo.rec.rejections.filter((r) => /^evicted to make room: too many unauthenticated sockets in total \(limit 4\)/.test(r.reason));
      assert.strictEqual(evicted.length, 1, JSON.stringify(bravo.rec.rejections));
      assert.match(evicted[0].remote, /^127\.0\.0\.4:/);
    });

    it('between sources holding as many, evicts the oldest socket', async () => {
      const limits = { maxPendingTotal: 4, maxPendingPerSource: 2, firstBytesMs: 10_000, handshakeTimeoutMs: 10_000 };
      const bravo = await startNode(cleanup, 'bravo', { limits });
      const held = await holdInOrder(cleanup, bravo, ['127.0.0.3', '127.0.0.4', '127.0.0.3', '127.0.0.4'], PARTIAL);
      const newcomer = await hold(cleanup, bravo, '127.0.0.6', PARTIAL);
      await waitFor('the oldest evicted', () => held[0].closed);
      await sleep(100);
      assert.deepStrictEqual(
        held.map((h) => h.closed),
        [true, false, false, false],
      );
      assert.ok(!newcomer.closed, 'the newest is not refused');
      assert.deepStrictEqual(bravo.t.pending(), { strangers: 4, known: 0 });
    });

    it('keeps slots for known members that strangers cannot take', async () => {
      const limits = { maxPendingTotal: 3, maxPendingKnown: 2, maxPendingPerSource: 8, firstBytesMs: 10_000, handshakeTimeoutMs: 10_000 };
      const knownHost = (h: string): boolean => h === '127.0.0.9';
      const bravo = await startNode(cleanup, 'bravo', { limits, knownHost });
      const strangers = await holdInOrder(cleanup, bravo, ['127.0.0.3', '127.0.0.3', '127.0.0.3'], PARTIAL);
      assert.deepStrictEqual(bravo.t.pending(), { strangers: 3, known: 0 });

      // A known member's stalled socket and then its handshake take the reserved slots: no stranger is evicted for them.
      await holdInOrder(cleanup, bravo, ['127.0.0.9'], PARTIAL);
      assert.deepStrictEqual(bravo.t.pending(), { strangers: 3, known: 1 });
      const member = await startNode(cleanup, 'member', { bind: '127.0.0.9', limits });
      await member.t.send({ name: 'bravo', addresses: [bravo.addr] }, text('known member'));
      await waitFor('the known member delivered', () => bravo.rec.messages.length === 1);
      assert.ok(
        strangers.every((h) => !h.closed),
        'no stranger evicted for a known member',
      );
      assert.ok(!bravo.rec.rejections.some((r) => /evicted/.test(r.reason)));

      // A fourth stranger does not spill into the known pool: it evicts a stranger.
      await hold(cleanup, bravo, '127.0.0.4', PARTIAL);
      await waitFor('a stranger evicted', () => strangers[0].closed);
      assert.deepStrictEqual(bravo.t.pending(), { strangers: 3, known: 1 });
      assert.ok(bravo.rec.rejections.some((r) => /^evicted to make room: too many unauthenticated sockets in total \(limit 3\)/.test(r.reason)));
    });

    it('a full known pool evicts its own oldest, never a stranger', async () => {
      const limits = { maxPendingTotal: 2, maxPendingKnown: 2, maxPendingPerSource: 8, firstBytesMs: 10_000, handshakeTimeoutMs: 10_000 };
      const bravo = await startNode(cleanup, 'bravo', { limits, knownHost: (h) => h === '127.0.0.9' });
      const strangers = await holdInOrder(cleanup, bravo, ['127.0.0.3', '127.0.0.4'], PARTIAL);
      const known = await holdInOrder(cleanup, bravo, ['127.0.0.9', '127.0.0.9'], PARTIAL);
      await hold(cleanup, bravo, '127.0.0.9', PARTIAL);
      await waitFor('the oldest known socket evicted', () => known[0].closed);
      assert.ok(strangers.every((h) => !h.closed));
      assert.ok(bravo.rec.rejections.some((r) => /^evicted to make room: too many unauthenticated sockets from known members \(limit 2\)/.test(r.reason)));
    });
  });

  describe('authenticated connections', () => {
    it('caps connections per identity, whatever names it claims', async () => {
      const bravo = await startNode(cleanup, 'bravo', { limits: { maxAuthPerIdentity: 2 } });
      const identity = generateIdentity(Date.now());
      const one = await rawSession(cleanup, bravo.addr, 'm1', { identity });
      await rawSession(cleanup, bravo.addr, 'm2', { identity });
      await assert.rejects(rawSession(cleanup, bravo.addr, 'm3', { identity }), /closed before confirming \(code 4004\)/);
      assert.ok(
        bravo.rec.rejections.some((r) => /^too many authenticated connections for identity [0-9a-f]+ \(limit 2\)$/.test(r.reason) && r.peer === 'm3'),
        JSON.stringify(bravo.rec.rejections),
      );
      // Another identity is not affected, and the first connections stay.
      await rawSession(cleanup, bravo.addr, 'other');
      one.ws.send(one.sealer.seal(text('still here')));
      await waitFor('the first connection still delivers', () => bravo.rec.messages.some((m) => m.from.name === 'm1'));
    });

    it('a restarted peer replaces its connection even at the per-identity cap', async () => {
      const bravo = await startNode(cleanup, 'bravo', { limits: { maxAuthPerIdentity: 1 } });
      const identity = generateIdentity(Date.now());
      const old = await rawSession(cleanup, bravo.addr, 'm1', { identity });
      const again = await rawSession(cleanup, bravo.addr, 'm1', { identity });
      assert.strictEqual(await old.closed, 4000, 'the old one is replaced');
      again.ws.send(again.sealer.seal(text('new one')));
      await waitFor('the new connection delivers', () => bravo.rec.messages.length === 1);
    });

    it('caps connections per source address (per /64 for IPv6)', async () => {
      const bravo = await startNode(cleanup, 'bravo', { limits: { maxAuthPerSource: 2 } });
      await rawSession(cleanup, bravo.addr, 'a1', { localAddress: '127.0.0.3' });
      await rawSession(cleanup, bravo.addr, 'a2', { localAddress: '127.0.0.3' });
      await assert.rejects(rawSession(cleanup, bravo.addr, 'a3', { localAddress: '127.0.0.3' }), /code 4004/);
      assert.ok(
        bravo.rec.rejections.some((r) => r.reason === 'too many authenticated connections from 127.0.0.3 (limit 2)'),
        JSON.stringify(bravo.rec.rejections),
      );
      await rawSession(cleanup, bravo.addr, 'b1', { localAddress: '127.0.0.4' });

      const six = await startNode(cleanup, 'six', { host: '::1', limits: { maxAuthPerSource: 1 } });
      await rawSession(cleanup, six.addr, 'c1');
      await assert.rejects(rawSession(cleanup, six.addr, 'c2'), /code 4004/);
      assert.ok(six.rec.rejections.some((r) => r.reason === 'too many authenticated connections from ::/64 (limit 1)'));
    });

    it('caps connections in total and for strangers, keeps room for known members and its own dials, and never drops one to make room', async () => {
      const limits = { maxAuthTotal: 4, maxAuthStrangers: 2 };
      const bravo = await startNode(cleanup, 'bravo', { limits, knownHost: (h) => h === '127.0.0.9' });
      const s1 = await rawSession(cleanup, bravo.addr, 's1', { localAddress: '127.0.0.3' });
      await rawSession(cleanup, bravo.addr, 's2', { localAddress: '127.0.0.4' });
      await assert.rejects(rawSession(cleanup, bravo.addr, 's3', { localAddress: '127.0.0.5' }), /code 4004/);
      assert.ok(
        bravo.rec.rejections.some((r) => r.reason === 'too many authenticated connections from addresses no member records (limit 2)' && r.peer === 's3'),
      );

      // A known member still gets in, and so does bravo's own dial, up to the total.
      const k1 = await rawSession(cleanup, bravo.addr, 'k1', { localAddress: '127.0.0.9' });
      const alpha = await startNode(cleanup, 'alpha', { host: '127.0.0.7' });
      await bravo.t.send({ addresses: [alpha.addr] }, text('own dial'));
      await waitFor('own dial delivered', () => alpha.rec.messages.length === 1);
      assert.strictEqual(bravo.t.stats().connections, 4);

      // Now at the total: a known member is refused too, with a reason its dialer can read.
      await assert.rejects(rawSession(cleanup, bravo.addr, 'k2', { localAddress: '127.0.0.9' }), /code 4004/);
      assert.ok(bravo.rec.rejections.some((r) => r.reason === 'too many authenticated connections (limit 4)' && r.peer === 'k2'));
      const member = await startNode(cleanup, 'member', { bind: '127.0.0.9' });
      await assert.rejects(member.t.send({ name: 'bravo', addresses: [bravo.addr] }, text('x')), /too many connections/);

      // Nobody was dropped to make room.
      for (const [s, name] of [
        [s1, 's1'],
        [k1, 'k1'],
      ] as const) {
        s.ws.send(s.sealer.seal(text(`${name} still here`)));
        await waitFor(`${name} still delivers`, () => bravo.rec.messages.some((m) => m.from.name === name));
      }
      assert.strictEqual(bravo.rec.disconnects.length, 0);
      assert.strictEqual(alpha.rec.disconnects.length, 0);
    });
  });
});
