/**
 * Removals (issue 13, agent/gossip/removals.ts): an admin-signed removal
 * reaches every member, which drops the member and refuses its identity from
 * then on, a member that was off included. Real Membership instances in
 * virtual time.
 */
import assert from 'node:assert/strict';
import { generateAdminKey } from '../../../agent/admin/key';
import { signRemoval } from '../../../agent/admin/admission';
import { SimRouter, seededRng } from '../../helpers/sim-router';
import { TEST } from '../../../agent/gossip/timing';
import { addressOf, admittedProof, bootAdmitted, identity, makeMember } from './helpers';

const T0 = 1_000_000;

describe('gossip: removals', () => {
  const admin = generateAdminKey(T0);
  const proof = (name: string, idLabel = name, at = T0): { at: number; sig: string } => admittedProof(admin, name, at, idLabel);
  const boot = (names: string[]): SimRouter => bootAdmitted(admin, names, T0, 11);

  it('drops the member everywhere, refuses it when it comes back, and reaches a member that was off', () => {
    const router = boot(['n0', 'n1', 'n2', 'n3']);
    // n3 is off while the admin removes n2.
    router.crash('n3');
    const removal = signRemoval(admin, 'n2', identity('n2').idPub, T0 + 100);
    const r = router.node('n0').m.remove(removal, router.now);
    assert.equal(r.result, 'removed');
    router.handle(router.node('n0'), r.step);
    router.runUntilTrue(
      () =>
        ['n0', 'n1'].every(
          (o) =>
            !router
              .node(o)
              .m.view()
              .some((v) => v.name === 'n2'),
        ),
      10_000,
      'n2 dropped',
    );
    assert.deepEqual(router.node('n1').m.removedNames(), ['n2']);
    assert.deepEqual(
      router
        .node('n1')
        .m.removals()
        .map((x) => x.node),
      ['n2'],
      'kept, for the daemon to persist',
    );
    assert.ok(router.events.some((e) => e.type === 'removed' && e.name === 'n2' && e.observer === 'n1'));
    assert.equal(router.node('n0').m.remove(removal, router.now).result, 'already');

    // n2 keeps running with its (older) admission: refused by everyone who knows.
    router.run(5000);
    for (const o of ['n0', 'n1']) assert.equal(router.stateOf(o, 'n2'), undefined, `${o} holds no n2`);
    assert.ok((router.node('n0').m.counters()['removed'] ?? 0) > 0);
    assert.ok(
      router
        .node('n0')
        .m.problems()
        .some((p) => p.startsWith('refused "n2"') && p.includes('was removed by the admin')),
    );
    assert.equal(
      router
        .node('n2')
        .m.view()
        .filter((v) => v.state === 'alive').length,
      1,
      'n2 hears from nobody',
    );

    // n3 comes back (same identity, restarted): it learns the removal by anti-entropy, then drops n2 too.
    const back = makeMember('n3', addressOf(3), router.now, { adminPub: admin.pub, admission: proof('n3'), incarnation: 40 });
    router.handle(router.replace('n3', back), back.bootstrap([addressOf(0)], router.now));
    router.runUntilTrue(
      () => back.removedNames().includes('n2') && !back.view().some((v) => v.name === 'n2' && v.state === 'alive'),
      20_000,
      'n3 learns the removal',
    );

    // The admin puts a new machine under the name: a newer admission of another identity.
    const fresh = makeMember('n2', addressOf(2), router.now, { idLabel: 'n2-new', adminPub: admin.pub, admission: proof('n2', 'n2-new', T0 + 200) });
    router.handle(router.replace('n2', fresh), fresh.bootstrap([addressOf(0)], router.now));
    router.runUntilTrue(() => ['n0', 'n1', 'n3'].every((o) => router.stateOf(o, 'n2') === 'alive'), 20_000, 'the new n2 accepted');
    assert.deepEqual(router.node('n0').m.removedNames(), [], 'no longer to delete from Kubernetes');
  });

  it('a member repeating sync hashes gets the removals once a sync interval, not at every hash', () => {
    const router = boot(['n0', 'n1']);
    const r = router.node('n0').m.remove(signRemoval(admin, 'gone', identity('gone').idPub, T0 + 9), router.now);
    router.handle(router.node('n0'), r.step);
    const from = { name: 'n1', idPub: identity('n1').idPub, remote: addressOf(1), admission: proof('n1') };
    let now = router.now; // hashes handed straight to n0, at times of the test's choosing
    const sent = (): number => {
      const step = router.node('n0').m.receive(from, { t: 'h', h: 'AAAAAAAAAAAAAAAA' }, now);
      return step.send.filter((o) => o.msg.t === 'g' && o.msg.u.some((u) => u.k === 'x')).length;
    };
    assert.equal(sent(), 1);
    for (let i = 0; i < 20; i++) assert.equal(sent(), 0, 'limited');
    now += TEST.syncInterval;
    assert.equal(sent(), 1, 'again after a sync interval');
  });

  it('a removal counts only under the name it names', () => {
    const router = boot(['n0', 'n1']);
    // A typo: the admin meant "ghost", but gave n1's identity.
    const r = router.node('n0').m.remove(signRemoval(admin, 'ghost', identity('n1').idPub, T0 + 50), router.now);
    assert.equal(r.result, 'removed');
    router.handle(router.node('n0'), r.step);
    router.run(5000);
    assert.equal(router.stateOf('n0', 'n1'), 'alive', 'n1 is not removed by a removal naming another node');
    assert.deepEqual(router.node('n0').m.removedNames(), ['ghost']);
  });

  it('refuses removals it cannot trust: no admin_pub, another admin key; drops forged ones kept on disk', () => {
    const router = boot(['n0', 'n1']);
    const rogue = generateAdminKey(T0);
    const forged = signRemoval(rogue, 'n1', identity('n1').idPub, T0 + 1);
    const r = router.node('n0').m.remove(forged, router.now);
    assert.equal(r.result, 'refused');
    assert.match(r.result === 'refused' ? r.why : '', /does not verify with this agent's admin_pub/);
    router.handle(router.node('n0'), r.step);
    router.run(2000);
    assert.equal(router.stateOf('n0', 'n1'), 'alive');

    const open = makeMember('x', addressOf(7), router.now);
    const none = open.remove(signRemoval(admin, 'n1', identity('n1').idPub, T0 + 2), router.now);
    assert.equal(none.result, 'refused');
    assert.match(none.result === 'refused' ? none.why : '', /no admin_pub/);

    // Removals a previous run kept: only the admin's survive the check.
    const good = signRemoval(admin, 'gone', identity('gone').idPub, T0 + 3);
    const restarted = new (Object.getPrototypeOf(open).constructor as typeof import('../../../agent/gossip/membership').Membership)({
      record: open.view()[0]!.record,
      secretKey: identity('x').secretKey,
      incarnation: 2,
      timing: (open as unknown as { s: { t: never } }).s.t,
      now: router.now,
      rng: seededRng(1),
      adminPub: admin.pub,
      removals: [good, forged],
    });
    assert.deepEqual(restarted.removals(), [good]);
  });
});
