/**
 * Time is injected everywhere so gossip and reconcile logic can be driven by a
 * manual clock in tests and by virtual time in the simulator.
 */
export type TimerHandle = { readonly id: number };

export interface Clock {
  /** Milliseconds since the epoch (wall clock for `systemClock`, virtual for `ManualClock`). */
  now(): number;
  /** Runs `fn` once after `ms` milliseconds. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  /**
   * Runs `fn` once the I/O already waiting has been handled. Node runs due
   * timers before it reads sockets, so after a long turn of the event loop a
   * timer can judge a reply that is already in a socket buffer (a probe's
   * ack): a timer that decides calls through here. Virtual clocks have no
   * such I/O and leave it out: the caller runs `fn` at once.
   */
  defer?(fn: () => void): void;
}

let nextId = 1;

class SystemClock implements Clock {
  private readonly timers = new Map<number, NodeJS.Timeout>();
  now(): number {
    return Date.now();
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = nextId++;
    const t = setTimeout(
      () => {
        this.timers.delete(id);
        fn();
      },
      Math.max(0, ms),
    );
    this.timers.set(id, t);
    return { id };
  }
  clearTimeout(handle: TimerHandle): void {
    const t = this.timers.get(handle.id);
    if (t) {
      clearTimeout(t);
      this.timers.delete(handle.id);
    }
  }
  /** setImmediate: the check phase comes after the poll phase, where sockets are read. */
  defer(fn: () => void): void {
    setImmediate(fn);
  }
}

export const systemClock: Clock = new SystemClock();

/** One timer that fires at the earliest time asked of it: a later request merges into an earlier one. */
export class EarliestTimer {
  private handle: TimerHandle | null = null;
  private at = Number.POSITIVE_INFINITY;

  constructor(private readonly clock: Clock) {}

  /** Runs `fn` at `at`, unless the timer is already due by then (its own `fn` then stands). */
  request(at: number, fn: () => void): void {
    if (this.handle && this.at <= at) return;
    this.clear();
    this.at = at;
    this.handle = this.clock.setTimeout(() => {
      this.handle = null;
      this.at = Number.POSITIVE_INFINITY;
      fn();
    }, at - this.clock.now());
  }

  clear(): void {
    if (this.handle) this.clock.clearTimeout(this.handle);
    this.handle = null;
    this.at = Number.POSITIVE_INFINITY;
  }
}

/**
 * Virtual time: a clock that only moves when told to, and the agenda of what
 * runs when. Timers are kept in a binary min-heap ordered by (deadline,
 * insertion order), so ties run in the order they were scheduled and a run is
 * deterministic. Tests advance it by hand; the simulator runs 10^7 events on it.
 */
export class ManualClock implements Clock {
  private heap: Entry[] = [];
  private seq = 0;
  private current: number;
  private live = 0;
  /** Timers fired so far (the simulator's runtime report). */
  processed = 0;

  constructor(start = 1_700_000_000_000) {
    this.current = start;
  }
  now(): number {
    return this.current;
  }
  setTimeout(fn: () => void, ms: number): TimerHandle {
    return this.at(this.current + Math.max(0, ms), fn);
  }
  clearTimeout(handle: TimerHandle): void {
    const e = handle as Entry;
    if (e.state !== 'pending') return;
    e.state = 'cancelled'; // left in the heap, skipped when it comes up
    this.live--;
  }
  /** Runs `fn` at virtual time `at` (never in the past). */
  at(at: number, fn: () => void): TimerHandle {
    const e: Entry = { id: this.seq++, at: Math.max(at, this.current), fn, state: 'pending' };
    this.live++;
    const h = this.heap;
    let i = h.length;
    h.push(e);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(e, h[p])) break;
      h[i] = h[p];
      i = p;
    }
    h[i] = e;
    return e;
  }
  /** Moves time forward by `ms`, firing every timer that falls due on the way. */
  advance(ms: number): void {
    this.runUntil(this.current + ms);
  }
  /**
   * Fires timers in order until time would pass `until`, or `stop()` returns
   * true (checked after each). Leaves the clock at `until` when it ran out of
   * timers before then. Returns true if stopped by `stop`.
   */
  runUntil(until: number, stop?: () => boolean): boolean {
    while (this.heap.length > 0 && this.heap[0].at <= until) {
      const e = this.pop();
      if (e.state !== 'pending') continue;
      e.state = 'fired';
      this.live--;
      this.current = e.at;
      this.processed++;
      e.fn();
      if (stop && stop()) return true;
    }
    if (until > this.current && Number.isFinite(until)) this.current = until;
    return false;
  }
  /** When the next timer is due, or Infinity. */
  peekTime(): number {
    while (this.heap.length > 0 && this.heap[0].state !== 'pending') this.pop();
    return this.heap.length > 0 ? this.heap[0].at : Infinity;
  }
  /** Timers set and not yet fired or cleared. */
  pendingCount(): number {
    return this.live;
  }

  private pop(): Entry {
    const h = this.heap;
    const top = h[0];
    const last = h.pop() as Entry;
    if (h.length > 0) {
      let i = 0;
      const n = h.length;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && before(h[r], h[l]) ? r : l;
        if (!before(h[c], last)) break;
        h[i] = h[c];
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
}

interface Entry extends TimerHandle {
  readonly at: number;
  readonly fn: () => void;
  state: 'pending' | 'fired' | 'cancelled';
}

function before(a: Entry, b: Entry): boolean {
  return a.at < b.at || (a.at === b.at && a.id < b.id);
}
