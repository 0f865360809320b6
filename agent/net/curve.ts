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
const ED_SPKI = Buffer.from('302a300506032b6570032100', 'hex');
const X_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const X_SPKI = Buffer.from('302a300506032b656e032100', 'hex');

/** Parsed public keys, by their raw bytes: members verify the same few keys again and again. */
const edPublicKeys = new Map<string, KeyObject>();
const MAX_CACHED_KEYS = 4096;

function raw(k: KeyObject, type: 'spki' | 'pkcs8', prefix: Buffer): Uint8Array {
  const der = k.export({ format: 'der', type }) as Buffer;
  return new Uint8Array(der.subarray(prefix.length));
}

function edPublic(pub: Uint8Array): KeyObject {
  const id = Buffer.from(pub).toString('base64');
  let k = edPublicKeys.get(id);
  if (!k) {
    k = createPublicKey({ key: Buffer.concat([ED_SPKI, pub]), format: 'der', type: 'spki' });
    if (edPublicKeys.size >= MAX_CACHED_KEYS) edPublicKeys.clear();
    edPublicKeys.set(id, k);
  }
  return k;
}

/** A fresh identity key pair in tweetnacl's layout: secretKey = seed(32) ‖ publicKey(32). */
export function ed25519KeyPair(): { publicKey: Uint8Array; secretKey: Uint8Array } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const seed = raw(privateKey, 'pkcs8', ED_PKCS8);
  const pub = raw(publicKey, 'spki', ED_SPKI);
  const secretKey = new Uint8Array(64);
  secretKey.set(seed, 0);
  secretKey.set(pub, 32);
  return { publicKey: pub, secretKey };
}

/** The public key belonging to a 64-byte secret key (recomputed from its seed, not trusted from its tail). */
export function ed25519PublicOf(secretKey: Uint8Array): Uint8Array {
  const priv = createPrivateKey({ key: Buffer.concat([ED_PKCS8, secretKey.subarray(0, 32)]), format: 'der', type: 'pkcs8' });
  return raw(createPublicKey(priv), 'spki', ED_SPKI);
}

export function ed25519Sign(msg: Uint8Array, secretKey: Uint8Array): Uint8Array {
  const priv = createPrivateKey({ key: Buffer.concat([ED_PKCS8, secretKey.subarray(0, 32)]), format: 'der', type: 'pkcs8' });
  return new Uint8Array(sign(null, msg, priv));
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
  return { publicKey: raw(publicKey, 'spki', X_SPKI), secretKey: raw(privateKey, 'pkcs8', X_PKCS8) };
}

/**
 * The X25519 shared secret, or null when the peer's key is degenerate (a
 * low-order point gives an all-zero secret, which OpenSSL refuses).
 */
export function x25519(secretKey: Uint8Array, peerPublic: Uint8Array): Uint8Array | null {
  if (peerPublic.length !== 32) return null;
  try {
    const privateKey = createPrivateKey({ key: Buffer.concat([X_PKCS8, secretKey]), format: 'der', type: 'pkcs8' });
    const publicKey = createPublicKey({ key: Buffer.concat([X_SPKI, peerPublic]), format: 'der', type: 'spki' });
    const s = new Uint8Array(diffieHellman({ privateKey, publicKey }));
    return s.every((b) => b === 0) ? null : s;
  } catch {
    return null;
  }
}
