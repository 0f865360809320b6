/**
 * Key derivation and small byte helpers for the transport. Every key is
 * derived from the overlay key with HKDF-SHA256 and a distinct label, so a
 * key used for one purpose never serves another. Nothing here logs or
 * formats key material.
 */
import { createHash, hkdfSync } from 'crypto';
import { HeptoError } from '../../shared/errors';

/** Overlay keys are 32 characters (contract: `overlay_key`). */
export const OVERLAY_KEY_LENGTH = 32;

/** Salt fixed per protocol version: changing the protocol changes every key. */
const OVERLAY_SALT = Buffer.from('hepto-agent overlay v1', 'utf8');

/** Labels of the keys derived from the overlay key alone. */
export const LABELS = Object.freeze({
  /** Seals the handshake hello messages, so strangers learn nothing. */
  hello: 'hepto/v1/hello',
  /** Mixed into every handshake and session key: without the overlay key no session key. */
  auth: 'hepto/v1/auth',
});

export interface OverlayKeys {
  /** secretbox key for the sealed hello messages. */
  readonly hello: Uint8Array;
  /** HKDF salt for handshake and session keys. */
  readonly auth: Uint8Array;
}

function hkdf(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length = 32): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', ikm, salt, info, length));
}

/** Checks the overlay key's shape without ever echoing it. */
export function checkOverlayKey(overlayKey: unknown): string {
  if (typeof overlayKey !== 'string' || overlayKey.length !== OVERLAY_KEY_LENGTH) {
    const got = typeof overlayKey === 'string' ? `${overlayKey.length} characters` : typeof overlayKey;
    throw new HeptoError('CONFIG_INVALID', `overlay_key must be ${OVERLAY_KEY_LENGTH} characters (got ${got})`, {
      hint: 'use the same overlay_key as the rest of the cluster; `hepto-agent keygen` makes a new one',
    });
  }
  return overlayKey;
}

/** One 32-byte key derived from the overlay key for the purpose named by `label`. */
export function deriveKey(overlayKey: string, label: string): Uint8Array {
  checkOverlayKey(overlayKey);
  return hkdf(Buffer.from(overlayKey, 'utf8'), OVERLAY_SALT, Buffer.from(label, 'utf8'));
}

export function deriveOverlayKeys(overlayKey: string): OverlayKeys {
  return { hello: deriveKey(overlayKey, LABELS.hello), auth: deriveKey(overlayKey, LABELS.auth) };
}

/**
 * A key bound to one handshake: `secret` is the X25519 shared secret, `auth`
 * the overlay-derived salt, `label` the purpose and `transcript` the hash of
 * everything exchanged so far.
 */
export function deriveSessionKey(secret: Uint8Array, auth: Uint8Array, label: string, transcript: Uint8Array): Uint8Array {
  return hkdf(secret, auth, concatBytes(Buffer.from(label, 'utf8'), transcript));
}

export function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

export function utf8(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'utf8'));
}

export function isAllZero(a: Uint8Array): boolean {
  let acc = 0;
  for (const x of a) acc |= x;
  return acc === 0;
}

/** Overwrites a secret buffer once it is no longer needed. */
export function wipe(a: Uint8Array | undefined): void {
  if (a) a.fill(0);
}
