/**
 * The queue of updates being disseminated. One slot per member name: a newer
 * update about a member replaces the older one. Each update is sent
 * retransmitLimit(mult, n) times, with n read at every send, so an update
 * queued while the cluster looked small is still sent enough times once the
 * cluster turns out big (memberlist's join-storm stragglers).
 */
import type { Update } from './messages';
import { updateSize } from './messages';
import { retransmitLimit } from './timing';

interface Item {
  update: Update;
  size: number;
  transmits: number;
  order: number;
}

export class BroadcastQueue {
  private readonly items = new Map<string, Item>();
  private order = 0;

  constructor(private readonly retransmitMult: number) {}

  get size(): number {
    return this.items.size;
  }

  /** Queues (or replaces) the update about `name`. */
  enqueue(name: string, update: Update): void {
    this.items.set(name, { update, size: updateSize(update), transmits: 0, order: this.order++ });
  }

  /** Drops whatever is queued about `name` (e.g. superseded by a state we no longer want to spread). */
  drop(name: string): void {
    this.items.delete(name);
  }

  /**
   * Takes updates for one message, least transmitted (then newest) first,
   * within `budget` JSON bytes; counts one transmission for each and retires
   * those that reached the limit for the current cluster size n.
   */
  take(budget: number, n: number): Update[] {
    if (this.items.size === 0) return [];
    const limit = retransmitLimit(this.retransmitMult, n);
    const sorted = [...this.items.entries()].sort((a, b) => a[1].transmits - b[1].transmits || b[1].order - a[1].order);
    const out: Update[] = [];
    let used = 0;
    for (const [key, item] of sorted) {
      if (item.transmits >= limit) {
        this.items.delete(key);
        continue;
      }
      if (used + item.size > budget && out.length > 0) continue;
      // An item larger than the whole budget still goes out alone, so it is never stuck.
      out.push(item.update);
      used += item.size;
      item.transmits += 1;
      if (item.transmits >= limit) this.items.delete(key);
    }
    return out;
  }
}
