/**
 * Signing and verifying member records and leave notices with the member's
 * ed25519 identity key (agent/net/curve.ts). Signed bytes are canonical JSON, so any
 * holder can re-encode a record and the signature still checks.
 */
import { ed25519PublicOf, ed25519Sign, ed25519Verify } from '../net/curve';
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

/** Signs {record, incarnation} with the member's secret key (64-byte tweetnacl form). */
export function signRecord(record: MemberRecord, incarnation: number, secretKey: Uint8Array): SignedRecord {
  const sig = ed25519Sign(recordBytes(record, incarnation), secretKey);
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
    const ok = ed25519Verify(enc.encode(text), sig, pub);
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
  return b64(ed25519Sign(leftBytes(name, incarnation), secretKey));
}

export function verifyLeft(name: string, incarnation: number, sig: string, idPub: string): boolean {
  try {
    const pub = unb64(idPub, nacl.sign.publicKeyLength);
    const s = unb64(sig, nacl.sign.signatureLength);
    if (!pub || !s) return false;
    return ed25519Verify(leftBytes(name, incarnation), s, pub);
  } catch {
    return false;
  }
}

/** base64 public key of a 64-byte tweetnacl secret key. */
export function publicKeyOf(secretKey: Uint8Array): string {
  return b64(ed25519PublicOf(secretKey));
}
