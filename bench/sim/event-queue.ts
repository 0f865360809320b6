/**
 * The simulator's clock and agenda: a binary min-heap of events ordered by
 * (virtual time, insertion order). Ties run in the order they were scheduled,
 * which keeps a run deterministic.
 */

interface Entry {
  at: number;
  seq: number;
  run: () => void;
}

export class EventQueue {
  private heap: Entry[] = [];
  private seq = 0;
  private current: number;
  /** Events run so far (for the runtime report). */
  processed = 0;

  constructor(start = 0) {
    this.current = start;
  }

  /** Virtual now, in ms. */
  now(): number {
    return this.current;
  }

  get size(): number {
    return this.heap.length;
  }

  /** Runs `run` at virtual time `at` (never in the past). */
  at(at: number, run: () => void): void {
    const e: Entry = { at: Math.max(at, this.current), seq: this.seq++, run };
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(e, h[p])) break;
      h[i] = h[p];
      i = p;
    }
    h[i] = e;
  }

  /** Runs `run` after `delay` ms of virtual time. */
  after(delay: number, run: () => void): void {
    this.at(this.current + Math.max(0, delay), run);
  }

  /** Time of the next event, or Infinity when the agenda is empty. */
  peekTime(): number {
    return this.heap.length > 0 ? this.heap[0].at : Infinity;
  }

  /**
   * Runs events in order until virtual time would pass `until`, or `stop()`
   * returns true (checked after each event). Leaves the clock at `until` when
   * it ran out of events before then. Returns true if stopped by `stop`.
   */
  runUntil(until: number, stop?: () => boolean): boolean {
    while (this.heap.length > 0 && this.heap[0].at <= until) {
      const e = this.pop();
      this.current = e.at;
      this.processed++;
      e.run();
      if (stop && stop()) return true;
    }
    if (until > this.current && Number.isFinite(until)) this.current = until;
    return false;
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

function before(a: Entry, b: Entry): boolean {
  return a.at < b.at || (a.at === b.at && a.seq < b.seq);
}
