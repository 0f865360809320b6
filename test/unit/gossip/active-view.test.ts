import assert from 'node:assert/strict';
import { TEST, type GossipTiming } from '../../../agent/gossip/timing';
import type { SimRouter } from '../../helpers/sim-router';
import { signRecord } from '../../../agent/gossip/records';
import type { GossipMessage } from '../../../agent/gossip/messages';
import { addressOf, bootCluster, identity, makeMember, recordFor } from './helpers';

/** A small bound, so that 30 members are well past it. */
const TIMING: GossipTiming = { ...TEST, activeMax: 8 };

function upNames(router: SimRouter): string[] {
  return [...router.nodes.values()].filter((n) => n.up).map((n) => n.name);
}

/**
 * Runs until no up member holds more neighbours or connections than the bound,
 * for at most a second of virtual time. A dial or a fill can take a member one
 * over the bound until its next trim (every probeInterval / 4; never a
 * connection it is probing), so a single instant is not the measure: the
 * bound must hold again within a few trims.
 */
function withinBoundSoon(router: SimRouter): void {
  const over = (): string | null => {
    for (const name of upNames(router)) {
      const v = router.node(name).m.activeView();
      const conns = router.connected(name).filter((o) => router.node(o).up);
      if (v.neighbours.length > TIMING.activeMax || conns.length > TIMING.activeMax)
        return `${name} holds ${conns.length} connections (${conns.join(' ')}), neighbours ${v.neighbours.join(' ')}`;
    }
    return null;
  };
  try {
    router.runUntilTrue(() => over() === null, 1000, 'every member within the bound');
  } catch {
    assert.fail(`still over the bound of ${TIMING.activeMax} after a second: ${over()}`);
  }
}

/** Whether the graph of the members' neighbours (each member's own view) joins every up member. */
function neighboursConnected(router: SimRouter): boolean {
  const names = upNames(router);
  const seen = new Set([names[0]]);
  const todo = [names[0] as string];
  while (todo.length > 0) {
    const n = todo.pop() as string;
    for (const o of router.node(n).m.activeView().neighbours) {
      if (!seen.has(o) && router.node(o).up) {
        seen.add(o);
        todo.push(o);
      }
    }
  }
  return names.every((n) => seen.has(n));
}

describe('gossip: bounded connections (active view)', () => {
  it('keeps every member between the target and the bound, and everyone sees everyone', () => {
    const { router, names } = bootCluster(30, { timing: TIMING });
    router.runUntilTrue(() => router.allSee(names, 'alive'), 20_000, 'all alive');
    router.run(10_000);
    assert.ok(router.allSee(names, 'alive'), 'all still see all alive');
    withinBoundSoon(router);
    for (const name of names) {
      const v = router.node(name).m.activeView();
      assert.equal(v.bounded, true, `${name} bounds its connections (29 others > 8)`);
      // The target is min(activeMax / 2, log2(30) + 3) = 4.
      assert.ok(v.neighbours.length >= 4, `${name} has ${v.neighbours.length} neighbours, target 4`);
    }
    assert.ok(neighboursConnected(router), 'the neighbour graph joins everyone');
  });

  it('probes and gossips only to neighbours at rest', () => {
    const { router, names } = bootCluster(30, { timing: TIMING });
    router.runUntilTrue(() => router.allSee(names, 'alive'), 20_000, 'all alive');
    router.run(5000);
    router.recordSent = true;
    router.run(3000);
    const outside = router.sent.filter((m) => (m.msg.t === 'p' || m.msg.t === 'g' || m.msg.t === 'h') && !router.connected(m.from).includes(m.to));
    // Fills and trims go on at rest, so a few messages may open a connection; most must not.
    assert.ok(router.sent.length > 100, `${router.sent.length} messages in 3 s`);
    assert.ok(outside.length * 20 < router.sent.length, `${outside.length} of ${router.sent.length} messages went to a member without a connection`);
  });

  it('replaces a crashed neighbour, and everyone sees the crash', () => {
    const { router, names } = bootCluster(30, { timing: TIMING });
    router.runUntilTrue(() => router.allSee(names, 'alive'), 20_000, 'all alive');
    router.run(5000);
    const victim = 'n7';
    const hadIt = names.filter((n) => n !== victim && router.node(n).m.activeView().neighbours.includes(victim));
    assert.ok(hadIt.length > 0, 'somebody had the victim as a neighbour');
    router.crash(victim);
    const rest = names.filter((n) => n !== victim);
    router.runUntilTrue(() => router.allSee([victim], 'dead', rest), 30_000, 'all see the victim dead');
    router.run(3000);
    for (const name of hadIt) {
      const v = router.node(name).m.activeView();
      assert.ok(!v.neighbours.includes(victim), `${name} dropped the dead victim`);
      assert.ok(v.neighbours.length >= 4, `${name} filled back to ${v.neighbours.length} neighbours`);
    }
  });

  it('heals a partition in halves: each side holds the other dead, then all are alive and linked again', () => {
    const { router, names } = bootCluster(30, { timing: TIMING, partitionMode: 'drop' });
    router.runUntilTrue(() => router.allSee(names, 'alive'), 20_000, 'all alive');
    router.run(5000);
    const left = names.slice(0, 15);
    const right = names.slice(15);
    router.partition([left, right]);
    router.runUntilTrue(() => router.allSee(right, 'dead', left) && router.allSee(left, 'dead', right), 120_000, 'each half holds the other dead');
    for (const name of left)
      assert.ok(
        router
          .node(name)
          .m.activeView()
          .neighbours.every((n) => left.includes(n)),
        `${name}'s neighbours are all on its side`,
      );
    router.heal();
    router.runUntilTrue(() => router.allSee(names, 'alive'), 120_000, 'all alive after the heal');
    router.run(10_000);
    assert.ok(neighboursConnected(router), 'the neighbour graph spans both halves again');
    withinBoundSoon(router);
  });

  it('a trimmed connection is not taken for a failure: no probe, no suspicion', () => {
    const { router, names } = bootCluster(30, { timing: TIMING });
    router.runUntilTrue(() => router.allSee(names, 'alive'), 20_000, 'all alive');
    router.run(5000);
    const a = router.node('n3');
    const peer = a.m.activeView().neighbours[0] as string;
    const trimmed = a.m.disconnected(peer, router.now, true);
    assert.ok(!trimmed.send.some((o) => o.to.name === peer && o.msg.t === 'p'), 'no probe of a peer that trimmed us');
    assert.ok(!a.m.activeView().neighbours.includes(peer), 'no longer a neighbour');
    const lost = router.node('n4').m;
    const other = lost.activeView().neighbours[0] as string;
    const step = lost.disconnected(other, router.now, false);
    assert.ok(
      step.send.some((o) => o.to.name === other && o.msg.t === 'p'),
      'a lost connection is probed at once',
    );
  });

  it('keeps the neighbours it chose when many members dial it', () => {
    const { router, names } = bootCluster(30, { timing: TIMING });
    router.runUntilTrue(() => router.allSee(names, 'alive'), 20_000, 'all alive');
    router.run(5000);
    const chosenBy = (name: string): string[] => {
      const v = router.node(name).m.activeView();
      return v.chosen.filter((n) => v.neighbours.includes(n));
    };
    const victim = names.slice(1).find((n) => chosenBy(n).length > 0);
    assert.ok(victim, 'some member chose neighbours');
    const target = router.node(victim);
    const chosen = chosenBy(victim);
    // Everyone else talks to it at once (as members holding the key and many identities could).
    for (const name of names) {
      if (name === victim || chosen.includes(name)) continue;
      router.handle(target, target.m.receive({ name, idPub: router.node(name).idPub, remote: router.node(name).address }, { t: 'g', u: [] }, router.now));
    }
    assert.ok(target.m.activeView().neighbours.length > TIMING.activeMax, 'over the bound for a moment');
    router.handle(target, target.m.tick(router.now + TIMING.probeInterval));
    const after = target.m.activeView();
    assert.ok(after.neighbours.length <= TIMING.activeMax, `trimmed to ${after.neighbours.length}`);
    for (const n of chosen) assert.ok(after.neighbours.includes(n), `kept ${n}, which it chose`);
  });

  it('members arriving one after another (a rolling restart) grow no full mesh: connections stay within four times the bound', () => {
    const { router, names } = bootCluster(20, { timing: TIMING });
    router.runUntilTrue(() => router.allSee(names, 'alive'), 20_000, 'all alive');
    router.run(5000);
    const all = [...names];
    let most = { n: 0, who: '' };
    for (let i = 20; i < 50; i++) {
      const name = `n${i}`;
      const node = router.add(makeMember(name, addressOf(i), router.now, { timing: TIMING }), addressOf(i));
      router.handle(node, node.m.bootstrap([addressOf(0)], router.now));
      all.push(name);
      // One arrival every 400 ms, under a sync interval (1 s) apart: every member stays in its arrival mode throughout.
      for (let t = 0; t < 400; t += 50) {
        router.run(50);
        for (const n of all) {
          const c = router.connected(n).length;
          if (c > most.n) most = { n: c, who: n };
        }
      }
    }
    router.runUntilTrue(() => router.allSee(all, 'alive'), 20_000, 'all 50 alive');
    // A dial between two trims (every quarter period) can take a member a few over for a moment.
    assert.ok(most.n <= 4 * TIMING.activeMax + 4, `${most.who} held ${most.n} connections while members arrived (bound ${4 * TIMING.activeMax})`);
    // Once they stop arriving for a sync interval, the bound is activeMax again.
    router.run(5 * TIMING.syncInterval);
    withinBoundSoon(router);
  });

  it('a member nobody holds a connection with is still checked: a made-up one ends dead everywhere', () => {
    const { router, names } = bootCluster(30, { timing: TIMING });
    router.runUntilTrue(() => router.allSee(names, 'alive'), 20_000, 'all alive');
    // At rest: every view is full, so no fill probe will pick the made-up member.
    router.run(10_000);
    // A member holding the key gossips the record of a machine that does not exist.
    const fake = identity('fake');
    const record = recordFor('fake', '127.0.0.250:9', fake);
    const n1 = router.node('n1');
    router.handle(n1, {
      send: [{ to: { name: 'n0', addresses: [addressOf(0)] }, msg: { t: 'g', u: [{ k: 'a', r: signRecord(record, 1, fake.secretKey) }] } }],
      events: [],
    });
    router.runUntilTrue(() => router.allSee(['fake'], 'alive'), 10_000, 'all learn the made-up member');
    router.runUntilTrue(() => router.allSee(['fake'], 'dead'), 60_000, 'all hold the made-up member dead');
    const checks = names.reduce((sum, n) => sum + (router.node(n).m.counters()['active-check'] ?? 0), 0);
    assert.ok(checks > 0, 'members outside the views were checked');
  });

  it('a stream of made-up members, which keeps members arriving, still ends each dead everywhere: checks always judge', () => {
    const { router, names } = bootCluster(30, { timing: TIMING });
    router.runUntilTrue(() => router.allSee(names, 'alive'), 20_000, 'all alive');
    router.run(10_000);
    // A member holding the key gossips a new made-up record every half sync interval: members
    // never stop arriving, so fills that fail blame nobody (probe.ts), and only checks remain.
    const n1 = router.node('n1');
    const fakes: string[] = [];
    const spawn = (): void => {
      const name = `fake${fakes.length}`;
      const id = identity(`stream-${name}`);
      fakes.push(name);
      const record = recordFor(name, `127.0.1.${fakes.length}:9`, id);
      router.handle(n1, {
        send: [{ to: { name: 'n0', addresses: [addressOf(0)] }, msg: { t: 'g', u: [{ k: 'a', r: signRecord(record, 1, id.secretKey) }] } }],
        events: [],
      });
    };
    spawn();
    let last = router.now;
    router.runUntilTrue(
      () => {
        if (router.now - last >= TIMING.syncInterval / 2) [last] = [router.now, spawn()];
        return router.allSee(['fake0'], 'dead', names);
      },
      90_000,
      'the first made-up member dead everywhere',
    );
    assert.ok(fakes.length >= 2, `members kept arriving: ${fakes.length} made up`);
    const checks = names.reduce((sum, n) => sum + (router.node(n).m.counters()['active-check'] ?? 0), 0);
    assert.ok(checks > 0, 'members outside the views were checked');
  });

  it('a refuted suspicion is no arrival: the view is trimmed on time during a storm of them', () => {
    const { router, names } = bootCluster(30, { timing: TIMING });
    router.runUntilTrue(() => router.allSee(names, 'alive'), 20_000, 'all alive');
    router.run(10_000);
    const target = router.node('n5');
    const peer = (name: string) => ({ name, idPub: router.node(name).idPub, remote: router.node(name).address });
    // Everyone talks to it at once: over the bound until its next trim.
    for (const name of names) if (name !== 'n5') router.handle(target, target.m.receive(peer(name), { t: 'g', u: [] }, router.now));
    assert.ok(target.m.activeView().neighbours.length > TIMING.activeMax, 'over the bound for a moment');
    // n2 claims that n3 is suspect; n3 refutes with a new record, which reaches the target.
    const inc = router.node('n3').m.incarnation();
    const claim: GossipMessage = { t: 'g', u: [{ k: 's', n: 'n3', i: inc, f: 'n2' }] };
    target.m.receive(peer('n2'), claim, router.now);
    const refutation = router
      .node('n3')
      .m.receive(peer('n2'), claim, router.now)
      .send.find((o) => o.msg.t === 'g');
    assert.ok(refutation, 'n3 refuted');
    const step = target.m.receive(peer('n3'), refutation.msg, router.now);
    assert.ok(
      step.events.some((e) => e.type === 'alive' && e.name === 'n3' && e.detail === 'refuted'),
      'the target took the refutation',
    );
    // The next trim comes a quarter period later: a refutation is no member arriving, so it trims.
    const tick = target.m.tick(router.now + TIMING.probeInterval);
    assert.ok((tick.close ?? []).length > 0, 'connections closed as trimmed');
    assert.ok(target.m.activeView().neighbours.length <= TIMING.activeMax, `trimmed to ${target.m.activeView().neighbours.length}`);
  });
});
