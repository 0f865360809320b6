import { strict as assert } from 'assert';
import nacl from 'tweetnacl';
import { ed25519KeyPair, ed25519PublicOf, ed25519Sign, ed25519Verify, x25519, x25519KeyPair } from '../../../agent/net/curve';

/** The native curve functions must give tweetnacl's bytes exactly: peers may run either. */
describe('native ed25519 / X25519 match tweetnacl byte for byte', () => {
  it('ed25519: same signatures, cross-verification, same public key from the seed', () => {
    for (let i = 0; i < 20; i++) {
      const kp = nacl.sign.keyPair();
      const msg = nacl.randomBytes(i * 13);
      const sig = ed25519Sign(msg, kp.secretKey);
      assert.deepEqual(sig, nacl.sign.detached(msg, kp.secretKey));
      assert.ok(ed25519Verify(msg, sig, kp.publicKey));
      assert.deepEqual(ed25519PublicOf(kp.secretKey), kp.publicKey);
      const mine = ed25519KeyPair();
      assert.ok(nacl.sign.detached.verify(msg, ed25519Sign(msg, mine.secretKey), mine.publicKey));
      assert.deepEqual(nacl.sign.keyPair.fromSeed(mine.secretKey.subarray(0, 32)).secretKey, mine.secretKey);
    }
  });

  it('parsed private keys are cached per key array: each array still signs with its own key', () => {
    const a = ed25519KeyPair();
    const b = nacl.sign.keyPair();
    const msg = new Uint8Array([9, 8, 7]);
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(ed25519Sign(msg, a.secretKey), nacl.sign.detached(msg, a.secretKey));
      assert.deepEqual(ed25519Sign(msg, b.secretKey), nacl.sign.detached(msg, b.secretKey));
      assert.deepEqual(ed25519Sign(msg, b.secretKey.slice()), nacl.sign.detached(msg, b.secretKey));
    }
  });

  it('ed25519: a flipped bit, a wrong key or a malformed signature verifies false, never throws', () => {
    const kp = nacl.sign.keyPair();
    const msg = new Uint8Array([1, 2, 3]);
    const sig = ed25519Sign(msg, kp.secretKey);
    const bad = sig.slice();
    bad[5] ^= 1;
    assert.equal(ed25519Verify(msg, bad, kp.publicKey), false);
    assert.equal(ed25519Verify(msg, sig, nacl.sign.keyPair().publicKey), false);
    assert.equal(ed25519Verify(msg, sig.subarray(1), kp.publicKey), false);
    assert.equal(ed25519Verify(msg, sig, new Uint8Array(31)), false);
  });

  it('X25519: same shared secret as nacl.scalarMult both ways; a degenerate peer key gives null', () => {
    for (let i = 0; i < 20; i++) {
      const a = x25519KeyPair();
      const b = nacl.box.keyPair();
      assert.deepEqual(a.publicKey, nacl.scalarMult.base(a.secretKey));
      assert.deepEqual(x25519(a.secretKey, b.publicKey), nacl.scalarMult(b.secretKey, a.publicKey));
      // A secret the module did not make (no cached key object) gives the same bytes.
      assert.deepEqual(x25519(b.secretKey, a.publicKey), nacl.scalarMult(b.secretKey, a.publicKey));
    }
    assert.equal(x25519(x25519KeyPair().secretKey, new Uint8Array(32)), null); // low-order point → all-zero secret
    assert.equal(x25519(x25519KeyPair().secretKey, new Uint8Array(5)), null);
  });
});
