import assert from 'node:assert/strict';
import { TEST } from '../../../agent/gossip/timing';
import { SimRouter, seededRng } from '../../helpers/sim-router';
import { addressOf, bootCluster, makeMember } from './helpers';
import type { State } from '../../../agent/gossip/state';
import { unmetAnchorAddresses } from '../../../agent/gossip/state';

describe('gossip: healing', () => {
  it('a split cluster merges again once the network heals, with no restart', () => {
    const { router, names, nodes } = bootCluster(10);
    router.runUntilTrue(() => router.allSee(names, 'alive'), 5000);
    const a = names.slice(0, 5);
    const b = names.slice(5);
    router.partition([a, b]);
    router.runUntilTrue(() => router.allSee(b, 'dead', a) && router.allSee(a, 'dead', b), 20_000, 'each side sees the other dead');
    router.run(5000);
    router.heal();
    const took = router.runUntilTrue(() => router.allSee(names, 'alive'), 3 * TEST.reconnectInterval + 2000, 'merge');
    assert.ok(took <= 2 * TEST.reconnectInterval, `merged ${took} ms after the heal`);
    // Same state machines all along, and the merge holds.
    assert.deepEqual(
      nodes.map((n) => n.m),
      names.map((n) => router.node(n).m),
    );
    const t = router.now;
    router.run(10_000);
    assert.ok(router.allSee(names, 'alive'));
    assert.deepEqual(
      router.events.filter((e) => e.at >= t && (e.type === 'dead' || e.type === 'suspect')),
      [],
    );
  });

  it('after a heal, a member heard of from others as back from the dead gets a fresh connection, not the one that lived through the cut', () => {
    const { router, names } = bootCluster(10);
    router.runUntilTrue(() => router.allSee(names, 'alive'), 5000);
    const a = names.slice(0, 5);
    const b = names.slice(5);
    router.partition([a, b]);
    router.runUntilTrue(() => router.allSee(b, 'dead', a) && router.allSee(a, 'dead', b), 20_000, 'each side sees the other dead');
    // The cut dropped messages but closed no connection, as a real one does for a while.
    const stale = names.filter((n) => router.connected(n).some((o) => a.includes(n) !== a.includes(o)));
    assert.ok(stale.length > 0, 'no connection across the cut survived it');
    router.heal();
    router.runUntilTrue(() => router.allSee(names, 'alive'), 3 * TEST.reconnectInterval + 2000, 'merge');
    const closed = names.reduce((sum, n) => sum + ((router.node(n).m.counters() as Record<string, number>)['stale-link-closed'] ?? 0), 0);
    assert.ok(closed > 0, 'no member closed a connection that lived through the cut');
  });

  it('with every anchor down it retries with growing, capped backoff, and joins once an anchor comes up', () => {
    const router = new SimRouter({ rng: seededRng(3) });
    const anchorAddr = addressOf(0);
    const joiner = router.add(makeMember('j', addressOf(1), router.now), addressOf(1));
    router.recordSent = true;
    router.handle(joiner, joiner.m.bootstrap([anchorAddr], router.now));
    router.run(12_000);
    const tries = router.sent.filter((m) => m.from === 'j' && m.msg.t === 'd').map((m) => m.at);
    assert.ok(tries.length >= 5 && tries.length <= 12, `${tries.length} attempts in 12 s`);
    const gaps = tries.slice(1).map((t, i) => t - (tries[i] as number));
    assert.ok((gaps[1] as number) > (gaps[0] as number) * 1.1, `backoff grows: ${gaps.join(', ')}`);
    for (const g of gaps) assert.ok(g <= TEST.joinRetryMax, `capped: ${g}`);
    assert.ok(
      gaps.slice(-3).every((g) => g >= TEST.joinRetryMax * 0.75),
      'reached the cap',
    );
    assert.ok(
      joiner.m.problems().some((p) => /cannot reach any anchor/.test(p)),
      'the operator is told',
    );
    // The anchor comes up.
    const anchor = router.add(makeMember('a0', anchorAddr, router.now), anchorAddr);
    router.handle(anchor, anchor.m.bootstrap([], router.now));
    const took = router.runUntilTrue(() => router.allSee(['a0', 'j'], 'alive'), TEST.joinRetryMax + 1000, 'joined');
    assert.ok(took <= TEST.joinRetryMax + 100);
    assert.deepEqual(joiner.m.problems(), []);
    // Joined: no more join rounds.
    const n = router.sent.filter((m) => m.from === 'j' && m.msg.t === 'd').length;
    router.run(10_000);
    assert.equal(router.sent.filter((m) => m.from === 'j' && m.msg.t === 'd').length, n);
  });

  it('members that met each other while their anchor was down still meet the cluster that grows around it later', () => {
    // beta starts while its only anchor (alpha) is down; delta joins through beta.
    // Then alpha comes up and gamma joins it. Without retrying unmet anchors,
    // {beta, delta} and {alpha, gamma} would stay two clusters forever.
    const router = new SimRouter({ rng: seededRng(11) });
    const [alphaA, betaA, gammaA, deltaA] = [0, 1, 2, 3].map(addressOf);
    const beta = router.add(makeMember('beta', betaA, router.now), betaA);
    router.handle(beta, beta.m.bootstrap([alphaA], router.now));
    const delta = router.add(makeMember('delta', deltaA, router.now), deltaA);
    router.handle(delta, delta.m.bootstrap([betaA], router.now));
    router.runUntilTrue(() => router.allSee(['beta', 'delta'], 'alive'), 5000, 'beta and delta meet');
    const alpha = router.add(makeMember('alpha', alphaA, router.now), alphaA);
    router.handle(alpha, alpha.m.bootstrap([], router.now));
    const gamma = router.add(makeMember('gamma', gammaA, router.now), gammaA);
    router.handle(gamma, gamma.m.bootstrap([alphaA], router.now));
    const all = ['alpha', 'beta', 'gamma', 'delta'];
    const took = router.runUntilTrue(() => router.allSee(all, 'alive'), 3 * TEST.reconnectInterval + 2000, 'one cluster');
    assert.ok(took <= 2 * TEST.reconnectInterval, `met ${took} ms after the anchor came up`);
  });

  it('knows its unmet anchors as the member that holds an anchor address joins, dies and comes back elsewhere', () => {
    const router = new SimRouter({ rng: seededRng(5) });
    const [a0, a1, a2, far] = [0, 1, 2, 9].map(addressOf);
    const start = (name: string, addr: string, anchors: string[]): void => {
      const node = router.add(makeMember(name, addr, router.now), addr);
      router.handle(node, node.m.bootstrap(anchors, router.now));
    };
    start('a0', a0, []);
    start('a1', a1, [a0, far]);
    start('a2', a2, [a0]);
    router.runUntilTrue(() => router.allSee(['a0', 'a1', 'a2'], 'alive'), 5000, 'three members');
    const s = (router.node('a1').m as unknown as { s: State }).s;
    // Counted by the table at every write, and found by a scan of the live records (and ours), they agree.
    const unmet = (): readonly string[] => {
      const kept = unmetAnchorAddresses(s);
      const met = new Set(
        [...s.entries.values()].filter((e) => e.name === 'a1' || e.state === 'alive' || e.state === 'suspect').flatMap((e) => e.signed.record.addresses),
      );
      assert.deepEqual(
        kept,
        [a0, far].filter((a) => !met.has(a)),
        'counted = scanned',
      );
      return kept;
    };
    assert.deepEqual(unmet(), [far], 'nobody advertises the second anchor yet');
    start('f', far, [a0]);
    router.runUntilTrue(() => router.allSee(['f'], 'alive'), 5000, 'f joined');
    assert.deepEqual(unmet(), [], 'a new alive member strikes its address off');
    router.crash('f');
    router.runUntilTrue(() => router.allSee(['f'], 'dead', ['a0', 'a1', 'a2']), 20_000, 'f dead');
    assert.deepEqual(unmet(), [far], 'a dead member meets no anchor');
    const m = makeMember('f', addressOf(7), router.now, { incarnation: 3, seed: 8 });
    const back = router.replace('f', m);
    router.alias(addressOf(7), 'f');
    router.handle(back, m.bootstrap([a0], router.now));
    router.runUntilTrue(() => router.allSee(['f'], 'alive', ['a1']), 10_000, 'f back at another address');
    assert.deepEqual(unmet(), [far], 'its new record no longer holds the anchor address');
  });

  it('a restarted member whose anchors are gone rejoins through its persisted peers', () => {
    const { router, names } = bootCluster(6);
    router.runUntilTrue(() => router.allSee(names, 'alive'), 5000);
    const saved = router.node('n5').m.persistable();
    assert.deepEqual(saved.map((p) => p.name).sort(), ['n0', 'n1', 'n2', 'n3', 'n4']);
    router.crash('n5');
    router.crash('n0'); // the only anchor
    const rest = ['n1', 'n2', 'n3', 'n4'];
    router.runUntilTrue(() => router.allSee(['n0', 'n5'], 'dead', rest), 10_000);
    // n5 restarts with a fresh state machine and a higher incarnation.
    const m = makeMember('n5', addressOf(5), router.now, { incarnation: 2, seed: 99 });
    const node = router.replace('n5', m);
    m.restorePeers(saved, router.now);
    router.handle(node, m.bootstrap([addressOf(0)], router.now));
    router.runUntilTrue(() => router.allSee(['n5'], 'alive', [...rest, 'n5']) && router.allSee(rest, 'alive', ['n5']), 5000, 'rejoined');
    assert.equal(router.stateOf('n5', 'n0'), 'dead');
  });

  it('a restart with a LOWER incarnation than the cluster remembers still comes back alive', () => {
    const { router, names } = bootCluster(4);
    router.runUntilTrue(() => router.allSee(names, 'alive'), 5000);
    const n3 = router.node('n3');
    router.handle(n3, n3.m.updateSelf({ node_ips: ['192.0.2.3'] }, router.now)); // incarnation 2
    router.run(2000);
    router.crash('n3');
    router.runUntilTrue(() => router.allSee(['n3'], 'dead', ['n0', 'n1', 'n2']), 10_000);
    const m = makeMember('n3', addressOf(3), router.now, { incarnation: 1, seed: 5 }); // clock went back
    router.handle(router.replace('n3', m), m.bootstrap([addressOf(0)], router.now));
    router.runUntilTrue(() => router.allSee(names, 'alive'), 5000, 'n3 back');
    assert.ok(m.incarnation() > 2);
  });

  it('a straggler that missed every gossip message converges through anti-entropy within one sync interval', () => {
    const { router, names } = bootCluster(8);
    router.runUntilTrue(() => router.allSee(names, 'alive'), 5000);
    // n7 hears no gossip at all: gossip rounds and piggybacked updates to it are dropped.
    router.filter = (_from, to, msg) => {
      if (to.name !== 'n7') return msg;
      if (msg.t === 'g') return null;
      if ((msg.t === 'p' || msg.t === 'k') && msg.u) return { t: msg.t, s: msg.s };
      return msg;
    };
    const n2 = router.node('n2');
    router.handle(n2, n2.m.updateSelf({ overlay_ip: '10.1.2.3' }, router.now));
    router.runUntilTrue(
      () =>
        ['n0', 'n1', 'n3'].every(
          (o) =>
            router
              .node(o)
              .m.view()
              .find((v) => v.name === 'n2')?.record.overlay_ip === '10.1.2.3',
        ),
      2000,
    );
    const t0 = router.now;
    const took = router.runUntilTrue(
      () =>
        router
          .node('n7')
          .m.view()
          .find((v) => v.name === 'n2')?.record.overlay_ip === '10.1.2.3',
      3 * TEST.syncInterval,
      'straggler updated',
    );
    assert.ok(router.now - t0 <= TEST.syncInterval * 1.3, `took ${took} ms`);
  });

  it('a straggler that missed a leave learns it through anti-entropy, with no false alive in between', () => {
    const { router, names } = bootCluster(6);
    router.runUntilTrue(() => router.allSee(names, 'alive'), 5000);
    router.filter = (_from, to, msg) => (to.name === 'n5' && msg.t === 'g' ? null : msg);
    const n2 = router.node('n2');
    router.handle(n2, n2.m.leave(router.now));
    router.crash('n2');
    router.runUntilTrue(() => router.allSee(['n2'], 'left', ['n0', 'n1', 'n3', 'n4']), 2000);
    const t0 = router.now;
    router.runUntilTrue(() => router.stateOf('n5', 'n2') === 'left', 3 * TEST.syncInterval, 'n5 sees n2 left');
    assert.ok(router.now - t0 <= TEST.syncInterval * 1.3);
    assert.deepEqual(
      router.events.filter((e) => e.name === 'n2' && (e.type === 'alive' || e.type === 'conflict') && e.at >= t0),
      [],
    );
  });
});

describe('gossip: scale and loss', function () {
  this.timeout(60_000);

  it('an anchor takes a join storm of 99 simultaneous joins without losing anyone', () => {
    const { router, names } = bootCluster(100, { seed: 11 });
    const took = router.runUntilTrue(() => router.allSee(names, 'alive'), 20_000, '100 members converge');
    assert.ok(took <= 3000, `converged in ${took} ms`);
  });

  it('no false deaths under 10 % random message loss (30 members, 120 s)', () => {
    const { router, names } = bootCluster(30, { seed: 5 });
    router.runUntilTrue(() => router.allSee(names, 'alive'), 10_000);
    router.setLoss(0.1);
    const t0 = router.now;
    router.run(120_000);
    const suspicions = router.events.filter((e) => e.at >= t0 && e.type === 'suspect');
    assert.ok(suspicions.length > 0, 'loss did cause suspicions (the test exercises refutation)');
    assert.deepEqual(
      router.events.filter((e) => e.type === 'dead'),
      [],
    );
    router.setLoss(0);
    router.runUntilTrue(() => router.allSee(names, 'alive'), 5000);
  });
});

describe('gossip: an anchor list naming this very agent', () => {
  it('the first anchor, listed under a name that loops back to itself, starts a cluster without complaining', () => {
    const router = new SimRouter({ rng: seededRng(8) });
    const a0 = router.add(makeMember('a0', addressOf(0), router.now), addressOf(0));
    // "anchor.example:7947" resolves to a0 itself.
    router.alias('anchor.example:7947', 'a0');
    router.handle(a0, a0.m.bootstrap(['anchor.example:7947'], router.now));
    router.run(TEST.joinRetryMax * 3);
    assert.deepEqual(a0.m.problems(), []);
    const j = router.add(makeMember('j', addressOf(1), router.now), addressOf(1));
    router.handle(j, j.m.bootstrap(['anchor.example:7947'], router.now));
    router.runUntilTrue(() => router.allSee(['a0', 'j'], 'alive'), 2000);
  });
});
