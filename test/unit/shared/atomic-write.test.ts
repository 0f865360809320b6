import { strict as assert } from 'assert';
import { mkdtempSync, readFileSync, readdirSync, statSync, rmSync, chmodSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { writeFileAtomic, writeFileAtomicSync } from '../../../shared/atomic-write';
import { HeptoError } from '../../../shared/errors';

describe('atomic write', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'hepto-aw-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('writes with the requested mode and leaves no temp file', async () => {
    const f = path.join(dir, 'sub', 'state.json');
    await writeFileAtomic(f, '{"a":1}', { mode: 0o600 });
    assert.equal(readFileSync(f, 'utf8'), '{"a":1}');
    assert.equal(statSync(f).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(path.dirname(f)), ['state.json']);
    writeFileAtomicSync(f, 'two', { mode: 0o600 });
    assert.equal(readFileSync(f, 'utf8'), 'two');
  });

  it('keeps the old content and says what to do when the directory is not writable', async function () {
    if (process.getuid?.() === 0) {
      // root ignores directory permissions; use a path under a regular file instead
      const f = path.join(dir, 'file');
      await writeFileAtomic(f, 'old');
      await assert.rejects(writeFileAtomic(path.join(f, 'child'), 'x'), (e: unknown) => e instanceof HeptoError && /cannot write/.test(e.message));
      assert.equal(readFileSync(f, 'utf8'), 'old');
      return;
    }
    const f = path.join(dir, 'state');
    await writeFileAtomic(f, 'old');
    chmodSync(dir, 0o500);
    await assert.rejects(writeFileAtomic(f, 'new'), HeptoError);
    chmodSync(dir, 0o700);
    assert.equal(readFileSync(f, 'utf8'), 'old');
  });
});
