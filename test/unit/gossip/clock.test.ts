import assert from 'node:assert/strict';
import type { Membership } from '../../../agent/gossip/membership';
import { addressOf, bootCluster, makeMember } from './helpers';

/** A member whose wall clock reads `skew` ms off the network's time, changeable at will. */
function skewed(m: Membership, skew: { ms: number }): Membership {
  return new Proxy(m, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (typeof v !== 'function') return v;
      if (prop === 'nextWakeup') return () => (target.nextWakeup() as number) - skew.ms;
      if (prop === 'nextTickAt') return (now: number) => (target.nextTickAt(now + skew.ms) as number) - skew.ms;
      if (prop === 'view') return () => target.view();
      return (...args: unknown[]) => {
        // The last argument of every time-driven method is `now`.
        const last = args.length - 1;
        if (last >= 0 && typeof args[last] === 'number') args[last] = (args[last] as number) + skew.ms;
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

describe('gossip: local clock steps', () => {
  it('a wall clock stepped back 60 s does not freeze probing, gossip or sync', () => {
    const { router, names } = bootCluster(5);
    const skew = { ms: 0 };
    const n4 = router.node('n4');
    const wrapped = skewed(makeMember('n4', addressOf(4), router.now, { seed: 4 }), skew);
    router.replace('n4', wrapped);
    router.handle(n4, wrapped.bootstrap([addressOf(0)], router.now));
    router.runUntilTrue(() => router.allSee(names, 'alive'), 5000);
    router.run(2000);
    skew.ms = -60_000; // the clock jumps back one minute
    router.recordSent = true;
    router.run(5000);
    const pings = router.sent.filter((m) => m.from === 'n4' && m.msg.t === 'p');
    assert.ok(pings.length >= 15, `n4 kept probing: ${pings.length} pings in 5 s`);
    // Its own clock is what it reports times in.
    const self = wrapped.view().find((v) => v.name === 'n4');
    assert.ok(self && Math.abs(self.lastSeen - (router.now - 60_000)) < 1000);
    assert.ok(wrapped.nextWakeup() - router.now < 1000, 'next wakeup is near, in the network time');
    // And the cluster is fine: a crash is still detected by n4.
    router.crash('n2');
    router.runUntilTrue(() => router.stateOf('n4', 'n2') === 'dead', 5000, 'n4 sees n2 dead');
    assert.deepEqual(
      router.events.filter((e) => e.type === 'dead' && e.name !== 'n2'),
      [],
    );
  });
});
