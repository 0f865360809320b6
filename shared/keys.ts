/**
 * Key generation: seed 002 recommends 32 random letters and digits, easy to
 * pass around without weakening the key much (32 × log2(62) ≈ 190 bits).
 */
import { randomBytes } from 'crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
/** Largest multiple of the alphabet size that fits in a byte: bytes at or above it are rejected, so no letter is favoured. */
const LIMIT = 256 - (256 % ALPHABET.length);

/** A fresh key of `length` letters and digits, uniformly drawn (rejection sampling, no modulo bias). */
export function generateKey(length = 32): string {
  if (!Number.isInteger(length) || length < 1) throw new RangeError(`key length must be a positive integer, got ${length}`);
  let out = '';
  while (out.length < length) {
    for (const b of randomBytes(length * 2)) {
      if (b >= LIMIT) continue;
      out += ALPHABET[b % ALPHABET.length];
      if (out.length === length) break;
    }
  }
  return out;
}
