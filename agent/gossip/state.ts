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
  stateSince: number;
  lastSeen: number;
  susp?: Suspicion;
  /** Leaver's signature, kept to relay the left notice. */
  leftSig?: string;
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
  probeIndex: number;
  nextProbe: number;
  nextGossip: number;
  nextSync: number;
  nextReconnect: number;
  /** Last time we nudged a member we hold dead but who talks to us (rate limit). */
  nudged: Map<string, number>;
  /** Earliest time we may start a digest sync with an unknown sender again. */
  nextCurious: number;
  join: JoinState;
}

/** Per-call effects collector. */
export interface Ctx { now: number; send: Outgoing[]; events: MemberEvent[]; from?: PeerInfo }

export const STATE_CODE: Record<MemberState, StateCode> = { alive: 0, suspect: 1, dead: 2, left: 3 };
export const CODE_STATE: MemberState[] = ['alive', 'suspect', 'dead', 'left'];

export function count(s: State, what: string): void {
  s.counters.set(what, (s.counters.get(what) ?? 0) + 1);
}

/** Called on every change that the anti-entropy digest sees. */
export function touch(s: State): void {
  s.hash = null;
}

export function isLive(e: Entry | undefined): boolean {
  return !!e && (e.state === 'alive' || e.state === 'suspect');
}

/** Members that are alive or suspect, self included: the n of the timing formulas. */
export function liveCount(s: State): number {
  let n = 0;
  for (const e of s.entries.values()) if (isLive(e)) n++;
  return n;
}

export function destOf(e: Entry): Destination {
  return { name: e.signed.record.name, addresses: [...e.signed.record.addresses] };
}

export function selfEntry(s: State): Entry {
  const e = s.entries.get(s.selfName);
  if (!e) throw new Error('membership: self entry missing');
  return e;
}

/** Other members in the given states. */
export function others(s: State, states: readonly MemberState[]): Entry[] {
  const out: Entry[] = [];
  for (const e of s.entries.values()) if (e.signed.record.name !== s.selfName && states.includes(e.state)) out.push(e);
  return out;
}

/** Up to k distinct random picks (Fisher-Yates prefix), using the injected rng. */
export function pick<T>(items: T[], k: number, rng: () => number): T[] {
  const a = items.slice();
  const m = Math.min(k, a.length);
  for (let i = 0; i < m; i++) {
    const j = i + Math.floor(rng() * (a.length - i));
    const tmp = a[i] as T;
    a[i] = a[j] as T;
    a[j] = tmp;
  }
  return a.slice(0, m);
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
