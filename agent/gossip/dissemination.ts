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
  /** Replaced, dropped or retired: no longer queued (it may still sit in a bucket, see byCount). */
  gone: boolean;
}

/** An item sits in bucket k of byCount, and counts there, while it is queued and was sent k times. */
function liveIn(item: Item, k: number): boolean {
  return !item.gone && item.sentTo.length === k;
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
   * An item that moves on (sent once more) or goes is left where it was,
   * stale (see liveIn): cutting it out of the middle of a bucket of
   * thousands, for every update of every message, was the largest cost of a
   * partition. live[k] counts the items that are not; stale items at the end
   * of a bucket are trimmed as take() passes, and a bucket more than half
   * stale is compacted.
   */
  private byCount: Item[][] = [[]];
  private live: number[] = [0];
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
    const item: Item = { name, update, size: updateSize(update), sentTo: NONE, order: this.order++, gone: false };
    if (this.items.size === 0) this.smallest = Infinity;
    this.smallest = Math.min(this.smallest, item.size);
    this.items.set(name, item);
    (this.byCount[0] as Item[]).push(item);
    this.live[0] = (this.live[0] as number) + 1;
  }

  /** Drops whatever is queued about `name`. */
  drop(name: string): void {
    const item = this.items.get(name);
    if (!item) return;
    this.items.delete(name);
    item.gone = true;
    const k = item.sentTo.length;
    this.live[k] = (this.live[k] as number) - 1;
    this.tidy(k);
  }

  /** Trims the stale items off the end of bucket k, and compacts it once more than half of it is stale. */
  private tidy(k: number): void {
    const bucket = this.byCount[k] as Item[];
    while (bucket.length > 0 && !liveIn(bucket[bucket.length - 1] as Item, k)) bucket.pop();
    if (bucket.length > 16 && bucket.length > 2 * (this.live[k] as number)) this.byCount[k] = bucket.filter((item) => liveIn(item, k));
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
    while (this.byCount.length > limit) {
      const k = this.byCount.length - 1;
      for (const item of this.byCount.pop() as Item[]) {
        if (!liveIn(item, k)) continue;
        this.items.delete(item.name);
        item.gone = true;
      }
      this.live.pop();
    }
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
        if (!liveIn(item, k)) continue;
        looked++;
        if (item.sentTo.includes(target)) continue;
        // An item larger than the whole budget still goes out alone, so it is never stuck.
        if (used + item.size > budget && out.length > 0) continue;
        out.push(item.update);
        used += item.size;
        item.sentTo = withOneMore(item.sentTo, target);
        this.live[k] = (this.live[k] as number) - 1;
        if (item.sentTo.length >= limit) {
          this.items.delete(item.name);
          item.gone = true;
        } else {
          if (this.byCount[k + 1] === undefined) {
            this.byCount[k + 1] = [];
            this.live[k + 1] = 0;
          }
          const next = this.byCount[k + 1] as Item[];
          next.splice(insertAt(next, item.order), 0, item);
          this.live[k + 1] = (this.live[k + 1] as number) + 1;
        }
      }
      this.tidy(k);
    }
    return out;
  }
}

/**
 * `names` and then `name`, in a new array of exactly that length: a spread
 * or push reserves 17 slots or more (most of a join storm's memory), and
 * concat took six times as long as this copy, 40% of take() in a partition.
 */
function withOneMore(names: readonly string[], name: string): readonly string[] {
  const n = names.length;
  const out = new Array<string>(n + 1);
  for (let i = 0; i < n; i++) out[i] = names[i] as string;
  out[n] = name;
  return out;
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
