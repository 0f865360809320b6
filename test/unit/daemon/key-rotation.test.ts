/**
 * This node's side of a key rotation (agent/daemon/key-rotation.ts) on a
 * manual clock: what the transport, the runtime and the record get, and
 * when; what status and its problems say; what a restart picks up.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { generateAdminKey } from '../../../agent/admin/key';
import { signRotationBox, type RotationSchedule } from '../../../agent/admin/rotation';
import { KeyRotation, BEHIND_AFTER_MS } from '../../../agent/daemon/key-rotation';
import { KeyStore } from '../../../agent/daemon/keys';
import type { ClusterKeys } from '../../../agent/daemon/runtime-seam';
import type { MemberView } from '../../../agent/gossip/membership';
import { generateIdentity } from '../../../agent/net/identity';
import { ManualClock } from '../../../shared/clock';
import { memoryLogger } from '../../helpers/memory-logger';
import type { MemberRecord } from '../../../shared/member';

const CONFIG = { overlay_key: 'CfgOverlayKey0123456789abcdefghi', agent_key: 'CfgAgentKey0123456789abcdefghijk' };
const NEW = { overlay_key: 'NewOverlayKey0123456789abcdefghi', agent_key: 'NewAgentKey0123456789abcdefghijk' };

interface Calls {
  transport: Array<{ primary: string; accepted: string[] }>;
  runtime: ClusterKeys[];
  record: string[];
  changed: number;
}

function member(name: string, state: MemberView['state'], keys?: string): MemberView {
  const record = { name, keys } as unknown as MemberRecord;
  return { name, state, incarnation: 1, record, lastSeen: 0, stateSince: 0 };
}

describe('daemon: key rotation on a manual clock', () => {
  const admin = generateAdminKey(0);
  const me = generateIdentity(0);
  let dir: string;
  let clock: ManualClock;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'hepto-keyrot-'));
    clock = new ManualClock(1_000_000);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  async function started(): Promise<{ k: KeyRotation; calls: Calls; lines: string[] }> {
    const { logger, lines } = memoryLogger('debug');
    const k = new KeyRotation(CONFIG, new KeyStore(dir, logger), clock, logger);
    await k.load();
    const calls: Calls = { transport: [], runtime: [], record: [], changed: 0 };
    k.start({
      transportKeys: (x) => calls.transport.push(x),
      runtimeKeys: (x) => calls.runtime.push(x),
      recordKeys: (id) => calls.record.push(id),
      changed: () => calls.changed++,
    });
    return { k, calls, lines };
  }

  const schedule = (at: number): RotationSchedule => ({ id: 'RotId0123456', at, switch_at: at + 10_000, grace_until: at + 70_000 + BEHIND_AFTER_MS });

  it('pending, switch, grace, end: each step at its time, with the keys it needs', async () => {
    const { k, calls, lines } = await started();
    assert.deepEqual(calls.transport, [{ primary: CONFIG.overlay_key, accepted: [] }]);
    assert.deepEqual(calls.runtime, [], 'no rotation: the runtime keeps the config keys');
    assert.equal(k.status(), null);

    const s = schedule(clock.now());
    await k.take(signRotationBox(admin, s, 'me', me.idPub, NEW)!, me.secretKey);
    assert.equal(statSync(path.join(dir, 'keys.json')).mode & 0o777, 0o600);
    assert.deepEqual(calls.transport.at(-1), { primary: CONFIG.overlay_key, accepted: [NEW.overlay_key] }, 'before the switch: old first, new taken');
    assert.deepEqual(calls.runtime, [], 'nothing for the runtime before the switch');
    assert.equal(k.status()?.phase, 'pending');
    assert.deepEqual(k.newest(), NEW, 'an anchor hands over the new keys already');

    clock.advance(9_999);
    assert.deepEqual(calls.runtime, []);
    clock.advance(1);
    assert.deepEqual(calls.transport.at(-1), { primary: NEW.overlay_key, accepted: [CONFIG.overlay_key] });
    assert.deepEqual(calls.runtime, [{ overlay_key: NEW.overlay_key, agent_key: NEW.agent_key, previous_agent_key: CONFIG.agent_key }]);
    assert.deepEqual(calls.record, [s.id]);
    assert.equal(k.status()?.phase, 'grace');
    assert.equal(k.status()?.switch_at, new Date(s.switch_at).toISOString());

    const view = [member('me', 'alive', s.id), member('late', 'alive'), member('older', 'suspect', 'OtherRot0123'), member('gone', 'dead')];
    assert.deepEqual(k.problems(view), [], 'not in the first minute after the switch');
    clock.advance(BEHIND_AFTER_MS);
    const [p] = k.problems(view);
    assert.match(
      p ?? '',
      /^2 live members still use the keys from before rotation RotId0123456: late, older; each switches when it gets its box; after \S+ the old overlay key is refused: run hepto-agent rotate-keys again/,
    );

    clock.advance(60_000);
    assert.deepEqual(calls.transport.at(-1), { primary: NEW.overlay_key, accepted: [] }, 'after the grace: the new key only');
    assert.equal(k.status()?.phase, 'done');
    assert.equal(calls.runtime.length, 1, 'the runtime is told once');
    assert.ok(lines.some((l) => l.includes('end of the key rotation grace')));
    for (const l of lines) for (const key of [...Object.values(CONFIG), ...Object.values(NEW)]) assert.ok(!l.includes(key), `a key in the log: ${l}`);
  });

  it('a restart during the grace starts with the new keys and hands them to the runtime at once', async () => {
    const first = await started();
    const s = schedule(clock.now());
    await first.k.take(signRotationBox(admin, s, 'me', me.idPub, NEW)!, me.secretKey);
    first.k.stop();
    clock.advance(20_000);
    const again = await started();
    assert.equal(again.k.plan.phase, 'grace');
    assert.deepEqual(again.calls.transport, [{ primary: NEW.overlay_key, accepted: [CONFIG.overlay_key] }]);
    assert.deepEqual(again.calls.runtime, [{ overlay_key: NEW.overlay_key, agent_key: NEW.agent_key, previous_agent_key: CONFIG.agent_key }]);
    assert.deepEqual(again.calls.record, [s.id]);
  });

  it('an older or equal rotation is ignored; a box sealed to another identity is said, and changes nothing', async () => {
    const { k, calls, lines } = await started();
    const s = schedule(clock.now());
    await k.take(signRotationBox(admin, s, 'me', me.idPub, NEW)!, me.secretKey);
    const n = calls.transport.length;
    await k.take(signRotationBox(admin, { ...s, id: 'OlderRot0123', at: s.at - 1 }, 'me', me.idPub, CONFIG)!, me.secretKey);
    await k.take(signRotationBox(admin, s, 'me', me.idPub, CONFIG)!, me.secretKey);
    assert.equal(calls.transport.length, n);
    const later = { ...schedule(clock.now() + 5), id: 'LaterRot0123' };
    await k.take(signRotationBox(admin, later, 'me', generateIdentity(0).idPub, CONFIG)!, me.secretKey);
    assert.equal(calls.transport.length, n);
    assert.equal(k.status()?.rotation, s.id);
    assert.ok(lines.some((l) => l.includes('does not open')));
  });
});
