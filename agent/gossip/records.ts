/**
 * Signing and verifying member records and leave notices with the member's
 * ed25519 identity key (tweetnacl). Signed bytes are canonical JSON, so any
 * holder can re-encode a record and the signature still checks.
 */
import { createHash, createPrivateKey, createPublicKey, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import nacl from 'tweetnacl';
import { canonicalJson } from '../../shared/canonical-json';
import type { MemberRecord, SignedRecord } from '../../shared/member';

const enc = new TextEncoder();

function recordBytes(record: MemberRecord, incarnation: number): Uint8Array {
  return enc.encode(canonicalJson({ record, incarnation }));
}

function leftBytes(name: string, incarnation: number): Uint8Array {
  return enc.encode(canonicalJson({ left: name, incarnation }));
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

function unb64(s: string, length: number): Uint8Array | null {
  if (typeof s !== 'string' || s.length > 200) return null;
  const buf = Buffer.from(s, 'base64');
  if (buf.length !== length || buf.toString('base64') !== s) return null;
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

// tweetnacl's pure-JS ed25519 takes several ms per verify; a 100-member join
// storm in one process would spend tens of seconds there. Node's native
// ed25519 (same algorithm, same bytes: ed25519 is deterministic) is used when
// available, tweetnacl otherwise.
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const pubKeys = new Map<string, KeyObject>();
const MAX_CACHED_KEYS = 4096;

function publicKeyObject(idPub: string, raw: Uint8Array): KeyObject {
  let k = pubKeys.get(idPub);
  if (!k) {
    k = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
    if (pubKeys.size >= MAX_CACHED_KEYS) pubKeys.clear();
    pubKeys.set(idPub, k);
  }
  return k;
}

function detachedSign(msg: Uint8Array, secretKey: Uint8Array): Uint8Array {
  try {
    const key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, secretKey.subarray(0, 32)]), format: 'der', type: 'pkcs8' });
    return new Uint8Array(cryptoSign(null, msg, key));
  } catch {
    return nacl.sign.detached(msg, secretKey);
  }
}

function detachedVerify(msg: Uint8Array, sig: Uint8Array, idPub: string, pub: Uint8Array): boolean {
  try {
    return cryptoVerify(null, msg, publicKeyObject(idPub, pub), sig);
  } catch {
    return nacl.sign.detached.verify(msg, sig, pub);
  }
}

/** Signs {record, incarnation} with the member's secret key (64-byte tweetnacl form). */
export function signRecord(record: MemberRecord, incarnation: number, secretKey: Uint8Array): SignedRecord {
  const sig = detachedSign(recordBytes(record, incarnation), secretKey);
  return { record, incarnation, sig: b64(sig) };
}

// Signatures already verified, keyed by signature, with the exact signed text.
// Every member relays the same records, and the simulator and benchmark run
// many members in one process: a hit costs one canonical encoding, no crypto.
// Bounded; a hit requires identical bytes, so it cannot be abused.
const verifiedSigs = new Map<string, string>();
const MAX_VERIFIED = 2048;

/** True when sig is the signature of record.id_pub over {record, incarnation}. Never throws. */
export function verifyRecord(signed: SignedRecord): boolean {
  try {
    const text = canonicalJson({ record: signed.record, incarnation: signed.incarnation });
    if (verifiedSigs.get(signed.sig) === text) return true;
    const pub = unb64(signed.record.id_pub, nacl.sign.publicKeyLength);
    const sig = unb64(signed.sig, nacl.sign.signatureLength);
    if (!pub || !sig) return false;
    const ok = detachedVerify(enc.encode(text), sig, signed.record.id_pub, pub);
    if (ok) {
      if (verifiedSigs.size >= MAX_VERIFIED) verifiedSigs.clear();
      verifiedSigs.set(signed.sig, text);
    }
    return ok;
  } catch {
    return false;
  }
}

/** Signature of a leave notice: the member leaves at this incarnation. */
export function signLeft(name: string, incarnation: number, secretKey: Uint8Array): string {
  return b64(detachedSign(leftBytes(name, incarnation), secretKey));
}

export function verifyLeft(name: string, incarnation: number, sig: string, idPub: string): boolean {
  try {
    const pub = unb64(idPub, nacl.sign.publicKeyLength);
    const s = unb64(sig, nacl.sign.signatureLength);
    if (!pub || !s) return false;
    return detachedVerify(leftBytes(name, incarnation), s, idPub, pub);
  } catch {
    return false;
  }
}

/** base64 public key of a 64-byte tweetnacl secret key. */
export function publicKeyOf(secretKey: Uint8Array): string {
  return b64(nacl.sign.keyPair.fromSecretKey(secretKey).publicKey);
}

/** Short base64 hash of a string (anti-entropy digests). */
export function shortHash(text: string): string {
  return createHash('sha512').update(text).digest().subarray(0, 12).toString('base64');
}
