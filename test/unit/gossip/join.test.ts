import assert from 'node:assert/strict';
import { bootCluster } from './helpers';

describe('gossip: join', () => {
  it('20 members joining through one anchor at once all see all alive', () => {
    const { router, names } = bootCluster(20);
    const took = router.runUntilTrue(() => router.allSee(names, 'alive'), 10_000, 'full convergence');
    assert.ok(took < 3000, `converged in ${took} ms of virtual time`);
    // And it stays that way: no member is suspected while nothing fails.
    router.run(10_000);
    assert.ok(router.allSee(names, 'alive'));
    assert.deepEqual(router.events.filter((e) => e.type === 'suspect' || e.type === 'dead'), []);
  });
});
