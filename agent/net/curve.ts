/**
 * ed25519 and X25519, the asymmetric half of hepto's crypto, on Node's native
 * (OpenSSL) implementation. The bytes are exactly tweetnacl's: ed25519
 * signatures are deterministic and X25519 is a pure function, and
 * test/unit/net/curve.test.ts checks both against tweetnacl. tweetnacl's
 * pure-JavaScript versions cost 1–9 ms per operation on these machines, so a
 * handshake took about 17 ms of CPU and a 100-agent join storm at one anchor
 * stalled its event loop. The data frames' AEAD is native too (frames.ts); only
 * the handshake's few small secretboxes stay with tweetnacl.
 *
 * How keys get in and out of OpenSSL matters as much as the curve arithmetic:
 * - PKCS#8 DER import costs about 0.3 ms, ten times a signature. Private key
 *   objects are therefore parsed once per key array and cached, and ephemeral
 *   X25519 keys are imported through JWK (25 µs).
 * - No key made by generateKeyPairSync is ever exported: on Node 20,
 *   exporting such a key as JWK can deadlock the process for good, when a GC
 *   in the middle of the export finalizes the key's generation job, which
 *   waits on the lock the export holds (seen in the 100-member bench).
 *   Ephemeral secrets are random bytes instead, and their public key is the
 *   X25519 product with the base point, computed by OpenSSL itself.
 */
import { createPrivateKey, createPublicKey, diffieHellman, randomBytes, sign, verify, type KeyObject } from 'crypto';

/** The DER header that makes a PKCS#8 ed25519 private key of a 32-byte seed. */
const ED_PKCS8 = Buffer.from('302e020100300506032b657004220420', 'hex');
const ED_SPKI_LENGTH = 12;

/** The ed25519 private key of a 32-byte seed, as a Node KeyObject (through PKCS#8 DER, about 0.3 ms). */
export function ed25519PrivateKeyOfSeed(seed: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([ED_PKCS8, seed]), format: 'der', type: 'pkcs8' });
}

/** The X25519 base point, u = 9. */
const BASE_POINT = new Uint8Array(32);
BASE_POINT[0] = 9;

/** Parsed public keys, by their raw bytes: members verify the same few keys again and again. */
const edPublicKeys = new Map<string, KeyObject>();
const MAX_CACHED_KEYS = 4096;

/**
 * Parsed private keys, by the very byte array the caller holds (an agent's
 * identity key, a handshake's ephemeral key). Keyed by object, so a secret is
 * never copied into a cache key and goes away with its owner.
 */
const privateKeys = new WeakMap<Uint8Array, KeyObject>();

const b64url = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');

/** A raw public key as a KeyObject, through JWK (5 µs, against 70 µs through SPKI DER). */
function publicKeyObject(crv: 'Ed25519' | 'X25519', pub: Uint8Array): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv, x: b64url(pub) }, format: 'jwk' });
}

function edPublic(pub: Uint8Array): KeyObject {
  const id = b64url(pub);
  let k = edPublicKeys.get(id);
  if (!k) {
    k = publicKeyObject('Ed25519', pub);
    if (edPublicKeys.size >= MAX_CACHED_KEYS) edPublicKeys.clear();
    edPublicKeys.set(id, k);
  }
  return k;
}

/** The ed25519 private key of a 64-byte tweetnacl secret key (its 32-byte seed), parsed once per array. */
function edPrivate(secretKey: Uint8Array): KeyObject {
  let k = privateKeys.get(secretKey);
  if (!k) {
    k = ed25519PrivateKeyOfSeed(secretKey.subarray(0, 32));
    privateKeys.set(secretKey, k);
  }
  return k;
}

/**
 * An X25519 private key from its 32 raw bytes, parsed once per array. JWK
 * wants the public half too, but OpenSSL derives it from the private bytes
 * (checked in the curve tests, on Node 18 and 20), so any 32 bytes will do.
 */
function xPrivate(secretKey: Uint8Array): KeyObject {
  let k = privateKeys.get(secretKey);
  if (!k) {
    k = createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d: b64url(secretKey), x: b64url(BASE_POINT) }, format: 'jwk' });
    privateKeys.set(secretKey, k);
  }
  return k;
}

const basePoint = publicKeyObject('X25519', BASE_POINT);

/** A fresh identity key pair in tweetnacl's layout: secretKey = seed(32) ‖ publicKey(32). */
export function ed25519KeyPair(): { publicKey: Uint8Array; secretKey: Uint8Array } {
  const secretKey = new Uint8Array(64);
  secretKey.set(randomBytes(32), 0);
  const publicKey = ed25519PublicOf(secretKey);
  secretKey.set(publicKey, 32);
  return { publicKey, secretKey };
}

/** The public key belonging to a 64-byte secret key (recomputed from its seed, not trusted from its tail). */
export function ed25519PublicOf(secretKey: Uint8Array): Uint8Array {
  const priv = ed25519PrivateKeyOfSeed(secretKey.subarray(0, 32));
  const der = createPublicKey(priv).export({ format: 'der', type: 'spki' });
  return new Uint8Array(der.subarray(ED_SPKI_LENGTH));
}

export function ed25519Sign(msg: Uint8Array, secretKey: Uint8Array): Uint8Array {
  return new Uint8Array(sign(null, msg, edPrivate(secretKey)));
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

/**
 * Why a stored ed25519 pair is unusable, or null: the public key must be the one
 * derived from the seed (the secret key's tail is not trusted either), and the
 * pair must sign and verify (catches a damaged seed). For identity and admin key files.
 */
export function ed25519PairProblem(publicKey: Uint8Array, secretKey: Uint8Array): string | null {
  const derived = ed25519PublicOf(secretKey);
  if (!Buffer.from(derived).equals(Buffer.from(publicKey)) || !Buffer.from(derived).equals(Buffer.from(secretKey.subarray(32)))) {
    return 'the public key does not match the private key';
  }
  const probe = new Uint8Array(Buffer.from('hepto key self-check', 'utf8'));
  return ed25519Verify(probe, ed25519Sign(probe, secretKey), publicKey) ? null : 'the key pair does not verify';
}

/** A fresh ephemeral X25519 key pair: 32 random bytes and their product with the base point. */
export function x25519KeyPair(): { publicKey: Uint8Array; secretKey: Uint8Array } {
  const secretKey = new Uint8Array(randomBytes(32));
  const publicKey = new Uint8Array(diffieHellman({ privateKey: xPrivate(secretKey), publicKey: basePoint }));
  return { publicKey, secretKey };
}

/**
 * The X25519 shared secret, or null when the peer's key is degenerate (a
 * low-order point gives an all-zero secret, which OpenSSL refuses).
 */
export function x25519(secretKey: Uint8Array, peerPublic: Uint8Array): Uint8Array | null {
  if (peerPublic.length !== 32 || secretKey.length !== 32) return null;
  try {
    const s = new Uint8Array(diffieHellman({ privateKey: xPrivate(secretKey), publicKey: publicKeyObject('X25519', peerPublic) }));
    return s.every((b) => b === 0) ? null : s;
  } catch {
    return null;
  }
}
