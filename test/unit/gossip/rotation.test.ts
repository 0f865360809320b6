/**
 * Key rotations in the membership (issue 13, agent/gossip/rotations.ts):
 * every member keeps and spreads every box of the newest rotation, a member
 * that was off gets its own box at its first sync, and nothing unsigned,
 * older or meant for a removed identity is kept. Real Membership instances
 * in virtual time.
 */
import assert from 'node:assert/strict';
import { generateAdminKey } from '../../../agent/admin/key';
import { signRemoval } from '../../../agent/admin/admission';
import { newSchedule, openRotationBox, signRotationBox, type RotationBox, type RotationSchedule } from '../../../agent/admin/rotation';
import { SimRouter } from '../../helpers/sim-router';
import { TEST } from '../../../agent/gossip/timing';
import { addressOf, admittedProof, bootAdmitted, identity, makeMember } from './helpers';

const T0 = 1_000_000;
const KEYS = { overlay_key: 'RotOverlayKey0123456789abcdefghi', agent_key: 'RotAgentKey0123456789abcdefghijk' };

describe('gossip: key rotations', () => {
  const admin = generateAdminKey(T0);
  const proof = (name: string): { at: number; sig: string } => admittedProof(admin, name, T0);
  const boot = (names: string[]): SimRouter => bootAdmitted(admin, names, T0, 5);
  const boxes = (s: RotationSchedule, names: string[]): RotationBox[] => names.map((n) => signRotationBox(admin, s, n, identity(n).idPub, KEYS)!);
  const hand = (router: SimRouter, to: string, list: RotationBox[]): string[] =>
    list.map((b) => {
      const r = router.node(to).m.rotate(b, router.now);
      router.handle(router.node(to), r.step);
      return r.result;
    });

  it('boxes reach every live member; one that was off gets its own box at its first sync', () => {
    const names = ['n0', 'n1', 'n2', 'n3'];
    const router = boot(names);
    router.crash('n3');
    const s = newSchedule(router.now, 60_000, 600_000);
    const all = boxes(s, names);
    assert.deepEqual(hand(router, 'n0', all), ['kept', 'kept', 'kept', 'kept']);
    assert.deepEqual(hand(router, 'n0', all.slice(0, 1)), ['already']);
    router.runUntilTrue(() => ['n1', 'n2'].every((n) => router.node(n).m.rotationBoxes().length === 4), 10_000, 'every box everywhere');
    const own = router.node('n1').m.ownRotationBox();
    assert.ok(own && own.node === 'n1');
    assert.deepEqual(openRotationBox(identity('n1').secretKey, own), KEYS);
    assert.ok(
      router.events.some((e) => e.type === 'rotation' && e.observer === 'n1' && e.name === 'n1'),
      'n1 told the daemon',
    );
    assert.ok(!router.events.some((e) => e.type === 'rotation' && e.observer === 'n1' && e.name !== 'n1'), 'only for its own box');

    // n3 restarts (its earlier run never saw the rotation): its first syncs bring its box.
    const back = makeMember('n3', addressOf(3), router.now, { adminPub: admin.pub, admission: proof('n3'), incarnation: 50 });
    router.handle(router.replace('n3', back), back.bootstrap([addressOf(0)], router.now));
    router.runUntilTrue(() => back.ownRotationBox()?.id === s.id, 30_000, 'n3 gets its box');
    assert.ok(router.events.some((e) => e.type === 'rotation' && e.observer === 'n3'));
  });

  it('the newest rotation wins: a newer one replaces the boxes held, an older one is ignored', () => {
    const router = boot(['n0', 'n1']);
    const first = newSchedule(router.now, 60_000, 600_000);
    const second = { ...newSchedule(router.now + 10, 60_000, 600_000) };
    hand(router, 'n0', boxes(second, ['n0', 'n1']));
    assert.deepEqual(hand(router, 'n0', boxes(first, ['n0'])), ['already'], 'older: ignored');
    assert.equal(router.node('n0').m.ownRotationBox()?.id, second.id);
    const third = newSchedule(router.now + 20, 60_000, 600_000);
    hand(router, 'n0', boxes(third, ['n1']));
    assert.deepEqual(
      router
        .node('n0')
        .m.rotationBoxes()
        .map((b) => b.id),
      [third.id],
      "the older rotation's boxes are dropped",
    );
    assert.equal(router.node('n0').m.ownRotationBox(), undefined, 'no box for n0 in the newest rotation');
  });

  it('refuses boxes it cannot check, forged ones, and boxes for a removed identity', () => {
    const router = boot(['n0', 'n1']);
    const s = newSchedule(router.now, 60_000, 600_000);
    const [b0] = boxes(s, ['n0']);
    const forged = signRotationBox(generateAdminKey(T0), s, 'n1', identity('n1').idPub, KEYS)!;
    let r = router.node('n0').m.rotate(forged, router.now);
    assert.equal(r.result, 'refused');
    assert.match(r.result === 'refused' ? r.why : '', /does not verify with this agent's admin_pub/);
    r = router.node('n0').m.rotate({ ...b0!, switch_at: b0!.switch_at + 1 }, router.now);
    assert.equal(r.result, 'refused');

    const rm = router.node('n0').m.remove(signRemoval(admin, 'n1', identity('n1').idPub, T0 + 5), router.now);
    router.handle(router.node('n0'), rm.step);
    r = router.node('n0').m.rotate(boxes(s, ['n1'])[0]!, router.now);
    assert.equal(r.result, 'refused');
    assert.match(r.result === 'refused' ? r.why : '', /"n1" is removed: it gets no new keys/);

    const plain = makeMember('p0', addressOf(9), router.now);
    const p = plain.rotate(b0!, router.now);
    assert.equal(p.result, 'refused');
    assert.match(p.result === 'refused' ? p.why : '', /no admin_pub/);
  });

  it('a sync hash names the newest rotation; the box is offered once a sync interval, to its own member only', () => {
    const router = boot(['n0', 'n1']);
    const s = newSchedule(router.now, 60_000, 600_000);
    hand(router, 'n0', boxes(s, ['n0', 'n1']));
    const from = (n: string): { name: string; idPub: string; remote: string; admission: { at: number; sig: string } } => ({
      name: n,
      idPub: identity(n).idPub,
      remote: addressOf(1),
      admission: proof(n),
    });
    let now = router.now; // hashes handed straight to n0, at times of the test's choosing
    const offered = (n: string, r?: string): RotationBox[] => {
      const step = router.node('n0').m.receive(from(n), r === undefined ? { t: 'h', h: 'AAAAAAAAAAAAAAAA' } : { t: 'h', h: 'AAAAAAAAAAAAAAAA', r }, now);
      return step.send
        .flatMap((o) => (o.msg.t === 'g' ? o.msg.u : []))
        .filter((u) => u.k === 'r')
        .map((u) => u as never);
    };
    const sent = offered('n1');
    assert.equal(sent.length, 1);
    assert.equal((sent[0] as unknown as { n: string }).n, 'n1');
    for (let i = 0; i < 10; i++) assert.equal(offered('n1').length, 0, 'limited');
    now += TEST.syncInterval;
    assert.equal(offered('n1', s.id).length, 0, 'it holds this rotation already');
    // The sync hashes members send carry their rotation.
    router.recordSent = true;
    router.runUntilTrue(() => router.sent.some((o) => o.msg.t === 'h' && o.msg.r === s.id), 30_000, 'a sync hash naming the rotation');
  });
});
