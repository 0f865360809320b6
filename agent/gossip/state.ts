/**
 * The membership state shared by the rule modules (rules.ts, probe.ts,
 * sync.ts, join.ts). Plain data plus tiny helpers; no I/O.
 */
import type { Destination, PeerInfo } from '../net/transport';
import type { GossipMessage } from './messages';
import type { BroadcastQueue } from './dissemination';
import type { GossipTiming } from './timing';
import type { Entry, EntryInit, MemberTable } from './table';
import type { TimerHeap } from './timers';
import type { Admission } from '../admin/admission';
import type { Refusal } from './admissions';
import type { RotationHeld } from './rotations';
import type { ClaimLedger } from './claims';
import type { NewNameLedger } from './newnames';
import type { VerifyBudget } from './signatures';
import { CODE_STATE, MET, NEVER_MET, STATE_CODE } from './table';

export type { Entry, Suspicion } from './table';
export { CODE_STATE, MET, NEVER_MET, STATE_CODE };

export interface Outgoing {
  to: Destination;
  msg: GossipMessage;
}
export type MemberEventType =
  'alive' | 'suspect' | 'dead' | 'left' | 'updated' | 'conflict' | 'refuted' | 'refused' | 'admission' | 'admitted' | 'removed' | 'rotation' | 'bad-signature';
export interface MemberEvent {
  type: MemberEventType;
  name: string;
  incarnation: number;
  detail?: string;
}
/** What one call asks of the shell: messages to send, events to report, and connections to close as trimmed (active-view.ts). */
export interface Step {
  send: Outgoing[];
  events: MemberEvent[];
  close?: string[];
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
  /** How many helpers were asked for an indirect probe. */
  helpers: number;
  /** Those of them that have not yet reported that they could not reach the target either (a nack). */
  asked: string[];
  /** The target was already suspect when the probe started: no indirect stage, it fails at its timeout. */
  quick: boolean;
  /** The target's incarnation when the probe started: a failure says nothing of a newer one (probe.ts failProbe). */
  inc: number;
  /** A first contact while members arrive: its failure suspects nobody (probe.ts startProbe). */
  lenient: boolean;
}

export interface Relay {
  requester: Destination;
  origSeq: number;
  /** When to tell the requester we had no answer either (a nack); Infinity once told, or when we would not know (probe.ts onPingReq). */
  nackAt: number;
  /** Until then a late ack is still passed on. */
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
  /** A join message reached this very agent (the transport said so): some anchor address is one of ours. */
  selfLoop: boolean;
}

/** What failure detection holds (probe.ts): probes under way, relays for others, the probing order, local health and round trips. */
export interface ProbeState {
  /** Our probes under way, by sequence number. */
  active: Map<number, Probe>;
  /** Probes given up on, kept a little so a late ack still teaches the round-trip estimate. */
  late: Map<number, { start: number; target: string }>;
  /** Pings we relay for other members' indirect probes, by our sequence number. */
  relays: Map<number, Relay>;
  /** Member ids (MemberTable), in probing order. */
  order: number[];
  /** Counts the shuffles of `order`; an entry stamped with the current one is in it (no Set of N names per member). */
  round: number;
  /** Next position in `order`. */
  index: number;
  /** Lifeguard local health score, 0 = healthy (healthMultiplier). */
  health: number;
  /** Measured round trip of direct probes (rto()). */
  rtt: { srtt: number | null; rttvar: number };
  /** The last direct round trip to each member probed (at most MAX_LAST_RTT, the oldest dropped first): a quick probe waits for it. */
  lastRtt: Map<string, number>;
}

export interface State {
  t: GossipTiming;
  rng: () => number;
  secretKey: Uint8Array;
  selfName: string;
  selfPub: string;
  entries: MemberTable;
  queue: BroadcastQueue;
  counters: Map<string, number>;
  conflicts: Map<string, Conflict>;
  /** admin_pub (text form) when names are pinned (admissions.ts); null: any identity may take a free name. */
  adminPub: string | null;
  /** The newest admission known per name. */
  admissions: Map<string, Admission>;
  /** Granted uses seen per invitation id: identity → grant time (admissions.ts withinUses). */
  invUses: Map<string, Map<string, number>>;
  /** Invitations whose order of uses changed since members were last checked against it (admissions.ts evictOverUsed). */
  invChanged: Set<string>;
  /** Removals signed by the admin, by the removed identity (removals.ts). */
  removals: Map<string, Admission>;
  /** Per sender: signature checks left this sync interval (signatures.ts). */
  verifyBudgets: Map<string, VerifyBudget>;
  /** Per sender: tokens for new suspicions and its refuted claims (claims.ts). */
  claims: Map<string, ClaimLedger>;
  /** The newest key rotation held: its schedule and every box (rotations.ts). */
  rotation: RotationHeld | null;
  /** Identities refused for want of an admission, by name and identity (for status). */
  refusals: Map<string, Refusal>;
  leftAt: number | null;
  seq: number;
  /** Failure detection (probe.ts). */
  probe: ProbeState;
  nextProbe: number;
  nextGossip: number;
  nextSync: number;
  nextReconnect: number;
  /** Last time we showed a member our record unasked: one we hold dead talks to us, or one holds us suspect at an old incarnation (rate limit). */
  nudged: Map<string, number>;
  /** Earliest time we may start a digest sync with an unknown sender again. */
  nextCurious: number;
  join: JoinState;
  /** Ids of the entries in name order (sync.ts), until an entry is added or removed. */
  sortedIds: number[] | null;
  /** Suspicion deadlines and left-member retention, earliest first (rules.ts runTimers()). */
  timers: TimerHeap;
  /** Members that talked to us over a connection not reported closed since: gossiping to them costs no handshake. Bounded by the open connections (disconnected() and the left-member timer in runTimers() remove them). */
  warm: number[];
  /**
   * The bounded connections (active-view.ts): neighbours we picked ourselves,
   * when trims and fills next run, when a member last came alive to us, and
   * when the next member outside the view is checked.
   */
  active: { chosen: Set<string>; next: number; nextFill: number; learntAt: number; nextCheck: number };
  /** Names that talked to us, still connected, that we hold no entry for yet: they join `warm` when their entry is made. */
  strangers: Set<string>;
  /** Per sender: tokens for names new to us (newnames.ts). */
  newNames: Map<string, NewNameLedger>;
  /** Dead names forgotten after their retention, with the incarnation and when, oldest first (newnames.ts). */
  forgotten: Map<string, { inc: number; at: number }>;
  /** What the daemon wants told (metrics, logs of internal errors); no-ops by default. */
  hooks: GossipHooks;
}

/**
 * Calls out of the pure core for what only the daemon can do with it
 * (metrics, logs): plain callbacks, no I/O here. Membership.setHooks sets them.
 */
export interface GossipHooks {
  /** An error caught inside the core (a bug): `kind` is one of a few fixed words, `error` the thrown value. */
  internalError?(kind: string, error: unknown): void;
  /** The round trip of a direct probe answered by its target, in ms. */
  probeRtt?(ms: number): void;
}

/** Per-call effects collector. */
export interface Ctx {
  now: number;
  send: Outgoing[];
  events: MemberEvent[];
  from?: PeerInfo;
  close?: string[];
  /**
   * A member arrived in this call: new to us, or back from dead or left (rules.ts
   * applyAlive). A suspect that refuted, or answered our probe, was live all along
   * and is no arrival (active-view.ts: while members arrive, no trims).
   */
  arrived?: boolean;
}

/** Whether members still arrive (a join storm, a merge): one came alive to us less than a sync interval ago (active-view.ts). */
export function arriving(s: State, now: number): boolean {
  return now - s.active.learntAt < s.t.syncInterval;
}

/**
 * Connections held at most while members arrive: four times activeMax.
 * Arrivals lift the bound (their records travel faster over more
 * connections), but a steady stream of them, such as a rolling restart of
 * every agent, must not grow each agent's connections to the whole cluster.
 * Twice activeMax was tried: the N = 300 join on loopback sockets then closed
 * and dialled again connections it still needed, and converged later.
 */
export function arrivalBound(s: State): number {
  return 4 * s.t.activeMax;
}

/** Whether the active view applies (active-view.ts): more other members are live than activeMax. */
export function activeMode(s: State): boolean {
  return s.t.activeMax > 0 && s.entries.live.length > s.t.activeMax;
}

/** Whether one of our probes of `name` is under way. */
export function isProbing(s: State, name: string): boolean {
  for (const p of s.probe.active.values()) if (p.target === name) return true;
  return false;
}

export function count(s: State, what: string): void {
  s.counters.set(what, (s.counters.get(what) ?? 0) + 1);
}

/** An error caught inside the core: counted as before ('internal-error'), and handed to the daemon to log and count by kind. */
export function internalError(s: State, kind: string, error: unknown): void {
  count(s, 'internal-error');
  try {
    s.hooks.internalError?.(kind, error);
  } catch {
    // A hook never breaks the core.
  }
}

/** When the earliest member timer is due: the wakeup reads it after every call. */
export function nextTimer(s: State): number {
  return s.timers.next();
}

/** Arms a member timer: a suspicion deadline (also when a confirmation brings it nearer) or a leaver's retention. */
export function addTimer(s: State, at: number, e: Entry): void {
  s.timers.push(at, e.id);
}

export function isLive(e: Entry | undefined): boolean {
  return !!e && (e.state === 'alive' || e.state === 'suspect');
}

/** Members that are alive or suspect, self included: the n of the timing formulas. */
export function liveCount(s: State): number {
  const t = s.entries;
  const self = t.stateOf[t.self];
  return t.live.length + (t.has(t.self) && (self === STATE_CODE.alive || self === STATE_CODE.suspect) ? 1 : 0);
}

/**
 * Anchor addresses that neither we nor any live member advertise. Every
 * member asks each reconnect interval; the table counts the members holding
 * each anchor address at every write (MemberTable.watch), where a scan of
 * every record each time was a third of the simulator's time at rest.
 */
export function unmetAnchorAddresses(s: State): string[] {
  return s.join.anchors.filter((a) => !((s.entries.held.get(a) ?? 0) > 0));
}

export function destOf(e: Entry): Destination {
  return { name: e.signed.record.name, addresses: [...e.signed.record.addresses] };
}

/**
 * Where a reply (an ack, a digest) to `from` goes: its record's addresses
 * when we hold its record under that identity, so a reply can dial again if
 * the connection dropped. With bounded connections, only over an open
 * connection: one we just closed as trimmed would be dialled again by every
 * late reply (active-view.ts), and the peer stops waiting for them.
 */
export function replyDest(s: State, from: PeerInfo): Destination {
  const e = s.entries.get(from.name);
  return e && e.signed.record.id_pub === from.idPub && !activeMode(s) ? destOf(e) : { name: from.name, addresses: [] };
}

export function selfEntry(s: State): Entry {
  const e = s.entries.get(s.selfName);
  if (!e) throw new Error('membership: self entry missing');
  return e;
}

/** Ids of the other members that are alive or suspect (MemberTable.live: copy it to keep it). */
export function liveIds(s: State): readonly number[] {
  return s.entries.live;
}

/** Ids of the members held dead (MemberTable.dead: copy it to keep it). */
export function deadIds(s: State): readonly number[] {
  return s.entries.dead;
}

/** The entries of some ids. */
export function entriesOf(s: State, ids: readonly number[]): Entry[] {
  return ids.map((id) => s.entries.at(id));
}

/**
 * Sends `msg()` to a member unasked, at most once per probe period per member
 * (`nudged`): used to show our own state to a member that holds an outdated
 * view of us, or that we hold dead while it talks to us.
 */
export function nudge(s: State, ctx: Ctx, to: Destination, msg: () => GossipMessage | GossipMessage[], key: string = to.name ?? ''): void {
  const last = s.nudged.get(key) ?? -Infinity;
  if (ctx.now - last < s.t.probeInterval) return;
  s.nudged.set(key, ctx.now);
  const m = msg();
  for (const one of Array.isArray(m) ? m : [m]) ctx.send.push({ to, msg: one });
}

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
    s.warm.push(e.id);
  } else if (!on && e.warmAt >= 0) {
    const last = s.warm.pop() as number;
    if (last !== e.id) {
      s.warm[e.warmAt] = last;
      s.entries.at(last).warmAt = e.warmAt;
    }
    e.warmAt = MET;
  }
}

/** Adds the entry of a member; a sender already connected to us is warm (and met) from the start. */
export function addEntry(s: State, name: string, init: EntryInit): Entry {
  const known = s.entries.get(name) !== undefined;
  const e = s.entries.add(name, init);
  if (!known) s.sortedIds = null; // a replaced entry keeps its id, and its place in name order
  if (s.strangers.delete(name)) setWarm(s, name, true);
  return e;
}

/** Removes the entry of a member; its connection, if any, is remembered for a next entry under that name. */
export function removeEntry(s: State, name: string): void {
  const e = s.entries.get(name);
  if (!e) return;
  const connected = e.warmAt >= 0;
  setWarm(s, name, false);
  s.entries.delete(name);
  s.sortedIds = null;
  if (connected) s.strangers.add(name);
}

/**
 * One gossip target. With bounded connections, a random neighbour. Otherwise, while some live members are still strangers to us (a
 * join storm), with probability gossipWarmShare a member we already hold a
 * connection with (no handshake on either end), otherwise any member of
 * `live`, uniformly. The uniform draws keep the epidemic reaching members
 * nobody talks to yet. Undefined when the draw lands on a member that is no
 * longer live; the caller draws again.
 */
export function drawGossipTarget(s: State, live: readonly number[], now: number): Entry | undefined {
  // With bounded connections, only neighbours (active-view.ts), once no member has come alive to us
  // for a sync interval: while they still arrive (a join storm, a merge), the draws below, where some
  // go to members we hold no connection with, spread the news faster than the neighbours alone,
  // up to arrivalBound connections.
  if (activeMode(s) && s.warm.length > 0 && (!arriving(s, now) || s.warm.length >= arrivalBound(s))) {
    const e = s.entries.at(s.warm[Math.floor(s.rng() * s.warm.length)] as number);
    return isLive(e) ? e : undefined;
  }
  // Once we talk with (about) everyone, as at rest, every draw is the plain uniform one.
  if (s.warm.length > 0 && s.warm.length < live.length && s.rng() < s.t.gossipWarmShare) {
    const e = s.entries.at(s.warm[Math.floor(s.rng() * s.warm.length)] as number);
    return isLive(e) ? e : undefined;
  }
  const id = live[Math.floor(s.rng() * live.length)];
  return id === undefined ? undefined : s.entries.at(id);
}

/**
 * Up to k distinct random picks (a Fisher-Yates prefix), using the injected
 * rng. The swaps are kept in a small map instead of a copy of `items`, so
 * picking 3 gossip targets among 10,000 members costs 3 steps, not 10,000;
 * the picks and the rng draws are exactly those of the plain shuffle.
 */
export function pick<T>(items: readonly T[], k: number, rng: () => number): T[] {
  return pickWhere(items, k, rng, () => true);
}

/** A shuffled copy of `items`: the same order and rng draws as pick(items, items.length), without the map of swaps. */
export function shuffled<T>(items: readonly T[], rng: () => number): T[] {
  const out = items.slice();
  for (let i = 0; i < out.length; i++) {
    const j = i + Math.floor(rng() * (out.length - i));
    const x = out[j] as T;
    out[j] = out[i] as T;
    out[i] = x;
  }
  return out;
}

/**
 * Up to k distinct random picks among the items that pass `ok`: the
 * Fisher-Yates prefix of pick(), walked until k pass. When most items pass
 * (alive members among the live ones) that is about k steps, without a
 * filtered copy of the list.
 */
export function pickWhere<T>(items: readonly T[], k: number, rng: () => number, ok: (item: T) => boolean): T[] {
  const n = items.length;
  const moved = new Map<number, T>();
  const at = (i: number): T => (moved.has(i) ? (moved.get(i) as T) : (items[i] as T));
  const out: T[] = [];
  for (let i = 0; i < n && out.length < k; i++) {
    const j = i + Math.floor(rng() * (n - i));
    const item = at(j);
    moved.set(j, at(i));
    if (ok(item)) out.push(item);
  }
  return out;
}

export function emit(ctx: Ctx, type: MemberEventType, name: string, incarnation: number, detail?: string): void {
  ctx.events.push(detail === undefined ? { type, name, incarnation } : { type, name, incarnation, detail });
}
