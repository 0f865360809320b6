/**
 * Joining and rejoining. While no other member is alive, send a digest sync
 * to every anchor, every persisted peer and every dead member, again and
 * again with capped jittered backoff, forever: any one answering is enough.
 * While the cluster is up, retry one random dead member every
 * reconnectInterval so a split cluster merges without a restart.
 */
import type { Destination } from '../net/transport';
import type { Ctx, State } from './state';
import { deadIds, destOf, entriesOf, liveIds, pick, selfEntry, unmetAnchorAddresses } from './state';
import { digestMessages, syncHashMessage } from './sync';
import { backoffDelay } from './timing';

export function otherAlive(s: State): boolean {
  return liveIds(s).length > 0;
}

/** Everywhere we could (re)join through: anchors, persisted peers, dead members; deduplicated. */
export function joinTargets(s: State): Destination[] {
  const out: Destination[] = [];
  const seenAddr = new Set<string>(selfEntry(s).signed.record.addresses);
  const seenName = new Set<string>([s.selfName]);
  const add = (d: Destination): void => {
    if (d.name !== undefined && seenName.has(d.name)) return;
    const addrs = d.addresses.filter((a) => !seenAddr.has(a));
    if (addrs.length === 0) return;
    addrs.forEach((a) => seenAddr.add(a));
    if (d.name !== undefined) seenName.add(d.name);
    out.push(d.name !== undefined ? { name: d.name, addresses: addrs } : { addresses: addrs });
  };
  for (const a of s.join.anchors) add({ addresses: [a] });
  for (const e of entriesOf(s, deadIds(s))) add(destOf(e));
  for (const p of s.join.peers) {
    const e = s.entries.get(p.name);
    if (e && e.state === 'left') continue;
    add(e ? destOf(e) : { name: p.name, addresses: p.addresses });
  }
  return out;
}

function sendJoin(s: State, ctx: Ctx, targets: Destination[]): void {
  const msgs = digestMessages(s);
  for (const to of targets) for (const msg of msgs) ctx.send.push({ to, msg });
}

/** Re-evaluates whether we are isolated; sends the join round when due. */
export function joinTick(s: State, ctx: Ctx): void {
  const j = s.join;
  if (otherAlive(s)) {
    if (j.active) {
      j.active = false;
      j.attempt = 0;
      // Joined: compare digests soon, so a straggler does not wait a whole sync interval.
      s.nextSync = Math.min(s.nextSync, ctx.now + Math.round(s.t.syncInterval / 4));
    }
    return;
  }
  const targets = joinTargets(s);
  // The only target is ourselves (the first anchor of a new cluster): nothing to join.
  if (targets.length === 0 || (targets.length === 1 && j.selfLoop)) {
    j.active = false;
    return;
  }
  if (!j.active) {
    j.active = true;
    j.attempt = 0;
    j.next = ctx.now;
    j.since = ctx.now;
  }
  if (ctx.now < j.next) return;
  sendJoin(s, ctx, targets);
  j.next = ctx.now + backoffDelay(j.attempt, s.t.joinRetryMin, s.t.joinRetryMax, s.rng);
  j.attempt += 1;
}

/** How soon a node a peer refused as not admitted tries again: the admin may be admitting it right now. */
export const REFUSED_RETRY_MS = 5000;

/**
 * A peer refused us as not admitted (or removed): while we are alone, join
 * again within REFUSED_RETRY_MS rather than after a backoff grown to its
 * maximum, so that an admission is taken up within seconds. A refused attempt
 * costs the peer one handshake, under its listener's limits.
 */
export function retrySoon(s: State, now: number): void {
  const j = s.join;
  if (j.active) j.next = Math.min(j.next, now + REFUSED_RETRY_MS);
}

/**
 * Anchors that no live member advertises. Members that found each other while
 * an anchor was down would otherwise form a cluster of their own and never
 * meet the one that grows around the anchor once it is back: a silent split.
 * (An anchor given by host name never matches an advertised address; it only
 * costs one digest hash per reconnect interval.)
 */
export function unmetAnchors(s: State): Destination[] {
  return unmetAnchorAddresses(s).map((a) => ({ addresses: [a] }));
}

/** With the cluster up: compare digest hashes with one random dead member and one unmet anchor now and then. */
export function reconnectTick(s: State, ctx: Ctx): void {
  if (ctx.now < s.nextReconnect) return;
  s.nextReconnect = ctx.now + Math.round(s.t.reconnectInterval * (0.75 + 0.5 * s.rng()));
  if (!otherAlive(s)) return;
  const [dead] = entriesOf(s, pick(deadIds(s), 1, s.rng));
  const [anchor] = pick(unmetAnchors(s), 1, s.rng);
  for (const to of [dead ? destOf(dead) : null, anchor ?? null]) {
    if (to) ctx.send.push({ to, msg: syncHashMessage(s) });
  }
}

/** The one status problem of an isolated node (the daemon adds none of its own for that cause), from the second failed round on. */
export function joinProblem(s: State): string | null {
  const j = s.join;
  if (!j.active || j.attempt < 2) return null;
  const names = joinTargets(s)
    .slice(0, 5)
    .map((d) => d.name ?? d.addresses[0] ?? '?')
    .join(', ');
  return `cannot reach any anchor or known peer (${names}) after ${j.attempt} attempts: check that their agents run and that their gossip port is reachable from here (hepto-agent doctor); retrying with backoff`;
}
