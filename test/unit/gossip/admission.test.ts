/**
 * Pinned names (issue 13, agent/gossip/admissions.ts): with admin_pub, a
 * name belongs to the identity the newest admin-signed admission binds to it.
 * Deterministic runs of real Membership instances in virtual time.
 */
import assert from 'node:assert/strict';
import { generateAdminKey, type AdminKey } from '../../../agent/admin/key';
import { admitCommand, signAdmission, type Admission } from '../../../agent/admin/admission';
import { admissionUpdate } from '../../../agent/gossip/admissions';
import { signRecord } from '../../../agent/gossip/records';
import { TEST } from '../../../agent/gossip/timing';
import { SimRouter, seededRng, type SimNode } from '../../helpers/sim-router';
import { addressOf, identity, makeMember, recordFor } from './helpers';

const T0 = 1_000_000;

interface Pinned {
  router: SimRouter;
  admin: AdminKey;
  /** Adds a member and bootstraps it through n0, admitted (at `at`) under its identity label unless `admitted: false`. */
  join(name: string, o?: { idLabel?: string; admitted?: boolean; at?: number; adminPub?: string | null; key?: string }): SimNode;
  admission(name: string, idLabel?: string, at?: number): Admission;
}

function pinned(): Pinned {
  const admin = generateAdminKey(T0);
  const router = new SimRouter({ rng: seededRng(7), notifyDisconnect: true });
  let i = 0;
  const admission = (name: string, idLabel = name, at = T0): Admission => signAdmission(admin, name, identity(idLabel).idPub, at);
  const join: Pinned['join'] = (name, o = {}) => {
    const idLabel = o.idLabel ?? name;
    const a = o.admitted === false ? undefined : admission(name, idLabel, o.at ?? T0);
    const addr = addressOf(i++);
    const adminPub = o.adminPub === undefined ? admin.pub : o.adminPub;
    const m = makeMember(name, addr, router.now, {
      idLabel,
      ...(adminPub ? { adminPub } : {}),
      ...(a ? { admission: { at: a.at, sig: a.sig } } : {}),
    });
    const node = router.add(m, addr, o.key);
    router.handle(node, m.bootstrap(name === 'n0' ? [] : [addressOf(0)], router.now));
    return node;
  };
  return { router, admin, join, admission };
}

function idOf(node: SimNode, name: string): string | undefined {
  return node.m.view().find((v) => v.name === name)?.record.id_pub;
}

describe('gossip: pinned names (admin_pub and admissions)', () => {
  it('refuses a member without admission, says on both sides what the admin runs, and takes it in once admitted', () => {
    const { router, admin, join } = pinned();
    const n0 = join('n0');
    const n1 = join('n1');
    const n2 = join('n2', { admitted: false });
    router.run(5000);
    assert.ok(router.allSee(['n0', 'n1'], 'alive', ['n0', 'n1']));
    assert.equal(idOf(n0, 'n2'), undefined, 'n0 must not hold the unadmitted n2');
    assert.equal(idOf(n1, 'n2'), undefined);
    const cmd = admitCommand('n2', identity('n2').idPub);
    assert.match(cmd, /^hepto-agent admit n2 --identity ed25519:[A-Za-z0-9+/]{43}=$/);
    const refused = n0.m.problems().find((p) => p.startsWith('refused "n2"'));
    assert.ok(refused?.endsWith(`the admin runs: ${cmd}`), JSON.stringify(n0.m.problems()));
    const own = n2.m.problems().find((p) => p.startsWith('this node has no admission'));
    assert.ok(own?.endsWith(`run: ${cmd}`), JSON.stringify(n2.m.problems()));
    assert.ok((n0.m.counters()['not-admitted'] ?? 0) > 0);

    // The admin's agent is n1: `hepto-agent admit n2 --identity ...` hands it the admission.
    const a = signAdmission(admin, 'n2', identity('n2').idPub, T0 + 1);
    const r = n1.m.admit(a, router.now);
    assert.equal(r.result, 'admitted');
    router.handle(n1, r.step);
    router.runUntilTrue(() => router.allSee(['n0', 'n1', 'n2'], 'alive'), 20_000, 'n2 admitted and alive everywhere');
    assert.deepEqual(n2.m.ownAdmission(), { at: a.at, sig: a.sig });
    assert.ok(
      router.events.some((e) => e.type === 'admitted' && e.observer === 'n2'),
      'n2 emits admitted (the daemon saves it)',
    );
    assert.equal(n2.m.problems().filter((p) => p.startsWith('this node has no admission')).length, 0);
    // The same admission again changes nothing.
    assert.equal(n1.m.admit(a, router.now).result, 'already');
  });

  it('a restart never frees a name: after a signed leave, another identity cannot take it', () => {
    const { router, admin, join, admission } = pinned();
    const nodes = ['n0', 'n1', 'n2'].map((n) => join(n));
    router.runUntilTrue(() => router.allSee(['n0', 'n1', 'n2'], 'alive'), 5000);
    // n1 stops with SIGTERM: a signed leave, then gone.
    router.handle(nodes[1]!, nodes[1]!.m.leave(router.now));
    router.crash('n1');
    router.runUntilTrue(() => router.allSee(['n1'], 'left', ['n0', 'n2']), 5000);
    // One impostor with no admission, one with an admission older than n1's.
    const bare = join('n1', { idLabel: 'impostor', admitted: false, key: 'bare' });
    const older = join('n1', { idLabel: 'impostor2', at: T0 - 1000, key: 'older' });
    router.run(TEST.takeoverAfter * 3);
    for (const o of ['n0', 'n2']) {
      assert.equal(idOf(router.node(o), 'n1'), identity('n1').idPub, `${o} keeps n1's identity`);
      assert.equal(router.stateOf(o, 'n1'), 'left');
    }
    assert.ok(
      router
        .node('n0')
        .m.problems()
        .some((p) => p.startsWith('refused "n1"') && p.includes('was replaced by a newer admission')),
      'the older admission is superseded',
    );
    assert.ok(
      router
        .node('n0')
        .m.problems()
        .some((p) => p.startsWith('refused "n1"') && p.includes('is not admitted')),
    );
    assert.equal(bare.m.view().filter((v) => v.state === 'alive').length, 1, 'the bare impostor learns no member: n0 refuses it');
    assert.equal(older.m.view().filter((v) => v.state === 'alive').length, 1, 'the superseded impostor learns no member either');
    // The real n1 comes back with its own identity and admission.
    const back = makeMember('n1', addressOf(1), router.now, { adminPub: admin.pub, admission: proof(admission('n1')), incarnation: 50 });
    router.handle(router.replace('n1', back), back.bootstrap([addressOf(0)], router.now));
    router.runUntilTrue(() => router.allSee(['n1'], 'alive', ['n0', 'n2']), 10_000, 'the real n1 back');
  });

  it('a reinstalled machine is refused, then admitted; its old identity is shut out from then on', () => {
    const { router, admin, join, admission } = pinned();
    for (const n of ['n0', 'n1', 'n2']) join(n);
    router.runUntilTrue(() => router.allSee(['n0', 'n1', 'n2'], 'alive'), 5000);
    router.crash('n2');
    // Reinstalled: same name and address, a new identity, no admission yet.
    const fresh = makeMember('n2', addressOf(2), router.now, { idLabel: 'n2-new', adminPub: admin.pub });
    router.handle(router.replace('n2', fresh), fresh.bootstrap([addressOf(0)], router.now));
    router.run(4000);
    assert.equal(idOf(router.node('n0'), 'n2'), identity('n2').idPub, 'still the old identity');
    const cmd = admitCommand('n2', identity('n2-new').idPub);
    assert.ok(
      router
        .node('n0')
        .m.problems()
        .some((p) => p.startsWith('refused "n2"') && p.endsWith(cmd)),
      JSON.stringify(router.node('n0').m.problems()),
    );
    assert.ok(fresh.problems().some((p) => p.endsWith(cmd)));

    const r = router.node('n0').m.admit(signAdmission(admin, 'n2', identity('n2-new').idPub, T0 + 5000), router.now);
    assert.equal(r.result, 'admitted');
    router.handle(router.node('n0'), r.step);
    router.runUntilTrue(
      () => ['n0', 'n1'].every((o) => idOf(router.node(o), 'n2') === identity('n2-new').idPub && router.stateOf(o, 'n2') === 'alive'),
      20_000,
      'the new identity admitted',
    );

    // The old machine (stolen, say) comes back with its old, older admission: refused everywhere.
    const old = makeMember('n2', addressOf(9), router.now, { adminPub: admin.pub, admission: proof(admission('n2')), incarnation: 99 });
    const oldNode = router.add(old, addressOf(9), 'old-n2');
    router.handle(oldNode, old.bootstrap([addressOf(0), addressOf(1)], router.now));
    router.run(5000);
    for (const o of ['n0', 'n1']) assert.equal(idOf(router.node(o), 'n2'), identity('n2-new').idPub);
    assert.ok((router.node('n0').m.counters()['superseded'] ?? 0) > 0);
    assert.equal(old.view().filter((v) => v.state === 'alive').length, 1, 'the old identity learns no member');
    assert.ok(
      router
        .node('n0')
        .m.problems()
        .some((p) => p.startsWith('refused "n2"') && p.includes('was replaced by a newer admission')),
    );
  });

  it('refuses forged admissions: another admin key, a tampered binding, a relayed record carrying one', () => {
    const { router, admin, join } = pinned();
    const n0 = join('n0');
    const n1 = join('n1');
    router.runUntilTrue(() => router.allSee(['n0', 'n1'], 'alive'), 5000);
    const rogue = generateAdminKey(T0);
    const forged = signAdmission(rogue, 'evil', identity('evil').idPub, T0 + 10);
    const r = n0.m.admit(forged, router.now);
    assert.equal(r.result, 'refused');
    assert.match(r.why ?? '', /does not verify with this agent's admin_pub/);
    // The same, gossiped by a member; and a genuine admission re-bound to another identity.
    const genuine = signAdmission(admin, 'n1', identity('n1').idPub, T0 + 20);
    router.handle(n1, {
      send: [
        {
          to: { name: 'n0', addresses: [addressOf(0)] },
          msg: { t: 'g', u: [admissionUpdate(forged), admissionUpdate({ ...genuine, id_pub: identity('evil').idPub })] },
        },
      ],
      events: [],
    });
    router.run(100);
    assert.equal(n0.m.counters()['bad-admission'], 2);
    // A record of "evil" with the forged admission, relayed by n1.
    const evil = identity('evil');
    const rec = { ...recordFor('evil', addressOf(8), evil), admission: { at: forged.at, sig: forged.sig } };
    router.handle(n1, {
      send: [{ to: { name: 'n0', addresses: [addressOf(0)] }, msg: { t: 'g', u: [{ k: 'a', r: signRecord(rec, 1, evil.secretKey) }] } }],
      events: [],
    });
    router.run(100);
    assert.equal(idOf(n0, 'evil'), undefined);
    assert.ok((n0.m.counters()['not-admitted'] ?? 0) >= 1);
  });

  it('without admin_pub nothing is refused, yet admissions travel and are adopted (admit --all-current before admin_pub)', () => {
    const { router, admin, join } = pinned();
    const nodes = ['n0', 'n1', 'n2'].map((n) => join(n, { admitted: false, adminPub: null }));
    router.runUntilTrue(() => router.allSee(['n0', 'n1', 'n2'], 'alive'), 5000);
    for (const n of nodes) assert.deepEqual(n.m.problems(), []);
    for (const n of ['n0', 'n1', 'n2']) {
      const r = nodes[0]!.m.admit(signAdmission(admin, n, identity(n).idPub, T0 + 1), router.now);
      assert.equal(r.result, 'admitted');
      router.handle(nodes[0]!, r.step);
    }
    router.runUntilTrue(() => nodes.every((n) => n.m.ownAdmission() !== undefined), 10_000, 'every member adopts its admission');
    // Every member's record now carries it, as seen by the others.
    router.runUntilTrue(() => nodes.every((o) => o.m.view().every((v) => v.record.admission !== undefined)), 10_000);
    // A name is still free for another identity after a leave, as before (no admin_pub).
    router.handle(nodes[2]!, nodes[2]!.m.leave(router.now));
    router.crash('n2');
    router.runUntilTrue(() => router.allSee(['n2'], 'left', ['n0', 'n1']), 5000);
    const other = join('n2', { idLabel: 'someone-else', admitted: false, adminPub: null, key: 'other' });
    router.runUntilTrue(() => idOf(nodes[0]!, 'n2') === identity('someone-else').idPub, 10_000, 'takeover without admin_pub');
    assert.ok(other);
  });
});

function proof(a: Admission): { at: number; sig: string } {
  return { at: a.at, sig: a.sig };
}
