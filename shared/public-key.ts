/**
 * The text form of an ed25519 public key, as the `admin_pub` config field and
 * `hepto-agent admin init` / `admin pub` write it:
 *
 *     ed25519:<standard base64, with padding, of the 32 raw key bytes>
 *
 * 52 characters, e.g. `ed25519:11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=`.
 * The prefix names the algorithm, so a later key type can sit next to it and
 * a pasted identity file field or secret (bare base64) is told apart at once.
 * Pure text handling, no crypto: shared/config validates with it.
 */

export const PUBLIC_KEY_PREFIX = 'ed25519:';
export const PUBLIC_KEY_BYTES = 32;

/** `ed25519:<base64>` of 32 raw public key bytes. */
export function formatPublicKey(raw: Uint8Array): string {
  if (raw.length !== PUBLIC_KEY_BYTES) throw new RangeError(`an ed25519 public key has ${PUBLIC_KEY_BYTES} bytes, got ${raw.length}`);
  return PUBLIC_KEY_PREFIX + Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64');
}

export type PublicKeyParse = { ok: true; key: Uint8Array } | { ok: false; why: string };

/**
 * Parses the text form strictly: the prefix, canonical standard base64
 * (A-Z a-z 0-9 + /, `=` padding, no spaces), exactly 32 bytes. `why` says
 * what is wrong without repeating the value (it may be a pasted secret).
 */
export function parsePublicKey(text: string): PublicKeyParse {
  if (!text.startsWith(PUBLIC_KEY_PREFIX)) {
    const lower = text.toLowerCase().startsWith(PUBLIC_KEY_PREFIX);
    return { ok: false, why: lower ? `must start with "${PUBLIC_KEY_PREFIX}" in lowercase` : `must start with "${PUBLIC_KEY_PREFIX}"` };
  }
  const b64 = text.slice(PUBLIC_KEY_PREFIX.length);
  if (b64.length === 0) return { ok: false, why: `has nothing after "${PUBLIC_KEY_PREFIX}"` };
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) {
    return { ok: false, why: `the part after "${PUBLIC_KEY_PREFIX}" is not base64 (letters, digits, "+", "/", "=" padding, no spaces)` };
  }
  const key = new Uint8Array(Buffer.from(b64, 'base64'));
  if (key.length !== PUBLIC_KEY_BYTES) {
    return { ok: false, why: `holds ${key.length} byte${key.length === 1 ? '' : 's'}, an ed25519 public key has ${PUBLIC_KEY_BYTES}` };
  }
  if (Buffer.from(key).toString('base64') !== b64) {
    return { ok: false, why: `the part after "${PUBLIC_KEY_PREFIX}" is not base64 in its canonical form` };
  }
  return { ok: true, key };
}
