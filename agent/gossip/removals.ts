/**
 * Removals (issue 13): `hepto-agent remove NODE` has the admin key sign
 * {node, id_pub, at} for the purpose "removal" (agent/admin/admission.ts).
 * Every member keeps it (the daemon persists the set), drops that member, and
 * refuses its identity from then on (vetIdentity in admissions.ts), unless a
 * newer admission brings it back. Removals need admin_pub: without it nobody
 * could tell the admin's from anyone's.
 *
 * They spread as `x` updates, and by anti-entropy: a sync hash carries a hash
 * of the removals held, and a peer that holds others sends them, so a member
 * that was off during the removal learns it at its first sync.
 */
import { createHash } from 'crypto';
import { verifyRemoval, type Removal } from '../admin/admission';
import { fingerprint } from '../net/identity';
import type { PeerInfo } from '../net/transport';
import type { RemovalUpdate, Update } from './messages';
import type { Ctx, State } from './state';
import { count, emit, removeEntry } from './state';

/** More than any cluster removes; past it new removals are refused (counted), never old ones forgotten. */
export const MAX_REMOVALS = 4096;
/** Removals per message when a peer is missing some. */
const PER_MESSAGE = 64;

export function removalUpdate(r: Removal): RemovalUpdate {
  return { k: 'x', n: r.node, p: r.id_pub, t: r.at, g: r.sig };
}

/** Outcome of one removal: new (applied and spread), known already, or refused (why). */
export type RemovalResult = { result: 'removed' } | { result: 'already' } | { result: 'refused'; why: string };

export function applyRemoval(s: State, ctx: Ctx, u: RemovalUpdate): RemovalResult {
  const r: Removal = { node: u.n, id_pub: u.p, at: u.t, sig: u.g };
  if (s.adminPub === null) {
    count(s, 'unverifiable-removal');
    return { result: 'refused', why: 'this agent has no admin_pub, so it cannot check a removal: set admin_pub in its config first' };
  }
  const known = s.removals.get(r.id_pub);
  if (known && known.at >= r.at) return { result: 'already' };
  if (!verifyRemoval(s.adminPub, r)) {
    count(s, 'bad-removal');
    return { result: 'refused', why: "the removal does not verify with this agent's admin_pub: sign with the admin key whose public half is admin_pub" };
  }
  if (!known && s.removals.size >= MAX_REMOVALS) {
    count(s, 'removals-full');
    return { result: 'refused', why: `this agent already holds ${MAX_REMOVALS} removals` };
  }
  s.removals.set(r.id_pub, r);
  s.queue.enqueue(`x/${r.id_pub}`, u);
  emit(ctx, 'removed', r.node, 0, `identity ${fingerprint(r.id_pub)}`);
  const e = s.entries.get(r.node);
  if (r.node !== s.selfName && e && e.signed.record.id_pub === r.id_pub) {
    removeEntry(s, r.node);
    s.queue.drop(r.node);
  }
  return { result: 'removed' };
}

/** A short hash of the removals held (order-free), for sync hashes; undefined when there are none. */
export function removalsHash(s: State): string | undefined {
  if (s.removals.size === 0) return undefined;
  const h = createHash('sha256');
  for (const sig of [...s.removals.values()].map((r) => r.sig).sort()) h.update(sig);
  return h.digest().subarray(0, 9).toString('base64');
}

/**
 * A peer's sync hash named another set of removals than ours: send it ours
 * (it merges them; if it holds some we lack, its next sync hash to us says
 * so and it sends them back).
 */
export function offerRemovals(s: State, ctx: Ctx, to: PeerInfo, theirs: string | undefined): void {
  if (s.removals.size === 0 || theirs === removalsHash(s)) return;
  // At most once a sync interval per peer: a member repeating sync hashes must not make us resend them all each time.
  const key = `x/${to.name}`;
  if (ctx.now - (s.nudged.get(key) ?? -Infinity) < s.t.syncInterval) return count(s, 'removals-offer-limited');
  s.nudged.set(key, ctx.now);
  const all: Update[] = [...s.removals.values()].map(removalUpdate);
  for (let i = 0; i < all.length; i += PER_MESSAGE) ctx.send.push({ to: { name: to.name, addresses: [] }, msg: { t: 'g', u: all.slice(i, i + PER_MESSAGE) } });
}

/**
 * Names the admin removed and did not admit again since (no newer admission
 * for that name, of any identity): what the master deletes from Kubernetes.
 */
export function removedNames(s: State): string[] {
  const out = new Set<string>();
  for (const r of s.removals.values()) {
    const admitted = s.admissions.get(r.node);
    if (!admitted || admitted.at <= r.at) out.add(r.node);
  }
  return [...out].sort();
}
