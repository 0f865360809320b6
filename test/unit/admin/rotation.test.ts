/**
 * Key rotation boxes (agent/admin/seal.ts, agent/admin/rotation.ts): sealed
 * to one identity, signed by the admin key over everything, opened only by
 * that identity's secret key.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'crypto';
import { generateAdminKey } from '../../../agent/admin/key';
import { montgomeryPublic, montgomerySecret, openSealed, sealTo } from '../../../agent/admin/seal';
import {
  newSchedule,
  openRotationBox,
  rotationBoxFromJson,
  scheduleProblem,
  signRotationBox,
  verifyRotationBox,
  type RotationBox,
} from '../../../agent/admin/rotation';
import { x25519 } from '../../../agent/net/curve';
import { generateIdentity } from '../../../agent/net/identity';
import { isHeptoError } from '../../../shared/errors';

const BASE = Uint8Array.from([9, ...new Array(31).fill(0)]);
const KEYS = { overlay_key: 'RotOverlayKey0123456789abcdefghi', agent_key: 'RotAgentKey0123456789abcdefghijk' };

describe('sealing to an identity', () => {
  it('the X25519 forms of an identity agree: X25519(secret form, 9) is the public form (30 random identities)', () => {
    for (let i = 0; i < 30; i++) {
      const id = generateIdentity(0);
      const fromSecret = x25519(montgomerySecret(id.secretKey), BASE);
      assert.ok(fromSecret);
      assert.deepEqual(Buffer.from(fromSecret).toString('hex'), Buffer.from(montgomeryPublic(id.publicKey)!).toString('hex'));
    }
  });

  it('only the identity it is sealed to opens a box; a changed byte or a short box does not open', () => {
    const to = generateIdentity(0);
    const other = generateIdentity(0);
    const plain = new Uint8Array(randomBytes(64));
    const box = sealTo(to.idPub, plain)!;
    assert.deepEqual(openSealed(to.secretKey, box), plain);
    assert.equal(openSealed(other.secretKey, box), null);
    const raw = Buffer.from(box, 'base64');
    for (const at of [0, 40, raw.length - 1]) {
      const bad = Buffer.from(raw);
      bad[at] ^= 1;
      assert.equal(openSealed(to.secretKey, bad.toString('base64')), null, `byte ${at} changed`);
    }
    assert.equal(openSealed(to.secretKey, raw.subarray(0, 60).toString('base64')), null);
    assert.notEqual(sealTo(to.idPub, plain), box, 'a fresh ephemeral key per box');
  });

  it('a key with no Montgomery form (y = 1, or y ≥ p) gives no box', () => {
    const one = new Uint8Array(32);
    one[0] = 1;
    assert.equal(montgomeryPublic(one), null);
    assert.equal(montgomeryPublic(new Uint8Array(32).fill(0xff).map((b, i) => (i === 31 ? 0x7f : b))), null);
    assert.equal(sealTo(Buffer.from(one).toString('base64'), new Uint8Array(1)), null);
  });
});

describe('rotation boxes', () => {
  const admin = generateAdminKey(0);
  const member = generateIdentity(0);
  const s = newSchedule(1_000_000, 60_000, 7 * 86_400_000);

  it('a box verifies with admin_pub, opens for its member only, and holds the two keys', () => {
    const b = signRotationBox(admin, s, 'node-a', member.idPub, KEYS)!;
    assert.equal(b.switch_at, 1_060_000);
    assert.equal(b.grace_until, 1_060_000 + 7 * 86_400_000);
    assert.match(b.id, /^[A-Za-z0-9+/]{12}$/);
    assert.ok(verifyRotationBox(admin.pub, b));
    assert.deepEqual(openRotationBox(member.secretKey, b), KEYS);
    assert.equal(openRotationBox(generateIdentity(0).secretKey, b), null);
    assert.ok(!JSON.stringify(b).includes(KEYS.overlay_key) && !JSON.stringify(b).includes(KEYS.agent_key), 'a key in clear in the box');
    assert.ok(!verifyRotationBox(generateAdminKey(0).pub, b), 'another admin key');
  });

  it('changing any signed field breaks the signature: no moving a box to another member, rotation or schedule', () => {
    const b = signRotationBox(admin, s, 'node-a', member.idPub, KEYS)!;
    const other = signRotationBox(admin, s, 'node-b', generateIdentity(0).idPub, KEYS)!;
    const changes: Array<Partial<RotationBox>> = [
      { node: 'node-b' },
      { id_pub: other.id_pub },
      { id: 'AAAAAAAAAAAA' },
      { at: b.at + 1 },
      { switch_at: b.switch_at + 1 },
      { grace_until: b.grace_until + 1 },
      { box: other.box },
    ];
    for (const c of changes) assert.ok(!verifyRotationBox(admin.pub, { ...b, ...c }), JSON.stringify(Object.keys(c)));
  });

  it('a box from the control socket is checked field by field, with the field named', () => {
    const b = signRotationBox(admin, s, 'node-a', member.idPub, KEYS)!;
    assert.deepEqual(rotationBoxFromJson(JSON.parse(JSON.stringify(b))), b);
    const cases: Array<[unknown, RegExp]> = [
      [null, /"\(whole\)" is not an object/],
      [{ ...b, id: 'short' }, /"id" is not 12 base64/],
      [{ ...b, at: -1 }, /"at" is not a time/],
      [{ ...b, node: 'not a name' }, /"node" is not a node name/],
      [{ ...b, id_pub: 'x' }, /"id_pub"/],
      [{ ...b, box: 'A'.repeat(700) }, /"box" is not base64 of at most 600/],
      [{ ...b, sig: 'nope' }, /"sig"/],
      [{ ...b, switch_at: b.at - 1 }, /times are out of order/],
    ];
    for (const [v, re] of cases) {
      assert.throws(
        () => rotationBoxFromJson(v),
        (e: unknown) => isHeptoError(e) && e.code === 'USAGE' && re.test(e.message),
        String(re),
      );
    }
  });

  it('scheduleProblem: times in order, ids of the right shape', () => {
    assert.equal(scheduleProblem(s), null);
    assert.match(scheduleProblem({ ...s, grace_until: s.switch_at - 1 }) ?? '', /out of order/);
    assert.match(scheduleProblem({ ...s, id: '!!!!!!!!!!!!' }) ?? '', /id/);
  });
});
