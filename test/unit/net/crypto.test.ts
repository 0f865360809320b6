import * as assert from 'assert';
import { deriveKey, deriveOverlayKeys, deriveSessionKey, LABELS } from '../../../agent/net/crypto';
import { isHeptoError } from '../../../shared/errors';

const KEY = 'UnitOverlayKey0123456789abcdefgh';
const hex = (a: Uint8Array): string => Buffer.from(a).toString('hex');

describe('net/crypto key derivation', () => {
  it('is deterministic: same key and label give the same 32 bytes', () => {
    const a = deriveKey(KEY, 'x');
    assert.strictEqual(a.length, 32);
    assert.strictEqual(hex(a), hex(deriveKey(KEY, 'x')));
    assert.deepStrictEqual(deriveOverlayKeys(KEY), deriveOverlayKeys(KEY));
  });

  it('separates labels and keys', () => {
    const k = deriveOverlayKeys(KEY);
    assert.notStrictEqual(hex(k.hello), hex(k.auth));
    assert.strictEqual(hex(k.hello), hex(deriveKey(KEY, LABELS.hello)));
    const other = deriveOverlayKeys('UnitOverlayKey0123456789abcdefgX');
    assert.notStrictEqual(hex(other.hello), hex(k.hello));
    assert.notStrictEqual(hex(other.auth), hex(k.auth));
    assert.ok(!hex(k.hello).includes(Buffer.from(KEY).toString('hex')), 'not the key itself');
  });

  it('binds session keys to secret, label and transcript', () => {
    const secret = new Uint8Array(32).fill(7);
    const auth = deriveOverlayKeys(KEY).auth;
    const t = new Uint8Array(32).fill(1);
    const base = hex(deriveSessionKey(secret, auth, 'a', t));
    assert.strictEqual(base, hex(deriveSessionKey(secret, auth, 'a', t)));
    assert.notStrictEqual(base, hex(deriveSessionKey(secret, auth, 'b', t)));
    assert.notStrictEqual(base, hex(deriveSessionKey(secret, auth, 'a', new Uint8Array(32).fill(2))));
    assert.notStrictEqual(base, hex(deriveSessionKey(new Uint8Array(32).fill(8), auth, 'a', t)));
    assert.notStrictEqual(base, hex(deriveSessionKey(secret, deriveOverlayKeys('UnitOverlayKey0123456789abcdefgX').auth, 'a', t)));
  });

  it('refuses an overlay key that is not 32 characters, without echoing it', () => {
    const short = 'short-secret-value';
    assert.throws(
      () => deriveOverlayKeys(short),
      (e: unknown) => isHeptoError(e) && e.code === 'CONFIG_INVALID' && /32 characters/.test(e.message) && !e.describe().includes(short),
    );
  });
});
