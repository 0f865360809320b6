/**
 * Key rotations in the membership (issue 13): every member keeps and spreads
 * the boxes of the newest rotation (agent/admin/rotation.ts), its own and
 * everyone else's, so that a member off during the rotation gets its box from
 * whoever it meets first when it returns. Opening its own box and switching
 * keys is the daemon's (agent/daemon/key-rotation.ts): this module only
 * checks, keeps and spreads.
 *
 * They spread as `r` updates, and by anti-entropy: a sync hash carries the id
 * of the newest rotation held; a peer that holds another sends the sender its
 * box (and the sender, if it holds the newer one, sends its box back at its
 * next sync hash to us). A removed identity's box is neither kept nor sent.
 */
import { verifyRotationBox, scheduleProblem, type RotationBox, type RotationSchedule } from '../admin/rotation';
import type { PeerInfo } from '../net/transport';
import type { RotationUpdate } from './messages';
import type { Ctx, State } from './state';
import { count, emit } from './state';

/** Boxes kept for one rotation: more than any cluster has members. */
export const MAX_BOXES = 4096;

export interface RotationHeld {
  schedule: RotationSchedule;
  /** By the identity the box is sealed to. */
  boxes: Map<string, RotationBox>;
}

export function rotationUpdate(b: RotationBox): RotationUpdate {
  return { k: 'r', i: b.id, t: b.at, w: b.switch_at, e: b.grace_until, n: b.node, p: b.id_pub, b: b.box, g: b.sig };
}

export function boxOf(u: RotationUpdate): RotationBox {
  return { id: u.i, at: u.t, switch_at: u.w, grace_until: u.e, node: u.n, id_pub: u.p, box: u.b, sig: u.g };
}

export type RotationResult = { result: 'kept' } | { result: 'already' } | { result: 'refused'; why: string };

/**
 * One box: checked against admin_pub, kept when it belongs to the newest
 * rotation (a newer one replaces what is held), queued for gossip. Emits
 * `rotation` when the box is this node's own.
 */
export function applyRotation(s: State, ctx: Ctx, u: RotationUpdate): RotationResult {
  const b = boxOf(u);
  if (s.adminPub === null) {
    count(s, 'unverifiable-rotation');
    return { result: 'refused', why: 'this agent has no admin_pub, so it cannot check a rotation: set admin_pub in its config first' };
  }
  const held = s.rotation;
  if (held && (b.at < held.schedule.at || (b.at === held.schedule.at && b.id !== held.schedule.id))) {
    count(s, 'stale-rotation');
    return { result: 'already' };
  }
  if (held && held.schedule.id === b.id && held.boxes.has(b.id_pub)) return { result: 'already' };
  const problem = scheduleProblem(b);
  if (problem !== null || !verifyRotationBox(s.adminPub, b)) {
    count(s, 'bad-rotation');
    return {
      result: 'refused',
      why: problem
        ? `the rotation is unusable: ${problem}`
        : "the rotation does not verify with this agent's admin_pub: sign with the admin key whose public half is admin_pub",
    };
  }
  if (s.removals.has(b.id_pub)) {
    count(s, 'rotation-for-removed');
    return { result: 'refused', why: `"${b.node}" is removed: it gets no new keys` };
  }
  let target = held;
  if (!target || target.schedule.id !== b.id) {
    // A newer rotation: the older one's boxes are of no use to anyone any more.
    for (const idPub of held?.boxes.keys() ?? []) s.queue.drop(`r/${idPub}`);
    target = { schedule: { id: b.id, at: b.at, switch_at: b.switch_at, grace_until: b.grace_until }, boxes: new Map() };
    s.rotation = target;
  }
  if (target.boxes.size >= MAX_BOXES) {
    count(s, 'rotation-full');
    return { result: 'refused', why: `this agent already holds ${MAX_BOXES} boxes of this rotation` };
  }
  target.boxes.set(b.id_pub, b);
  s.queue.enqueue(`r/${b.id_pub}`, u);
  if (b.id_pub === s.selfPub && b.node === s.selfName) emit(ctx, 'rotation', s.selfName, 0, `rotation ${b.id}`);
  return { result: 'kept' };
}

/** The id of the newest rotation held, for sync hashes; undefined when none. */
export function rotationId(s: State): string | undefined {
  return s.rotation?.schedule.id;
}

/**
 * A peer's sync hash named another rotation than ours (or none): send it its
 * own box, if we hold one for it. At most once a sync interval per peer.
 */
export function offerRotation(s: State, ctx: Ctx, to: PeerInfo, theirs: string | undefined): void {
  const held = s.rotation;
  if (!held || theirs === held.schedule.id) return;
  const box = held.boxes.get(to.idPub);
  if (!box || box.node !== to.name) return;
  const key = `r/${to.name}`;
  if (ctx.now - (s.nudged.get(key) ?? -Infinity) < s.t.syncInterval) return count(s, 'rotation-offer-limited');
  s.nudged.set(key, ctx.now);
  ctx.send.push({ to: { name: to.name, addresses: [] }, msg: { t: 'g', u: [rotationUpdate(box)] } });
}

/** Every box of the newest rotation held, for the daemon to persist. */
export function heldBoxes(s: State): RotationBox[] {
  return s.rotation ? [...s.rotation.boxes.values()] : [];
}

/** This node's own box of the newest rotation, if held. */
export function ownBox(s: State): RotationBox | undefined {
  const b = s.rotation?.boxes.get(s.selfPub);
  return b && b.node === s.selfName ? b : undefined;
}
