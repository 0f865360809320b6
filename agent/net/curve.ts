/**
 * ed25519 and X25519, the asymmetric half of hepto's crypto, on Node's native
 * (OpenSSL) implementation. The bytes are exactly tweetnacl's: ed25519
 * signatures are deterministic and X25519 is a pure function, and
 * test/unit/net/curve.test.ts checks both against tweetnacl. tweetnacl's
 * pure-JavaScript versions cost 1–9 ms per operation on these machines, so a
 * handshake took about 17 ms of CPU and a 100-agent join storm at one anchor
 * stalled its event loop; natively it is a few hundred microseconds.
 * Symmetric crypto (secretbox) stays with tweetnacl.
 */
import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, sign, verify, type KeyObject } from 'crypto';

const ED_PKCS8 = Buffer.from('302e020100300506032b657004220420', 'hex');
const X_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** Parsed public keys, by their raw bytes: members verify the same few keys again and again. */
const edPublicKeys = new Map<string, KeyObject>();
const MAX_CACHED_KEYS = 4096;

/**
 * Parsed private keys, by the very byte array the caller holds (an agent's
 * identity key, a handshake's ephemeral key). OpenSSL's PKCS#8 import costs
 * about 0.3 ms, ten times the signature itself; it ran four times per
 * handshake and was the largest cost of a join storm. Keyed by object, so a
 * secret is never copied into a cache key and goes away with its owner.
 */
const privateKeys = new WeakMap<Uint8Array, KeyObject>();

/** Raw key bytes (x: public, d: private) through JWK, which costs a microsecond where DER export costs 30–60. */
function raw(k: KeyObject, field: 'x' | 'd'): Uint8Array {
  const v = k.export({ format: 'jwk' })[field];
  if (typeof v !== 'string') throw new Error(`curve: key has no ${field}`);
  return new Uint8Array(Buffer.from(v, 'base64url'));
}

/** A raw public key as a KeyObject, through JWK (5 µs, against 70 µs through SPKI DER). */
function publicKeyObject(crv: 'Ed25519' | 'X25519', pub: Uint8Array): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv, x: Buffer.from(pub).toString('base64url') }, format: 'jwk' });
}

function privateKeyObject(secret: Uint8Array, prefix: Buffer, keyBytes: Uint8Array): KeyObject {
  let k = privateKeys.get(secret);
  if (!k) {
    k = createPrivateKey({ key: Buffer.concat([prefix, keyBytes]), format: 'der', type: 'pkcs8' });
    privateKeys.set(secret, k);
  }
  return k;
}

function edPublic(pub: Uint8Array): KeyObject {
  const id = Buffer.from(pub).toString('base64');
  let k = edPublicKeys.get(id);
  if (!k) {
    k = publicKeyObject('Ed25519', pub);
    if (edPublicKeys.size >= MAX_CACHED_KEYS) edPublicKeys.clear();
    edPublicKeys.set(id, k);
  }
  return k;
}

/** A fresh identity key pair in tweetnacl's layout: secretKey = seed(32) ‖ publicKey(32). */
export function ed25519KeyPair(): { publicKey: Uint8Array; secretKey: Uint8Array } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const seed = raw(privateKey, 'd');
  const pub = raw(publicKey, 'x');
  const secretKey = new Uint8Array(64);
  secretKey.set(seed, 0);
  secretKey.set(pub, 32);
  privateKeys.set(secretKey, privateKey);
  return { publicKey: pub, secretKey };
}

/** The public key belonging to a 64-byte secret key (recomputed from its seed, not trusted from its tail). */
export function ed25519PublicOf(secretKey: Uint8Array): Uint8Array {
  const priv = createPrivateKey({ key: Buffer.concat([ED_PKCS8, secretKey.subarray(0, 32)]), format: 'der', type: 'pkcs8' });
  return raw(createPublicKey(priv), 'x');
}

export function ed25519Sign(msg: Uint8Array, secretKey: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, msg, privateKeyObject(secretKey, ED_PKCS8, secretKey.subarray(0, 32))));
}

/** False for a bad signature and for a malformed key or signature: never throws. */
export function ed25519Verify(msg: Uint8Array, sig: Uint8Array, pub: Uint8Array): boolean {
  if (sig.length !== 64 || pub.length !== 32) return false;
  try {
    return verify(null, msg, edPublic(pub), sig);
  } catch {
    return false;
  }
}

export function x25519KeyPair(): { publicKey: Uint8Array; secretKey: Uint8Array } {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const secretKey = raw(privateKey, 'd');
  privateKeys.set(secretKey, privateKey);
  return { publicKey: raw(publicKey, 'x'), secretKey };
}

/**
 * The X25519 shared secret, or null when the peer's key is degenerate (a
 * low-order point gives an all-zero secret, which OpenSSL refuses).
 */
export function x25519(secretKey: Uint8Array, peerPublic: Uint8Array): Uint8Array | null {
  if (peerPublic.length !== 32) return null;
  try {
    const privateKey = privateKeyObject(secretKey, X_PKCS8, secretKey);
    const publicKey = publicKeyObject('X25519', peerPublic);
    const s = new Uint8Array(diffieHellman({ privateKey, publicKey }));
    return s.every((b) => b === 0) ? null : s;
  } catch {
    return null;
  }
}
