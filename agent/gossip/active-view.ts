/**
 * Bounded connections (issue 16), after HyParView (Leitão, Pereira,
 * Rodrigues, DSN 2007). Every member still learns every other one (wesher's
 * join list and status need the whole membership), but once more than
 * `activeMax` other members are live, this agent holds connections with an
 * active view only: `s.warm`, the members that talked to us over a
 * connection not closed since.
 *
 * - Fill: below activeTarget(n) neighbours, probe random alive members we
 *   hold no connection with; their ack makes them warm. Those are `chosen`:
 *   neighbours this agent picked itself, uniformly from the membership.
 * - Trim: above activeMax (arrivalBound while members arrive), close
 *   connections (CLOSE_TRIMMED: the peer neither probes us for it nor counts
 *   it as a failure), incoming ones first. The
 *   chosen neighbours are kept up to the target, so members that keep
 *   dialling us (one attacker with many identities) can take the other slots
 *   but never all of them.
 * - Check: now and then, probe one member outside the view (check()).
 * - Probes, gossip, syncs and indirect helpers go to the active view
 *   (probe.ts, state.ts drawGossipTarget); a member is probed by its own
 *   neighbours. Dead members are still dialled now and then (join.ts
 *   reconnectTick), which is how a healed partition finds its other half.
 *
 * With activeMax other members or fewer, nothing here applies: everyone
 * talks with everyone, as before.
 */
import type { Ctx, Entry, State } from './state';
import { activeMode, arrivalBound, arriving, count, isLive, isProbing, liveCount, liveIds, pickWhere, setWarm, STATE_CODE } from './state';

/**
 * New neighbours dialled per probe period at most. Not more: members that
 * never answer (made up by a member holding the key, issue 14's attack 2)
 * would otherwise be probed as fast as fills fail.
 */
const FILL_PER_PERIOD = 1;
/** A member outside the active view is checked every this many reconnect intervals (check()). */
const CHECK_EVERY = 6;

/** The active view's state of a new member (State.active): no neighbour chosen yet, the first check a minute or so away. */
export function newActiveView(now: number, reconnectInterval: number): State['active'] {
  return { chosen: new Set(), next: now, nextFill: now, learntAt: now, nextCheck: now + CHECK_EVERY * reconnectInterval };
}

/** Whether `id` is an alive member we hold no connection with and are not probing: one a fill or a check may pick. */
function unconnected(s: State, id: number): boolean {
  const t = s.entries;
  return t.stateOf[id] === STATE_CODE.alive && t.at(id).warmAt < 0 && !isProbing(s, t.index.names[id] as string);
}

/** Neighbours this agent wants: log2(n) + 3, at most half the bound (the other half is for members that dial us). */
export function activeTarget(s: State): number {
  const n = Math.max(2, liveCount(s));
  return Math.min(Math.floor(s.t.activeMax / 2), Math.ceil(Math.log2(n)) + 3);
}

/** Live members we hold a connection with. */
export function activeIds(s: State): number[] {
  return s.warm.filter((id) => isLive(s.entries.at(id)));
}

/** Up to k random alive members other than `except` (an id): neighbours with bounded connections (anyone when none is left), else any live member. */
export function pickNeighbours(s: State, k: number, except = -1): Entry[] {
  const alive = (id: number): boolean => id !== except && s.entries.stateOf[id] === STATE_CODE.alive;
  let ids = activeMode(s) ? pickWhere(s.warm, k, s.rng, alive) : [];
  if (ids.length === 0) ids = pickWhere(liveIds(s), k, s.rng, alive);
  return ids.map((id) => s.entries.at(id));
}

/**
 * Fill and trim, every quarter probe period while the active view applies.
 * Returns the members to probe now: the fill (their acks make them warm) and
 * the check (a verdict on a member nobody holds a connection with).
 */
export function activeTick(s: State, ctx: Ctx): { fill: string[]; check: string[] } {
  const v = s.active;
  const none = { fill: [], check: [] };
  if (ctx.now < v.next) return none;
  v.next = ctx.now + Math.max(1, Math.round(s.t.probeInterval / 4));
  if (!activeMode(s)) {
    v.chosen.clear();
    return none;
  }
  for (const name of v.chosen) {
    const e = s.entries.get(name);
    if (!e || !isLive(e)) v.chosen.delete(name);
  }
  trim(s, ctx);
  return { fill: fill(s, ctx.now), check: check(s, ctx.now) };
}

/**
 * One random member we hold no connection with, probed every CHECK_EVERY
 * reconnect intervals. Nobody holds a connection with a member that never
 * answers (a machine gone before anyone picked it, or one made up by a member
 * holding the key): without this it would be held alive forever. Across the
 * cluster each member is so checked about once per period, for one handshake
 * per member per period.
 */
function check(s: State, now: number): string[] {
  const v = s.active;
  if (now < v.nextCheck) return [];
  v.nextCheck = now + Math.round(CHECK_EVERY * s.t.reconnectInterval * (0.75 + 0.5 * s.rng()));
  const t = s.entries;
  const [id] = pickWhere(liveIds(s), 1, s.rng, (x) => unconnected(s, x));
  if (id === undefined) return [];
  count(s, 'active-check');
  return [t.index.names[id] as string];
}

function fill(s: State, now: number): string[] {
  const want = activeTarget(s) - activeIds(s).length;
  if (want <= 0 || now < s.active.nextFill) return [];
  s.active.nextFill = now + s.t.probeInterval;
  const t = s.entries;
  const picks = pickWhere(liveIds(s), Math.min(want, FILL_PER_PERIOD), s.rng, (id) => unconnected(s, id));
  return picks.map((id) => {
    const name = t.index.names[id] as string;
    s.active.chosen.add(name);
    count(s, 'active-fill');
    return name;
  });
}

/**
 * Closes connections above activeMax: first those we did not choose, then
 * chosen ones above the target; never one we are probing (its ack is due).
 * While members still come alive to us (a join storm, a merge), the
 * connections carry their records, so only those above arrivalBound go.
 */
function trim(s: State, ctx: Ctx): void {
  let over = s.warm.length - (arriving(s, ctx.now) ? arrivalBound(s) : s.t.activeMax);
  if (over <= 0) return;
  const t = s.entries;
  const chosen = s.active.chosen;
  const nameOf = (id: number): string => t.index.names[id] as string;
  const free = (id: number): boolean => !isProbing(s, nameOf(id));
  const incoming = pickWhere(s.warm, over, s.rng, (id) => free(id) && !chosen.has(nameOf(id)));
  over -= incoming.length;
  const extraChosen = Math.max(0, Math.min(over, chosen.size - activeTarget(s)));
  const victims = [...incoming, ...pickWhere(s.warm, extraChosen, s.rng, (id) => free(id) && chosen.has(nameOf(id)))];
  for (const id of victims) closeLink(s, ctx, nameOf(id));
}

/** Asks the shell to close our connection with `name` as trimmed, and forgets it as a neighbour. */
function closeLink(s: State, ctx: Ctx, name: string): void {
  count(s, 'active-trim');
  s.active.chosen.delete(name);
  setWarm(s, name, false);
  (ctx.close ??= []).push(name);
}
