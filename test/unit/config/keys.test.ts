import { strict as assert } from 'assert';
import { generateKey } from '../../../shared/keys';

describe('keys/generateKey', () => {
  it('makes 32 letters and digits by default', () => {
    const k = generateKey();
    assert.equal(k.length, 32);
    assert.match(k, /^[A-Za-z0-9]{32}$/);
  });
  it('honours the length', () => {
    assert.equal(generateKey(1).length, 1);
    assert.equal(generateKey(100).length, 100);
    assert.throws(() => generateKey(0), RangeError);
  });
  it('never repeats and uses the whole alphabet', () => {
    const keys = new Set<string>();
    const seen = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const k = generateKey();
      keys.add(k);
      for (const c of k) seen.add(c);
    }
    assert.equal(keys.size, 2000);
    assert.equal(seen.size, 62);
  });
});
