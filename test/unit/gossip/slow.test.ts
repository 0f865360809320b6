import assert from 'node:assert/strict';
import { TEST } from '../../../agent/gossip/timing';
import { bootCluster } from './helpers';

describe('gossip: slow networks and overloaded agents', () => {
  it('round trips longer than the probe timeout cause no false deaths: timeouts follow the measured RTT', () => {
    // One-way 150-300 ms: every round trip exceeds TEST's 80 ms probe timeout, most its 200 ms probe period.
    const { router, names } = bootCluster(10, { latency: { min: 150, max: 300 }, seed: 3 });
    router.runUntilTrue(() => router.allSee(names, 'alive'), 20_000, 'convergence on a slow network');
    const t0 = router.now;
    router.run(60_000);
    assert.deepEqual(
      router.events.filter((e) => e.type === 'dead'),
      [],
    );
    const early = router.events.filter((e) => e.at < t0 && e.type === 'suspect').length;
    const later = router.events.filter((e) => e.at >= t0 + 10_000 && e.type === 'suspect').length;
    assert.ok(later <= 20, `suspicions settle once the RTT is learnt (${early} while joining, ${later} in the last 50 s)`);
    // And a real crash is still detected on that network.
    router.crash('n4');
    router.runUntilTrue(
      () =>
        router.allSee(
          ['n4'],
          'dead',
          names.filter((n) => n !== 'n4'),
        ),
      30_000,
      'crash detected',
    );
  });

  it('an agent whose probes keep failing slows its own probing down (local health)', () => {
    const { router, names } = bootCluster(4, { partitionMode: 'drop' });
    router.runUntilTrue(() => router.allSee(names, 'alive'), 5000);
    router.recordSent = true;
    // n0 loses every ack: its probes fail although nobody is down.
    router.filter = (_from, to, msg) => (to.name === 'n0' && msg.t === 'k' ? null : msg);
    router.run(4000);
    const early = router.sent.filter((m) => m.from === 'n0' && m.msg.t === 'p' && m.at < router.now - 2000).length;
    const late = router.sent.filter((m) => m.from === 'n0' && m.msg.t === 'p' && m.at >= router.now - 2000).length;
    assert.ok(late < early, `fewer probes once unhealthy: ${early} then ${late} per 2 s`);
    assert.ok(late <= 2000 / TEST.probeInterval / 2, `probing at most half as often: ${late}`);
    assert.ok(
      router
        .node('n0')
        .m.problems()
        .some((p) => /probes keep failing .* check its CPU load and its network/.test(p)),
      'the operator is told',
    );
    // Acks flow again: it recovers its normal pace.
    router.filter = null;
    router.run(10_000);
    router.sent.length = 0;
    router.run(2000);
    const healed = router.sent.filter((m) => m.from === 'n0' && m.msg.t === 'p').length;
    assert.ok(healed >= 2000 / TEST.probeInterval - 2, `back to normal: ${healed}`);
    assert.deepEqual(router.node('n0').m.problems(), []);
  });

  it('a crash seen through closed connections leaves the survivors probing at full speed', () => {
    const { router, names } = bootCluster(6);
    router.runUntilTrue(() => router.allSee(names, 'alive'), 5000);
    router.run(3000);
    router.recordSent = true;
    router.crash('n5');
    const rest = names.filter((n) => n !== 'n5');
    router.runUntilTrue(() => router.allSee(['n5'], 'dead', rest), 10_000, 'n5 dead everywhere');
    const from = router.now;
    router.run(2000);
    for (const n of rest) {
      const pings = router.sent.filter((m) => m.from === n && m.msg.t === 'p' && m.to !== 'n5' && m.at >= from).length;
      // Every helper said it could not reach n5 (nacks): the failure was n5's, not this agent's.
      assert.ok(pings >= 2000 / TEST.probeInterval - 2, `${n} sent ${pings} probes in 2 s, as many as a healthy agent`);
    }
  });
});
