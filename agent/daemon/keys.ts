/**
 * Which keys this node uses, after key rotations (issue 13, docs/trust.md).
 * The config's overlay_key and agent_key are the keys the machine was set up
 * with; a rotation's box (agent/admin/rotation.ts) brings new ones, kept in
 * `<storage_base>/<node>/keys.json` (0600), never in the config. keyPlan()
 * says, for a given time, which overlay key to dial with, which ones to take,
 * and which agent token k3s uses: pure, so the schedule is unit-tested.
 *
 *   before switch_at          dial with the old key, take old and new, old agent token
 *   switch_at..grace_until    dial with the new key, take new and old, new agent token
 *   after grace_until         the new keys only
 *
 * `base` ties keys.json to the config it grew from: a config whose
 * overlay_key was changed by hand since (a manual re-key) wins over it.
 */
import * as path from 'path';
import { createHash } from 'crypto';
import { writeFileAtomic } from '../../shared/atomic-write';
import { loadStateFile } from './state-file';
import { registerSecret, type Logger } from '../../shared/log';
import type { RotatedKeys, RotationSchedule } from '../admin/rotation';
import { scheduleProblem } from '../admin/rotation';
import { OVERLAY_KEY_LENGTH } from '../net/crypto';

export const KEYS_FILE = 'keys.json';

export interface StoredKeys {
  version: 1;
  /** keyBase() of the config's overlay_key when this node first took a rotation. */
  base: string;
  rotation: RotationSchedule;
  overlay_key: string;
  agent_key: string | null;
  /** The keys in use when the rotation arrived. */
  previous: { overlay_key: string; agent_key: string | null };
}

export type KeyPhase = 'none' | 'pending' | 'grace' | 'done';

export interface KeyPlan {
  phase: KeyPhase;
  /** The rotation in force or pending; null: the config's keys. */
  rotation: RotationSchedule | null;
  /** Dial with this overlay key. */
  primary: string;
  /** Also take hellos under these. */
  accepted: string[];
  /** The k3s agent token in use. */
  agentKey: string | null;
  /** The agent token the master's datastore may still hold (after a switch). */
  previousAgentKey: string | null;
  /** When the plan changes next (switch or end of grace), ms; null: never. */
  nextChange: number | null;
}

/** A short hash of an overlay key: says which config keys.json grew from, without holding that key twice. */
export function keyBase(overlayKey: string): string {
  return createHash('sha256').update(`hepto-keys-base\0${overlayKey}`).digest('hex').slice(0, 16);
}

export function keyPlan(config: { overlay_key: string; agent_key: string | null }, stored: StoredKeys | null, now: number): KeyPlan {
  if (!stored)
    return { phase: 'none', rotation: null, primary: config.overlay_key, accepted: [], agentKey: config.agent_key, previousAgentKey: null, nextChange: null };
  const r = stored.rotation;
  const old = stored.previous;
  const agentKey = stored.agent_key ?? old.agent_key;
  if (now < r.switch_at) {
    return {
      phase: 'pending',
      rotation: r,
      primary: old.overlay_key,
      accepted: [stored.overlay_key],
      agentKey: old.agent_key,
      previousAgentKey: null,
      nextChange: r.switch_at,
    };
  }
  if (now < r.grace_until) {
    return {
      phase: 'grace',
      rotation: r,
      primary: stored.overlay_key,
      accepted: [old.overlay_key],
      agentKey,
      previousAgentKey: old.agent_key,
      nextChange: r.grace_until,
    };
  }
  return { phase: 'done', rotation: r, primary: stored.overlay_key, accepted: [], agentKey, previousAgentKey: old.agent_key, nextChange: null };
}

/**
 * The newest keys this node holds, switched to or not: what an anchor hands
 * an enrolling machine. Before a pending switch these are the new keys, so a
 * machine that enrols then is not left with keys that stop working at the
 * end of the grace (it gets no box of a rotation made before it was admitted).
 */
export function newestKeys(
  config: { overlay_key: string; agent_key: string | null },
  stored: StoredKeys | null,
): { overlay_key: string; agent_key: string | null } {
  if (!stored) return { overlay_key: config.overlay_key, agent_key: config.agent_key };
  return { overlay_key: stored.overlay_key, agent_key: stored.agent_key ?? stored.previous.agent_key };
}

/** What keys.json holds once a box is opened: the new keys, and the ones in use until now. */
export function nextStoredKeys(configOverlayKey: string, current: StoredKeys | null, plan: KeyPlan, schedule: RotationSchedule, keys: RotatedKeys): StoredKeys {
  return {
    version: 1,
    base: current?.base ?? keyBase(configOverlayKey),
    rotation: { id: schedule.id, at: schedule.at, switch_at: schedule.switch_at, grace_until: schedule.grace_until },
    overlay_key: keys.overlay_key,
    agent_key: keys.agent_key,
    previous: { overlay_key: plan.primary, agent_key: plan.agentKey },
  };
}

const isKey = (k: unknown): k is string => typeof k === 'string' && k.length === OVERLAY_KEY_LENGTH;

export class KeyStore {
  readonly file: string;

  constructor(
    dir: string,
    private readonly logger: Logger,
  ) {
    this.file = path.join(dir, KEYS_FILE);
  }

  /**
   * The stored keys when they grew from this config's overlay_key; null when
   * there are none, when the config was re-keyed by hand since (said in the
   * log), or when the file is damaged (set aside, said in the log: the node
   * then uses the config's keys, and an admin can run rotate-keys again).
   */
  async load(configOverlayKey: string): Promise<StoredKeys | null> {
    const words = {
      unreadable: "cannot read the rotated keys; this node uses its config's keys",
      damaged: "the rotated keys file is damaged; kept aside, this node uses its config's keys (an admin can run hepto-agent rotate-keys again)",
      damagedIsError: true,
    };
    const o = await loadStateFile(this.file, this.logger, words, (text) => {
      const o = JSON.parse(text) as StoredKeys;
      const prev = o?.previous;
      if (o?.version !== 1 || typeof o.base !== 'string' || !isKey(o.overlay_key) || !(o.agent_key === null || isKey(o.agent_key)))
        throw new Error('unexpected shape');
      if (!prev || !isKey(prev.overlay_key) || !(prev.agent_key === null || isKey(prev.agent_key))) throw new Error('unexpected shape of "previous"');
      const problem = o.rotation ? scheduleProblem(o.rotation) : 'no rotation';
      if (problem) throw new Error(`rotation: ${problem}`);
      return o;
    });
    if (!o) return null;
    for (const k of [o.overlay_key, o.agent_key, o.previous.overlay_key, o.previous.agent_key]) if (k) registerSecret(k);
    if (o.base !== keyBase(configOverlayKey)) {
      this.logger.warn("the config's overlay_key changed since the last key rotation: the config's keys win, the rotated ones are ignored", {
        file: this.file,
      });
      return null;
    }
    return o;
  }

  async save(k: StoredKeys): Promise<void> {
    await writeFileAtomic(this.file, JSON.stringify(k, null, 1) + '\n', { mode: 0o600 });
  }
}
