import assert from 'node:assert/strict';
import { generateAdminKey } from '../../../agent/admin/key';
import { decodeInvitation, encodeInvitation, makeInvitation, useInvitation, useProblem } from '../../../agent/admin/invitation';
import { isHeptoError } from '../../../shared/errors';

const NOW = 1_765_000_000_000;
const DAY = 86_400_000;

function reason(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(isHeptoError(e), String(e));
    assert.ok(!e.message.includes('\n'), 'one line');
    return e.message;
  }
  assert.fail('expected a refusal');
}

describe('admin: invitation tokens', () => {
  const admin = generateAdminKey(NOW);
  const other = generateAdminKey(NOW);
  const inv = makeInvitation(admin, { anchors: ['[2001:db8::1]:7947'], ttlMs: DAY, uses: 2, node: 'venus' }, NOW);
  const token = encodeInvitation(inv);
  const seed = Buffer.from(inv.secretKey.subarray(0, 32)).toString('base64url');

  it("round-trips: one string, the admin's signature checks, the key comes back", () => {
    assert.match(token, /^hepto1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    assert.ok(token.length < 600, `${token.length} characters`);
    const back = decodeInvitation(token, NOW + 1000, admin.pub);
    assert.deepEqual(back.body, inv.body);
    assert.deepEqual(back.secretKey, inv.secretKey);
    assert.equal(back.body.uses, 2);
    assert.equal(back.body.node, 'venus');
    assert.equal(back.body.exp, NOW + DAY);
    // Two invitations never share an id or a key.
    const again = makeInvitation(admin, { anchors: ['a:1'], ttlMs: DAY, uses: 1 }, NOW);
    assert.notEqual(again.body.id, inv.body.id);
    assert.notEqual(again.body.inv_pub, inv.body.inv_pub);
  });

  it('refuses expired, forged, foreign, mismatched and malformed tokens with a one-line reason that never repeats the key', () => {
    const [p, body, sig, key] = token.split('.') as [string, string, string, string];
    const forgedBody = Buffer.from(JSON.stringify({ ...inv.body, uses: 99 })).toString('base64url');
    const wrongKey = Buffer.from(new Uint8Array(32).fill(9)).toString('base64url');
    const cases: [string, () => unknown, RegExp][] = [
      ['expired', () => decodeInvitation(token, NOW + DAY, admin.pub), /expired on 2025-12-07/],
      ['forged uses', () => decodeInvitation([p, forgedBody, sig, key].join('.'), NOW, admin.pub), /signature does not verify/],
      ['another cluster', () => decodeInvitation(token, NOW, other.pub), /made for another cluster/],
      ['another key', () => decodeInvitation([p, body, sig, wrongKey].join('.'), NOW, admin.pub), /key does not match/],
      ['not a token', () => decodeInvitation('hello', NOW), /does not look like a hepto invitation/],
      ['a part missing', () => decodeInvitation([p, body, sig].join('.'), NOW), /does not look like/],
      ['body not JSON', () => decodeInvitation([p, 'bm90IGpzb24', sig, key].join('.'), NOW), /body is not JSON/],
      ['bad characters', () => decodeInvitation([p, body, 'a+b/c', key].join('.'), NOW), /signature is not base64url/],
      ['short signature', () => decodeInvitation([p, body, 'AAAA', key].join('.'), NOW), /signature has the wrong length/],
      [
        'newer version',
        () => decodeInvitation([p, Buffer.from(JSON.stringify({ ...inv.body, v: 2 })).toString('base64url'), sig, key].join('.'), NOW),
        /version 2.*upgrade hepto-agent/,
      ],
    ];
    for (const [why, fn, re] of cases) {
      const msg = reason(fn);
      assert.match(msg, re, why);
      assert.ok(!msg.includes(seed), `${why}: the key is not in the message`);
    }
  });

  it('checks the options, naming the flag', () => {
    assert.match(
      reason(() => makeInvitation(admin, { anchors: ['a:1'], ttlMs: 0, uses: 1 }, NOW)),
      /--ttl/,
    );
    assert.match(
      reason(() => makeInvitation(admin, { anchors: ['a:1'], ttlMs: 31 * DAY, uses: 1 }, NOW)),
      /--ttl .* at most 30 days/,
    );
    assert.match(
      reason(() => makeInvitation(admin, { anchors: ['a:1'], ttlMs: DAY, uses: 0 }, NOW)),
      /--uses/,
    );
    assert.match(
      reason(() => makeInvitation(admin, { anchors: ['a:1'], ttlMs: DAY, uses: 1, node: 'Bad Name' }, NOW)),
      /--node "Bad Name"/,
    );
    assert.match(
      reason(() => makeInvitation(admin, { anchors: [], ttlMs: DAY, uses: 1 }, NOW)),
      /at least one anchor/,
    );
  });

  it('a use binds name and identity with the invitation key; members check it with admin_pub alone', () => {
    const id = Buffer.alloc(32, 5).toString('base64');
    const use = useInvitation(decodeInvitation(token, NOW, admin.pub), 'venus', id, NOW + 10);
    assert.equal(useProblem(admin.pub, use), null);
    assert.match(useProblem(other.pub, use) ?? '', /another cluster/);
    assert.match(useProblem(admin.pub, { ...use, id_pub: Buffer.alloc(32, 6).toString('base64') }) ?? '', /not signed by the invitation key/);
    assert.match(useProblem(admin.pub, { ...use, node: 'mars' }) ?? '', /for node "venus", not "mars"/);
    assert.match(useProblem(admin.pub, { ...use, at: NOW + DAY }) ?? '', /after its expiry/);
    assert.match(useProblem(admin.pub, { ...use, body: { ...use.body, uses: 5 } }) ?? '', /signature does not verify/);
    assert.match(
      reason(() => useInvitation(inv, 'mars', id, NOW)),
      /for node "venus", and this machine is "mars"/,
    );
  });
});
