import * as assert from 'assert';
import { deriveOverlayKeys } from '../../../agent/net/crypto';
import { FrameOpener, FrameSealer } from '../../../agent/net/frames';
import { ClientHandshake, ServerHandshake } from '../../../agent/net/handshake';
import { generateIdentity } from '../../../agent/net/identity';
import { isHeptoError } from '../../../shared/errors';

const KEY = 'UnitOverlayKey0123456789abcdefgh';
const OTHER = 'OtherOverlayKey123456789abcdefgh';
const keys = deriveOverlayKeys(KEY);
const alice = { name: 'alice', identity: generateIdentity(1) };
const bob = { name: 'bob', identity: generateIdentity(2) };

function roundTrip(clientKeys = keys, serverKeys = keys) {
  const c = new ClientHandshake(clientKeys, alice);
  const s = new ServerHandshake(serverKeys, bob);
  const m1 = c.hello();
  const m2 = s.respond(m1);
  const { message: m3, session: cs } = c.finish(m2);
  const ss = s.complete(m3);
  return { m1, m2, m3, cs, ss };
}

const authFailed = (re: RegExp) => (e: unknown) => isHeptoError(e) && e.code === 'PEER_AUTH_FAILED' && re.test(e.message);

describe('net/handshake', () => {
  it('authenticates both sides and agrees on per-direction keys', () => {
    const { cs, ss } = roundTrip();
    assert.strictEqual(cs.peerName, 'bob');
    assert.strictEqual(cs.peerIdPub, bob.identity.idPub);
    assert.strictEqual(ss.peerName, 'alice');
    assert.strictEqual(ss.peerIdPub, alice.identity.idPub);
    assert.deepStrictEqual(cs.sendKey, ss.recvKey);
    assert.deepStrictEqual(cs.recvKey, ss.sendKey);
    assert.notDeepStrictEqual(cs.sendKey, cs.recvKey);
    const frame = new FrameSealer(cs.sendKey).seal(Buffer.from('ping'));
    assert.strictEqual(Buffer.from(new FrameOpener(ss.recvKey).open(frame)).toString(), 'ping');
  });

  it('a server with a key ring (key rotation) takes a hello under any of its keys and runs the handshake under that one', () => {
    const other = deriveOverlayKeys(OTHER);
    for (const [clientKeys, index] of [
      [keys, 0],
      [other, 1],
    ] as const) {
      const c = new ClientHandshake(clientKeys, alice);
      const s = new ServerHandshake([keys, other], bob);
      const m2 = s.respond(c.hello());
      assert.strictEqual(s.keyIndex, index);
      const { message, session: cs } = c.finish(m2);
      const ss = s.complete(message);
      assert.deepStrictEqual(cs.sendKey, ss.recvKey);
      assert.strictEqual(ss.peerName, 'alice');
    }
    const third = new ClientHandshake(deriveOverlayKeys('ThirdOverlayKey123456789abcdefgh'), alice);
    assert.throws(() => new ServerHandshake([keys, other], bob).respond(third.hello()), authFailed(/probably a different overlay key/));
  });

  it('gives every connection fresh keys (ephemeral X25519)', () => {
    const a = roundTrip();
    const b = roundTrip();
    assert.notDeepStrictEqual(a.cs.sendKey, b.cs.sendKey);
    const frame = new FrameSealer(a.cs.sendKey).seal(Buffer.from('x'));
    assert.throws(() => new FrameOpener(b.ss.recvKey).open(frame), /does not authenticate/);
  });

  it('hides names and identities from anyone without the overlay key', () => {
    const { m1, m2, m3 } = roundTrip();
    for (const m of [m1, m2, m3]) {
      const s = Buffer.from(m);
      assert.ok(!s.includes('alice') && !s.includes('bob'), 'no plaintext name');
      assert.ok(!s.includes(Buffer.from(alice.identity.publicKey)) && !s.includes(Buffer.from(bob.identity.publicKey)), 'no identity key');
    }
  });

  it('fails on the server when the client has another overlay key', () => {
    const c = new ClientHandshake(deriveOverlayKeys(OTHER), alice);
    const s = new ServerHandshake(keys, bob);
    assert.throws(() => s.respond(c.hello()), authFailed(/probably a different overlay key/));
  });

  it('fails on the client when the server has another overlay key', () => {
    const c = new ClientHandshake(keys, alice);
    c.hello();
    // A server with another key cannot open our M1; whatever M2 it sends cannot open here.
    const fake = new ServerHandshake(deriveOverlayKeys(OTHER), bob);
    const other = new ClientHandshake(deriveOverlayKeys(OTHER), { name: 'x', identity: generateIdentity(3) });
    const m2 = fake.respond(other.hello());
    assert.throws(() => c.finish(m2), authFailed(/overlay key/));
  });

  it('rejects a tampered hello, a tampered identity block and a tampered finish', () => {
    const c1 = new ClientHandshake(keys, alice);
    const m1 = c1.hello();
    m1[40] ^= 1;
    assert.throws(() => new ServerHandshake(keys, bob).respond(m1), authFailed(/overlay key/));

    const c2 = new ClientHandshake(keys, alice);
    const s2 = new ServerHandshake(keys, bob);
    const m2 = s2.respond(c2.hello());
    m2[m2.length - 5] ^= 1;
    assert.throws(() => c2.finish(m2), authFailed(/server identity/));

    const c3 = new ClientHandshake(keys, alice);
    const s3 = new ServerHandshake(keys, bob);
    const { message: m3 } = c3.finish(s3.respond(c3.hello()));
    m3[m3.length - 1] ^= 1;
    assert.throws(() => s3.complete(m3), authFailed(/client identity/));
  });

  it('rejects a finish replayed from another connection', () => {
    const first = roundTrip();
    const c = new ClientHandshake(keys, alice);
    const s = new ServerHandshake(keys, bob);
    s.respond(c.hello());
    assert.throws(() => s.complete(first.m3), authFailed(/client identity/));
  });

  it('rejects an identity whose signature does not match the claimed key', () => {
    // A member that knows the overlay key but signs with another identity than it claims.
    const liar = { name: 'alice', identity: { ...alice.identity, secretKey: bob.identity.secretKey } };
    const c = new ClientHandshake(keys, liar);
    const s = new ServerHandshake(keys, bob);
    const { message } = c.finish(s.respond(c.hello()));
    assert.throws(() => s.complete(message), authFailed(/did not prove its identity/));
  });

  it('rejects messages out of order and of the wrong type', () => {
    const c = new ClientHandshake(keys, alice);
    const s = new ServerHandshake(keys, bob);
    const m1 = c.hello();
    assert.throws(() => s.complete(m1), authFailed(/out of order/));
    const s2 = new ServerHandshake(keys, bob);
    assert.throws(() => c.finish(m1), authFailed(/type/)); // client's own hello reflected back
    const m2 = s2.respond(new ClientHandshake(keys, alice).hello());
    assert.throws(() => new ServerHandshake(keys, bob).respond(m2), authFailed(/hello/));
    assert.throws(() => s2.respond(m1), authFailed(/second hello/));
  });

  it("carries each side's admission, when it has one, and nothing when it has none", () => {
    const proofA = { at: 1_765_000_000_001, sig: Buffer.alloc(64, 1).toString('base64') };
    const proofB = { at: 2 ** 52, sig: Buffer.alloc(64, 2).toString('base64') };
    const c = new ClientHandshake(keys, { ...alice, admission: proofA });
    const s = new ServerHandshake(keys, { ...bob, admission: proofB });
    const { message, session: cs } = c.finish(s.respond(c.hello()));
    const ss = s.complete(message);
    assert.deepStrictEqual(cs.peerAdmission, proofB);
    assert.deepStrictEqual(ss.peerAdmission, proofA);
    const plain = roundTrip();
    assert.strictEqual(plain.cs.peerAdmission, undefined);
    assert.strictEqual(plain.ss.peerAdmission, undefined);
    // 72 more bytes in M3 (8 for the time, 64 for the admin signature), and in M2.
    const c2 = new ClientHandshake(keys, { ...alice, admission: proofA });
    const m3 = c2.finish(new ServerHandshake(keys, bob).respond(c2.hello())).message;
    assert.strictEqual(m3.length, plain.m3.length + 72);
  });

  it('carries an admission by invitation as JSON, and drops a malformed one', () => {
    const sig = Buffer.alloc(64, 3).toString('base64');
    const inv = {
      body: {
        v: 1 as const,
        id: '0123456789abcdef',
        anchors: ['[2001:db8::1]:7947'],
        admin_pub: 'ed25519:' + Buffer.alloc(32, 1).toString('base64'),
        exp: 9e12,
        uses: 1,
        node: 'alice',
        inv_pub: Buffer.alloc(32, 2).toString('base64'),
      },
      body_sig: sig,
      use_at: 5,
      use_sig: sig,
      anchor: 'bob',
      anchor_id: bob.identity.idPub,
      anchor_adm: { at: 1, sig },
    };
    const proof = { at: 7, sig, inv };
    const c = new ClientHandshake(keys, { ...alice, admission: proof });
    const s = new ServerHandshake(keys, bob);
    const ss = s.complete(c.finish(s.respond(c.hello())).message);
    assert.deepStrictEqual(ss.peerAdmission, proof);
    const broken = { at: 7, sig, inv: { ...inv, anchor: 'not a name!' } };
    const c2 = new ClientHandshake(keys, { ...alice, admission: broken });
    const s2 = new ServerHandshake(keys, bob);
    assert.strictEqual(s2.complete(c2.finish(s2.respond(c2.hello())).message).peerAdmission, undefined);
  });

  it('rejects an identity block whose admission tail has the wrong length', () => {
    // A malformed proof (a signature of the wrong size) is not sent at all...
    const c = new ClientHandshake(keys, { ...alice, admission: { at: 5, sig: Buffer.alloc(10).toString('base64') } });
    const s = new ServerHandshake(keys, bob);
    const ss = s.complete(c.finish(s.respond(c.hello())).message);
    assert.strictEqual(ss.peerAdmission, undefined);
  });

  it('refuses a node name that cannot travel on the wire', () => {
    assert.throws(() => new ClientHandshake(keys, { name: 'bad name\n', identity: alice.identity }), /cannot be used on the wire/);
    assert.throws(() => new ServerHandshake(keys, { name: '', identity: alice.identity }), /cannot be used on the wire/);
  });
});
