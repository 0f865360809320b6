/**
 * Who sees whom, kept from the members' own events (never by peeking into
 * their state), compactly enough for 10,000 members: one byte per
 * (observer, target) pair plus a few counters, so "has the cluster
 * converged?" and "how many members see X dead?" are O(1) questions.
 */
import type { MemberEvent } from '../../agent/gossip/membership';

export const UNKNOWN = 0;
export const ALIVE = 1;
export const SUSPECT = 2;
export const DEAD = 3;
export const LEFT = 4;

const CODE: Record<string, number> = { alive: ALIVE, suspect: SUSPECT, dead: DEAD, left: LEFT };

export interface FalseAlarm {
  at: number;
  observer: number;
  target: number;
  incarnation: number;
  type: 'suspect' | 'dead';
}

export class Observer {
  readonly cap: number;
  private readonly view: Uint8Array;
  private readonly up: Uint8Array;
  private upCount = 0;
  /** Up targets (other than itself) each observer sees alive. */
  private readonly aliveUp: Int32Array;
  /** Up observers holding each target dead or left. */
  private readonly goneBy: Int32Array;
  /** Up observers holding each target suspect. */
  private readonly suspectBy: Int32Array;
  /** Up observers holding each target alive. */
  private readonly aliveBy: Int32Array;
  private fullCount = 0;
  private fullDirty = true;
  /** First time any observer held the target dead (since the last reset), or NaN. */
  readonly firstDead: Float64Array;
  /** Optional hook on every state change (scenarios use it for timings). */
  onChange: ((observer: number, target: number, from: number, to: number, at: number) => void) | null = null;
  /** Up members wrongly suspected / declared dead, observer-level events. */
  readonly alarms = { suspect: 0, dead: 0, refutations: 0 };
  readonly falseAlarms: FalseAlarm[] = [];
  /** Targets exempt from false-alarm counting (crashed on purpose, partitioned). */
  exempt: Set<number> = new Set();

  constructor(cap: number) {
    this.cap = cap;
    this.view = new Uint8Array(cap * cap);
    this.up = new Uint8Array(cap);
    this.aliveUp = new Int32Array(cap);
    this.goneBy = new Int32Array(cap);
    this.suspectBy = new Int32Array(cap);
    this.aliveBy = new Int32Array(cap);
    this.firstDead = new Float64Array(cap).fill(NaN);
  }

  isUp(i: number): boolean {
    return this.up[i] === 1;
  }

  get upMembers(): number {
    return this.upCount;
  }

  stateOf(observer: number, target: number): number {
    return this.view[observer * this.cap + target];
  }

  /** A fresh process at i: it knows nobody yet; those who hold it alive see one more up member alive. */
  started(i: number): void {
    if (this.up[i]) this.stopped(i);
    this.up[i] = 1;
    this.upCount++;
    this.aliveUp[i] = 0;
    for (let o = 0; o < this.cap; o++) if (o !== i && this.up[o] && this.view[o * this.cap + i] === ALIVE) this.aliveUp[o]++;
    this.fullDirty = true;
  }

  /** The process at i stopped: its view is gone, and it is no longer an up member anyone should see. */
  stopped(i: number): void {
    if (!this.up[i]) return;
    this.up[i] = 0;
    this.upCount--;
    const row = i * this.cap;
    for (let t = 0; t < this.cap; t++) {
      const v = this.view[row + t];
      if (v === DEAD || v === LEFT) this.goneBy[t]--;
      else if (v === SUSPECT) this.suspectBy[t]--;
      else if (v === ALIVE) this.aliveBy[t]--;
    }
    this.view.fill(UNKNOWN, row, row + this.cap);
    for (let o = 0; o < this.cap; o++) if (this.up[o] && this.view[o * this.cap + i] === ALIVE) this.aliveUp[o]--;
    this.fullDirty = true;
  }

  event(observer: number, ev: MemberEvent, at: number): void {
    const target = indexOf(ev.name);
    if (target === observer) {
      if (ev.type === 'refuted') this.alarms.refutations++;
      return;
    }
    const to = CODE[ev.type];
    if (to === undefined || target < 0 || target >= this.cap || !this.up[observer]) return;
    const k = observer * this.cap + target;
    const from = this.view[k];
    if (from === to) return;
    this.view[k] = to;
    const targetUp = this.up[target] === 1;
    if (targetUp) {
      const wasFull = this.aliveUp[observer] === this.upCount - 1;
      if (from === ALIVE) this.aliveUp[observer]--;
      if (to === ALIVE) this.aliveUp[observer]++;
      const isFull = this.aliveUp[observer] === this.upCount - 1;
      if (!this.fullDirty && wasFull !== isFull) this.fullCount += isFull ? 1 : -1;
      if (!this.exempt.has(target) && (to === SUSPECT || to === DEAD)) {
        if (to === SUSPECT) this.alarms.suspect++;
        else this.alarms.dead++;
        this.falseAlarms.push({ at, observer, target, incarnation: ev.incarnation, type: to === SUSPECT ? 'suspect' : 'dead' });
      }
    }
    if (from === DEAD || from === LEFT) this.goneBy[target]--;
    else if (from === SUSPECT) this.suspectBy[target]--;
    else if (from === ALIVE) this.aliveBy[target]--;
    if (to === ALIVE) this.aliveBy[target]++;
    if (to === DEAD || to === LEFT) {
      this.goneBy[target]++;
      if (Number.isNaN(this.firstDead[target])) this.firstDead[target] = at;
    } else if (to === SUSPECT) this.suspectBy[target]++;
    if (this.onChange) this.onChange(observer, target, from, to, at);
  }

  /** Up observers that see every other up member alive. */
  fullViews(): number {
    if (this.fullDirty) {
      let n = 0;
      for (let o = 0; o < this.cap; o++) if (this.up[o] && this.aliveUp[o] === this.upCount - 1) n++;
      this.fullCount = n;
      this.fullDirty = false;
    }
    return this.fullCount;
  }

  /** Every up member sees every other up member alive. */
  converged(): boolean {
    return this.upCount > 0 && this.fullViews() === this.upCount;
  }

  /** Up observers that hold `target` dead or left. */
  goneCount(target: number): number {
    return this.goneBy[target];
  }

  aliveCount(target: number): number {
    return this.aliveBy[target];
  }

  suspectCount(target: number): number {
    return this.suspectBy[target];
  }

  resetAlarms(): void {
    this.alarms.suspect = 0;
    this.alarms.dead = 0;
    this.alarms.refutations = 0;
    this.falseAlarms.length = 0;
    this.firstDead.fill(NaN);
  }
}

export function indexOf(name: string): number {
  const n = Number(name.slice(1));
  return name.charCodeAt(0) === 109 /* m */ && Number.isInteger(n) ? n : -1;
}
