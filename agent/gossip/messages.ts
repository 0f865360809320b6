/**
 * Gossip wire messages: compact JSON with one-letter field names (traffic at
 * rest matters). decodeMessage (validate.ts) validates every field and rebuilds a clean
 * object; anything malformed is a HeptoError('FRAME_REJECTED').
 *
 * Messages (t):
 *   p  ping            {s: seq, u?: updates}
 *   k  ack             {s: seq, u?: updates}
 *   r  ping-req        {s: seq, n: target name, a: target addresses}
 *   n  nack            {s: seq}   a helper could not deliver its ping to the target either
 *   g  gossip          {u: updates}
 *   h  sync hash       {h: digest hash}            answered by a digest only if hashes differ
 *   d  sync digest     {d: digest, u?: updates, b?: [after, through]}    join, rejoin, merge; answered by y
 *                      A digest over messageBytes goes as several d messages in name order, each with
 *                      b: the names it covers (after < name <= through, '' = open end): the receiver
 *                      compares only that range. One chunk (almost always) has no b, as before; a
 *                      receiver that ignores b pushes a little more than needed, nothing wrong.
 *                      A want list over messageBytes goes as several y, the extra ones with u: [].
 *   y  sync reply      {u: updates, w: wanted names} answered by y with the wanted entries (and w: [])
 * Updates (k):
 *   a  alive     {r: SignedRecord, o?: 's'|'d'|'l' state held at r.incarnation (sync only), f?: who, g?: leave signature}
 *   s  suspect   {n, i, f}
 *   d  dead      {n, i, f}
 *   l  left      {n, i, g: leaver's signature}
 *   m  admission {n: node, p: id_pub, t: at, g: admin signature, i?: invitation}   (agent/gossip/admissions.ts)
 *   x  removal   {n: node, p: id_pub, t: at, g: admin signature}   (agent/gossip/removals.ts)
 *   r  rotation  {i: id, t: at, w: switch_at, e: grace_until, n: node, p: id_pub, b: sealed box, g: admin signature}
 *                one member's box of a key rotation (agent/gossip/rotations.ts)
 * A sync hash may carry x: a hash of the removals the sender holds; a peer holding others sends them;
 * and r: the id of the newest rotation the sender holds; a peer holding another sends the sender its box.
 */
import type { InvitedProof, SignedRecord } from '../../shared/member';

export type StateCode = 0 | 1 | 2 | 3; // alive, suspect, dead, left
export type DigestEntry = [name: string, incarnation: number, state: StateCode];

export interface AliveUpdate {
  k: 'a';
  r: SignedRecord;
  o?: 's' | 'd' | 'l';
  f?: string;
  g?: string;
}
export interface SuspectUpdate {
  k: 's';
  n: string;
  i: number;
  f: string;
}
export interface DeadUpdate {
  k: 'd';
  n: string;
  i: number;
  f: string;
}
export interface LeftUpdate {
  k: 'l';
  n: string;
  i: number;
  g: string;
}
/** `i`: the invitation part of an admission by invitation (then `g` is the granting anchor's signature). */
export interface AdmissionUpdate {
  k: 'm';
  n: string;
  p: string;
  t: number;
  g: string;
  i?: InvitedProof;
}
export interface RemovalUpdate {
  k: 'x';
  n: string;
  p: string;
  t: number;
  g: string;
}
export interface RotationUpdate {
  k: 'r';
  i: string;
  t: number;
  w: number;
  e: number;
  n: string;
  p: string;
  b: string;
  g: string;
}
export type Update = AliveUpdate | SuspectUpdate | DeadUpdate | LeftUpdate | AdmissionUpdate | RemovalUpdate | RotationUpdate;

export interface PingMsg {
  t: 'p';
  s: number;
  u?: Update[];
}
export interface AckMsg {
  t: 'k';
  s: number;
  u?: Update[];
}
export interface PingReqMsg {
  t: 'r';
  s: number;
  n: string;
  a: string[];
}
export interface NackMsg {
  t: 'n';
  s: number;
}
export interface GossipMsg {
  t: 'g';
  u: Update[];
}
export interface SyncHashMsg {
  t: 'h';
  h: string;
  x?: string;
  r?: string;
}
export interface SyncDigestMsg {
  t: 'd';
  d: DigestEntry[];
  u?: Update[];
  b?: [string, string];
}
export interface SyncReplyMsg {
  t: 'y';
  u: Update[];
  w: string[];
}
export type GossipMessage = PingMsg | AckMsg | PingReqMsg | NackMsg | GossipMsg | SyncHashMsg | SyncDigestMsg | SyncReplyMsg;

/** Hard limits enforced by decodeMessage (validate.ts). */
export const LIMITS = Object.freeze({
  messageBytes: 1024 * 1024,
  updates: 2048,
  digest: 20_000,
  wanted: 20_000,
  addresses: 16,
  addressLength: 300,
  nodeIps: 16,
  containers: 64,
  shortString: 64,
  longString: 256,
  /** Entries of a record's `paths` (shared/member.ts). */
  paths: 256,
});

/**
 * A gossip or sync reply carrying more than `max` updates, as several
 * messages of at most `max` each, in order; a sync reply's wanted names go
 * with the first. Gossip updates stand alone, so applying the slices one by
 * one is applying the message. Any other message, or a small one: itself.
 */
export function sliceUpdates(msg: GossipMessage, max: number): GossipMessage[] {
  if ((msg.t !== 'g' && msg.t !== 'y') || msg.u.length <= max) return [msg];
  const out: GossipMessage[] = [];
  for (let i = 0; i < msg.u.length; i += max) {
    const u = msg.u.slice(i, i + max);
    out.push(msg.t === 'g' ? { t: 'g', u } : { t: 'y', u, w: i === 0 ? msg.w : [] });
  }
  return out;
}

const enc = new TextEncoder();

/** The wire form of a message; its reverse, which validates, is validate.ts decodeMessage. */
export function encodeMessage(msg: GossipMessage): Uint8Array {
  return enc.encode(JSON.stringify(msg));
}

/** JSON length of each signed record, computed once: records are shared and never change. */
const recordSizes = new WeakMap<object, number>();

/**
 * JSON size of one update, for message budgets. An alive update's record is
 * measured once per record, not at every enqueue: in a join storm each
 * member queues every record, and serialising them again was a fifth of the
 * simulator's CPU at a thousand members.
 */
export function updateSize(u: Update): number {
  if (u.k !== 'a') return JSON.stringify(u).length + 1;
  let r = recordSizes.get(u.r);
  if (r === undefined) {
    r = JSON.stringify(u.r).length;
    recordSizes.set(u.r, r);
  }
  // A plain alive update is {"k":"a","r":<record>}: 14 characters around the record, and the comma after it.
  if (u.o === undefined && u.f === undefined && u.g === undefined) return r + 15;
  // Otherwise the same object with a one-character stand-in for the record: same keys, same order.
  return JSON.stringify({ ...u, r: 0 }).length - 1 + r + 1;
}
