import * as assert from 'assert';
import { signAdmission } from '../../../agent/admin/admission';
import { makeInvitation, useInvitation, type Invitation, type InvitationUse } from '../../../agent/admin/invitation';
import { generateAdminKey } from '../../../agent/admin/key';
import {
  decodeEnrolMessage,
  EnrolAnchor,
  EnrolClient,
  encodeEnrolMessage,
  enrolKeys,
  ENROL_MAX_MESSAGE,
  openEnrolBox,
  sealEnrolBox,
  type EnrolAnchorSelf,
  type EnrolGrant,
  type EnrolMessage,
  type EnrolMessageType,
  type EnrolSecrets,
} from '../../../agent/net/enrol';
import { generateIdentity, type Identity } from '../../../agent/net/identity';
import { isHeptoError } from '../../../shared/errors';

const NOW = 1_765_000_000_000;
const DAY = 86_400_000;
const ANCHOR_ADDR = '192.0.2.1:7947';

const admin = generateAdminKey(NOW);
const otherAdmin = generateAdminKey(NOW);
const anchorIdentity = generateIdentity(NOW);
const admission = signAdmission(admin, 'anchor-1', anchorIdentity.idPub, NOW);
const self: EnrolAnchorSelf = { name: 'anchor-1', identity: anchorIdentity, admission: { at: admission.at, sig: admission.sig } };
const invitation = makeInvitation(admin, { anchors: [ANCHOR_ADDR], ttlMs: DAY, uses: 1 }, NOW);
const newcomer = generateIdentity(NOW);
const use = useInvitation(invitation, 'venus', newcomer.idPub, NOW + 1);

const secrets: EnrolSecrets = {
  overlay_key: 'UnitOverlayKey0123456789abcdefgh',
  agent_key: 'agent-token-0123456789',
  cluster_key: 'ClusterKey0123456789abcdefghijkl',
  admin_pub: admin.pub,
  master: 'anchor-1',
  anchors: [ANCHOR_ADDR],
};
const grant: EnrolGrant = { anchor: 'anchor-1', at: NOW + 2, sig: 'c2lnbmF0dXJl' };

/** Through the codec, as on the wire. */
function wire<T extends EnrolMessage>(m: T, expected: readonly EnrolMessageType[] = [m.t]): T {
  return decodeEnrolMessage(encodeEnrolMessage(m), expected) as T;
}

function client(o: { identity?: Identity; use?: InvitationUse; invitation?: Invitation } = {}): EnrolClient {
  return new EnrolClient({ invitation: o.invitation ?? invitation, identity: o.identity ?? newcomer, use: o.use ?? use, anchor: ANCHOR_ADDR });
}

/** The reason of a PEER_AUTH_FAILED refusal: one line. */
function reason(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(isHeptoError(e), String(e));
    assert.strictEqual(e.code, 'PEER_AUTH_FAILED');
    assert.ok(!e.message.includes('\n'), `one line: ${e.message}`);
    return e.message;
  }
  assert.fail('expected a refusal');
}

describe('net/enrol (pure protocol)', () => {
  it('a whole enrolment: the anchor gets the authenticated use, the client the secrets, intact', () => {
    const c = client();
    const a = new EnrolAnchor(self, admin.pub);
    const anchorMsg = wire(a.onHello(wire(c.hello())));
    assert.strictEqual(anchorMsg.name, 'anchor-1');
    const useMsg = wire(c.onAnchor(anchorMsg));
    assert.strictEqual(c.anchorName, 'anchor-1');
    assert.strictEqual(c.anchorIdPub, anchorIdentity.idPub);
    const got = a.openUse(useMsg, NOW + 5);
    assert.deepStrictEqual(got, use);
    const welcome = c.onWelcome(wire(a.welcome(secrets, grant)));
    assert.deepStrictEqual(welcome, { secrets, grant });
  });

  it('round-trips every message through the codec', () => {
    const msgs: EnrolMessage[] = [
      { t: 'hello', v: 1, eph: Buffer.alloc(32, 1).toString('base64') },
      {
        t: 'anchor',
        eph: Buffer.alloc(32, 2).toString('base64'),
        name: 'a-1',
        id_pub: anchorIdentity.idPub,
        admission: self.admission,
        sig: Buffer.alloc(64, 3).toString('base64'),
      },
      { t: 'use', box: Buffer.alloc(40, 4).toString('base64') },
      { t: 'welcome', box: Buffer.alloc(40, 5).toString('base64') },
      { t: 'refused', reason: 'the invitation is used up' },
    ];
    for (const m of msgs) {
      const bytes = encodeEnrolMessage(m);
      assert.ok(bytes.length < 1024);
      assert.deepStrictEqual(decodeEnrolMessage(bytes, [m.t]), m);
    }
  });

  it('keeps names, identities, the use and the secrets off the wire', () => {
    const c = client();
    const a = new EnrolAnchor(self, admin.pub);
    const hello = encodeEnrolMessage(c.hello());
    const anchorMsg = a.onHello(decodeEnrolMessage(hello, ['hello']) as never);
    const useBytes = encodeEnrolMessage(c.onAnchor(anchorMsg));
    a.openUse(decodeEnrolMessage(useBytes, ['use']) as never, NOW);
    const welcomeBytes = encodeEnrolMessage(a.welcome(secrets, grant));
    const clientWire = Buffer.concat([hello, useBytes]).toString();
    for (const needle of ['venus', newcomer.idPub, invitation.body.id, invitation.body.inv_pub, use.use_sig]) {
      assert.ok(!clientWire.includes(needle), `${needle} is boxed`);
    }
    const anchorWire = Buffer.from(welcomeBytes).toString();
    for (const needle of [secrets.overlay_key, secrets.cluster_key!, secrets.agent_key!]) assert.ok(!anchorWire.includes(needle));
  });

  describe('a man in the middle', () => {
    it("who swaps the client's ephemeral key makes the anchor's signature fail: the use never leaves", () => {
      const c = client();
      const a = new EnrolAnchor(self, admin.pub);
      const hello = c.hello();
      const mitm = client();
      const anchorMsg = a.onHello({ ...hello, eph: mitm.hello().eph });
      assert.match(
        reason(() => c.onAnchor(anchorMsg)),
        new RegExp(`anchor ${ANCHOR_ADDR} did not prove its identity \\(bad signature over the transcript`),
      );
    });

    it("who swaps the anchor's ephemeral key fails the same way", () => {
      const c = client();
      const a = new EnrolAnchor(self, admin.pub);
      const anchorMsg = a.onHello(c.hello());
      const other = new EnrolAnchor(self, admin.pub).onHello(client().hello());
      assert.match(
        reason(() => c.onAnchor({ ...anchorMsg, eph: other.eph })),
        /did not prove its identity/,
      );
    });

    it("who signs the transcript with its own identity is not admitted, even with the anchor's name and admission", () => {
      const c = client();
      const mitmSelf: EnrolAnchorSelf = { ...self, identity: generateIdentity(NOW) };
      const anchorMsg = new EnrolAnchor(mitmSelf, admin.pub).onHello(c.hello());
      assert.strictEqual(
        reason(() => c.onAnchor(anchorMsg)),
        `anchor ${ANCHOR_ADDR} is not an admitted member of the invitation's cluster`,
      );
    });

    it('who flips a bit of the use, or replays it on another connection, gets nothing opened', () => {
      const c = client();
      const a = new EnrolAnchor(self, admin.pub);
      const useMsg = c.onAnchor(a.onHello(c.hello()));
      const raw = Buffer.from(useMsg.box, 'base64');
      raw[raw.length - 1] ^= 1;
      assert.match(
        reason(() => a.openUse({ t: 'use', box: raw.toString('base64') }, NOW)),
        /the use does not open: tampered with, or sealed for another connection/,
      );

      const c2 = client();
      const a2 = new EnrolAnchor(self, admin.pub);
      c2.onAnchor(a2.onHello(c2.hello()));
      assert.match(
        reason(() => a2.openUse(useMsg, NOW)),
        /the use does not open/,
      );
    });

    it('who tampers with the welcome gets it refused by the client', () => {
      const c = client();
      const a = new EnrolAnchor(self, admin.pub);
      a.openUse(c.onAnchor(a.onHello(c.hello())), NOW);
      const w = a.welcome(secrets, grant);
      const raw = Buffer.from(w.box, 'base64');
      raw[0] ^= 0x80;
      assert.match(
        reason(() => c.onWelcome({ t: 'welcome', box: raw.toString('base64') })),
        /the welcome does not open/,
      );
    });
  });

  it('a box under the wrong key does not open', () => {
    const k1 = enrolKeys(new Uint8Array(32).fill(1), new Uint8Array(32).fill(2));
    const k2 = enrolKeys(new Uint8Array(32).fill(1), new Uint8Array(32).fill(3));
    assert.notDeepStrictEqual(k1.c2s, k1.s2c, 'one key per direction');
    const box = sealEnrolBox(k1.c2s, { x: 1 });
    assert.deepStrictEqual(openEnrolBox(k1.c2s, box, 'use'), { x: 1 });
    assert.match(
      reason(() => openEnrolBox(k2.c2s, box, 'use')),
      /the use does not open/,
    );
    assert.match(
      reason(() => openEnrolBox(k1.s2c, box, 'welcome')),
      /the welcome does not open/,
    );
    assert.match(
      reason(() => openEnrolBox(k1.c2s, 'not base64!', 'use')),
      /does not open/,
    );
  });

  describe('the client refuses an anchor that is not an admitted member', () => {
    const cases: [string, (m: ReturnType<EnrolAnchor['onHello']>) => ReturnType<EnrolAnchor['onHello']>, EnrolAnchorSelf?][] = [
      ['missing admission', (m) => ({ ...m, admission: undefined })],
      [
        'admission by another admin key',
        (m) => m,
        { ...self, admission: { at: NOW, sig: signAdmission(otherAdmin, 'anchor-1', anchorIdentity.idPub, NOW).sig } },
      ],
      ['admission forged (its time changed)', (m) => ({ ...m, admission: { ...m.admission!, at: m.admission!.at + 1 } })],
      ['admission for another name', (m) => m, { ...self, name: 'anchor-2' }],
    ];
    for (const [why, change, who] of cases) {
      it(why, () => {
        const c = client();
        const a = new EnrolAnchor(who ?? self, admin.pub);
        const m = wire(change(a.onHello(c.hello())));
        assert.strictEqual(
          reason(() => c.onAnchor(m)),
          `anchor ${ANCHOR_ADDR} is not an admitted member of the invitation's cluster`,
        );
      });
    }
  });

  it("the anchor refuses a client whose identity signature does not cover the use's id_pub", () => {
    // The use names `newcomer`, but this client holds (and signs with) another identity.
    const c = client({ identity: generateIdentity(NOW) });
    const a = new EnrolAnchor(self, admin.pub);
    const useMsg = c.onAnchor(a.onHello(c.hello()));
    assert.match(
      reason(() => a.openUse(useMsg, NOW)),
      /the client did not prove it holds the identity key it enrols \(bad identity signature\)/,
    );
  });

  it('the anchor refuses a use that useProblem refuses, and one expired by its own clock', () => {
    const run = (u: InvitationUse, anchorAdmin = admin.pub, now = NOW): string => {
      const c = client({ use: u });
      const a = new EnrolAnchor(self, anchorAdmin);
      return reason(() => a.openUse(c.onAnchor(a.onHello(c.hello())), now));
    };
    assert.match(run(use, otherAdmin.pub), /the invitation use is not valid: it was made for another cluster/);
    assert.match(run({ ...use, body: { ...use.body, uses: 50 } }), /the invitation use is not valid: the invitation signature does not verify/);
    assert.match(run({ ...use, at: invitation.body.exp }), /the invitation use is not valid: it was used after its expiry/);
    assert.match(run({ ...use, node: 'mars' }), /the invitation use is not valid: the use is not signed by the invitation key/);
    // A backdated use of an expired invitation: `at` is the client's word, the anchor's clock is not.
    assert.match(run(use, admin.pub, invitation.body.exp), /the invitation expired on .* \(by the anchor's clock\)/);
  });

  it('the client refuses a welcome for another cluster, or with malformed secrets, without repeating them', () => {
    const deliver = (s: unknown): string => {
      const c = client();
      const a = new EnrolAnchor(self, admin.pub);
      a.openUse(c.onAnchor(a.onHello(c.hello())), NOW);
      return reason(() => c.onWelcome(a.welcome(s as EnrolSecrets, grant)));
    };
    assert.match(deliver({ ...secrets, admin_pub: otherAdmin.pub }), /the welcome's admin_pub is not the invitation's/);
    const short = deliver({ ...secrets, overlay_key: 'tooShortSecretValue' });
    assert.match(short, /the welcome's overlay_key is malformed/);
    assert.ok(!short.includes('tooShortSecretValue'));
    assert.match(deliver({ ...secrets, cluster_key: 5 }), /cluster_key is malformed/);
    assert.match(deliver({ ...secrets, anchors: 'a:1' }), /anchors is malformed/);
  });

  it('refuses out-of-order steps', () => {
    const c = client();
    const a = new EnrolAnchor(self, admin.pub);
    assert.match(
      reason(() => a.openUse({ t: 'use', box: 'AAAA' }, NOW)),
      /out of order/,
    );
    const hello = c.hello();
    const m = a.onHello(hello);
    assert.match(
      reason(() => a.onHello(hello)),
      /a second hello/,
    );
    assert.match(
      reason(() => c.onWelcome({ t: 'welcome', box: 'AAAA' })),
      /out of order/,
    );
    c.onAnchor(m);
    assert.match(
      reason(() => c.onAnchor(m)),
      /out of order/,
    );
    assert.match(
      reason(() => new EnrolAnchor(self, admin.pub).onHello({ t: 'hello', v: 1, eph: Buffer.alloc(32).toString('base64') })),
      /degenerate ephemeral key/,
    );
  });

  it('gives malformed messages of each kind a one-line reason that does not echo them', () => {
    const json = (v: unknown): Uint8Array => new Uint8Array(Buffer.from(JSON.stringify(v)));
    const eph = Buffer.alloc(32, 7).toString('base64');
    const sig = Buffer.alloc(64, 8).toString('base64');
    const anchor = { t: 'anchor', eph, name: 'a-1', id_pub: anchorIdentity.idPub, admission: self.admission, sig };
    const cases: [string, Uint8Array, EnrolMessageType[], RegExp, boolean?][] = [
      ['text frame', json({ t: 'hello', v: 1, eph }), ['hello'], /text frame/, false],
      ['oversized', new Uint8Array(ENROL_MAX_MESSAGE + 1).fill(32), ['hello'], /exceeds the enrolment limit of 8192/],
      ['not JSON', new Uint8Array(Buffer.from('{"t":"hello",QQsecretQQ')), ['hello'], /is not JSON/],
      ['not an object', json(['hello']), ['hello'], /not a JSON object/],
      ['no type', json({ v: 1 }), ['hello'], /no known type/],
      ['unknown type', json({ t: 'gimme-secrets' }), ['hello'], /no known type/],
      ['out of order', json({ t: 'use', box: 'AAAAAAAAAAAAAAAAAAAAAAAA' }), ['hello'], /a "use" message arrived out of order \(expected "hello"\)/],
      ['newer version', json({ t: 'hello', v: 2, eph }), ['hello'], /client speaks enrolment version 2, this anchor speaks 1: upgrade the anchor/],
      ['hello without version', json({ t: 'hello', eph }), ['hello'], /hello message's version is missing/],
      ['hello with a short eph', json({ t: 'hello', v: 1, eph: 'AAAA' }), ['hello'], /hello message's eph is not a base64 X25519 key/],
      ['anchor with a bad name', json({ ...anchor, name: 'bad name\nQQforged log lineQQ' }), ['anchor'], /anchor message's name is not a node name/],
      ['anchor with a bad id_pub', json({ ...anchor, id_pub: 'x' }), ['anchor'], /anchor message's id_pub/],
      ['anchor with a malformed admission', json({ ...anchor, admission: { at: -1, sig } }), ['anchor'], /anchor message's admission is malformed/],
      ['anchor without signature', json({ ...anchor, sig: undefined }), ['anchor'], /anchor message's sig/],
      ['use without box', json({ t: 'use' }), ['use'], /use message's box is not a base64 secretbox/],
      ['welcome with a short box', json({ t: 'welcome', box: 'AAAA' }), ['welcome'], /welcome message's box/],
      ['refused without reason', json({ t: 'refused', reason: 7 }), ['refused'], /refused message's reason is not text/],
    ];
    for (const [why, bytes, expected, re, binary] of cases) {
      const msg = reason(() => decodeEnrolMessage(bytes, expected, binary ?? true));
      assert.match(msg, re, why);
      assert.ok(!msg.includes('QQ'), `${why}: does not echo the message`);
    }
    // A refusal's reason arrives flattened to one bounded line.
    const r = decodeEnrolMessage(json({ t: 'refused', reason: 'used up\nfake: line\r\n' + 'x'.repeat(1000) }), ['refused']);
    assert.ok(r.t === 'refused' && !/[\r\n]/.test(r.reason) && r.reason.length <= 300 && r.reason.startsWith('used up fake: line'));
    // Unknown extra fields are ignored (a later version may add some).
    assert.strictEqual(decodeEnrolMessage(json({ t: 'hello', v: 1, eph, later: true }), ['hello']).t, 'hello');
  });

  it('refuses to encode a message over the limit', () => {
    assert.match(
      reason(() => encodeEnrolMessage({ t: 'refused', reason: 'x'.repeat(ENROL_MAX_MESSAGE) })),
      /more than the enrolment limit/,
    );
  });
});
