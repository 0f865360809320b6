/**
 * Pinned names (issue 13): where admin_pub is configured, a name belongs to
 * the identity that the newest admin-signed admission binds to it
 * (agent/admin/admission.ts). Members refuse connections, messages and
 * records of any other identity under that name, and a left or dead member
 * no longer frees its name. Without admin_pub nothing is refused here, but
 * admissions still travel, so that `admit --all-current` can be run before
 * admin_pub is set everywhere (docs/trust.md).
 *
 * Admissions reach members three ways: inside each member's own record, in
 * the handshake (transport), and as `m` updates spread by gossip after
 * `hepto-agent admit`. A member shown an admission of itself adopts it: it
 * carries it in its record and handshake from then on.
 */
import type { MemberRecord } from '../../shared/member';
import { createHash } from 'crypto';
import { admitCommand, verifyProof, type Admission, type AdmissionProof } from '../admin/admission';
import { fingerprint } from '../net/identity';
import type { PeerInfo } from '../net/transport';
import type { AdmissionUpdate } from './messages';
import { signRecord } from './records';
import type { Ctx, State } from './state';
import { count, emit, nudge, removeEntry, selfEntry } from './state';

/** Why an identity is refused under a name. */
export type RefusalKind = 'not-admitted' | 'superseded' | 'removed' | 'over-used';

export interface Refusal {
  name: string;
  idPub: string;
  addr: string;
  kind: RefusalKind;
  /** The admitted identity, for 'superseded'. */
  admitted?: string;
  lastSeen: number;
}

/** More names than any cluster has; past it the oldest admissions of names we hold no entry for go first. */
const MAX_ADMISSIONS = 65_536;
const MAX_REFUSALS = 64;

/** Queue slot of the admission of `name` (a name has no "/", so it never meets a member's own slot). */
export function slot(name: string): string {
  return `m/${name}`;
}

export function admissionUpdate(a: Admission): AdmissionUpdate {
  return a.inv ? { k: 'm', n: a.node, p: a.id_pub, t: a.at, g: a.sig, i: a.inv } : { k: 'm', n: a.node, p: a.id_pub, t: a.at, g: a.sig };
}

function fromUpdate(u: AdmissionUpdate): Admission {
  return u.i ? { node: u.n, id_pub: u.p, at: u.t, sig: u.g, inv: u.i } : { node: u.n, id_pub: u.p, at: u.t, sig: u.g };
}

/** More invitations than any cluster makes; past it uses of new ones count as spent. */
const MAX_INVITATIONS = 4096;

/**
 * Whether an admission binds its name and identity: null, 'invalid', or, for
 * an admission by invitation, 'over-used' when the invitation admitted more
 * identities than it allows and this one is not among the first (earliest
 * grant, then smallest identity hash: the same on every member).
 */
export function proofProblem(s: State, a: Admission): 'invalid' | 'over-used' | null {
  if (s.adminPub === null || !verifyProof(s.adminPub, a.node, a.id_pub, a)) return 'invalid';
  return a.inv && !withinUses(s, a.inv.body.id, a.inv.body.uses, a.id_pub, a.at) ? 'over-used' : null;
}

/** Records a granted use of invitation `id`; true when `idPub` is among its first `uses` identities. */
export function withinUses(s: State, id: string, uses: number, idPub: string, at: number): boolean {
  let seen = s.invUses.get(id);
  if (!seen) {
    if (s.invUses.size >= MAX_INVITATIONS) return false;
    seen = new Map();
    s.invUses.set(id, seen);
  }
  const prev = seen.get(idPub);
  if ((prev === undefined && seen.size < 4 * uses) || (prev !== undefined && at < prev)) {
    seen.set(idPub, at);
    s.invChanged.add(id);
  }
  const rank = (p: string): string => createHash('sha256').update(p).digest('hex');
  const order = [...seen.entries()].sort(([pa, ta], [pb, tb]) => ta - tb || (rank(pa) < rank(pb) ? -1 : 1)).map(([p]) => p);
  const i = order.indexOf(idPub);
  return i >= 0 && i < uses;
}

/**
 * Members that came in by an invitation whose uses just changed, and are no
 * longer among its first: an earlier grant of a single-use invitation became
 * known after the later one was let in (two anchors granting at once). They
 * go, as a replaced identity does, so every member ends with the same machine
 * whatever order it heard the grants in.
 */
export function evictOverUsed(s: State, ctx: Ctx): void {
  if (s.invChanged.size === 0) return;
  const changed = s.invChanged;
  s.invChanged = new Set();
  const viaChanged = (a: AdmissionProof | Admission | undefined): boolean => a?.inv !== undefined && changed.has(a.inv.body.id);
  for (const [name, e] of s.entries) {
    if (name === s.selfName) continue;
    const record = e.signed.record;
    if (!viaChanged(record.admission) && !viaChanged(s.admissions.get(name))) continue;
    if (vetIdentity(s, name, record.id_pub, record.admission) !== 'over-used') continue;
    count(s, 'over-used');
    removeEntry(s, name);
    s.queue.drop(name);
    emit(ctx, 'left', name, e.inc, `identity ${fingerprint(record.id_pub)} came in with an invitation that an earlier grant used up`);
  }
}

export function remember(s: State, a: Admission): void {
  if (s.admissions.size >= MAX_ADMISSIONS && !s.admissions.has(a.node)) {
    for (const name of s.admissions.keys()) {
      if (!s.entries.get(name)) {
        s.admissions.delete(name);
        break;
      }
    }
    if (s.admissions.size >= MAX_ADMISSIONS) return;
  }
  s.admissions.set(a.node, a);
}

/**
 * Whether `idPub` may hold `name`, given what it shows (`proof`, from its
 * record or handshake) and what we know. A valid proof newer than what we
 * knew is learned. Null when accepted. Always null without admin_pub.
 */
export function vetIdentity(s: State, name: string, idPub: string, proof: AdmissionProof | undefined): RefusalKind | null {
  if (s.adminPub === null) return null;
  const known = s.admissions.get(name);
  let at: number | undefined;
  if (proof) {
    const shown: Admission = { node: name, id_pub: idPub, ...proof };
    const problem = proofProblem(s, shown);
    if (problem === 'over-used') return 'over-used';
    if (problem === null) {
      if (known && known.id_pub !== idPub && known.at >= proof.at) return 'superseded';
      if (!known || proof.at > known.at) remember(s, shown);
      at = proof.at;
    }
  }
  // The newest admission of this identity counts, shown or known (a re-admission after a removal, say).
  if (known && known.id_pub === idPub && (at === undefined || known.at > at)) {
    if (known.inv && proofProblem(s, known) === 'over-used') return 'over-used';
    at = known.at;
  }
  if (at === undefined) return 'not-admitted';
  // A removal of this identity under this name counts against every admission up to its time.
  const removal = s.removals.get(idPub);
  return removal && removal.node === name && removal.at >= at ? 'removed' : null;
}

/** Remembers a refused identity for status (bounded), and counts it. */
export function noteRefusal(s: State, ctx: Ctx, name: string, idPub: string, addr: string, kind: RefusalKind): void {
  count(s, kind);
  const key = `${name}\0${idPub}`;
  const had = s.refusals.get(key);
  if (!had && s.refusals.size >= MAX_REFUSALS) return;
  const admitted = s.admissions.get(name)?.id_pub;
  s.refusals.set(key, { name, idPub, addr, kind, lastSeen: ctx.now, ...(admitted && admitted !== idPub ? { admitted } : {}) });
  if (!had) emit(ctx, 'refused', name, 0, `${refusalReason(name, idPub, kind).split(';')[0]} (at ${addr})`);
}

/** The sentence `checkPeer` and the transport give for a refusal. */
export function refusalReason(name: string, idPub: string, kind: RefusalKind): string {
  const what =
    kind === 'superseded'
      ? 'was replaced by a newer admission of another identity'
      : kind === 'removed'
        ? 'was removed by the admin'
        : kind === 'over-used'
          ? 'came in with an invitation that more machines used than it allows'
          : 'is not admitted';
  return `identity ${fingerprint(idPub)} of "${name}" ${what}; if that machine belongs under this name, the admin runs: ${admitCommand(name, idPub)}`;
}

/** An `m` update: learn a newer admission, spread it, adopt it if it is ours, drop an identity it replaces. */
export function applyAdmission(s: State, ctx: Ctx, u: AdmissionUpdate): void {
  const a = fromUpdate(u);
  const known = s.admissions.get(a.node);
  if (known && known.at >= a.at) return;
  if (s.adminPub !== null) {
    const problem = proofProblem(s, a);
    if (problem) return count(s, problem === 'invalid' ? 'bad-admission' : 'over-used');
  } else if (a.node !== s.selfName && !s.entries.get(a.node)) {
    // Unverifiable without admin_pub: only carried for members we know, so strangers cannot fill the queue.
    return count(s, 'unverifiable-admission');
  }
  remember(s, a);
  s.queue.enqueue(slot(a.node), u);
  emit(ctx, 'admission', a.node, 0, `identity ${fingerprint(a.id_pub)}`);
  if (a.node === s.selfName) {
    if (a.id_pub === s.selfPub) adopt(s, ctx, a);
    return;
  }
  const e = s.entries.get(a.node);
  if (s.adminPub !== null && e && e.signed.record.id_pub !== a.id_pub) {
    // The admin replaced that identity: it is no member from now on.
    removeEntry(s, a.node);
    s.queue.drop(a.node);
    emit(ctx, 'left', a.node, e.inc, `identity ${fingerprint(e.signed.record.id_pub)} replaced by a newer admission`);
  }
}

/** Carries our admission in our record from now on: re-signed at a new incarnation and spread. */
function adopt(s: State, ctx: Ctx, a: Admission): void {
  const me = selfEntry(s);
  const cur = me.signed.record.admission;
  if (cur && cur.at >= a.at) return;
  if (s.leftAt !== null) return;
  const record: MemberRecord = { ...me.signed.record, admission: a.inv ? { at: a.at, sig: a.sig, inv: a.inv } : { at: a.at, sig: a.sig } };
  const inc = me.inc + 1;
  if (!Number.isSafeInteger(inc)) return count(s, 'incarnation-exhausted');
  me.signed = signRecord(record, inc, s.secretKey);
  me.inc = inc;
  s.queue.enqueue(s.selfName, { k: 'a', r: me.signed });
  emit(ctx, 'admitted', s.selfName, inc, `at ${a.at}`);
}

/** Our own admission, for the handshake; undefined until we have one. */
export function ownProof(s: State): AdmissionProof | undefined {
  return selfEntry(s).signed.record.admission;
}

/**
 * A member talks to us showing an older admission (or none) than the one we
 * know for its identity: show it the newer one, at most once a probe period.
 * That is how a machine admitted while it was refused everywhere learns it.
 */
export function offerAdmission(s: State, ctx: Ctx, from: PeerInfo): void {
  const known = s.admissions.get(from.name);
  if (!known || known.id_pub !== from.idPub) return;
  const e = s.entries.get(from.name);
  const inRecord = e && e.signed.record.id_pub === from.idPub ? (e.signed.record.admission?.at ?? -1) : -1;
  if (Math.max(from.admission?.at ?? -1, inRecord) >= known.at) return;
  nudge(s, ctx, { name: from.name, addresses: [] }, () => ({ t: 'g', u: [admissionUpdate(known)] }));
}

/** Status problems about admissions: this node's own, and identities refused lately. */
export function admissionProblems(s: State): string[] {
  if (s.adminPub === null) return [];
  const out: string[] = [];
  const me = selfEntry(s).signed.record;
  const known = s.admissions.get(s.selfName);
  const removed = s.removals.get(s.selfPub);
  if (removed && removed.node === s.selfName && removed.at >= Math.max(me.admission?.at ?? -1, known && known.id_pub === s.selfPub ? known.at : -1)) {
    out.push(
      `the admin removed this node ("${s.selfName}", identity ${fingerprint(s.selfPub)}) from the cluster on ${new Date(removed.at).toISOString()}: members refuse it; if that was a mistake, the admin runs: ${admitCommand(s.selfName, s.selfPub)}`,
    );
  } else if (known && known.id_pub !== s.selfPub) {
    out.push(
      `the admin admitted another identity (${fingerprint(known.id_pub)}) under this node's name "${s.selfName}", so members refuse this machine (identity ${fingerprint(s.selfPub)}); if this machine should keep the name, the admin runs: ${admitCommand(s.selfName, s.selfPub)}`,
    );
  } else if (!me.admission) {
    out.push(
      `this node has no admission for its identity, so members that have admin_pub refuse it; on the machine with the admin key, run: ${admitCommand(s.selfName, s.selfPub)}`,
    );
  }
  for (const r of s.refusals.values()) {
    out.push(`refused "${r.name}" at ${r.addr}: ${refusalReason(r.name, r.idPub, r.kind)}`);
  }
  return out;
}

/** Forgets refusals not seen for `memory` ms. */
export function forgetRefusals(s: State, now: number, memory: number): void {
  for (const [key, r] of s.refusals) if (now >= r.lastSeen + memory) s.refusals.delete(key);
}
