/**
 * The member timers (suspicion deadlines, left-member retention) as a
 * min-heap of (time, member id). A timer is never removed: when a deadline
 * moves (a confirmation) or the member's state changes, the new timer is
 * pushed and the old one is found stale when it comes due (the caller checks
 * the member's current state). In a partition a member holds thousands of
 * suspects at once; walking them all whenever one came due made the
 * expiry N² work per member.
 */
export class TimerHeap {
  private readonly at: number[] = [];
  private readonly ids: number[] = [];

  get size(): number {
    return this.at.length;
  }

  /** When the earliest timer is due (Infinity: none). */
  next(): number {
    return this.at.length > 0 ? (this.at[0] as number) : Number.POSITIVE_INFINITY;
  }

  push(at: number, id: number): void {
    let i = this.at.length;
    this.at.push(at);
    this.ids.push(id);
    while (i > 0) {
      const up = (i - 1) >> 1;
      if ((this.at[up] as number) <= at) break;
      this.move(up, i);
      i = up;
    }
    this.at[i] = at;
    this.ids[i] = id;
  }

  /** Takes the earliest timer if it is due at `now`: [time, id], or null. */
  popDue(now: number): [number, number] | null {
    if (this.at.length === 0 || (this.at[0] as number) > now) return null;
    const top: [number, number] = [this.at[0] as number, this.ids[0] as number];
    const lastAt = this.at.pop() as number;
    const lastId = this.ids.pop() as number;
    const n = this.at.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const c = l + 1 < n && (this.at[l + 1] as number) < (this.at[l] as number) ? l + 1 : l;
        if ((this.at[c] as number) >= lastAt) break;
        this.move(c, i);
        i = c;
      }
      this.at[i] = lastAt;
      this.ids[i] = lastId;
    }
    return top;
  }

  private move(from: number, to: number): void {
    this.at[to] = this.at[from] as number;
    this.ids[to] = this.ids[from] as number;
  }
}
