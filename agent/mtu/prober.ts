/**
 * When the path MTU to each peer is measured (issue 15): a peer first seen
 * alive is measured soon (FIRST_DELAY_MS plus up to FIRST_JITTER_MS), then
 * every INTERVAL_MS (give or take a tenth), at most MAX_IN_FLIGHT
 * measurements at once. A peer whose node address changes is measured again
 * soon; a peer that is gone is forgotten. Time and the measurement are
 * injected (a manual clock and a model network in the unit tests).
 */
import type { Clock, TimerHandle } from '../../shared/clock';
import { errorMessage } from '../../shared/errors';
import type { Logger } from '../../shared/log';
import type { SearchResult } from './search';
import { PING_WAIT_S } from './ping';
import { PATHS_MIN_GAP_MS } from './paths';

export const INTERVAL_MS = 10 * 60_000;
export const FIRST_DELAY_MS = 5_000;
export const FIRST_JITTER_MS = 10_000;
export const MAX_IN_FLIGHT = 2;

export interface ProberTiming {
  intervalMs: number;
  firstDelayMs: number;
  firstJitterMs: number;
  maxInFlight: number;
  /** How long one ping waits for its answer (s). */
  pingWaitS: number;
  /** The shortest gap between two publications of `paths` (PATHS_MIN_GAP_MS). */
  publishGapMs: number;
}

export const DEFAULT_TIMING: ProberTiming = {
  intervalMs: INTERVAL_MS,
  firstDelayMs: FIRST_DELAY_MS,
  firstJitterMs: FIRST_JITTER_MS,
  maxInFlight: MAX_IN_FLIGHT,
  pingWaitS: PING_WAIT_S,
  publishGapMs: PATHS_MIN_GAP_MS,
};

/**
 * For tests only: HEPTO_PATH_MTU_INTERVAL_MS shortens the schedule (the
 * first measurement then comes within a tenth of it), and with it a ping's
 * wait (0.3 s, for a loopback or netns path) and the gap between two
 * publications (1 s). Unset or invalid: the defaults.
 */
export function timingFromEnv(env: Record<string, string | undefined>): ProberTiming {
  const n = Number(env.HEPTO_PATH_MTU_INTERVAL_MS);
  if (!Number.isInteger(n) || n < 1000 || n >= INTERVAL_MS) return DEFAULT_TIMING;
  return {
    ...DEFAULT_TIMING,
    intervalMs: n,
    firstDelayMs: Math.min(FIRST_DELAY_MS, Math.floor(n / 20)),
    firstJitterMs: Math.min(FIRST_JITTER_MS, Math.floor(n / 20)),
    pingWaitS: 0.3,
    publishGapMs: 1000,
  };
}

export interface Target {
  name: string;
  /** The peer's node address (the first of its record's node_ips). */
  address: string;
}

export interface ProberOptions {
  clock: Clock;
  /** One measurement to an address. */
  measure: (address: string) => Promise<SearchResult>;
  /** Uniform in [0, 1). */
  rng: () => number;
  timing?: ProberTiming;
  logger?: Logger;
  /** Called after every finished measurement of a peer still targeted. */
  onResult?: (name: string, mtu: number | null) => void;
}

interface Peer {
  address: string;
  due: number;
  running: boolean;
  /** Measured at least once at this address. */
  measured: boolean;
  mtu: number | null;
}

export class PathMtuProber {
  private readonly peers = new Map<string, Peer>();
  private readonly t: ProberTiming;
  private timer: TimerHandle | null = null;
  private timerAt = Infinity;
  private inFlight = 0;
  private stopped = false;

  constructor(private readonly o: ProberOptions) {
    this.t = o.timing ?? DEFAULT_TIMING;
  }

  /** The peers to measure now (live members with a node address): new ones are scheduled, gone ones dropped. */
  setTargets(targets: Target[]): void {
    if (this.stopped) return;
    const now = this.o.clock.now();
    const keep = new Set<string>();
    for (const { name, address } of targets) {
      keep.add(name);
      const p = this.peers.get(name);
      if (p && p.address === address) continue;
      // New, or its address changed: measure soon (a measurement under way for the old address is ignored when it ends).
      this.peers.set(name, { address, due: now + this.firstDelay(), running: p?.running ?? false, measured: false, mtu: null });
    }
    for (const name of [...this.peers.keys()]) if (!keep.has(name)) this.peers.delete(name);
    this.pump();
  }

  /** Measured path MTUs by peer name (null: measured, nothing got through); peers not measured yet are absent. */
  results(): Map<string, number | null> {
    const out = new Map<string, number | null>();
    for (const [name, p] of this.peers) if (p.measured) out.set(name, p.mtu);
    return out;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) this.o.clock.clearTimeout(this.timer);
    this.timer = null;
    this.peers.clear();
  }

  private firstDelay(): number {
    return this.t.firstDelayMs + Math.floor(this.o.rng() * this.t.firstJitterMs);
  }

  private nextDelay(): number {
    return Math.floor(this.t.intervalMs * (0.9 + 0.2 * this.o.rng()));
  }

  /** Starts what is due (up to maxInFlight), then arms the timer for the next one. */
  private pump(): void {
    if (this.stopped) return;
    const now = this.o.clock.now();
    const waiting = [...this.peers.entries()].filter(([, p]) => !p.running).sort((a, b) => a[1].due - b[1].due);
    for (const [name, p] of waiting) {
      if (this.inFlight >= this.t.maxInFlight || p.due > now) break;
      this.run(name, p);
    }
    if (this.inFlight >= this.t.maxInFlight) return this.arm(Infinity); // a finished measurement pumps again
    const next = waiting.find(([, p]) => !p.running)?.[1].due ?? Infinity;
    this.arm(next);
  }

  private arm(at: number): void {
    if (at === this.timerAt && this.timer) return;
    if (this.timer) this.o.clock.clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = at;
    if (!Number.isFinite(at)) return;
    this.timer = this.o.clock.setTimeout(
      () => {
        this.timer = null;
        this.timerAt = Infinity;
        this.pump();
      },
      Math.max(0, at - this.o.clock.now()),
    );
  }

  private run(name: string, p: Peer): void {
    p.running = true;
    this.inFlight++;
    const address = p.address;
    const started = this.o.clock.now();
    const finish = (mtu: number | null, ok: boolean, detail: Record<string, unknown>): void => {
      this.inFlight--;
      if (this.stopped) return;
      const cur = this.peers.get(name);
      if (cur) cur.running = false;
      if (cur && cur.address === address) {
        // A new value is worth a line; the same one again every ten minutes is not.
        const level = !ok ? 'warn' : !cur.measured || cur.mtu !== mtu ? 'info' : 'debug';
        if (ok) {
          cur.measured = true;
          cur.mtu = mtu;
        }
        cur.due = this.o.clock.now() + this.nextDelay();
        this.o.logger?.[level](ok ? 'path MTU measured' : 'path MTU measurement failed', {
          peer: name,
          address,
          mtu,
          ms: this.o.clock.now() - started,
          ...detail,
        });
        if (ok) this.o.onResult?.(name, mtu);
      }
      this.pump();
    };
    this.o.measure(address).then(
      (r) => finish(r.mtu, true, { how: r.how, probes: r.probes, bytes: r.bytes }),
      (e) => finish(null, false, { error: errorMessage(e) }),
    );
  }
}
