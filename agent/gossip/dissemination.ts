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
  /**
   * Members this update was already sent to: never the same one twice. An
   * array, not a Set: it holds at most retransmitLimit names (about 20 at
   * 10,000 members) and a Set per queued update was most of the memory of a
   * join storm, where every member queues every newcomer.
   */
  sentTo: string[];
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
    this.items.set(name, { update, size: updateSize(update), sentTo: [], order: this.order++ });
  }

  /** Drops whatever is queued about `name`. */
  drop(name: string): void {
    this.items.delete(name);
  }

  /**
   * Takes updates for one message to `target`, least transmitted (then newest)
   * first, within `budget` JSON bytes, skipping those `target` already got.
   * An update retires once sent to retransmitLimit(mult, n) distinct members,
   * or to all n-1 other live members if fewer, n being the CURRENT cluster
   * size: a member that joined early and knew few others keeps its updates
   * until it has met enough members to hand them to.
   */
  take(budget: number, n: number, target: string): Update[] {
    if (this.items.size === 0) return [];
    const limit = Math.max(1, Math.min(retransmitLimit(this.retransmitMult, n), n - 1));
    const sorted = [...this.items.entries()].sort((a, b) => a[1].sentTo.length - b[1].sentTo.length || b[1].order - a[1].order);
    const out: Update[] = [];
    let used = 0;
    for (const [key, item] of sorted) {
      if (item.sentTo.length >= limit) {
        this.items.delete(key);
        continue;
      }
      if (item.sentTo.includes(target)) continue;
      // An item larger than the whole budget still goes out alone, so it is never stuck.
      if (used + item.size > budget && out.length > 0) continue;
      out.push(item.update);
      used += item.size;
      item.sentTo.push(target);
      if (item.sentTo.length >= limit) this.items.delete(key);
    }
    return out;
  }
}
