/**
 * Admission by invitation (issue 13; agent/gossip/invitations.ts): an anchor
 * grants a use the new machine signed with the invitation key; every member
 * checks the result with admin_pub alone, and an invitation never admits more
 * identities than it allows, even when two anchors grant at once.
 */
import assert from 'node:assert/strict';
import { generateAdminKey } from '../../../agent/admin/key';
import { makeInvitation, useInvitation, type Invitation } from '../../../agent/admin/invitation';
import { SimRouter } from '../../helpers/sim-router';
import { addressOf, bootAdmitted, identity, makeMember, recordFor } from './helpers';
import { signRecord } from '../../../agent/gossip/records';
import { admissionUpdate } from '../../../agent/gossip/admissions';

const T0 = 1_000_000;
const HOUR = 3_600_000;

describe('gossip: admission by invitation', () => {
  const admin = generateAdminKey(T0);
  const boot = (names: string[]): SimRouter => bootAdmitted(admin, names, T0, 5);
  const invite = (router: SimRouter, o: { uses?: number; node?: string; ttl?: number } = {}): Invitation =>
    makeInvitation(admin, { anchors: [addressOf(0)], ttlMs: o.ttl ?? HOUR, uses: o.uses ?? 1, ...(o.node ? { node: o.node } : {}) }, router.now);

  it('an anchor grants a use; the new member joins and every member accepts it with admin_pub alone', () => {
    const router = boot(['n0', 'n1', 'n2']);
    const inv = invite(router, { node: 'venus' });
    const g = router.node('n0').m.grant(useInvitation(inv, 'venus', identity('venus').idPub, router.now), router.now);
    assert.ok(g.ok, g.ok ? '' : g.reason);
    router.handle(router.node('n0'), g.step);
    // Within seconds the grant is known across the cluster: n2 would refuse a second machine.
    router.run(2000);
    const again = router.node('n2').m.grant(useInvitation(inv, 'venus', identity('mars').idPub, router.now), router.now);
    assert.match(again.ok ? 'granted' : again.reason, /already admitted to another identity|spent/);
    const venus = makeMember('venus', addressOf(5), router.now, {
      adminPub: admin.pub,
      admission: { at: g.admission.at, sig: g.admission.sig, inv: g.admission.inv! },
    });
    router.handle(router.add(venus, addressOf(5)), venus.bootstrap([addressOf(1)], router.now));
    router.runUntilTrue(() => router.allSee(['venus'], 'alive'), 10_000, 'venus alive everywhere');
    assert.equal(venus.ownAdmission()?.inv?.body.id, inv.body.id);
    assert.deepEqual(
      venus.problems().filter((p) => p.includes('admission')),
      [],
    );
  });

  it('refuses with one line: spent, expired, wrong name, a name held by another identity, a forged use', () => {
    const router = boot(['n0', 'n1']);
    const n0 = router.node('n0').m;
    const inv = invite(router, { uses: 1 });
    const first = n0.grant(useInvitation(inv, 'venus', identity('venus').idPub, router.now), router.now);
    assert.ok(first.ok);
    router.handle(router.node('n0'), first.step);
    // The same identity may enrol again (a retry); another one may not.
    assert.ok(n0.grant(useInvitation(inv, 'venus', identity('venus').idPub, router.now), router.now).ok, 'a retry of the same identity');
    const reason = (r: { ok: boolean; reason?: string }): string => (r.ok ? 'granted' : (r.reason as string));
    assert.match(reason(n0.grant(useInvitation(inv, 'mars', identity('mars').idPub, router.now), router.now)), /^the invitation is spent: 1 of 1 use taken$/);
    const short = invite(router, { ttl: 1000 });
    const late = useInvitation(short, 'mars', identity('mars').idPub, router.now);
    assert.match(reason(n0.grant(late, router.now + 2000)), /^the invitation expired on /);
    const named = invite(router, { node: 'saturn' });
    assert.match(
      reason(n0.grant({ ...useInvitation(named, 'saturn', identity('mars').idPub, router.now), node: 'mars' }, router.now)),
      /is for node "saturn", not "mars"/,
    );
    assert.match(
      reason(n0.grant(useInvitation(invite(router), 'n1', identity('intruder').idPub, router.now), router.now)),
      /node name "n1" is already admitted to another identity/,
    );
    const forged = { ...useInvitation(invite(router), 'pluto', identity('pluto').idPub, router.now), id_pub: identity('other').idPub };
    assert.match(reason(n0.grant(forged, router.now)), /not signed by the invitation key/);
    const foreign = makeInvitation(generateAdminKey(T0), { anchors: ['a:1'], ttlMs: HOUR, uses: 1 }, router.now);
    assert.match(reason(n0.grant(useInvitation(foreign, 'x', identity('x').idPub, router.now), router.now)), /another cluster/);
  });

  it('two anchors granting one single-use invitation at once: every member keeps the same machine and refuses the other', () => {
    const router = boot(['n0', 'n1', 'n2']);
    const inv = invite(router, { uses: 1 });
    // n0 and n1 grant before either hears of the other's grant.
    const a = router.node('n0').m.grant(useInvitation(inv, 'venus', identity('venus').idPub, router.now), router.now);
    const b = router.node('n1').m.grant(useInvitation(inv, 'mars', identity('mars').idPub, router.now), router.now + 5);
    assert.ok(a.ok && b.ok);
    router.handle(router.node('n0'), a.step);
    router.handle(router.node('n1'), b.step);
    const venus = makeMember('venus', addressOf(5), router.now, {
      adminPub: admin.pub,
      admission: { at: a.admission.at, sig: a.admission.sig, inv: a.admission.inv! },
    });
    const mars = makeMember('mars', addressOf(6), router.now, {
      adminPub: admin.pub,
      admission: { at: b.admission.at, sig: b.admission.sig, inv: b.admission.inv! },
    });
    router.handle(router.add(venus, addressOf(5)), venus.bootstrap([addressOf(2)], router.now));
    router.handle(router.add(mars, addressOf(6)), mars.bootstrap([addressOf(2)], router.now));
    router.run(10_000);
    for (const o of ['n0', 'n1', 'n2']) {
      assert.equal(router.stateOf(o, 'venus'), 'alive', `${o} keeps the earlier grant`);
      assert.equal(router.stateOf(o, 'mars'), undefined, `${o} refuses the later one`);
    }
    assert.ok(
      router
        .node('n2')
        .m.problems()
        .some((p) => p.startsWith('refused "mars"') && p.includes('more machines used than it allows')),
    );
  });

  it('a member let in by the later grant is evicted once the earlier grant is heard of', () => {
    const router = boot(['n0', 'n1', 'n2']);
    const inv = invite(router, { uses: 1 });
    const a = router.node('n0').m.grant(useInvitation(inv, 'venus', identity('venus').idPub, router.now), router.now);
    const b = router.node('n1').m.grant(useInvitation(inv, 'mars', identity('mars').idPub, router.now), router.now + 5);
    assert.ok(a.ok && b.ok);
    // n2 hears of mars (the later grant) first, from n1, and takes it in.
    const n2 = router.node('n2').m;
    const n1 = router.node('n1');
    const from = { name: 'n1', idPub: n1.idPub, remote: addressOf(1), admission: n1.m.ownAdmission()! };
    const mars = { ...recordFor('mars', addressOf(6), identity('mars')), admission: { at: b.admission.at, sig: b.admission.sig, inv: b.admission.inv! } };
    n2.receive(from, { t: 'g', u: [{ k: 'a', r: signRecord(mars, 1, identity('mars').secretKey) }] }, router.now + 10);
    assert.equal(router.stateOf('n2', 'mars'), 'alive', 'let in while no other grant is known');
    // Then the earlier grant: mars is no longer among the invitation's first uses.
    const step = n2.receive(from, { t: 'g', u: [admissionUpdate(a.admission)] }, router.now + 20);
    assert.equal(router.stateOf('n2', 'mars'), undefined, 'evicted');
    assert.ok(step.events.some((e) => e.type === 'left' && e.name === 'mars' && /earlier grant/.test(e.detail ?? '')));
  });

  it('an anchor that itself came in by invitation cannot grant', () => {
    const router = boot(['n0', 'n1']);
    const inv = invite(router, { uses: 2 });
    const g = router.node('n0').m.grant(useInvitation(inv, 'venus', identity('venus').idPub, router.now), router.now);
    assert.ok(g.ok);
    const venus = makeMember('venus', addressOf(5), router.now, {
      adminPub: admin.pub,
      admission: { at: g.admission.at, sig: g.admission.sig, inv: g.admission.inv! },
    });
    const r = venus.grant(useInvitation(inv, 'mars', identity('mars').idPub, router.now), router.now);
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.reason, /no admission of its own from the admin key/);
  });
});
