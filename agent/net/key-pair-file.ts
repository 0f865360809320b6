/**
 * The JSON file layout both of this project's ed25519 key files share: a
 * node's identity.json (identity.ts) and the admin key (admin/key.ts).
 *
 *     { "version": 1, "public": <the public key, in the file's own form>,
 *       "private": "<base64 of the 64-byte secret key: seed ‖ public key>",
 *       "created_at": <ms since the epoch> }
 *
 * The admin key adds a `kind`, so that neither can be loaded as the other.
 * Errors come from the caller's `corrupt(why)`: they name the file, never its
 * content.
 */
import type { HeptoError } from '../../shared/errors';
import { ed25519PairProblem } from './curve';

export interface KeyPairFields {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
  createdAt: number;
}

export interface KeyPairFileRules {
  /** The error for a damaged file, saying why. */
  corrupt(why: string): HeptoError;
  /** Checks the parsed object before anything else (the admin key's `kind`). */
  first?(o: Record<string, unknown>): void;
  /** Reads the `public` field (32 bytes), or throws corrupt(). */
  publicKey(v: unknown): Uint8Array;
}

/** The base64 field `field` of `len` bytes, or corrupt(). */
export function base64Field(rules: Pick<KeyPairFileRules, 'corrupt'>, field: string, v: unknown, len: number): Uint8Array {
  if (typeof v !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(v)) throw rules.corrupt(`field "${field}" is not base64`);
  const bytes = new Uint8Array(Buffer.from(v, 'base64'));
  if (bytes.length !== len) throw rules.corrupt(`field "${field}" has ${bytes.length} bytes, expected ${len}`);
  return bytes;
}

/** Parses and checks a key file's text: the layout above, and a private key that matches the public one. */
export function parseKeyPairFile(text: string, rules: KeyPairFileRules): KeyPairFields {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw rules.corrupt('not valid JSON');
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw rules.corrupt('not a JSON object');
  const o = raw as Record<string, unknown>;
  rules.first?.(o);
  if (o.version !== 1) throw rules.corrupt(`unsupported version ${typeof o.version === 'number' ? o.version : JSON.stringify(o.version)}`);
  const publicKey = rules.publicKey(o.public);
  const secretKey = base64Field(rules, 'private', o.private, 64);
  const createdAt = o.created_at;
  if (typeof createdAt !== 'number' || !Number.isFinite(createdAt) || createdAt < 0) throw rules.corrupt('field "created_at" is not a timestamp');
  const problem = ed25519PairProblem(publicKey, secretKey);
  if (problem) throw rules.corrupt(problem);
  return { publicKey, secretKey, createdAt };
}
