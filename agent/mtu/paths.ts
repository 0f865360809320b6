/**
 * The `paths` field of this agent's record (issue 15) and the path MTU
 * problems, pure. Every record change is signed and gossiped to everyone,
 * so `paths` is republished at most once a minute (PATHS_PUBLISH_MS) for
 * round-trip changes, and within PATHS_MIN_GAP_MS when an `up` or `mtu`
 * value changed (or a peer came or went).
 */
import type { MemberState, PathView } from '../../shared/member';
import { LIMITS } from '../gossip/messages';
import { WIREGUARD_OVERHEAD } from '../runtime/specs';
import type { LinkView } from './links';
import { byCodePoint } from '../../shared/order';

export const PATHS_PUBLISH_MS = 60_000;
/** The shortest gap between two publications, even for a change of up or mtu: a flapping link does not flood the cluster. */
export const PATHS_MIN_GAP_MS = 10_000;

/** Pairs of one member listed one line each; more make one line for that member. */
export const PAIR_LINES = 3;

/** The smallest cluster `mtu` the config takes (IPv6's minimum link MTU). */
const MIN_CONFIG_MTU = 1280;

/** The largest round trip a record may carry (agent/gossip/validate.ts). */
const MAX_RTT_MS = 600_000;

export interface PathsPeer {
  name: string;
  state: MemberState;
}

/**
 * The paths to every other member that is not gone (alive, suspect or dead:
 * a dead peer shows as down; a member that left has no entry) and that has
 * talked to this agent directly (a made-up member never has: issue 14's
 * fakes would otherwise fill this record), live ones first, then by name,
 * at most LIMITS.paths.
 */
export function buildPaths(self: string, peers: PathsPeer[], link: (name: string) => LinkView, mtus: Map<string, number | null>): Record<string, PathView> {
  const rank = (s: MemberState): number => (s === 'alive' || s === 'suspect' ? 0 : 1);
  const chosen = peers
    .filter((p) => p.name !== self && p.state !== 'left' && link(p.name).met)
    .sort((a, b) => rank(a.state) - rank(b.state) || byCodePoint(a.name, b.name))
    .slice(0, LIMITS.paths)
    .sort((a, b) => byCodePoint(a.name, b.name));
  const out: Record<string, PathView> = {};
  for (const p of chosen) {
    const l = link(p.name);
    const live = p.state === 'alive' || p.state === 'suspect';
    out[p.name] = { up: live && l.up, rtt_ms: l.rtt_ms === null ? null : Math.min(MAX_RTT_MS, Math.round(l.rtt_ms)), mtu: mtus.get(p.name) ?? null };
  }
  return out;
}

/** A round trip worth republishing: appeared, or moved by 2 ms and a fifth. */
function rttMoved(a: number | null, b: number | null): boolean {
  if (a === null || b === null) return a !== b;
  const d = Math.abs(a - b);
  return d >= 2 && d >= 0.2 * Math.max(a, b);
}

/** What changed from the published paths: nothing, round trips only, or something that matters now (up, mtu, a peer added or gone). */
export function pathsChange(prev: Record<string, PathView> | undefined, next: Record<string, PathView>): 'none' | 'rtt' | 'urgent' {
  const before = prev ?? {};
  const a = Object.keys(before);
  const b = Object.keys(next);
  if (a.length !== b.length || b.some((k) => !(k in before))) return 'urgent';
  let rtt = false;
  for (const k of b) {
    const x = before[k] as PathView;
    const y = next[k] as PathView;
    if (x.up !== y.up || x.mtu !== y.mtu) return 'urgent';
    if (rttMoved(x.rtt_ms, y.rtt_ms)) rtt = true;
  }
  return rtt ? 'rtt' : 'none';
}

/** When `next` may be published, given the last publication: null for never (nothing changed). */
export function publishAt(
  prev: Record<string, PathView> | undefined,
  lastAt: number | null,
  next: Record<string, PathView>,
  gapMs = PATHS_MIN_GAP_MS,
): number | null {
  const change = pathsChange(prev, next);
  if (change === 'none') return null;
  if (lastAt === null) return 0;
  return lastAt + (change === 'urgent' ? gapMs : PATHS_PUBLISH_MS);
}

/**
 * The entries of one `paths` below the cluster mtu, remembered per paths
 * object (a record is replaced, never changed, when it is updated): status
 * and the status line ask after every batch of member events, and a
 * thousand records of 256 entries each would otherwise be read every time.
 */
const lows = new WeakMap<object, { clusterMtu: number; lows: Array<[string, number]> }>();

function lowPaths(paths: Record<string, PathView>, clusterMtu: number): Array<[string, number]> {
  const hit = lows.get(paths);
  if (hit && hit.clusterMtu === clusterMtu) return hit.lows;
  const out: Array<[string, number]> = [];
  for (const [peer, p] of Object.entries(paths)) if (typeof p?.mtu === 'number' && p.mtu < clusterMtu) out.push([peer, p.mtu]);
  lows.set(paths, { clusterMtu, lows: out });
  return out;
}

export interface ProblemMember {
  name: string;
  state: MemberState;
  record: { paths?: Record<string, PathView> };
}

/**
 * One problem per pair of live members whose path MTU, as either of them
 * reports it, is below the cluster `mtu` (the smaller of the two reports),
 * smallest first.
 */
export function pathMtuProblems(members: ProblemMember[], clusterMtu: number): string[] {
  const live = new Set(members.filter((m) => m.state === 'alive' || m.state === 'suspect').map((m) => m.name));
  const pairs = new Map<string, { a: string; b: string; mtu: number }>();
  for (const m of members) {
    if (!live.has(m.name) || !m.record.paths) continue;
    for (const [peer, mtu] of lowPaths(m.record.paths, clusterMtu)) {
      if (peer === m.name || !live.has(peer)) continue;
      const [a, b] = m.name < peer ? [m.name, peer] : [peer, m.name];
      const key = `${a}\u0000${b}`;
      const cur = pairs.get(key);
      if (!cur || mtu < cur.mtu) pairs.set(key, { a, b, mtu });
    }
  }
  // A member low with more than PAIR_LINES peers gets one line: its own link is the narrow one
  // (a home's uplink), and a member reporting low values to everyone cannot flood status.
  const perMember = new Map<string, Array<{ a: string; b: string; mtu: number }>>();
  for (const p of pairs.values()) for (const n of [p.a, p.b]) perMember.set(n, [...(perMember.get(n) ?? []), p]);
  const wide = [...perMember].filter(([, ps]) => ps.length > PAIR_LINES).sort((x, y) => y[1].length - x[1].length || (x[0] < y[0] ? -1 : 1));
  const lines: string[] = [];
  const folded = new Set<{ a: string; b: string; mtu: number }>();
  for (const [name, ps] of wide) {
    const left = ps.filter((p) => !folded.has(p));
    if (left.length <= PAIR_LINES) continue;
    left.forEach((p) => folded.add(p));
    const low = Math.min(...left.map((p) => p.mtu));
    lines.push(
      `path MTU between ${name} and ${left.length} other members is below the cluster mtu ${clusterMtu} (smallest ${low} bytes): ` +
        `${name}'s own link is likely the narrow one: raise its MTU, or set "mtu" to ${Math.max(low, MIN_CONFIG_MTU)} or less in every machine's config (hepto-agent status --mesh shows each pair)`,
    );
  }
  return [...pairs.values()]
    .filter((p) => !folded.has(p))
    .sort((x, y) => x.mtu - y.mtu || (x.a < y.a ? -1 : x.a > y.a ? 1 : x.b < y.b ? -1 : 1))
    .map((p) => {
      const head = `path MTU between ${p.a} and ${p.b} is ${p.mtu} bytes, below the cluster mtu ${clusterMtu}`;
      // The config takes no mtu below IPv6's minimum (shared/config): only the links can be fixed.
      if (p.mtu < MIN_CONFIG_MTU) return `${head}, and hepto needs at least ${MIN_CONFIG_MTU}: raise the MTU of the links between them`;
      return (
        `${head}: set "mtu" to ${p.mtu} or less in every machine's config ` +
        `(wesher's interface then gets ${p.mtu} - ${WIREGUARD_OVERHEAD} = ${p.mtu - WIREGUARD_OVERHEAD} bytes), or raise the MTU of the links between them`
      );
    })
    .concat(lines);
}
