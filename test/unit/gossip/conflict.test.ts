import { fingerprint } from '../../../agent/net/identity';
import assert from 'node:assert/strict';
import { signRecord } from '../../../agent/gossip/records';
import { TEST } from '../../../agent/gossip/timing';
import { addressOf, bootCluster, identity, makeMember, recordFor } from './helpers';

const CONFLICT =
  /^node name "(\S+)" is claimed by two machines \(identity ([0-9a-f]{12}) at (\S+)( \(this agent\))?, and ([0-9a-f]{12}) at (\S+)\): rename one of them$/;

describe('gossip: identities and name conflicts', () => {
  it("refuses a second machine claiming a live member's name, and says so in problems()", () => {
    const { router, names } = bootCluster(4);
    router.runUntilTrue(() => router.allSee(names, 'alive'), 5000);
    const realPub = router.node('n1').idPub;
    const impostor = router.add(makeMember('n1', addressOf(9), router.now, { idLabel: 'impostor' }), addressOf(9), 'impostor');
    router.handle(impostor, impostor.m.bootstrap([addressOf(0)], router.now));
    router.run(5000);
    for (const o of names) {
      const v = router
        .node(o)
        .m.view()
        .find((x) => x.name === 'n1');
      assert.equal(v?.record.id_pub, realPub, `${o} still holds the real n1`);
      assert.equal(v?.state, 'alive');
    }
    const problems = router.node('n0').m.problems();
    const line = problems.find((p) => CONFLICT.test(p));
    assert.ok(line, `problems: ${JSON.stringify(problems)}`);
    const m = CONFLICT.exec(line) as RegExpExecArray;
    assert.equal(m[1], 'n1');
    // The fingerprints status shows for each identity.
    assert.equal(m[2], fingerprint(realPub));
    assert.equal(m[5], fingerprint(identity('impostor').idPub));
    assert.ok(router.events.some((e) => e.type === 'conflict' && e.name === 'n1' && e.observer === 'n0'));
    assert.ok((router.node('n0').m.counters()['sender-refused'] ?? 0) > 0);
  });

  it('notices a machine claiming its own name', () => {
    const { router, names } = bootCluster(3);
    router.runUntilTrue(() => router.allSee(names, 'alive'), 5000);
    const impostor = router.add(makeMember('n0', addressOf(9), router.now, { idLabel: 'impostor0' }), addressOf(9), 'impostor');
    router.handle(impostor, impostor.m.bootstrap([addressOf(0)], router.now));
    router.run(3000);
    const line = router
      .node('n0')
      .m.problems()
      .find((p) => CONFLICT.test(p));
    assert.ok(line && / \(this agent\), and /.test(line), String(line));
    assert.ok(router.allSee(['n0'], 'alive'));
  });

  it('refuses a relayed record that claims a live name with another identity', () => {
    const a = makeMember('a', addressOf(1), 1000);
    const b = identity('b');
    const evil = identity('evil-b');
    a.receive({ name: 'b', idPub: b.idPub, remote: 'x' }, { t: 'g', u: [{ k: 'a', r: signRecord(recordFor('b', addressOf(2), b), 1, b.secretKey) }] }, 1000);
    a.receive(
      { name: 'c', idPub: identity('c').idPub, remote: 'x' },
      { t: 'g', u: [{ k: 'a', r: signRecord(recordFor('b', addressOf(7), evil), 99, evil.secretKey) }] },
      1001,
    );
    assert.equal(a.view().find((v) => v.name === 'b')?.record.id_pub, b.idPub);
    assert.equal(a.problems().filter((p) => CONFLICT.test(p)).length, 1);
    // The problem is forgotten once the conflict has not been seen for a while.
    a.tick(1001 + TEST.conflictMemory + 1);
    assert.deepEqual(a.problems(), []);
  });

  it('lets a new identity take over the name of a dead member', () => {
    const { router, names } = bootCluster(4);
    router.runUntilTrue(() => router.allSee(names, 'alive'), 5000);
    router.crash('n3');
    router.runUntilTrue(() => router.allSee(['n3'], 'dead', ['n0', 'n1', 'n2']), 10_000);
    const deadAt = router.now;
    const fresh = makeMember('n3', addressOf(3), router.now, { idLabel: 'reinstalled-n3' });
    router.handle(router.replace('n3', fresh), fresh.bootstrap([addressOf(0)], router.now));
    // Not at once: a name declared dead (an unsigned claim) cannot be grabbed before takeoverAfter.
    router.run(TEST.takeoverAfter / 2);
    assert.equal(router.stateOf('n0', 'n3'), 'dead');
    router.runUntilTrue(() => router.allSee(names, 'alive'), TEST.takeoverAfter + 3 * TEST.syncInterval, 'n3 back under its new identity');
    assert.ok(router.now - deadAt >= TEST.takeoverAfter);
    for (const o of names)
      assert.equal(
        router
          .node(o)
          .m.view()
          .find((v) => v.name === 'n3')?.record.id_pub,
        identity('reinstalled-n3').idPub,
      );
    assert.deepEqual(router.node('n0').m.problems(), []);
  });

  it('drops a record whose signature does not match, whoever relays it', () => {
    const { router, names } = bootCluster(4);
    router.runUntilTrue(() => router.allSee(names, 'alive'), 5000);
    const n2 = router.node('n2');
    const good = n2.m.view().find((v) => v.name === 'n2');
    assert.ok(good);
    // n1 relays a tampered n2 record: new address, higher incarnation, n2's old signature.
    const genuine = signRecord(good.record, good.incarnation, identity('n2').secretKey);
    const tampered = { ...genuine, incarnation: good.incarnation + 5, record: { ...good.record, addresses: ['198.51.100.66:7947'] } };
    const n1 = router.node('n1');
    router.handle(n1, {
      send: ['n0', 'n3'].map((to) => ({
        to: { name: to, addresses: [addressOf(Number(to.slice(1)))] },
        msg: { t: 'g' as const, u: [{ k: 'a' as const, r: tampered }] },
      })),
      events: [],
    });
    router.run(3000);
    for (const o of names)
      assert.deepEqual(
        router
          .node(o)
          .m.view()
          .find((v) => v.name === 'n2')?.record.addresses,
        [addressOf(2)],
      );
    assert.ok((router.node('n0').m.counters()['bad-signature'] ?? 0) >= 1);
  });
});
