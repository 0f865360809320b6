/**
 * Overlay-IP collisions (issue 14). wesher derives a node's overlay IP from
 * its name (overlay-ip.ts), so two names can hash to one address. Which node
 * keeps it is decided by when THIS agent first saw each name, never by
 * anything a peer says: a record's created_at is the sender's word, and a
 * member forged `created_at: 0` to make an established node give its IP up.
 *
 * - Every node name a non-left member claims gets a sequence number in this
 *   agent's name ledger the first time the agent sees it (NameLedger,
 *   daemon/name-ledger.ts, persisted).
 * - A node hosted here enters the ledger only when it is pinned: the first
 *   time its wesher may start (no collision, and with anchors, gossip has
 *   found another member, so the view holds the cluster's names). Until
 *   then it counts as newer than every name known.
 * - A pinned hosted node always wins: a node that already has its overlay IP
 *   is never demoted by a newcomer, whatever the newcomer claims.
 * - Otherwise the name seen first wins (tie: the smaller name).
 * - A hosted node not yet pinned also yields to the names of dead members,
 *   so that it does not take the address of a node that is only away (a
 *   dead entry stays in the view a day once met, an hour otherwise).
 */
import type { HeptoConfig } from '../../shared/config/types';
import type { MemberState } from '../../shared/member';
import type { ClusterView } from './desired';
import { overlayIp } from './overlay-ip';
import { byCodePoint } from '../../shared/order';

export interface Claim {
  node: string;
  /** The member whose record names the node (this agent's name for hosted nodes). */
  member: string;
  hosted: boolean;
  /** Hosted: pinned in the ledger. Remote: its member is alive or suspect. */
  live: boolean;
  /** The ledger's sequence number for the name; Infinity when it has none yet. */
  seq: number;
}

const LIVE: MemberState[] = ['alive', 'suspect'];

/** Computed overlay IPs by net and name: every view refresh hashes every claimed name (FNV-1a 128 in BigInt). Emptied when full. */
const ipCache = new Map<string, string | null>();
const IP_CACHE_MAX = 16_384;

/** The overlay IP of a node name, or null when overlay_net is unusable (the config reports that). */
export function safeOverlayIp(name: string, net: string): string | null {
  const key = `${net} ${name}`;
  const hit = ipCache.get(key);
  if (hit !== undefined) return hit;
  let ip: string | null;
  try {
    ip = overlayIp(name, net);
  } catch {
    ip = null;
  }
  if (ipCache.size >= IP_CACHE_MAX) ipCache.clear();
  ipCache.set(key, ip);
  return ip;
}

/** Hosted nodes first (from the config), then each node name a non-left member's record names, once. */
export function claims(config: HeptoConfig, view: ClusterView): Claim[] {
  const order = view.firstSeen ?? {};
  const seqOf = (node: string): number => (Object.prototype.hasOwnProperty.call(order, node) ? order[node] : Infinity);
  const out: Claim[] = [];
  const seen = new Set<string>();
  // The names of hostedNodes() (desired.ts imports this module).
  for (const n of [config, ...config.nodes]) {
    // A view without a ledger (a caller that keeps none) counts hosted nodes as pinned.
    out.push({ node: n.node, member: config.node, hosted: true, live: view.firstSeen === undefined || seqOf(n.node) !== Infinity, seq: seqOf(n.node) });
    seen.add(n.node);
  }
  for (const m of view.members) {
    if (m.name === config.node || m.state === 'left') continue;
    for (const node of Object.keys(m.record.containers)) {
      if (seen.has(node)) continue;
      seen.add(node);
      out.push({ node, member: m.name, hosted: false, live: LIVE.includes(m.state), seq: seqOf(node) });
    }
  }
  return out;
}

function rank(c: Claim): number {
  return c.hosted && c.live ? -Infinity : c.seq;
}

/**
 * Colliding groups of nodes by overlay IP, each sorted winner first. Only
 * live claims collide, except with a hosted node not yet pinned, which also
 * meets dead members' names.
 */
export function overlayCollisions(config: HeptoConfig, view: ClusterView): Array<{ ip: string; nodes: Claim[] }> {
  const byIp = new Map<string, Claim[]>();
  for (const c of claims(config, view)) {
    const ip = safeOverlayIp(c.node, config.overlay_net);
    if (!ip) continue;
    byIp.set(ip, [...(byIp.get(ip) ?? []), c]);
  }
  const out: Array<{ ip: string; nodes: Claim[] }> = [];
  for (const [ip, all] of byIp) {
    const newcomer = all.some((c) => c.hosted && !c.live);
    const list = newcomer ? all : all.filter((c) => c.live);
    if (list.length < 2) continue;
    list.sort((a, b) => rank(a) - rank(b) || byCodePoint(a.node, b.node));
    out.push({ ip, nodes: list });
  }
  return out;
}

/** One sentence per loser of a collision, from this agent's side. */
export function collisionProblem(ip: string, winner: Claim, loser: Claim): string {
  if (loser.hosted) {
    const why = winner.hosted ? 'was started here first' : `was seen first (member ${winner.member}${winner.live ? '' : ', away now'})`;
    return `overlay IP collision: node ${loser.node} hashes to ${ip} like node ${winner.node}, which ${why}; the wesher and k3s of ${loser.node} are not started: rename ${loser.node} (config field "node" or "nodes")`;
  }
  if (winner.hosted) {
    return `overlay IP collision: node ${loser.node} of member ${loser.member} hashes to ${ip} like node ${winner.node} here, which keeps it: the owner of ${loser.member} must rename ${loser.node}`;
  }
  return `overlay IP collision: nodes ${winner.node} (member ${winner.member}) and ${loser.node} (member ${loser.member}) both hash to ${ip}; ${winner.node} was seen first: the owner of ${loser.member} must rename ${loser.node}`;
}
