/**
 * Which keys a node uses around a rotation (agent/daemon/keys.ts), and how
 * keys.json is kept: 0600, tied to the config it grew from, set aside when damaged.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { keyBase, keyPlan, KeyStore, newestKeys, nextStoredKeys, type StoredKeys } from '../../../agent/daemon/keys';
import { memoryLogger } from '../../helpers/memory-logger';

const OLD = { overlay_key: 'OldOverlayKey0123456789abcdefghi', agent_key: 'OldAgentKey0123456789abcdefghijk' };
const NEW = { overlay_key: 'NewOverlayKey0123456789abcdefghi', agent_key: 'NewAgentKey0123456789abcdefghijk' };
const R = { id: 'AbCdEfGh1234', at: 1000, switch_at: 5000, grace_until: 9000 };

function stored(): StoredKeys {
  return nextStoredKeys(OLD.overlay_key, null, keyPlan(OLD, null, 0), R, NEW);
}

describe('keys: the plan around a rotation', () => {
  it("without a rotation: the config's keys, nothing scheduled", () => {
    assert.deepEqual(keyPlan(OLD, null, 123), {
      phase: 'none',
      rotation: null,
      primary: OLD.overlay_key,
      accepted: [],
      agentKey: OLD.agent_key,
      previousAgentKey: null,
      nextChange: null,
    });
  });

  it('pending, then grace, then done, each with its keys and its next change', () => {
    const k = stored();
    assert.deepEqual(k.previous, OLD);
    assert.equal(k.base, keyBase(OLD.overlay_key));
    const pending = keyPlan(OLD, k, 4999);
    assert.deepEqual(
      [pending.phase, pending.primary, pending.accepted, pending.agentKey, pending.nextChange],
      ['pending', OLD.overlay_key, [NEW.overlay_key], OLD.agent_key, 5000],
    );
    const grace = keyPlan(OLD, k, 5000);
    assert.deepEqual(
      [grace.phase, grace.primary, grace.accepted, grace.agentKey, grace.previousAgentKey, grace.nextChange],
      ['grace', NEW.overlay_key, [OLD.overlay_key], NEW.agent_key, OLD.agent_key, 9000],
    );
    const done = keyPlan(OLD, k, 9000);
    assert.deepEqual([done.phase, done.primary, done.accepted, done.agentKey, done.nextChange], ['done', NEW.overlay_key, [], NEW.agent_key, null]);
  });

  it('a second rotation keeps the base and takes the keys in use as previous', () => {
    const first = stored();
    const second = nextStoredKeys(OLD.overlay_key, first, keyPlan(OLD, first, 9500), { id: 'ZZZZZZZZZZZZ', at: 9400, switch_at: 9600, grace_until: 9900 }, OLD);
    assert.equal(second.base, first.base);
    assert.deepEqual(second.previous, NEW);
  });

  it('an anchor hands an enrolling machine the newest keys, before the switch too', () => {
    assert.deepEqual(newestKeys(OLD, null), OLD);
    assert.deepEqual(newestKeys(OLD, stored()), NEW);
  });

  it('a box without an agent token keeps the old one', () => {
    const k = nextStoredKeys(OLD.overlay_key, null, keyPlan(OLD, null, 0), R, { overlay_key: NEW.overlay_key, agent_key: null });
    assert.equal(keyPlan(OLD, k, 6000).agentKey, OLD.agent_key);
  });
});

describe('keys: keys.json', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'hepto-keys-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('round trip, mode 0600; no file: null', async () => {
    const { logger } = memoryLogger('debug');
    const store = new KeyStore(dir, logger);
    assert.equal(await store.load(OLD.overlay_key), null);
    await store.save(stored());
    assert.equal(statSync(store.file).mode & 0o777, 0o600);
    assert.deepEqual(await store.load(OLD.overlay_key), stored());
  });

  it('a config re-keyed by hand since wins: the stored keys are ignored, with a warning and no key in it', async () => {
    const { logger, lines } = memoryLogger('debug');
    const store = new KeyStore(dir, logger);
    await store.save(stored());
    assert.equal(await store.load('HandOverlayKey0123456789abcdefgh'), null);
    assert.ok(
      lines.some((l) => l.includes('overlay_key changed since the last key rotation')),
      lines.join('\n'),
    );
    for (const l of lines) for (const k of [OLD.overlay_key, NEW.overlay_key, NEW.agent_key]) assert.ok(!l.includes(k), l);
  });

  it('a damaged file is set aside and said, never thrown', async () => {
    const { logger, lines } = memoryLogger('debug');
    const store = new KeyStore(dir, logger);
    for (const text of [
      '{not json',
      JSON.stringify({ ...stored(), overlay_key: 'short' }),
      JSON.stringify({ ...stored(), rotation: { ...R, grace_until: 1 } }),
    ]) {
      writeFileSync(store.file, text);
      assert.equal(await store.load(OLD.overlay_key), null);
    }
    assert.equal(readdirSync(dir).filter((f) => f.startsWith('keys.json.corrupt-')).length >= 1, true);
    assert.ok(lines.some((l) => l.includes('rotated keys file is damaged')));
    assert.ok(!readdirSync(dir).includes('keys.json'));
  });
});
