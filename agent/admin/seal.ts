/**
 * Boxes sealed to a member's identity (key rotation, issue 13): only the
 * holder of that identity's secret key opens them. Identities are ed25519
 * signing keys; a box needs an X25519 key, so both ends map the identity to
 * its Montgomery form, the usual birational map (RFC 7748 section 4.1):
 *
 *   public:  u = (1 + y) / (1 - y) mod p, y the Edwards y-coordinate
 *   secret:  the first 32 bytes of SHA-512(seed), as ed25519 derives its scalar
 *
 * Because ed25519's public point is that scalar times the base point, the two
 * maps agree: X25519(secret, 9) equals the mapped public key (the unit test
 * checks this for random identities). No new key has to be published or stored.
 *
 * Box layout (base64): ephemeral X25519 public (32) ‖ nonce (24) ‖
 * crypto_box(plaintext) (XSalsa20-Poly1305, tweetnacl). A fresh ephemeral key
 * per box: the admin's own key never touches it.
 */
import { createHash } from 'crypto';
import nacl from 'tweetnacl';
import { wipe } from '../net/crypto';

const P = (1n << 255n) - 19n;

function modPow(base: bigint, exp: bigint): bigint {
  let r = 1n;
  let b = base % P;
  let e = exp;
  while (e > 0n) {
    if (e & 1n) r = (r * b) % P;
    b = (b * b) % P;
    e >>= 1n;
  }
  return r;
}

function leToBigInt(a: Uint8Array): bigint {
  let v = 0n;
  for (let i = a.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(a[i] as number);
  return v;
}

function bigIntToLe(v: bigint): Uint8Array {
  const out = new Uint8Array(32);
  let x = v;
  for (let i = 0; i < 32; i++) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return out;
}

/** The X25519 public key of an ed25519 identity public key (32 bytes), or null for a key that has none. */
export function montgomeryPublic(edPub: Uint8Array): Uint8Array | null {
  if (edPub.length !== 32) return null;
  const bytes = Uint8Array.from(edPub);
  bytes[31] = (bytes[31] as number) & 0x7f; // the sign bit of x is not part of y
  const y = leToBigInt(bytes);
  if (y >= P) return null;
  const den = (1n - y + P) % P;
  if (den === 0n) return null; // y = 1: the identity point
  const u = (((1n + y) % P) * modPow(den, P - 2n)) % P;
  return bigIntToLe(u);
}

/** The X25519 secret of a 64-byte ed25519 secret key (seed ‖ public), as ed25519 derives its scalar. */
export function montgomerySecret(edSecret: Uint8Array): Uint8Array {
  const h = createHash('sha512').update(edSecret.subarray(0, 32)).digest();
  const out = new Uint8Array(h.subarray(0, 32));
  h.fill(0);
  return out;
}

const EPH = nacl.box.publicKeyLength;
const NONCE = nacl.box.nonceLength;

/** Seals `plain` to the identity whose base64 ed25519 public key is `idPub`; null when that key has no X25519 form. */
export function sealTo(idPub: string, plain: Uint8Array): string | null {
  const to = montgomeryPublic(new Uint8Array(Buffer.from(idPub, 'base64')));
  if (!to) return null;
  const eph = nacl.box.keyPair();
  const nonce = nacl.randomBytes(NONCE);
  const box = nacl.box(plain, nonce, to, eph.secretKey);
  wipe(eph.secretKey);
  return Buffer.concat([eph.publicKey, nonce, box]).toString('base64');
}

/** Opens a box sealed to this identity (64-byte ed25519 secret key); null when it does not open. Never throws. */
export function openSealed(edSecret: Uint8Array, sealed: string): Uint8Array | null {
  const raw = new Uint8Array(Buffer.from(sealed, 'base64'));
  if (raw.length < EPH + NONCE + nacl.box.overheadLength) return null;
  const secret = montgomerySecret(edSecret);
  try {
    return nacl.box.open(raw.subarray(EPH + NONCE), raw.subarray(EPH, EPH + NONCE), raw.subarray(0, EPH), secret);
  } finally {
    wipe(secret);
  }
}
