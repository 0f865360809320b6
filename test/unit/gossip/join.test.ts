import assert from 'node:assert/strict';
import { LAN, TEST } from '../../../agent/gossip/timing';
import { encodeMessage } from '../../../agent/gossip/messages';
import { REFUSED_RETRY_MS } from '../../../agent/gossip/join';
import { addressOf, bootCluster, makeMember } from './helpers';

describe('gossip: join', () => {
  it('a node refused as not admitted tries again within seconds, not after its grown backoff', () => {
    const m = makeMember('venus', addressOf(5), 0, { timing: LAN });
    const joins: number[] = [];
    const run = (from: number, until: number): void => {
      for (let now = from; now <= until; now += 100) if (m.tick(now).send.some((o) => o.msg.t === 'd')) joins.push(now);
    };
    if (m.bootstrap([addressOf(0)], 0).send.some((o) => o.msg.t === 'd')) joins.push(0);
    // Nobody answers for two minutes: the gaps between join attempts grow to the maximum.
    run(100, 120_000);
    const gaps = joins.slice(1).map((t, i) => t - (joins[i] as number));
    assert.ok(Math.min(...gaps.slice(-3)) > REFUSED_RETRY_MS, `gaps ${gaps.join(', ')}`);
    assert.ok(Math.max(...gaps) <= 1.25 * LAN.joinRetryMax + 100, `gaps ${gaps.join(', ')}: none over the maximum and its jitter`);
    const last = joins[joins.length - 1] as number;
    // Refused just after that attempt: the next one comes within REFUSED_RETRY_MS.
    m.refusedByPeer(last + 100);
    const before = joins.length;
    run(last + 200, last + 100 + REFUSED_RETRY_MS);
    assert.equal(joins.length, before + 1, `joins after the refusal: ${joins.slice(before).join(', ')}`);
  });

  it('a join storm talks to far fewer strangers when gossip prefers members it is connected to, and converges as fast', () => {
    const storm = (share: number): { took: number; pairs: number } => {
      // Connections unbounded (activeMax 0): with the active view, gossip goes to neighbours whatever the share.
      const { router, names } = bootCluster(40, { seed: 11, timing: { ...TEST, gossipWarmShare: share, activeMax: 0 } });
      router.recordSent = true;
      const took = router.runUntilTrue(() => router.allSee(names, 'alive'), 20_000, 'convergence');
      // Each pair that exchanged anything needed a connection, so a handshake on both ends.
      const pairs = new Set(router.sent.map((m) => [m.from, m.to].sort().join('|'))).size;
      return { took, pairs };
    };
    const uniform = storm(0);
    const warm = storm(TEST.gossipWarmShare);
    assert.ok(warm.pairs < 0.75 * uniform.pairs, `pairs that talked: ${warm.pairs} preferring connected members, ${uniform.pairs} uniform`);
    assert.ok(warm.took <= uniform.took + TEST.probeInterval, `converged in ${warm.took} ms, uniform ${uniform.took} ms`);
  });

  it('20 members joining through one anchor at once all see all alive', () => {
    const { router, names } = bootCluster(20);
    const took = router.runUntilTrue(() => router.allSee(names, 'alive'), 10_000, 'full convergence');
    assert.ok(took < 3000, `converged in ${took} ms of virtual time`);
    // And it stays that way: no member is suspected while nothing fails.
    router.run(10_000);
    assert.ok(router.allSee(names, 'alive'));
    assert.deepEqual(
      router.events.filter((e) => e.type === 'suspect' || e.type === 'dead'),
      [],
    );
  });

  it("with the LAN preset, 50 members converge within memberlist's time and stay quiet at rest", () => {
    const { router, names } = bootCluster(50, { timing: LAN, seed: 50 });
    const took = router.runUntilTrue(() => router.allSee(names, 'alive'), 30_000, 'full convergence');
    assert.ok(took <= 1300, `converged in ${took} ms (memberlist median at N=50: 1228 ms)`);
    router.run(30_000);
    router.recordSent = true;
    router.run(60_000);
    const kinds = new Set(router.sent.map((m) => m.msg.t));
    assert.deepEqual([...kinds].sort(), ['h', 'k', 'p'], 'at rest: probes, acks and digest hashes only');
    const perMember = router.sent.reduce((sum, m) => sum + encodeMessage(m.msg).byteLength, 0) / names.length / 60;
    // Payload only; the transport adds ~30 B per frame. memberlist: ~175 B/s per member, encrypted.
    assert.ok(perMember < 60, `${perMember.toFixed(1)} B/s per member at rest`);
  });
});
