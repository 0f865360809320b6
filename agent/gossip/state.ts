/**
 * The membership state shared by the rule modules (rules.ts, probe.ts,
 * sync.ts, join.ts). Plain data plus tiny helpers; no I/O.
 */
import type { Destination, PeerInfo } from '../net/transport';
import type { MemberState, SignedRecord } from '../../shared/member';
import type { GossipMessage, StateCode } from './messages';
import type { BroadcastQueue } from './dissemination';
import type { GossipTiming } from './timing';

export interface Outgoing { to: Destination; msg: GossipMessage }
export type MemberEventType = 'alive' | 'suspect' | 'dead' | 'left' | 'updated' | 'conflict' | 'refuted';
export interface MemberEvent { type: MemberEventType; name: string; incarnation: number; detail?: string }
export interface Step { send: Outgoing[]; events: MemberEvent[] }

export interface Suspicion {
  start: number;
  /** Distinct members who reported the suspicion (Lifeguard confirmations). */
  froms: Set<string>;
  expected: number;
  min: number;
  max: number;
  deadline: number;
}

export interface Entry {
  /** Latest verified alive record of the member. */
  signed: SignedRecord;
  state: MemberState;
  /** Incarnation the state refers to (equals signed.incarnation except for a left at a later incarnation). */
  inc: number;
  /** See stamp(). */
  stateSince: number;
  /** See stamp(). */
  lastSeen: number;
  susp?: Suspicion;
  /** Leaver's signature, kept to relay the left notice. */
  leftSig?: string;
  /**
   * Our connection with the member: its index in State.warm while it holds
   * one (it talked to us, not closed since), else MET (it has talked to us
   * before: a probe to it is no first contact) or NEVER_MET. One number in
   * the entry instead of a Map of connected names per member.
   */
  warmAt: number;
  /** The probe round (State.probeRound) in which the member was placed in probeOrder; -1 = none yet. */
  probeRound: number;
}

export interface Conflict {
  name: string;
  known: { idPub: string; addr: string };
  other: { idPub: string; addr: string };
  lastSeen: number;
}

export interface Probe {
  seq: number;
  target: string;
  start: number;
  /** Indirect stage and end of the probe, scaled by local health when the probe started. */
  timeout: number;
  period: number;
  indirectSent: boolean;
  /** The transport could not deliver the direct ping (connection refused, dial timeout). */
  directFailed: boolean;
  /** Helpers asked for an indirect probe, and how many reported they could not reach the target either. */
  helpers: number;
  nacks: number;
}

export interface Relay {
  requester: Destination;
  origSeq: number;
  deadline: number;
}

export interface JoinState {
  anchors: string[];
  peers: { name: string; addresses: string[] }[];
  /** True while no other member is alive and there is somewhere to (re)join. */
  active: boolean;
  attempt: number;
  next: number;
  since: number;
  /** One of our join messages came back to us: some anchor address is this very agent. */
  selfLoop: boolean;
}

export interface State {
  t: GossipTiming;
  /** Whole ms: the clock when the membership was made, origin of the Entry times (stamp()). */
  epoch: number;
  rng: () => number;
  secretKey: Uint8Array;
  selfName: string;
  selfPub: string;
  entries: Map<string, Entry>;
  queue: BroadcastQueue;
  counters: Map<string, number>;
  conflicts: Map<string, Conflict>;
  hash: string | null;
  leftAt: number | null;
  seq: number;
  probes: Map<number, Probe>;
  /** Lifeguard local health score, 0 = healthy (probe.ts). */
  health: number;
  /** Measured round trip of direct probes (probe.ts rto()). */
  rtt: { srtt: number | null; rttvar: number };
  /** Probes given up on, kept a little so a late ack still teaches the round-trip estimate. */
  lateProbes: Map<number, { start: number; target: string }>;
  relays: Map<number, Relay>;
  probeOrder: string[];
  /** Counts the shuffles of probeOrder; an entry stamped with the current one is in it (no Set of N names per member). */
  probeRound: number;
  probeIndex: number;
  nextProbe: number;
  nextGossip: number;
  nextSync: number;
  nextReconnect: number;
  /** Last time we showed a member our record unasked: one we hold dead talks to us, or one holds us suspect at an old incarnation (rate limit). */
  nudged: Map<string, number>;
  /** Earliest time we may start a digest sync with an unknown sender again. */
  nextCurious: number;
  join: JoinState;
  /** Lists derived from `entries`, rebuilt lazily after touch(): see derived(). */
  derived: Derived | null;
  /** Members that talked to us over a connection not reported closed since: gossiping to them costs no handshake. Bounded by the open connections (disconnected() and reap() remove them). */
  warm: Entry[];
  /** Names that talked to us, still connected, that we hold no entry for yet: they join `warm` when their entry is made. */
  strangers: Set<string>;
}

/**
 * What the loops need from `entries` on every call (the live count, the
 * members to gossip to, the suspicions to time out), computed once per change
 * instead of once per call: at a thousand members a scan per message made the
 * state machine quadratic. Every state change calls touch(), which drops it.
 */
interface Derived {
  live: number;
  /** Other members by the states asked for (key: the states joined), in `entries` order. */
  lists: Map<string, readonly Entry[]>;
  /** Entries with a timer of their own: suspects (suspicion deadline) and leavers (retention). */
  timed: readonly Entry[];
}

/** Per-call effects collector. */
export interface Ctx { now: number; send: Outgoing[]; events: MemberEvent[]; from?: PeerInfo }

export const STATE_CODE: Record<MemberState, StateCode> = { alive: 0, suspect: 1, dead: 2, left: 3 };
export const CODE_STATE: MemberState[] = ['alive', 'suspect', 'dead', 'left'];

/**
 * A time as stored in an Entry: whole milliseconds since the membership was
 * made (State.epoch). Every member holds an entry per member, so at 10,000
 * members (the simulator) that is 10^8 entries; V8 keeps a small integer
 * inside the object, but a fractional or epoch-sized time (2^40 ms) in a
 * separate 16-byte heap number per field. No rule needs the
 * sub-millisecond part of when a state began or when a member was last heard.
 */
export function stamp(s: State, now: number): number {
  const t = Math.floor(now) - s.epoch;
  // `| 0` makes it a small integer to V8 (the difference of two heap numbers stays one); past 2^31 ms, 24 days, it stays a plain number.
  return t >= 0 && t < 2 ** 31 ? t | 0 : t;
}

/** The clock time of an Entry time (stamp()). */
export function unstamp(s: State, t: number): number {
  return t + s.epoch;
}

export function count(s: State, what: string): void {
  s.counters.set(what, (s.counters.get(what) ?? 0) + 1);
}

/** Called on every change that the anti-entropy digest sees. */
export function touch(s: State): void {
  s.hash = null;
  s.derived = null;
}

function derived(s: State): Derived {
  if (s.derived) return s.derived;
  let live = 0;
  const timed: Entry[] = [];
  for (const e of s.entries.values()) {
    if (isLive(e)) live++;
    if (e.state === 'suspect' || e.state === 'left') timed.push(e);
  }
  s.derived = { live, lists: new Map(), timed };
  return s.derived;
}

export function isLive(e: Entry | undefined): boolean {
  return !!e && (e.state === 'alive' || e.state === 'suspect');
}

/** Members that are alive or suspect, self included: the n of the timing formulas. */
export function liveCount(s: State): number {
  return derived(s).live;
}

/** Suspects and leavers, self included, in `entries` order: the entries whose timers tick() must watch. */
export function timedEntries(s: State): readonly Entry[] {
  return derived(s).timed;
}

export function destOf(e: Entry): Destination {
  return { name: e.signed.record.name, addresses: [...e.signed.record.addresses] };
}

export function selfEntry(s: State): Entry {
  const e = s.entries.get(s.selfName);
  if (!e) throw new Error('membership: self entry missing');
  return e;
}

/** Other members in the given states, in `entries` order. Shared until the next change: never mutate it. */
export function others(s: State, states: readonly MemberState[]): readonly Entry[] {
  const d = derived(s);
  const key = states.join();
  let list = d.lists.get(key);
  if (!list) {
    const out: Entry[] = [];
    for (const e of s.entries.values()) if (e.signed.record.name !== s.selfName && states.includes(e.state)) out.push(e);
    d.lists.set(key, out);
    list = out;
  }
  return list;
}

/**
 * Sends `msg()` to a member unasked, at most once per probe period per member
 * (`nudged`): used to show our own state to a member that holds an outdated
 * view of us, or that we hold dead while it talks to us.
 */
export function nudge(s: State, ctx: Ctx, to: Destination, msg: () => GossipMessage): void {
  const name = to.name ?? '';
  const last = s.nudged.get(name) ?? -Infinity;
  if (ctx.now - last < s.t.probeInterval) return;
  s.nudged.set(name, ctx.now);
  ctx.send.push({ to, msg: msg() });
}

/** Entry.warmAt when the member holds no connection with us. */
export const NEVER_MET = -1;
export const MET = -2;

/** It has talked to us over a connection at least once: a probe to it is no first contact. */
export function isMet(e: Entry): boolean {
  return e.warmAt !== NEVER_MET;
}

/** Records whether we hold a connection with `name` (it talked to us; not closed since). */
export function setWarm(s: State, name: string, on: boolean): void {
  const e = s.entries.get(name);
  if (!e) {
    if (on) s.strangers.add(name);
    else s.strangers.delete(name);
    return;
  }
  if (on && e.warmAt < 0) {
    e.warmAt = s.warm.length;
    s.warm.push(e);
  } else if (!on && e.warmAt >= 0) {
    const last = s.warm.pop() as Entry;
    if (last !== e) {
      s.warm[e.warmAt] = last;
      last.warmAt = e.warmAt;
    }
    e.warmAt = MET;
  }
}

/** Adds the entry of a member; a sender already connected to us is warm (and met) from the start. */
export function addEntry(s: State, name: string, e: Entry): void {
  s.entries.set(name, e);
  if (s.strangers.delete(name)) setWarm(s, name, true);
}

/** Removes the entry of a member; its connection, if any, is remembered for a next entry under that name. */
export function removeEntry(s: State, name: string): void {
  const e = s.entries.get(name);
  if (!e) return;
  const connected = e.warmAt >= 0;
  setWarm(s, name, false);
  s.entries.delete(name);
  if (connected) s.strangers.add(name);
}

/**
 * One gossip target: while some live members are still strangers to us (a
 * join storm), with probability gossipWarmShare a member we already hold a
 * connection with (no handshake on either end), otherwise any member of
 * `live`, uniformly. The uniform draws keep the epidemic reaching members
 * nobody talks to yet. Undefined when the draw lands on a member that is no
 * longer live; the caller draws again.
 */
export function drawGossipTarget(s: State, live: readonly Entry[]): Entry | undefined {
  // Once we talk with (about) everyone, as at rest, every draw is the plain uniform one.
  if (s.warm.length > 0 && s.warm.length < live.length && s.rng() < s.t.gossipWarmShare) {
    const e = s.warm[Math.floor(s.rng() * s.warm.length)] as Entry;
    return isLive(e) ? e : undefined;
  }
  return live[Math.floor(s.rng() * live.length)];
}

/**
 * Up to k distinct random picks (a Fisher-Yates prefix), using the injected
 * rng. The swaps are kept in a small map instead of a copy of `items`, so
 * picking 3 gossip targets among 10,000 members costs 3 steps, not 10,000;
 * the picks and the rng draws are exactly those of the plain shuffle.
 */
export function pick<T>(items: readonly T[], k: number, rng: () => number): T[] {
  const n = items.length;
  const m = Math.min(k, n);
  const moved = new Map<number, T>();
  const at = (i: number): T => (moved.has(i) ? (moved.get(i) as T) : (items[i] as T));
  const out: T[] = [];
  for (let i = 0; i < m; i++) {
    const j = i + Math.floor(rng() * (n - i));
    out.push(at(j));
    moved.set(j, at(i));
  }
  return out;
}

export function emit(ctx: Ctx, type: MemberEventType, name: string, incarnation: number, detail?: string): void {
  ctx.events.push(detail === undefined ? { type, name, incarnation } : { type, name, incarnation, detail });
}

/**
 * Lifeguard's local health: failed probes and suspicions of ourselves raise a
 * score (0..MAX_HEALTH), successful probes lower it, and probe timeouts and
 * intervals are multiplied by 1 + score. An agent starved of CPU or on a
 * lossy link then probes less and waits longer instead of accusing healthy
 * members of its own slowness.
 */
export const MAX_HEALTH = 8;

export function healthMultiplier(s: State): number {
  return 1 + s.health;
}

export function worseHealth(s: State): void {
  s.health = Math.min(MAX_HEALTH, s.health + 1);
}

/** Round-trip estimate, TCP style (srtt + 4 × rttvar), from direct acks; 0 until measured. */
export function rto(s: State): number {
  return s.rtt.srtt === null ? 0 : s.rtt.srtt + 4 * s.rtt.rttvar;
}
