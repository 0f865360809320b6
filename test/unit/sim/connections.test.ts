/**
 * The simulator's connection costs (bench/sim/connections.ts): open
 * connections per member and handshakes, as the network model opens and
 * closes connections.
 */
import { strict as assert } from 'assert';
import { ConnectionLedger, HANDSHAKE_BYTES, handshakeBytes } from '../../../bench/sim/connections';
import { ManualClock } from '../../../shared/clock';
import { LatencyModel, LATENCY_PRESETS } from '../../../bench/sim/latency';
import { SimNetwork, type Endpoint } from '../../../bench/sim/network';
import { mulberry32 } from '../../../bench/sim/rng';

function net(n: number): { q: ManualClock; nw: SimNetwork } {
  const q = new ManualClock(0);
  const nw = new SimNetwork({ queue: q, latency: new LatencyModel(LATENCY_PRESETS.constant, n, mulberry32(1)), rng: mulberry32(2), wire: 'shared' });
  for (let i = 0; i < n; i++) {
    const ep: Endpoint = {
      index: i,
      peer: { name: `m${i}`, idPub: `id${i}`, remote: `r${i}` },
      addresses: [`h${i}:1`],
      message: () => undefined,
      sendFailed: () => undefined,
      disconnected: () => undefined,
    };
    nw.attach(ep);
  }
  return { q, nw };
}

const send = (nw: SimNetwork, from: number, to: number): void => nw.send(from, { name: `m${to}`, addresses: [`h${to}:1`] }, { t: 'p', s: 1 } as never);

describe('sim: connection costs', () => {
  it('three members exchanging messages hold 2 connections each and made 3 handshakes', () => {
    const { q, nw } = net(3);
    const c = nw.connections;
    for (let round = 0; round < 3; round++) {
      for (let a = 0; a < 3; a++) for (let b = 0; b < 3; b++) if (a !== b) send(nw, a, b);
      q.runUntil(q.now() + 1000);
    }
    for (let i = 0; i < 3; i++) {
      assert.equal(c.openCount(i), 2);
      assert.equal(nw.connectionCount(i), 2);
      const m = c.member(i);
      assert.equal(m.dialed + m.answered, 2, 'one handshake per connection, reused both ways');
    }
    assert.deepEqual(c.totals, { opened: 3, closed: 0 });
    const sent = [0, 1, 2].map((i) => c.member(i).handshakeBytesSent).reduce((x, y) => x + y, 0);
    assert.equal(sent, 3 * (HANDSHAKE_BYTES.dialer + HANDSHAKE_BYTES.listener));
    assert.deepEqual(c.openStats([0, 1, 2]), { members: 3, mean: 2, max: 2 });
  });

  it("a crash closes the crashed member's connections; a new one costs a new handshake", () => {
    const { q, nw } = net(3);
    const c = nw.connections;
    send(nw, 0, 1);
    send(nw, 1, 2);
    send(nw, 2, 0);
    q.runUntil(1000);
    nw.kill(1);
    assert.equal(c.openCount(1), 0);
    assert.equal(c.openCount(0), 1, 'only 0-2 is left');
    assert.equal(c.openCount(2), 1);
    assert.deepEqual(c.totals, { opened: 3, closed: 2 });
    nw.kill(2);
    assert.equal(c.openCount(0), 0);
    // A restarted member 2 dials again: a new handshake.
    nw.remove(2);
    nw.attach({
      index: 2,
      peer: { name: 'm2', idPub: 'id2', remote: 'r2' },
      addresses: ['h2:1'],
      message: () => undefined,
      sendFailed: () => undefined,
      disconnected: () => undefined,
    });
    send(nw, 0, 2);
    q.runUntil(2000);
    assert.equal(c.openCount(0), 1);
    assert.equal(c.totals.opened, 4);
  });

  it("a power cut closes its connections only when the peers' keepalive gives up", () => {
    const { q, nw } = net(3);
    const c = nw.connections;
    send(nw, 0, 1);
    send(nw, 2, 1);
    q.runUntil(1000);
    nw.silence(1);
    assert.equal(c.openCount(0), 1, 'the peer still holds the socket');
    q.runUntil(Infinity);
    assert.equal(c.openCount(0), 0);
    assert.equal(c.openCount(1), 0);
    assert.equal(c.openCount(2), 0);
    assert.deepEqual(c.totals, { opened: 2, closed: 2 });
  });

  it('counts a handshake as in agent/net/handshake.ts: about 0.8 KB for both directions', () => {
    assert.deepEqual(handshakeBytes(), { dialer: 402, listener: 361 });
    assert.deepEqual(HANDSHAKE_BYTES, handshakeBytes());
    const adm = handshakeBytes({ admission: true });
    assert.equal(adm.dialer + adm.listener, 763 + 2 * 72);
    const l = new ConnectionLedger({ dialer: 10, listener: 7 });
    const snap = l.snapshot();
    l.opened(0, 1);
    l.opened(2, 0);
    assert.equal(l.since(snap, 0), 17);
    assert.equal(l.since(snap, 1), 7);
    l.closed(0, 1);
    assert.deepEqual(l.member(0), { open: 1, dialed: 1, answered: 1, handshakeBytesSent: 17 });
    assert.deepEqual(l.openStats([0, 1, 2]), { members: 3, mean: 2 / 3, max: 1 });
  });
});
