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
  name: string;
  update: Update;
  size: number;
  /**
   * Members this update was already sent to: never the same one twice. An
   * exact-length array, replaced at each send: it holds at most
   * retransmitLimit names (about 20 at 10,000 members), and in a join storm
   * every member queues every newcomer, so a Set, or an array left to grow
   * by V8's own steps (17 slots at the first push), was most of the memory.
   */
  sentTo: readonly string[];
  /** Enqueue order: the newest is sent first among equally sent updates. */
  order: number;
}

const NONE: readonly string[] = Object.freeze([]);

/**
 * Queued updates one message looks at, least sent first. In a join storm a
 * member queues thousands, and a target it gossips to often already has
 * most of them: looking through them all for every message was a tenth of
 * the simulator's time at N = 3,000. Those not looked at go to the next
 * targets.
 */
const MAX_LOOKED_AT = 256;

export class BroadcastQueue {
  private readonly items = new Map<string, Item>();
  /**
   * byCount[k]: the items sent to k members so far, oldest first. take()
   * walks them least sent, then newest, first without sorting the whole
   * queue for every message, which a join storm of thousands of queued
   * updates made the largest cost of a member.
   */
  private byCount: Item[][] = [[]];
  private order = 0;
  /** No queued update is smaller (a lower bound, reset when the queue empties): once less budget is left, take() stops looking. */
  private smallest = Infinity;

  constructor(private readonly retransmitMult: number) {}

  get size(): number {
    return this.items.size;
  }

  /** Queues (or replaces) the update about `name`. */
  enqueue(name: string, update: Update): void {
    this.drop(name);
    const item: Item = { name, update, size: updateSize(update), sentTo: NONE, order: this.order++ };
    if (this.items.size === 0) this.smallest = Infinity;
    this.smallest = Math.min(this.smallest, item.size);
    this.items.set(name, item);
    (this.byCount[0] as Item[]).push(item);
  }

  /** Drops whatever is queued about `name`. */
  drop(name: string): void {
    const item = this.items.get(name);
    if (!item) return;
    this.items.delete(name);
    const bucket = this.byCount[item.sentTo.length];
    const i = bucket ? indexOf(bucket, item.order) : -1;
    if (i >= 0) (bucket as Item[]).splice(i, 1);
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
    // The cluster looks smaller than when these were sent: those sent often enough retire.
    while (this.byCount.length > limit) for (const item of this.byCount.pop() as Item[]) this.items.delete(item.name);
    const out: Update[] = [];
    let used = 0;
    let looked = 0;
    const room = (): boolean => looked < MAX_LOOKED_AT && (out.length === 0 || budget - used >= this.smallest);
    for (let k = 0; k < limit && room(); k++) {
      const bucket = this.byCount[k];
      if (!bucket) break;
      // Newest first. A taken item leaves this bucket for the next one, where `target` in its sentTo skips it.
      for (let i = bucket.length - 1; i >= 0 && room(); i--) {
        const item = bucket[i] as Item;
        looked++;
        if (item.sentTo.includes(target)) continue;
        // An item larger than the whole budget still goes out alone, so it is never stuck.
        if (used + item.size > budget && out.length > 0) continue;
        out.push(item.update);
        used += item.size;
        bucket.splice(i, 1);
        item.sentTo = item.sentTo.concat(target); // concat allocates the exact length; a spread reserves 22 slots
        if (item.sentTo.length >= limit) {
          this.items.delete(item.name);
          continue;
        }
        const next = this.byCount[k + 1] ?? (this.byCount[k + 1] = []);
        next.splice(insertAt(next, item.order), 0, item);
      }
    }
    return out;
  }
}

/** First index in `bucket` (ascending order) whose order is >= `order`. */
function insertAt(bucket: readonly Item[], order: number): number {
  let lo = 0;
  let hi = bucket.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((bucket[mid] as Item).order < order) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function indexOf(bucket: readonly Item[], order: number): number {
  const i = insertAt(bucket, order);
  return (bucket[i] as Item | undefined)?.order === order ? i : -1;
}
