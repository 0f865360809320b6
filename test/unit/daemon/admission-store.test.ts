/**
 * The admin-signed lists a node keeps (agent/daemon/admission-store.ts):
 * round trips at mode 0600, and a damaged file set aside and said, never thrown.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { generateAdminKey } from '../../../agent/admin/key';
import { signRemoval } from '../../../agent/admin/admission';
import { newSchedule, signRotationBox } from '../../../agent/admin/rotation';
import { AdmissionStore } from '../../../agent/daemon/admission-store';
import { generateIdentity } from '../../../agent/net/identity';
import { memoryLogger } from '../../helpers/memory-logger';

describe('daemon: admission store lists', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'hepto-adm-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const admin = generateAdminKey(0);
  const id = generateIdentity(0);

  it('removals and rotation boxes round trip at 0600; none when there is no file', async () => {
    const { logger, lines } = memoryLogger();
    const store = new AdmissionStore(dir, logger);
    assert.deepEqual(await store.loadRemovals(), []);
    assert.deepEqual(await store.loadRotation(), []);
    const r = signRemoval(admin, 'gone', id.idPub, 5);
    const b = signRotationBox(admin, newSchedule(10, 5_000, 10_000), 'node-a', id.idPub, { overlay_key: 'A'.repeat(32), agent_key: null })!;
    await store.saveRemovals([r]);
    await store.saveRotation([b]);
    assert.deepEqual(await store.loadRemovals(), [r]);
    assert.deepEqual(await store.loadRotation(), [b]);
    for (const f of [store.removalsFile, store.rotationFile]) assert.equal(statSync(f).mode & 0o777, 0o600);
    assert.deepEqual(lines, []);
  });

  it('a damaged file is set aside with a warning, and counts as none', async () => {
    const { logger, lines } = memoryLogger();
    const store = new AdmissionStore(dir, logger);
    writeFileSync(store.removalsFile, '{"version":1,"removals":');
    writeFileSync(store.rotationFile, JSON.stringify({ version: 1, boxes: [{ id: 'short' }] }));
    assert.deepEqual(await store.loadRemovals(), []);
    assert.deepEqual(await store.loadRotation(), []);
    const aside = readdirSync(dir)
      .filter((f) => f.includes('.corrupt-'))
      .sort();
    assert.equal(aside.length, 2, aside.join(', '));
    assert.ok(lines.some((l) => l.includes('the file of the removals is damaged')));
    assert.ok(lines.some((l) => l.includes('the file of the key rotation boxes is damaged')));
  });
});
