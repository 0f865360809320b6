/**
 * The member table: what one member holds about every other, in columns
 * (typed arrays indexed by a member id) instead of one object per member.
 *
 * Why columns: every member holds an entry per member, so a cluster of N
 * holds N² entries. A real agent holds a few hundred, but the simulator runs
 * 10,000 real members, 10^8 entries: an object and a Map slot per entry cost
 * about 110 bytes, the columns about 45.
 *
 * Entry is a short-lived view of one row: read and write it like a plain
 * record (e.state = 'dead'). Keep ids, not views, in anything long-lived.
 */
import { createHash } from 'node:crypto';
import type { MemberState, SignedRecord } from '../../shared/member';
import type { StateCode } from './messages';

export const STATE_CODE: Record<MemberState, StateCode> = { alive: 0, suspect: 1, dead: 2, left: 3 };
export const CODE_STATE: readonly MemberState[] = ['alive', 'suspect', 'dead', 'left'];

/** Entry.warmAt when the member holds no connection with us. */
export const NEVER_MET = -1;
export const MET = -2;

export interface Suspicion {
  start: number;
  /** Distinct members who reported the suspicion (Lifeguard confirmations). */
  froms: Set<string>;
  expected: number;
  min: number;
  max: number;
  deadline: number;
}

/**
 * Member names to ids. Ids are never reused, so the index grows with the
 * names ever seen (a few dozen bytes each). The simulator shares one index
 * between all its members, so their tables line up and none holds a Map of
 * names of its own.
 */
export class NameIndex {
  private readonly ids = new Map<string, number>();
  readonly names: string[] = [];
  /**
   * Row hashes (MemberTable.digest), two per id: the hash of (name,
   * incarnation, state) is the same in every table, and a change makes a
   * table drop the old row's hash and add the new one's, so the last two
   * asked for almost always answer. Slot k of id i: rows[2i+k].
   */
  private rowInc = new Float64Array(0);
  private rowCode = new Uint8Array(0);
  private rowLanes = new Uint32Array(0);
  private rowNext = new Uint8Array(0);

  idOf(name: string): number {
    let id = this.ids.get(name);
    if (id === undefined) {
      id = this.names.length;
      this.ids.set(name, id);
      this.names.push(name);
    }
    return id;
  }

  find(name: string): number | undefined {
    return this.ids.get(name);
  }

  /** Index (into rowLanes / DIGEST_LANES) of the hash of one row: SHA-256 of "name\ninc\nstate", first 96 bits. */
  rowHash(id: number, inc: number, code: number): number {
    if (2 * id + 1 >= this.rowCode.length) this.growRows(id);
    for (let k = 2 * id; k < 2 * id + 2; k++) if (this.rowCode[k] === code + 1 && this.rowInc[k] === inc) return k * DIGEST_LANES;
    const k = 2 * id + (this.rowNext[id] as number);
    this.rowNext[id] = 1 - (this.rowNext[id] as number);
    const h = createHash('sha256')
      .update(`${this.names[id] as string}\n${inc}\n${code}`)
      .digest();
    for (let l = 0; l < DIGEST_LANES; l++) this.rowLanes[k * DIGEST_LANES + l] = h.readUInt32LE(4 * l);
    this.rowInc[k] = inc;
    this.rowCode[k] = code + 1;
    return k * DIGEST_LANES;
  }

  lanes(): Uint32Array {
    return this.rowLanes;
  }

  private growRows(id: number): void {
    const slots = 2 * Math.max(id + 1, this.names.length, Math.ceil((this.rowCode.length / 2) * 1.5), 16);
    const inc = new Float64Array(slots);
    inc.set(this.rowInc);
    const code = new Uint8Array(slots);
    code.set(this.rowCode);
    const lanes = new Uint32Array(slots * DIGEST_LANES);
    lanes.set(this.rowLanes);
    const next = new Uint8Array(slots / 2);
    next.set(this.rowNext);
    [this.rowInc, this.rowCode, this.rowLanes, this.rowNext] = [inc, code, lanes, next];
  }
}

/** 32-bit lanes of the table digest: 96 bits, 16 base64 characters. */
export const DIGEST_LANES = 3;

export interface EntryInit {
  signed: SignedRecord;
  state: MemberState;
  inc: number;
  stateSince: number;
  lastSeen: number;
  warmAt: number;
  probeRound: number;
}

export class MemberTable {
  private count = 0;
  private cap = 0;
  // The columns. Entry (below) reads and writes them; nothing else should.
  /** undefined = no entry for that id. */
  signedOf: (SignedRecord | undefined)[] = [];
  stateOf = new Uint8Array(0);
  incOf = new Float64Array(0);
  sinceOf = new Float64Array(0);
  seenOf = new Float64Array(0);
  warmOf = new Int32Array(0);
  roundOf = new Int32Array(0);
  /** Rare fields: only suspects have a suspicion, only leavers a signature. */
  readonly susps = new Map<number, Suspicion>();
  readonly leftSigs = new Map<number, string>();
  /**
   * The sum, lane by lane mod 2^32, of the hashes of every row (name,
   * incarnation, state): the anti-entropy digest hash (sync.ts), the same
   * for two tables holding the same rows in any order. It follows every
   * change at the cost of two cached row hashes, where hashing the whole
   * sorted digest again after every change was N work per change, N² per
   * member in a partition.
   */
  readonly digest = new Uint32Array(DIGEST_LANES);
  /**
   * Ids of the other members (all but `self`) that are alive or suspect, and
   * of those that are dead, in no particular order: kept by every write
   * (posOf holds each id's place in its list, so a move is two swaps). The
   * probe and gossip loops read them on every call; rebuilding them after
   * each change was N work per change, N² per member in a partition.
   * Copy a list to keep it: it changes with the table.
   */
  readonly live: number[] = [];
  readonly dead: number[] = [];
  posOf = new Int32Array(0);
  /** The id of the member holding the table: in no list. */
  readonly self: number;
  /**
   * For each watched address (the anchors, join.ts), how many rows advertise
   * it that are live, or ours: kept at every write, so the unmet anchors
   * are known without a scan of every record each reconnect interval.
   */
  readonly held = new Map<string, number>();
  private watched = new Set<string>();

  constructor(
    readonly index: NameIndex,
    selfName?: string,
  ) {
    this.self = selfName === undefined ? -1 : index.idOf(selfName);
  }

  /** Watches these addresses (see held), counting them afresh. */
  watch(addresses: readonly string[]): void {
    this.watched = new Set(addresses);
    this.held.clear();
    for (let id = 0; id < this.signedOf.length; id++) if (this.has(id) && this.counted(id)) this.hold(id, 1);
  }

  /** A row whose addresses count in `held`: a live one, or our own. */
  private counted(id: number): boolean {
    const c = this.stateOf[id];
    return id === this.self || c === STATE_CODE.alive || c === STATE_CODE.suspect;
  }

  private hold(id: number, sign: 1 | -1): void {
    if (this.watched.size === 0) return;
    for (const a of (this.signedOf[id] as SignedRecord).record.addresses) if (this.watched.has(a)) this.held.set(a, (this.held.get(a) ?? 0) + sign);
  }

  /** The list a state code puts an id in (left: none). */
  private listOf(code: number): number[] | null {
    if (code === STATE_CODE.alive || code === STATE_CODE.suspect) return this.live;
    return code === STATE_CODE.dead ? this.dead : null;
  }

  private unlist(id: number, code: number): void {
    const list = this.listOf(code);
    if (list === null || id === this.self) return;
    const at = this.posOf[id] as number;
    const last = list.pop() as number;
    if (last !== id) {
      list[at] = last;
      this.posOf[last] = at;
    }
  }

  private list(id: number, code: number): void {
    const list = this.listOf(code);
    if (list === null || id === this.self) return;
    this.posOf[id] = list.length;
    list.push(id);
  }

  /** Row `id`, as it stands, joins what the table keeps: the digest, its list, the watched addresses. */
  private enter(id: number): void {
    this.mix(id, 1);
    this.list(id, this.stateOf[id] as number);
    if (this.counted(id)) this.hold(id, 1);
  }

  /** Row `id`, as it stands, leaves what the table keeps (before it is replaced or deleted). */
  private leave(id: number): void {
    this.mix(id, -1);
    this.unlist(id, this.stateOf[id] as number);
    if (this.counted(id)) this.hold(id, -1);
  }

  /** Adds (+1) or removes (-1) the hash of row `id` as it stands to the digest. */
  private mix(id: number, sign: 1 | -1): void {
    const at = this.index.rowHash(id, this.incOf[id] as number, this.stateOf[id] as number);
    const lanes = this.index.lanes();
    for (let l = 0; l < DIGEST_LANES; l++) this.digest[l] = (this.digest[l] as number) + sign * (lanes[at + l] as number);
  }

  /** Sets the state (a code) of a present row, keeping the digest. */
  setState(id: number, code: number): void {
    const was = this.stateOf[id] as number;
    if (was === code) return;
    const counted = this.counted(id);
    this.mix(id, -1);
    this.stateOf[id] = code;
    this.mix(id, 1);
    if (counted !== this.counted(id)) this.hold(id, counted ? -1 : 1);
    if (this.listOf(was) !== this.listOf(code)) {
      this.unlist(id, was);
      this.list(id, code);
    }
  }

  /** Sets the signed record of a present row, keeping the watched addresses. */
  setSigned(id: number, signed: SignedRecord): void {
    const counted = this.counted(id);
    if (counted) this.hold(id, -1);
    this.signedOf[id] = signed;
    if (counted) this.hold(id, 1);
  }

  /** Sets the incarnation of a present row, keeping the digest. */
  setInc(id: number, inc: number): void {
    if (this.incOf[id] === inc) return;
    this.mix(id, -1);
    this.incOf[id] = inc;
    this.mix(id, 1);
  }

  get size(): number {
    return this.count;
  }

  /** One past the highest id: iterate 0..end() with has(). */
  end(): number {
    return this.signedOf.length;
  }

  has(id: number): boolean {
    return this.signedOf[id] !== undefined;
  }

  get(name: string): Entry | undefined {
    const id = this.index.find(name);
    return id !== undefined && this.signedOf[id] !== undefined ? new Entry(this, id) : undefined;
  }

  /** The state code of an id known to be present, without a view. */
  stateCode(id: number): StateCode {
    return this.stateOf[id] as StateCode;
  }

  /** The entry of an id known to be present. */
  at(id: number): Entry {
    return new Entry(this, id);
  }

  add(name: string, init: EntryInit): Entry {
    const id = this.index.idOf(name);
    this.reserve(id);
    if (this.signedOf[id] === undefined) this.count++;
    else this.leave(id);
    this.signedOf[id] = init.signed;
    this.susps.delete(id);
    this.leftSigs.delete(id);
    this.stateOf[id] = STATE_CODE[init.state];
    this.incOf[id] = init.inc;
    this.sinceOf[id] = init.stateSince;
    this.seenOf[id] = init.lastSeen;
    this.warmOf[id] = init.warmAt;
    this.roundOf[id] = init.probeRound;
    this.enter(id);
    return new Entry(this, id);
  }

  delete(name: string): boolean {
    const id = this.index.find(name);
    if (id === undefined || this.signedOf[id] === undefined) return false;
    this.leave(id);
    this.signedOf[id] = undefined;
    this.susps.delete(id);
    this.leftSigs.delete(id);
    this.count--;
    return true;
  }

  /** Every entry, in id order (the order names were first seen). */
  *values(): IterableIterator<Entry> {
    for (let id = 0; id < this.signedOf.length; id++) if (this.signedOf[id] !== undefined) yield new Entry(this, id);
  }

  *[Symbol.iterator](): IterableIterator<[string, Entry]> {
    for (const e of this.values()) yield [e.name, e];
  }

  /** Grows every column to hold `id`: by half again at least, and at least to the index's size (the simulator's shared index knows every member early). */
  private reserve(id: number): void {
    if (id < this.cap) return;
    const cap = Math.max(id + 1, Math.ceil(this.cap * 1.5), this.index.names.length, 16);
    const signed = new Array<SignedRecord | undefined>(cap).fill(undefined);
    for (let i = 0; i < this.signedOf.length; i++) signed[i] = this.signedOf[i];
    this.signedOf = signed;
    this.stateOf = grown(this.stateOf, new Uint8Array(cap));
    this.incOf = grown(this.incOf, new Float64Array(cap));
    this.sinceOf = grown(this.sinceOf, new Float64Array(cap));
    this.seenOf = grown(this.seenOf, new Float64Array(cap));
    this.warmOf = grown(this.warmOf, new Int32Array(cap));
    this.roundOf = grown(this.roundOf, new Int32Array(cap));
    this.posOf = grown(this.posOf, new Int32Array(cap));
    this.cap = cap;
  }
}

function grown<T extends Uint8Array | Float64Array | Int32Array>(old: T, into: T): T {
  into.set(old);
  return into;
}

/** A view of one row of a MemberTable: valid while the entry is in the table. */
export class Entry {
  constructor(
    private readonly t: MemberTable,
    readonly id: number,
  ) {}

  get name(): string {
    return this.t.index.names[this.id] as string;
  }
  /** Latest verified alive record of the member. */
  get signed(): SignedRecord {
    return this.t.signedOf[this.id] as SignedRecord;
  }
  set signed(v: SignedRecord) {
    this.t.setSigned(this.id, v);
  }
  get state(): MemberState {
    return CODE_STATE[this.t.stateOf[this.id] as number] as MemberState;
  }
  set state(v: MemberState) {
    this.t.setState(this.id, STATE_CODE[v]);
  }
  /** Incarnation the state refers to (equals signed.incarnation except for a left at a later incarnation). */
  get inc(): number {
    return this.t.incOf[this.id] as number;
  }
  set inc(v: number) {
    this.t.setInc(this.id, v);
  }
  get stateSince(): number {
    return this.t.sinceOf[this.id] as number;
  }
  set stateSince(v: number) {
    this.t.sinceOf[this.id] = v;
  }
  get lastSeen(): number {
    return this.t.seenOf[this.id] as number;
  }
  set lastSeen(v: number) {
    this.t.seenOf[this.id] = v;
  }
  /**
   * Our connection with the member: its index in State.warm while it holds
   * one (it talked to us, not closed since), else MET (it has talked to us
   * before: a probe to it is no first contact) or NEVER_MET.
   */
  get warmAt(): number {
    return this.t.warmOf[this.id] as number;
  }
  set warmAt(v: number) {
    this.t.warmOf[this.id] = v;
  }
  /** The probe round (State.probeRound) in which the member was placed in probeOrder; -1 = none yet. */
  get probeRound(): number {
    return this.t.roundOf[this.id] as number;
  }
  set probeRound(v: number) {
    this.t.roundOf[this.id] = v;
  }
  get susp(): Suspicion | undefined {
    return this.t.susps.get(this.id);
  }
  set susp(v: Suspicion | undefined) {
    if (v) this.t.susps.set(this.id, v);
    else this.t.susps.delete(this.id);
  }
  /** Leaver's signature, kept to relay the left notice. */
  get leftSig(): string | undefined {
    return this.t.leftSigs.get(this.id);
  }
  set leftSig(v: string | undefined) {
    if (v !== undefined) this.t.leftSigs.set(this.id, v);
    else this.t.leftSigs.delete(this.id);
  }
}
