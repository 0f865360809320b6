/**
 * The simulator running the real Membership: a seed gives an exact,
 * recorded convergence; another seed converges within bounds; a crash is
 * detected; a partition heals; the fast wire mode and the signature cache
 * change nothing but speed.
 *
 * RECORDED values come from this very test at the time of writing. If the
 * membership rules change on purpose, run the test, read the new figures in
 * the failure message and update them here (and say so in the commit).
 */
import { strict as assert } from 'assert';
import nacl from 'tweetnacl';
import { LAN } from '../../../agent/gossip/timing';
import { canonicalJson } from '../../../shared/canonical-json';
import { signRecord, verifyRecord } from '../../../agent/gossip/records';
import { installFastCrypto, simIdentity, type FastCrypto } from '../../../bench/sim/crypto';
import { LATENCY_PRESETS } from '../../../bench/sim/latency';
import { stream } from '../../../bench/sim/rng';
import * as sc from '../../../bench/sim/scenarios';
import { World } from '../../../bench/sim/world';

/**
 * `events` counts timers fired. It was 488 when a re-armed member timer left
 * its old one to run as a no-op; the driver now clears it (same run, same
 * convergeMs, 10 fewer events).
 */
const RECORDED = { seed: 7, n: 20, convergeMs: 614.641357421875, events: 478 };

function boot(seed: number, n: number, wire: 'shared' | 'decode' = 'shared'): { w: World; c: sc.ConvergeResult } {
  const w = new World({ seed, timing: LAN, latency: LATENCY_PRESETS.lan, capacity: n, wire, countBytes: wire === 'decode' });
  const c = sc.converge(w, n, { anchors: 1, spreadMs: 100, limitMs: 60_000, rng: stream(seed, 'scenarios') });
  return { w, c };
}

describe('sim: the real Membership in virtual time', function () {
  this.timeout(20_000);
  let fast: FastCrypto;
  before(() => {
    fast = installFastCrypto();
  });
  after(() => fast.uninstall());

  it(`seed ${RECORDED.seed}, N=${RECORDED.n}: converges in exactly the recorded virtual time, twice`, () => {
    const a = boot(RECORDED.seed, RECORDED.n);
    const b = boot(RECORDED.seed, RECORDED.n);
    const got = { convergeMs: a.c.ms, events: a.w.q.processed };
    assert.deepEqual({ convergeMs: b.c.ms, events: b.w.q.processed }, got, 'same seed, same run');
    assert.deepEqual(got, { convergeMs: RECORDED.convergeMs, events: RECORDED.events }, `recorded figures changed: ${JSON.stringify(got)}`);
    assert.equal(a.c.gossipRounds, (a.c.ms as number) / LAN.gossipInterval);
  });

  it('another seed converges too, within a few probe periods', () => {
    const { c } = boot(8, RECORDED.n);
    assert.ok(c.ms !== null, 'converged');
    assert.ok((c.ms as number) > 0 && (c.ms as number) < 5 * LAN.probeInterval, `converged in ${c.ms} ms`);
    assert.ok((c.gossipRounds as number) < 25);
  });

  it('encoding and decoding every message gives the very same run as passing objects', () => {
    const shared = boot(11, 15, 'shared');
    const decoded = boot(11, 15, 'decode');
    assert.equal(decoded.c.ms, shared.c.ms);
    assert.equal(decoded.w.q.processed, shared.w.q.processed);
    assert.ok(decoded.w.net.stats[0].bytesSent > 0, 'decode mode counted bytes');
  });

  it('a killed member is declared dead by every other member', () => {
    const { w } = boot(21, 20);
    const r = sc.crash(w, { mode: 'kill', anchors: 1, limitMs: 60_000, rng: stream(21, 'crash') });
    assert.ok(r.firstMs !== null && r.allMs !== null, JSON.stringify(r));
    assert.ok((r.allMs as number) < 20_000, JSON.stringify(r));
    assert.ok((r.firstMs as number) <= (r.allMs as number));
  });

  it('a partition: each side sees the other dead, then the cluster merges after the heal', () => {
    const { w } = boot(31, 20);
    const r = sc.partition(w, { limitMs: 120_000, rng: stream(31, 'part') });
    assert.ok(r.splitMs !== null, `split never fully seen: ${JSON.stringify(r)}`);
    assert.ok(r.mergeMs !== null, `never merged: ${JSON.stringify(r)}`);
    assert.ok(w.obs.converged());
  });

  it('a small cut: healed as soon as the rest holds the cut-off members dead, then the cluster merges', () => {
    const { w } = boot(41, 40);
    const r = sc.partition(w, { limitMs: 120_000, rng: stream(41, 'site'), count: 2, holdMs: 60_000, untilCutSeen: true });
    assert.deepEqual(r.groups, [2, 38]);
    assert.ok(r.cutSeenMs !== null && r.cutSeenMs !== undefined && r.cutSeenMs < 20_000, `the rest saw the site dead: ${JSON.stringify(r)}`);
    assert.equal(r.splitMs, null, 'healed before the site could hold all 38 others dead (one probe per second each)');
    assert.ok(r.mergeMs !== null, `never merged: ${JSON.stringify(r)}`);
    assert.ok(w.obs.converged());
  });

  it('the signature stopgap signs like the agent and tweetnacl, and still refuses a forged record', () => {
    const id = simIdentity(1, 2);
    const kp = nacl.sign.keyPair.fromSeed(id.secretKey.subarray(0, 32));
    assert.equal(Buffer.from(kp.publicKey).toString('base64'), id.idPub);
    const record = {
      name: 'm2',
      role: 'node' as const,
      addresses: ['[2001:db8::3]:7947'],
      node_ips: [],
      overlay_ip: null,
      facts: { cores: 1, memory_mb: 1, os: 'x', agent_version: '0' },
      containers: {},
      id_pub: id.idPub,
      created_at: 1,
    };
    const viaPatch = signRecord(record, 5, id.secretKey);
    const naclSig = nacl.sign.detached(new TextEncoder().encode(canonicalJson({ record, incarnation: 5 })), kp.secretKey);
    assert.equal(viaPatch.sig, Buffer.from(naclSig).toString('base64'), 'byte-identical to tweetnacl');
    fast.uninstall();
    try {
      assert.deepEqual(signRecord(record, 5, id.secretKey), viaPatch, "byte-identical to the agent's own signRecord");
    } finally {
      fast = installFastCrypto();
    }
    assert.equal(verifyRecord(viaPatch), true);
    assert.equal(verifyRecord({ ...viaPatch, incarnation: 6 }), false, 'altered incarnation');
    assert.equal(verifyRecord({ ...viaPatch, record: { ...record, addresses: ['[2001:db8::66]:7947'] } }), false, 'altered record');
    assert.equal(verifyRecord(viaPatch), true, 'the real record still verifies after a forged copy with its sig');
  });
});
