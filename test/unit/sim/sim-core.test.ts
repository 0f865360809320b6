/**
 * The simulator's own parts: seeded randomness, the event queue, latency
 * sampling, the network model (order, dial failures, partitions), the
 * growth fits and the command-line flags.
 */
import { strict as assert } from 'assert';
import { ManualClock } from '../../../shared/clock';
import { LatencyModel, LATENCY_PRESETS, sampleJitter } from '../../../bench/sim/latency';
import { SimNetwork, type Endpoint, frameBytes } from '../../../bench/sim/network';
import { growthFits, growthVerdict, table } from '../../../bench/sim/report';
import { installFastCrypto } from '../../../bench/sim/crypto';
import { runSuite } from '../../../bench/sim/suite';
import { LAN } from '../../../agent/gossip/timing';
import { mulberry32, sample, stream } from '../../../bench/sim/rng';
import { parseArgs } from '../../../bench/sim/args';
import type { GossipMessage } from '../../../agent/gossip/messages';
import type { Destination, PeerInfo } from '../../../agent/net/transport';

describe('sim: rng and the virtual clock', () => {
  it('a seed replays the same stream; another seed does not', () => {
    const a = Array.from({ length: 5 }, mulberry32(42));
    const b = Array.from({ length: 5 }, mulberry32(42));
    const c = Array.from({ length: 5 }, mulberry32(43));
    assert.deepEqual(a, b);
    assert.notDeepEqual(a, c);
    assert.ok(a.every((x) => x >= 0 && x < 1));
    assert.notDeepEqual(Array.from({ length: 3 }, stream(1, 'x')), Array.from({ length: 3 }, stream(1, 'y')));
    const s = sample(mulberry32(1), 10, 10);
    assert.deepEqual(
      [...s].sort((x, y) => x - y),
      [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
  });

  it('runs events in time order, ties in scheduling order, and stops on request', () => {
    const q = new ManualClock(0);
    const seen: string[] = [];
    q.at(30, () => seen.push('c'));
    q.at(10, () => seen.push('a1'));
    q.at(10, () => seen.push('a2'));
    q.at(20, () => {
      seen.push('b');
      q.setTimeout(() => seen.push('b+5'), 5);
    });
    q.at(100, () => seen.push('late'));
    assert.equal(q.runUntil(50), false);
    assert.deepEqual(seen, ['a1', 'a2', 'b', 'b+5', 'c']);
    assert.equal(q.now(), 50);
    assert.equal(
      q.runUntil(1000, () => seen.length === 6),
      true,
    );
    assert.equal(q.now(), 100);
  });

  it('keeps a heap order over many random events', () => {
    const q = new ManualClock(0);
    const rng = mulberry32(5);
    const got: number[] = [];
    for (let i = 0; i < 2000; i++) {
      const t = Math.floor(rng() * 1000);
      q.at(t, () => got.push(t));
    }
    q.runUntil(Infinity);
    assert.equal(got.length, 2000);
    for (let i = 1; i < got.length; i++) assert.ok(got[i - 1] <= got[i]);
  });
});

describe('sim: latency', () => {
  it('samples every distribution within its bounds', () => {
    const rng = mulberry32(3);
    assert.equal(sampleJitter({ kind: 'constant', ms: 7 }, rng), 7);
    for (let i = 0; i < 200; i++) {
      const u = sampleJitter({ kind: 'uniform', min: 2, max: 4 }, rng);
      assert.ok(u >= 2 && u <= 4);
      const l = sampleJitter({ kind: 'lognormal', median: 3, sigma: 1.2, max: 50 }, rng);
      assert.ok(l > 0 && l <= 50);
    }
  });

  it('places members in regions by weight and adds the region base', () => {
    const m = new LatencyModel(LATENCY_PRESETS.wan, 3000, mulberry32(9));
    const counts = new Map<string, number>();
    for (let i = 0; i < 3000; i++) counts.set(m.regionOf(i), (counts.get(m.regionOf(i)) ?? 0) + 1);
    assert.ok(Math.abs((counts.get('europe') ?? 0) / 3000 - 0.5) < 0.05, JSON.stringify([...counts]));
    const eu = [...Array(3000).keys()].find((i) => m.regionOf(i) === 'europe') as number;
    const asia = [...Array(3000).keys()].find((i) => m.regionOf(i) === 'asia') as number;
    assert.equal(m.base(eu, asia), 110);
    assert.ok(m.oneWay(eu, asia, mulberry32(1)) >= 110);
    assert.ok(m.oneWay(eu, eu, mulberry32(1)) < 110 + 1500);
  });

  it('refuses a malformed geography', () => {
    assert.throws(
      () =>
        new LatencyModel(
          { name: 'bad', geography: { regions: [{ name: 'a', weight: 1 }], oneWayMs: [] }, jitter: { kind: 'constant', ms: 1 } },
          1,
          mulberry32(1),
        ),
      /1×1/,
    );
  });
});

interface Got {
  messages: { at: number; from: string; s: number }[];
  failed: { at: number; to: string }[];
  disconnected: { at: number; peer: string }[];
}

function net(n: number, loss = 0): { q: ManualClock; net: SimNetwork; got: Got[] } {
  const q = new ManualClock(0);
  const lat = new LatencyModel(LATENCY_PRESETS.constant, n, mulberry32(1));
  const network = new SimNetwork({ queue: q, latency: lat, rng: mulberry32(2), loss, lossModel: 'tcp', wire: 'decode' });
  const got: Got[] = [];
  for (let i = 0; i < n; i++) {
    const g: Got = { messages: [], failed: [], disconnected: [] };
    got.push(g);
    const ep: Endpoint = {
      index: i,
      peer: { name: `m${i}`, idPub: `id${i}`, remote: `r${i}` },
      addresses: [`h${i}:1`],
      message: (from: PeerInfo, msg: GossipMessage) => g.messages.push({ at: q.now(), from: from.name, s: (msg as { s: number }).s }),
      sendFailed: (to: Destination) => g.failed.push({ at: q.now(), to: to.name ?? to.addresses.join(',') }),
      disconnected: (peer: PeerInfo) => g.disconnected.push({ at: q.now(), peer: peer.name }),
    };
    network.attach(ep);
  }
  return { q, net: network, got };
}

describe('sim: network model', () => {
  it('delivers over one connection, in order, after a handshake the first time', () => {
    const { q, net: nw, got } = net(2, 0.3);
    for (let s = 1; s <= 50; s++) nw.send(0, { name: 'm1', addresses: ['h1:1'] }, { t: 'p', s });
    q.runUntil(Infinity);
    assert.deepEqual(
      got[1].messages.map((m) => m.s),
      Array.from({ length: 50 }, (_, i) => i + 1),
    );
    assert.ok(got[1].messages[0].at >= 30, 'handshake (1 RTT) + one way at 10 ms');
    assert.equal(nw.connectionCount(0), 1);
    assert.equal(nw.totals.dials, 1);
    assert.equal(nw.keepaliveBytesPerInterval(0), 3, 'dialer: a masked ping every other interval');
    assert.equal(nw.keepaliveBytesPerInterval(1), 1, 'listener: a pong every other interval');
  });

  it('a killed member: peers see the connection close, new dials are refused', () => {
    const { q, net: nw, got } = net(3);
    nw.send(0, { name: 'm1', addresses: ['h1:1'] }, { t: 'p', s: 1 });
    q.runUntil(100);
    nw.kill(1);
    q.runUntil(200);
    assert.deepEqual(
      got[0].disconnected.map((d) => d.peer),
      ['m1'],
    );
    nw.send(2, { name: 'm1', addresses: ['h1:1'] }, { t: 'p', s: 2 });
    q.runUntil(Infinity);
    assert.equal(got[2].failed.length, 1);
    assert.ok(got[2].failed[0].at - 200 < 100, 'refused within a round trip, not a dial timeout');
  });

  it('a partition: dials time out, open connections die by keepalive, healing restores delivery', () => {
    const { q, net: nw, got } = net(2);
    nw.send(0, { name: 'm1', addresses: ['h1:1'] }, { t: 'p', s: 1 });
    q.runUntil(1000);
    nw.partition([[0], [1]]);
    nw.send(0, { name: 'm1', addresses: ['h1:1'] }, { t: 'p', s: 2 });
    q.runUntil(20_000);
    assert.equal(got[1].messages.length, 1, 'the frame sent across the cut vanished');
    assert.equal(got[0].disconnected.length, 1);
    assert.equal(got[1].disconnected.length, 1);
    nw.send(0, { name: 'm1', addresses: ['h1:1'] }, { t: 'p', s: 3 });
    q.runUntil(40_000);
    assert.equal(got[0].failed.length, 1);
    assert.equal(got[0].failed[0].at, 20_000 + nw.dialTimeoutMs);
    nw.heal();
    nw.send(0, { name: 'm1', addresses: ['h1:1'] }, { t: 'p', s: 4 });
    q.runUntil(Infinity);
    assert.deepEqual(
      got[1].messages.map((m) => m.s),
      [1, 4],
    );
  });

  it('a dial to the wrong name is refused, the next address is tried', () => {
    const { q, net: nw, got } = net(3);
    nw.send(0, { name: 'm2', addresses: ['h1:1', 'h2:1'] }, { t: 'p', s: 9 });
    q.runUntil(Infinity);
    assert.equal(got[1].messages.length, 0);
    assert.deepEqual(
      got[2].messages.map((m) => m.s),
      [9],
    );
  });

  it('counts frame overhead: sealed frame 25 B plus the WebSocket header', () => {
    assert.equal(frameBytes(10, false), 10 + 25 + 2);
    assert.equal(frameBytes(10, true), 10 + 25 + 2 + 4);
    assert.equal(frameBytes(200, false), 200 + 25 + 4);
  });
});

describe('sim: report and flags', () => {
  it('fits a log curve to log data and says so; flags a linear one', () => {
    const ns = [100, 1000, 10000, 100000];
    const logFits = growthFits(
      ns,
      ns.map((n) => 500 + 300 * Math.log(n)),
    );
    assert.ok(logFits[0].r2 > 0.999);
    assert.ok(Math.abs(logFits[0].b - 300) < 1e-6);
    assert.match(growthVerdict(logFits, 4), /^consistent with log N/);
    assert.match(
      growthVerdict(
        growthFits(
          ns,
          ns.map((n) => 2 * n),
        ),
        4,
      ),
      /^NOT like log N/,
    );
  });

  it('parses flags and names the bad one', () => {
    const a = parseArgs(['--n', '100,1000', '--seed', '7', '--quick']);
    assert.deepEqual(a.ns, [100, 1000]);
    assert.equal(a.seed, 7);
    assert.deepEqual(a.lossModels, ['tcp']);
    assert.throws(() => parseArgs(['--n', '1,abc']), /--n values must be integers/);
    assert.throws(() => parseArgs(['--latency', 'moon']), /--latency must be one of/);
    assert.throws(() => parseArgs(['--frobnicate', '1']), /--frobnicate is not a known flag/);
    assert.throws(() => parseArgs(['--seed']), /--seed needs a value/);
    assert.equal(parseArgs([]).heavyMax, 1000);
    assert.equal(parseArgs(['--heavy-max', '50']).heavyMax, 50);
  });

  it('above --heavy-max a size runs the light phases only, and the table says which were not run', function () {
    this.timeout(20_000);
    const fast = installFastCrypto();
    try {
      const base = {
        seed: 3,
        timing: LAN,
        timingName: 'LAN',
        latency: LATENCY_PRESETS.lan,
        anchors: 1,
        startSpreadMs: 100,
        lossRates: [0.05],
        lossModels: ['tcp', 'drop'] as ('tcp' | 'drop')[],
        memberHours: 0.2,
        churnPairs: 1,
        wire: 'shared' as const,
        repeat: 1,
        convergeOnly: false,
      };
      const light = runSuite({ ...base, n: 12, heavy: false });
      assert.notEqual(light.converge.ms, null);
      assert.equal(light.crashes.length, 2);
      assert.ok(light.rest);
      assert.deepEqual(
        light.falsePositives.map((f) => f.model),
        ['tcp'],
      );
      assert.equal(light.partition, null);
      assert.equal(light.churn, null);
      assert.ok(light.homeCut && light.homeCut.mergeMs !== null, 'the home cut runs at every size');
      const full = runSuite({ ...base, n: 12, heavy: true });
      assert.deepEqual(
        full.falsePositives.map((f) => f.model),
        ['tcp', 'drop'],
      );
      assert.ok(full.partition && full.churn);
      const md = table([full, light]);
      assert.match(md, /partition \(two halves\): split seen \/ merged after heal, s \| [0-9.]+ \/ [0-9.]+ \| not run \(N > --heavy-max\) \|/);
      assert.match(
        md,
        /one member cut off \(a home losing its uplink, healed once the rest holds it dead\): seen dead \/ merged after heal, s \| [0-9.]+ \/ [0-9.]+ \| [0-9.]+ \/ [0-9.]+ \|/,
      );
      assert.match(md, /5% loss \(drop\) \| [0-9.]+ .* \| not run \(N > --heavy-max\) \|/);
    } finally {
      fast.uninstall();
    }
  });
});
