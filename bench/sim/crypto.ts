/**
 * Signatures at simulator scale. Every member verifies every other member's
 * record once per incarnation: N = 3,000 means 9·10^6 verifications, and even
 * with native ed25519 and the records module's small signature cache (a hit
 * still re-encodes the record as canonical JSON) that dominates a run. The
 * simulator therefore swaps the record functions of agent/gossip/records.ts,
 * for this process only, for equivalents that give the same answers faster:
 *  - signing and verifying use Node's built-in ed25519 (byte-identical
 *    signatures: ed25519 is deterministic);
 *  - a verification result is remembered per SignedRecord object (the
 *    simulator passes records by reference in `shared` wire mode), and per
 *    signature together with the exact signed bytes otherwise, so the same
 *    signed bytes are checked for real once and never trusted on the sig alone.
 * The protocol is untouched: a record that does not verify is still refused
 * (the unit test checks it). Membership has no injected verifier; this patch
 * is the stopgap until it does (see docs/sim.md).
 */
import { createHash, createPublicKey, sign as edSign, verify as edVerify, type KeyObject } from 'crypto';
import { canonicalJson } from '../../shared/canonical-json';
import { ed25519PrivateKeyOfSeed } from '../../agent/net/curve';
import type { MemberRecord, SignedRecord } from '../../shared/member';

type RecordsModule = typeof import('../../agent/gossip/records');

const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

export interface SimIdentity {
  /** 64-byte tweetnacl form: seed ‖ public key. */
  secretKey: Uint8Array;
  idPub: string;
}

/** Private KeyObjects of identities made here, so signing does not parse the key again. */
const keyObjects = new WeakMap<Uint8Array, KeyObject>();

/** A deterministic identity for member `index` of a run with `seed` (Node's ed25519, ~0.1 ms each instead of tweetnacl's 5 ms). */
export function simIdentity(seed: number, index: number): SimIdentity {
  const seed32 = createHash('sha256').update(`hepto-sim:${seed}:${index}`).digest();
  const priv = ed25519PrivateKeyOfSeed(seed32);
  const pub = createPublicKey(priv).export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX.length);
  const secretKey = new Uint8Array(64);
  secretKey.set(seed32, 0);
  secretKey.set(pub, 32);
  keyObjects.set(secretKey, priv);
  return { secretKey, idPub: Buffer.from(pub).toString('base64') };
}

export interface CryptoStats {
  signatures: number;
  verifications: number;
  cacheHits: number;
}

export interface FastCrypto {
  stats: CryptoStats;
  /** Puts the original tweetnacl functions back. */
  uninstall(): void;
}

const enc = new TextEncoder();

function recordText(record: MemberRecord, incarnation: number): string {
  return canonicalJson({ record, incarnation });
}

function leftText(name: string, incarnation: number): string {
  return canonicalJson({ left: name, incarnation });
}

/** Replaces the record sign/verify functions for this process; returns counters and an undo. */
export function installFastCrypto(): FastCrypto {
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  const mod = require('../../agent/gossip/records') as RecordsModule;
  const original = { signRecord: mod.signRecord, verifyRecord: mod.verifyRecord, signLeft: mod.signLeft, verifyLeft: mod.verifyLeft };
  const stats: CryptoStats = { signatures: 0, verifications: 0, cacheHits: 0 };
  const privKeys = new WeakMap<Uint8Array, KeyObject>();
  const pubKeys = new Map<string, KeyObject | null>();
  const byObject = new WeakMap<SignedRecord, boolean>();
  const bySig = new Map<string, { text: string; pub: string; ok: boolean }>();

  const privOf = (secretKey: Uint8Array): KeyObject => {
    let k = privKeys.get(secretKey) ?? keyObjects.get(secretKey);
    if (!k) {
      k = ed25519PrivateKeyOfSeed(secretKey.subarray(0, 32));
      privKeys.set(secretKey, k);
    }
    return k;
  };
  const pubOf = (idPub: string): KeyObject | null => {
    let k = pubKeys.get(idPub);
    if (k === undefined) {
      const raw = typeof idPub === 'string' ? Buffer.from(idPub, 'base64') : Buffer.alloc(0);
      k =
        raw.length === 32 && raw.toString('base64') === idPub ? createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' }) : null;
      pubKeys.set(idPub, k);
    }
    return k;
  };
  const check = (text: string, sig: string, idPub: string): boolean => {
    const key = pubOf(idPub);
    if (!key || typeof sig !== 'string') return false;
    const s = Buffer.from(sig, 'base64');
    if (s.length !== 64 || s.toString('base64') !== sig) return false;
    stats.verifications++;
    return edVerify(null, enc.encode(text), key, s);
  };

  const patched: Partial<RecordsModule> = {
    signRecord(record: MemberRecord, incarnation: number, secretKey: Uint8Array): SignedRecord {
      stats.signatures++;
      const sig = edSign(null, enc.encode(recordText(record, incarnation)), privOf(secretKey)).toString('base64');
      return { record, incarnation, sig };
    },
    verifyRecord(signed: SignedRecord): boolean {
      const known = byObject.get(signed);
      if (known !== undefined) {
        stats.cacheHits++;
        return known;
      }
      let ok = false;
      try {
        const text = recordText(signed.record, signed.incarnation);
        const prev = bySig.get(signed.sig);
        if (prev && prev.text === text && prev.pub === signed.record.id_pub) {
          stats.cacheHits++;
          ok = prev.ok;
        } else {
          ok = check(text, signed.sig, signed.record.id_pub);
          bySig.set(signed.sig, { text, pub: signed.record.id_pub, ok });
        }
      } catch {
        ok = false;
      }
      byObject.set(signed, ok);
      return ok;
    },
    signLeft(name: string, incarnation: number, secretKey: Uint8Array): string {
      stats.signatures++;
      return edSign(null, enc.encode(leftText(name, incarnation)), privOf(secretKey)).toString('base64');
    },
    verifyLeft(name: string, incarnation: number, sig: string, idPub: string): boolean {
      try {
        return check(leftText(name, incarnation), sig, idPub);
      } catch {
        return false;
      }
    },
  };
  Object.assign(mod, patched);
  return {
    stats,
    uninstall: () => {
      Object.assign(mod, original);
    },
  };
}
