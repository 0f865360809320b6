/**
 * This node's side of key rotations (issue 13, docs/trust.md "Key rotation"):
 * opens its own box when one arrives, keeps the keys (keys.ts), and moves the
 * transport, the runtime and its own record to them on the rotation's
 * schedule. Everything it touches is passed in, and time is the injected
 * clock, so the schedule is unit-tested.
 */
import type { Clock, TimerHandle } from '../../shared/clock';
import { errorMessage } from '../../shared/errors';
import { registerSecret, type Logger } from '../../shared/log';
import type { KeysStatus } from '../../shared/status';
import { openRotationBox, type RotationBox } from '../admin/rotation';
import type { MemberView } from '../gossip/membership';
import type { ClusterKeys } from './runtime-seam';
import { keyPlan, KeyStore, newestKeys, nextStoredKeys, type KeyPlan, type StoredKeys } from './keys';
import type { SaveProblems } from './save-problems';

export interface KeyRotationHooks {
  /** The transport's key ring (WsTransport.setKeys). */
  transportKeys(keys: { primary: string; accepted: string[] }): void;
  /** The runtime's keys (RuntimeDriver.setKeys). */
  runtimeKeys(keys: ClusterKeys): void;
  /** Names the rotation in this node's record, once switched. */
  recordKeys(rotationId: string): void;
  /** Something status shows changed. */
  changed(): void;
}

/** How long after the switch a live member still on older keys is listed as a problem. */
export const BEHIND_AFTER_MS = 60_000;
/** Timers are armed a day at a time at most (they overflow past 24.8 days). */
const MAX_TIMER_MS = 86_400_000;

export class KeyRotation {
  private stored: StoredKeys | null = null;
  private current!: KeyPlan;
  private timer: TimerHandle | null = null;
  private hooks: KeyRotationHooks | null = null;
  private stopped = false;

  constructor(
    private readonly config: { overlay_key: string; agent_key: string | null },
    private readonly store: KeyStore,
    private readonly clock: Clock,
    private readonly log: Logger,
    /** Where a failed save of keys.json is listed for status. */
    private readonly saves?: SaveProblems,
  ) {}

  /** Reads keys.json; the plan is then known (before the transport and the runtime are made). */
  async load(): Promise<KeyPlan> {
    this.stored = await this.store.load(this.config.overlay_key);
    this.current = keyPlan(this.config, this.stored, this.clock.now());
    return this.current;
  }

  get plan(): KeyPlan {
    return this.current;
  }

  /** The keys an anchor hands an enrolling machine (keys.ts newestKeys). */
  newest(): { overlay_key: string; agent_key: string | null } {
    return newestKeys(this.config, this.stored);
  }

  /** Starts following the schedule: hands the current keys out (the runtime only when a rotation applies) and arms the next change. */
  start(hooks: KeyRotationHooks): void {
    this.hooks = hooks;
    const p = this.current;
    hooks.transportKeys({ primary: p.primary, accepted: p.accepted });
    if (this.stored) hooks.runtimeKeys({ overlay_key: p.primary, agent_key: p.agentKey, previous_agent_key: p.previousAgentKey });
    if (p.rotation && p.phase !== 'pending') hooks.recordKeys(p.rotation.id);
    this.arm();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  /**
   * This node's box of a rotation: ignored when not newer than the keys held;
   * otherwise opened with the identity's secret key, kept, and followed.
   */
  async take(box: RotationBox, identitySecret: Uint8Array): Promise<void> {
    if (this.stopped || (this.stored && this.stored.rotation.at >= box.at)) return;
    const keys = openRotationBox(identitySecret, box);
    if (!keys) {
      this.log.error(
        "this node's box of a key rotation does not open: it was sealed to another identity or damaged; the admin can run hepto-agent rotate-keys again",
        { rotation: box.id },
      );
      return;
    }
    for (const k of [keys.overlay_key, keys.agent_key]) if (k) registerSecret(k);
    this.stored = nextStoredKeys(this.config.overlay_key, this.stored, this.current, box, keys);
    try {
      await this.store.save(this.stored);
      this.saves?.ok(this.store.file);
    } catch (e) {
      this.saves?.failed(this.store.file, e);
      // Used anyway: refusing them would cut this node off at the switch; a restart falls back to the old keys, taken during the grace.
      this.log.error('cannot save the new keys; they are used until the next restart', { file: this.store.file, error: errorMessage(e) });
    }
    this.log.info('new keys received', {
      rotation: box.id,
      switch_at: new Date(box.switch_at).toISOString(),
      grace_until: new Date(box.grace_until).toISOString(),
    });
    this.apply();
  }

  /** Moves everything to the keys the plan gives now, and arms the next change. */
  private apply(): void {
    const hooks = this.hooks;
    if (this.stopped || !hooks) return;
    const before = this.current;
    const p = (this.current = keyPlan(this.config, this.stored, this.clock.now()));
    hooks.transportKeys({ primary: p.primary, accepted: p.accepted });
    if (before.primary !== p.primary || before.agentKey !== p.agentKey) {
      this.log.info('switched to new keys', { rotation: p.rotation?.id, grace_until: p.rotation ? new Date(p.rotation.grace_until).toISOString() : undefined });
      hooks.runtimeKeys({ overlay_key: p.primary, agent_key: p.agentKey, previous_agent_key: p.previousAgentKey });
    } else if (before.phase === 'grace' && p.phase === 'done') {
      this.log.info('end of the key rotation grace: the previous overlay key is refused from now on', { rotation: p.rotation?.id });
    }
    if (p.rotation && p.phase !== 'pending') hooks.recordKeys(p.rotation.id);
    this.arm();
    hooks.changed();
  }

  private arm(): void {
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = null;
    const next = this.current.nextChange;
    if (next === null || this.stopped) return;
    this.timer = this.clock.setTimeout(
      () => {
        this.timer = null;
        this.apply();
      },
      Math.min(Math.max(0, next - this.clock.now()), MAX_TIMER_MS),
    );
  }

  /** For status: the rotation in force or pending, or null. */
  status(): KeysStatus | null {
    const r = this.current.rotation;
    if (!r || this.current.phase === 'none') return null;
    const iso = (t: number): string => new Date(t).toISOString();
    return { rotation: r.id, made_at: iso(r.at), switch_at: iso(r.switch_at), grace_until: iso(r.grace_until), phase: this.current.phase };
  }

  /**
   * During the grace, from a minute after the switch: the live members whose
   * record names no rotation, or another, as one problem with what to do.
   */
  problems(view: MemberView[]): string[] {
    const r = this.current.rotation;
    if (!r || this.current.phase !== 'grace' || this.clock.now() < r.switch_at + BEHIND_AFTER_MS) return [];
    const behind = view.filter((m) => (m.state === 'alive' || m.state === 'suspect') && m.record.keys !== r.id).map((m) => m.name);
    if (behind.length === 0) return [];
    const n = behind.length;
    return [
      `${n} live member${n > 1 ? 's' : ''} still use${n > 1 ? '' : 's'} the keys from before rotation ${r.id}: ${behind.slice(0, 8).join(', ')}${n > 8 ? ', …' : ''}; ` +
        `each switches when it gets its box; after ${new Date(r.grace_until).toISOString()} the old overlay key is refused: run hepto-agent rotate-keys again to give them new boxes`,
    ];
  }
}
