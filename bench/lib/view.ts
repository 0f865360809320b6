/**
 * Who sees whom in a bench cluster, built from the members' events: the
 * current state of every (observer, member) pair and when it was set, the
 * event log, and waiting for a condition on them. Shared by the in-process
 * cluster (cluster.ts) and the threaded one (threaded-cluster.ts).
 */
import type { MemberState } from '../../shared/member';
import type { LoggedEvent } from './cluster';

export interface ViewMember {
  index: number;
  name: string;
}

const STATE_EVENTS = new Set<string>(['alive', 'suspect', 'dead', 'left']);

export class ClusterView {
  readonly events: LoggedEvent[] = [];
  /** states[observer].get(name): current state of `name` as `observer` sees it (indexed by member index). */
  readonly states: Map<string, MemberState>[] = [];
  /** When each entry of `states` was set, on the events' clock. */
  private readonly since: Map<string, number>[] = [];
  private readonly waiters = new Set<() => void>();

  /** Adds an observer with no view yet. */
  addObserver(index: number): void {
    this.states[index] = new Map();
    this.since[index] = new Map();
  }

  /** Logs one event of `observer` (named `observerName`) and updates its view; re-checks waiters unless `quiet`. */
  record(e: LoggedEvent, observerName: string, quiet = false): void {
    this.events.push(e);
    if (STATE_EVENTS.has(e.type) && e.name !== observerName) {
      this.states[e.observer].set(e.name, e.type as MemberState);
      this.since[e.observer].set(e.name, e.t);
    }
    if (!quiet) this.wake();
  }

  /** Re-checks every waiter (after a batch of quiet records). */
  wake(): void {
    for (const w of [...this.waiters]) w();
  }

  /** True when every member of `live` sees every other one alive. */
  allSeeAllAlive(live: readonly ViewMember[]): boolean {
    for (const m of live) {
      const st = this.states[m.index];
      for (const o of live) if (o !== m && st.get(o.name) !== 'alive') return false;
    }
    return true;
  }

  /** When the last pair of `live` came to its current state (the moment the view became what it is). */
  settledAt(live: readonly ViewMember[]): number {
    let t = -Infinity;
    for (const m of live) {
      const since = this.since[m.index];
      for (const o of live) if (o !== m) t = Math.max(t, since.get(o.name) ?? Infinity);
    }
    return t;
  }

  /** Fraction of (observer, other member) pairs of `live` in which the observer sees the other alive. */
  completeness(live: readonly ViewMember[]): number {
    if (live.length < 2) return 1;
    let alive = 0;
    for (const m of live) {
      const st = this.states[m.index];
      for (const o of live) if (o !== m && st.get(o.name) === 'alive') alive++;
    }
    return alive / (live.length * (live.length - 1));
  }

  /** True when every member of `live` other than `who` holds `who` in `state`. */
  allSee(live: readonly ViewMember[], who: ViewMember, state: MemberState): boolean {
    return live.every((m) => m === who || this.states[m.index].get(who.name) === state);
  }

  /** First time at or after `since` that each observer reported `who` in `state`. */
  firstSeen(who: string, state: MemberState, since: number): Map<number, number> {
    const out = new Map<number, number>();
    for (const e of this.events) {
      if (e.t >= since && e.name === who && e.type === state && !out.has(e.observer)) out.set(e.observer, e.t);
    }
    return out;
  }

  /**
   * Resolves true as soon as `cond` holds (re-checked on every event and
   * every 50 ms), or false at the deadline.
   */
  waitFor(cond: () => boolean, timeoutMs: number): Promise<boolean> {
    if (cond()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        clearInterval(poll);
        this.waiters.delete(check);
        resolve(ok);
      };
      const check = (): void => {
        if (cond()) done(true);
      };
      const timer = setTimeout(() => done(cond()), timeoutMs);
      const poll = setInterval(check, 50);
      this.waiters.add(check);
    });
  }
}
