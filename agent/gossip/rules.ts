/**
 * SWIM precedence rules: how one update changes the member table.
 *  - alive(i) replaces anything of the same identity at a lower incarnation;
 *  - suspect(i) and dead(i) apply only at the incarnation of the signed record
 *    we hold (a higher one cannot be checked, a lower one is stale);
 *  - dead overrides suspect, left (signed by the leaver) overrides all at i;
 *  - a claim about ourselves at our incarnation is refuted with i+1.
 * Signatures are checked only when an update would change something, and a
 * record identical to the held one is never re-verified (tweetnacl is slow).
 */
import type { SignedRecord } from '../../shared/member';
import type { AliveUpdate, Update } from './messages';
import { fingerprint } from '../net/identity';
import { signRecord, verifyLeft, verifyRecord } from './records';
import { applyAdmission, noteRefusal, vetIdentity } from './admissions';
import { applyRemoval } from './removals';
import { accuserOf, mayConfirm, mayStartSuspicion, noteRefuted } from './claims';
import { badSignature, spendVerification } from './signatures';
import { rto, startProbe, worseHealth } from './probe';
import { applyRotation } from './rotations';
import { addressesOk, mayLearnName, noteForgotten, wasForgotten } from './newnames';
import type { Ctx, Entry, State } from './state';
import { NEVER_MET, activeMode, addEntry, addTimer, count, emit, isLive, isMet, liveCount, nudge, removeEntry, selfEntry, setWarm } from './state';
import { expectedConfirmations, suspicionMax, suspicionMin, suspicionTimeout } from './timing';

export interface ApplyOptions {
  /** Came from anti-entropy: a 'dead' about a member we hold alive only makes it suspect. */
  viaSync?: boolean;
}

function validInc(i: unknown): i is number {
  return typeof i === 'number' && Number.isSafeInteger(i) && i >= 0;
}

/** Cheap structural guard (decodeMessage already validated; this keeps receive() safe for direct callers). */
function wellFormed(u: Update): boolean {
  if (u === null || typeof u !== 'object') return false;
  if (u.k === 'a') {
    const r = u.r as unknown as { record?: { name?: unknown; id_pub?: unknown; addresses?: unknown }; incarnation?: unknown; sig?: unknown } | null;
    return (
      !!r &&
      typeof r === 'object' &&
      !!r.record &&
      typeof r.record === 'object' &&
      typeof r.record.name === 'string' &&
      typeof r.record.id_pub === 'string' &&
      Array.isArray(r.record.addresses) &&
      validInc(r.incarnation) &&
      typeof r.sig === 'string'
    );
  }
  if (u.k === 's' || u.k === 'd') return typeof u.n === 'string' && validInc(u.i) && typeof u.f === 'string';
  if (u.k === 'l') return typeof u.n === 'string' && validInc(u.i) && typeof u.g === 'string';
  if (u.k === 'm' || u.k === 'x') return typeof u.n === 'string' && typeof u.p === 'string' && validInc(u.t) && typeof u.g === 'string';
  if (u.k === 'r')
    return (
      typeof u.i === 'string' &&
      typeof u.n === 'string' &&
      typeof u.p === 'string' &&
      typeof u.b === 'string' &&
      typeof u.g === 'string' &&
      validInc(u.t) &&
      validInc(u.w) &&
      validInc(u.e)
    );
  return false;
}

export function applyUpdate(s: State, ctx: Ctx, u: Update, opts: ApplyOptions = {}): void {
  if (!wellFormed(u)) return count(s, 'malformed-update');
  switch (u.k) {
    case 'a':
      return applyAlive(s, ctx, u, opts);
    case 's':
    case 'd':
      // Whatever the claim's `f` says, the accuser is whoever sent it (claims.ts).
      return applyClaim(s, ctx, u.n, u.i, u.k === 'd');
    case 'l':
      return applyLeft(s, ctx, u.n, u.i, u.g);
    case 'm':
      return applyAdmission(s, ctx, u);
    case 'x':
      applyRemoval(s, ctx, u);
      return;
    case 'r':
      applyRotation(s, ctx, u);
      return;
  }
}

function addrOf(sr: SignedRecord): string {
  return sr.record.addresses[0] ?? 'no address';
}

export function recordConflict(s: State, ctx: Ctx, name: string, known: { idPub: string; addr: string }, other: { idPub: string; addr: string }): void {
  const had = s.conflicts.get(name);
  s.conflicts.set(name, { name, known, other, lastSeen: ctx.now });
  count(s, 'name-conflict');
  if (!had || had.other.idPub !== other.idPub) emit(ctx, 'conflict', name, 0, `identity ${fingerprint(other.idPub)} at ${other.addr}`);
}

/**
 * The plain alive update of a record, one object per record however many
 * members queue it (updates are never mutated): in a join storm every member
 * queues every newcomer, and with a shared record (the simulator passes
 * messages by reference) this is the difference of one object per member
 * pair.
 */
const aliveUpdates = new WeakMap<SignedRecord, AliveUpdate>();
function aliveUpdateOf(sr: SignedRecord): AliveUpdate {
  let u = aliveUpdates.get(sr);
  if (!u) aliveUpdates.set(sr, (u = { k: 'a', r: sr }));
  return u;
}

/**
 * An alive update carries a signed record, and in anti-entropy replies an
 * overlay: the state the sender holds at that record's incarnation ('s', 'd',
 * or 'l' with the leaver's signature). Only a record without overlay, or
 * suspect, claims the name is live: a dead or left record of an old identity
 * is history, not a name conflict.
 */
function applyAlive(s: State, ctx: Ctx, u: AliveUpdate, opts: ApplyOptions): void {
  const sr = u.r;
  const name = sr.record.name;
  const from = accuserOf(s, ctx);
  if (name === s.selfName) return aliveAboutSelf(s, ctx, u);
  // IP literals only: a host name in a peer's record would make us resolve it (newnames.ts).
  if (!addressesOk(sr)) return count(s, 'bad-address');
  // Records pulled by anti-entropy are not re-spread (a joiner would re-broadcast the
  // whole cluster), except a sender's own record: that is how a joiner gets announced.
  const spread = !opts.viaSync || ctx.from?.name === name;
  const claimsLive = u.o === undefined || u.o === 's';
  let e = s.entries.get(name);
  if (s.adminPub !== null) {
    // Pinned names: only the admitted identity's records count, live or not.
    const refused = vetIdentity(s, name, sr.record.id_pub, sr.record.admission);
    if (refused) {
      if (claimsLive && verified(s, ctx, sr)) noteRefusal(s, ctx, name, sr.record.id_pub, addrOf(sr), refused);
      return;
    }
  }
  if (e && e.signed.record.id_pub !== sr.record.id_pub) {
    if (!claimsLive) return count(s, 'stale-identity');
    if (!verified(s, ctx, sr)) return;
    if (s.adminPub !== null) {
      // vetIdentity let it through, so its admission is newer than the held identity's: the old one is out.
      s.queue.drop(name);
    } else {
      if (isLive(e)) {
        recordConflict(s, ctx, name, { idPub: e.signed.record.id_pub, addr: addrOf(e.signed) }, { idPub: sr.record.id_pub, addr: addrOf(sr) });
        return;
      }
      // A dead or left member's name may be taken over by a new identity (a dead one after a while).
      if (e.state === 'dead' && ctx.now - e.stateSince < s.t.takeoverAfter) return count(s, 'takeover-too-early');
    }
    removeEntry(s, name);
    e = undefined;
  }
  if (!e) {
    if (u.o === 'l') return; // strangers who already left are not worth learning
    // A dead member we forgot is not learnt back, dead, from a member that has not forgotten it yet.
    if (u.o === 'd' && wasForgotten(s, name, sr.incarnation)) return count(s, 'forgotten-dead');
    // Without admin_pub, names are free: each sender may introduce only so many a minute (newnames.ts).
    if (s.adminPub === null && !mayLearnName(s, ctx)) return;
    if (!verified(s, ctx, sr)) return;
    const entry = addEntry(s, name, {
      signed: sr,
      state: 'alive',
      inc: sr.incarnation,
      stateSince: ctx.now,
      lastSeen: ctx.now,
      warmAt: NEVER_MET,
      probeRound: -1,
    });
    // A member never known alive, learnt dead or suspect: nothing live is taken down.
    if (u.o === 'd') return setDead(s, ctx, entry, from, false);
    if (u.o === 's') return startSuspicion(s, ctx, entry, from, false);
    emit(ctx, 'alive', name, sr.incarnation);
    ctx.arrived = true;
    if (spread) s.queue.enqueue(name, aliveUpdateOf(sr));
    return;
  }
  if (sr.incarnation > e.inc) {
    if (!verified(s, ctx, sr)) return;
    const was = e.state;
    // A suspicion that only other members' claims raised, now refuted by the suspect itself: blame whoever started it.
    const blamed = was === 'suspect' && e.susp && !e.susp.froms.has(s.selfName) ? firstOf(e.susp.froms) : undefined;
    e.signed = sr;
    e.inc = sr.incarnation;
    e.lastSeen = ctx.now;
    e.susp = undefined;
    e.leftSig = undefined;
    if (u.o === 'd' || u.o === 'l') {
      // Newer record, but already dead or gone at that incarnation: no alive in between.
      if (u.o === 'l' && u.g) return applyLeft(s, ctx, name, sr.incarnation, u.g);
      // Another member's word that it died: a claim like any other (claims.ts).
      if (e.state !== 'alive') {
        e.state = 'alive';
        e.stateSince = ctx.now;
      }
      return applyClaim(s, ctx, name, sr.incarnation, true);
    }
    if (was !== 'alive') {
      e.state = 'alive';
      e.stateSince = ctx.now;
      // Back from the dead (a healed partition), heard from others: a connection to it
      // that lived through the cut may wait seconds in TCP's retransmission backoff, and
      // probes over it fail. Closed (as trimmed: not a failure), the next message dials anew.
      if (was === 'dead' && ctx.from?.name !== name && e.warmAt >= 0) {
        count(s, 'stale-link-closed');
        setWarm(s, name, false);
        (ctx.close ??= []).push(name);
      }
      emit(ctx, 'alive', name, sr.incarnation, was === 'suspect' ? 'refuted' : `was ${was}`);
      if (was !== 'suspect') ctx.arrived = true;
      if (blamed !== undefined) noteRefuted(s, ctx, blamed);
    } else {
      emit(ctx, 'updated', name, sr.incarnation);
    }
    if (spread) s.queue.enqueue(name, aliveUpdateOf(sr));
    if (u.o === 's') applyClaim(s, ctx, name, sr.incarnation, false);
    return;
  }
  // Same or older incarnation: only the overlay can still matter.
  if (sr.incarnation !== e.signed.incarnation || !u.o) return;
  if (u.o === 'l') {
    if (u.g) applyLeft(s, ctx, name, sr.incarnation, u.g);
  } else {
    applyClaim(s, ctx, name, sr.incarnation, u.o === 'd');
  }
}

function firstOf(set: Set<string>): string | undefined {
  for (const x of set) return x;
  return undefined;
}

/**
 * Another member says `name` is suspect (or dead) at `inc` (claims.ts): about
 * us, we refute; about a live member, it starts a suspicion here that is not
 * spread, and the suspect is told at once. If it has not refuted by the
 * deadline, we probe it ourselves (runTimers): only our own failed probe
 * spreads a suspicion (applySuspect) and makes it dead. Confirmations count
 * once per sender, as before.
 */
function applyClaim(s: State, ctx: Ctx, name: string, inc: number, dead: boolean): void {
  const from = accuserOf(s, ctx);
  if (from === s.selfName || name === s.selfName) return dead ? applyDead(s, ctx, name, inc, from) : applySuspect(s, ctx, name, inc, from);
  const e = s.entries.get(name);
  if (!e) return;
  if (inc > e.signed.incarnation) return count(s, 'unverifiable-incarnation');
  if (inc < e.inc) return;
  if (e.state === 'alive') {
    if (!mayStartSuspicion(s, ctx, from)) return;
    startSuspicion(s, ctx, e, from, false);
    return;
  }
  if (e.state !== 'suspect' || !e.susp || !mayConfirm(s, ctx, from)) return;
  confirm(s, e, from);
}

/** One more member holds `e` suspect: the deadline comes nearer, up to the expected number of confirmations. */
function confirm(s: State, e: Entry, from: string): boolean {
  // A confirmation counts (and is passed on) only until the expected number is reached, as in
  // memberlist: past it the deadline is at its minimum, and in a partition every member of one side
  // would otherwise confirm, and re-spread, every suspicion of the other side.
  // Our own verdict always counts: it is what lets the suspicion end in a death (runTimers).
  const susp = e.susp;
  if (!susp || susp.froms.has(from) || (susp.froms.size > susp.expected && from !== s.selfName)) return false;
  susp.froms.add(from);
  susp.deadline = susp.start + suspicionTimeout(Math.min(susp.froms.size - 1, susp.expected), susp.expected, susp.min, susp.max);
  addTimer(s, susp.deadline, e);
  return true;
}

/**
 * `e` answered our own probe while we held it suspect: it lives, whatever was
 * said. Back to alive here (its incarnation is unchanged: the others wait for
 * its own refutation, which it sends when told). Where only other members'
 * claims raised the suspicion, they were wrong: the member that started it is
 * blamed (claims.ts).
 */
export function clearSuspicionOnAnswer(s: State, ctx: Ctx, e: Entry): void {
  if (e.state !== 'suspect' || !e.susp) return;
  const starter = e.susp.froms.has(s.selfName) ? undefined : firstOf(e.susp.froms);
  e.state = 'alive';
  e.stateSince = ctx.now;
  e.susp = undefined;
  emit(ctx, 'alive', e.signed.record.name, e.inc, starter === undefined ? 'answered our probe' : 'answered our probe: the claims were wrong');
  if (starter !== undefined) noteRefuted(s, ctx, starter);
}

/** The record's own signature checks, within its sender's budget (signatures.ts); a bad one cuts the sender off. */
function verified(s: State, ctx: Ctx, sr: SignedRecord): boolean {
  if (!spendVerification(s, ctx)) return false;
  if (verifyRecord(sr)) return true;
  badSignature(s, ctx, `the record of "${sr.record.name}"`);
  return false;
}

function aliveAboutSelf(s: State, ctx: Ctx, u: AliveUpdate): void {
  const sr = u.r;
  const me = selfEntry(s);
  if (sr.record.id_pub !== s.selfPub) {
    if (u.o === 'd' || u.o === 'l') return count(s, 'stale-identity');
    if (!verified(s, ctx, sr)) return;
    if (s.adminPub !== null) {
      const refused = vetIdentity(s, s.selfName, sr.record.id_pub, sr.record.admission);
      if (refused) return noteRefusal(s, ctx, s.selfName, sr.record.id_pub, addrOf(sr), refused);
      return count(s, 'name-readmitted'); // the admin gave our name to that identity: admissionProblems() says so
    }
    recordConflict(s, ctx, s.selfName, { idPub: s.selfPub, addr: `${addrOf(me.signed)} (this agent)` }, { idPub: sr.record.id_pub, addr: addrOf(sr) });
    return;
  }
  if (u.o === 'l' && u.g) return applyLeft(s, ctx, s.selfName, sr.incarnation, u.g);
  // Someone holds us suspect or dead at our incarnation.
  if (u.o && sr.incarnation === me.inc) return refute(s, ctx, sr.incarnation, 'a peer holds us suspect or dead');
  // Our own key signed it: a record from a previous run (or a copy of ours). Out-bid it if needed.
  if (sr.incarnation < me.inc || (sr.incarnation === me.inc && sr.sig === me.signed.sig)) return;
  if (!verified(s, ctx, sr)) return;
  refute(s, ctx, sr.incarnation, 'own record from an earlier run');
}

/**
 * A peer carried a suspicion of us that an incarnation of ours already
 * refuted: it may still hold that suspicion, so show it our current record.
 */
function showOwnRecord(s: State, ctx: Ctx): void {
  const to = ctx.from?.name;
  if (!to || to === s.selfName) return;
  const e = s.entries.get(to);
  // Once a probe period per carrier and incarnation: a record newer than the one last shown is news.
  const me = selfEntry(s);
  nudge(s, ctx, { name: to, addresses: e ? [...e.signed.record.addresses] : [] }, () => ({ t: 'g', u: [{ k: 'a', r: me.signed }] }), `${to}#${me.inc}`);
}

/** Bumps our incarnation above `seen`, re-signs and disseminates our alive record. */
export function refute(s: State, ctx: Ctx, seen: number, why: string): void {
  if (s.leftAt !== null) return;
  const me = selfEntry(s);
  const inc = Math.max(me.inc, seen) + 1;
  // Only our own key can have signed such a record; an incarnation past 2^53 would be unencodable.
  if (!Number.isSafeInteger(inc)) return count(s, 'incarnation-exhausted');
  me.signed = signRecord(me.signed.record, inc, s.secretKey);
  me.inc = inc;
  s.queue.enqueue(s.selfName, { k: 'a', r: me.signed });
  emit(ctx, 'refuted', s.selfName, inc, why);
  // Tell whoever carried the claim right away, so the suspicion ends quickly.
  if (ctx.from && ctx.from.name !== s.selfName) {
    const e = s.entries.get(ctx.from.name);
    ctx.send.push({ to: { name: ctx.from.name, addresses: e ? [...e.signed.record.addresses] : [] }, msg: { t: 'g', u: [{ k: 'a', r: me.signed }] } });
  }
}

export function applySuspect(s: State, ctx: Ctx, name: string, inc: number, from: string): void {
  if (name === s.selfName) {
    const me = selfEntry(s);
    if (inc === me.inc) {
      worseHealth(s); // being suspected is a sign we are slow (Lifeguard)
      refute(s, ctx, inc, `suspected by ${from}`);
    } else if (inc > me.inc) count(s, 'unverifiable-incarnation');
    else showOwnRecord(s, ctx);
    return;
  }
  const e = s.entries.get(name);
  if (!e) return;
  if (inc > e.signed.incarnation) return count(s, 'unverifiable-incarnation');
  if (inc < e.inc) return;
  if (e.state === 'alive') return startSuspicion(s, ctx, e, from, true);
  // Held suspect on others' word, and now our own probe failed too: spread our own suspicion.
  if (e.state === 'suspect' && confirm(s, e, from)) s.queue.enqueue(name, { k: 's', n: name, i: inc, f: from });
}

export function startSuspicion(s: State, ctx: Ctx, e: Entry, from: string, broadcast: boolean): void {
  const n = liveCount(s);
  // Leave the suspect time to hear of it and refute over the round trips we measure (≥ 6 RTO).
  const scale = Math.max(1, (6 * rto(s)) / Math.max(1, suspicionMin(s.t, n)));
  const min = Math.round(suspicionMin(s.t, n) * scale);
  const max = Math.round(suspicionMax(s.t, n) * scale);
  const expected = expectedConfirmations(s.t.indirectChecks, n);
  e.state = 'suspect';
  e.stateSince = ctx.now;
  e.susp = { start: ctx.now, froms: new Set([from]), expected, min, max, deadline: ctx.now + suspicionTimeout(0, expected, min, max) };
  addTimer(s, e.susp.deadline, e);
  const name = e.signed.record.name;
  emit(ctx, 'suspect', name, e.inc, `by ${from}`);
  if (broadcast) s.queue.enqueue(name, { k: 's', n: name, i: e.inc, f: from });
  // Probe it now: our own failure spreads our own suspicion further (applySuspect) and counts as a
  // confirmation, and an answer clears it (probe.ts onAck). The suspect's death still waits for our
  // own deadline. With bounded connections (active-view.ts) only the suspect's neighbours see it
  // fail, and a claim is not passed on: heard two hops away, it would stop there. Without them, a
  // hung machine (connections open, no reset) was otherwise confirmed only when other members'
  // round-robins reached it. Not before we measure round trips, though: until then our timeouts
  // are the preset's, and on slow links such probes failed and made false deaths.
  else if (activeMode(s) || s.probe.rtt.srtt !== null) startProbe(s, ctx, name);
  // Tell the suspect directly, whoever suspected it first: if it lives it answers within one round trip,
  // with a refutation, or with the record that already refuted this suspicion while the news of it was
  // still travelling to us (gossip carries both, and the stale suspicion can arrive first).
  ctx.send.push({ to: { name, addresses: [...e.signed.record.addresses] }, msg: { t: 'g', u: [{ k: 's', n: name, i: e.inc, f: from }] } });
}

export function applyDead(s: State, ctx: Ctx, name: string, inc: number, from: string): void {
  if (name === s.selfName) {
    const me = selfEntry(s);
    if (inc === me.inc) refute(s, ctx, inc, `declared dead by ${from}`);
    else if (inc > me.inc) count(s, 'unverifiable-incarnation');
    return;
  }
  const e = s.entries.get(name);
  if (!e) return;
  if (inc > e.signed.incarnation) return count(s, 'unverifiable-incarnation');
  if (inc < e.inc || !isLive(e)) return;
  setDead(s, ctx, e, from, true);
}

function setDead(s: State, ctx: Ctx, e: Entry, from: string, broadcast: boolean): void {
  e.state = 'dead';
  e.stateSince = ctx.now;
  e.susp = undefined;
  addTimer(s, ctx.now + deadRetention(s, e), e);
  const name = e.signed.record.name;
  emit(ctx, 'dead', name, e.inc, `by ${from}`);
  if (broadcast) s.queue.enqueue(name, { k: 'd', n: name, i: e.inc, f: from });
}

export function applyLeft(s: State, ctx: Ctx, name: string, inc: number, sig: string): void {
  if (name === s.selfName) {
    const me = selfEntry(s);
    if (s.leftAt !== null || inc < me.inc) return;
    if (!verifyLeft(name, inc, sig, s.selfPub)) return badSignature(s, ctx, 'a leave notice of ours');
    refute(s, ctx, inc, 'left notice from an earlier run');
    return;
  }
  const e = s.entries.get(name);
  if (!e || inc < e.inc || (e.state === 'left' && inc === e.inc)) return;
  if (!spendVerification(s, ctx)) return;
  if (!verifyLeft(name, inc, sig, e.signed.record.id_pub)) return badSignature(s, ctx, `a leave notice of "${name}"`);
  e.state = 'left';
  e.inc = inc;
  e.leftSig = sig;
  e.stateSince = ctx.now;
  e.susp = undefined;
  addTimer(s, ctx.now + s.t.leftRetention, e);
  emit(ctx, 'left', name, inc);
  s.queue.enqueue(name, { k: 'l', n: name, i: inc, g: sig });
}

/**
 * How long a dead member is kept (retried by reconnectTick, which is how a
 * split cluster merges again): a member that ever talked to us, 24 ×
 * leftRetention (a day with the LAN and WAN presets: a machine off for a
 * night, or a partition that long, still merges back by itself, and after
 * that the anchors and the persisted peers still do); one that never did, as
 * a left member (an hour): it may never have existed (a fake record, issue
 * 14), and a real one that comes back announces itself again.
 */
export function deadRetention(s: State, e: Entry): number {
  return isMet(e) ? 24 * s.t.leftRetention : s.t.leftRetention;
}

/**
 * Member timers that are due: a suspicion whose deadline passed becomes a
 * death; a left member kept leftRetention, or a dead one kept deadRetention, is forgotten. A timer whose member
 * has since changed (refuted, confirmed nearer, dead, back) is stale and
 * dropped: only the member's current state and times decide.
 */
export function runTimers(s: State, ctx: Ctx): void {
  const t = s.entries;
  for (let due = s.timers.popDue(ctx.now); due !== null; due = s.timers.popDue(ctx.now)) {
    const id = due[1];
    if (!t.has(id) || id === t.self) continue;
    const e = t.at(id);
    const susp = e.state === 'suspect' ? e.susp : undefined;
    if (susp && ctx.now >= susp.deadline) {
      if (susp.froms.has(s.selfName)) setDead(s, ctx, e, s.selfName, true);
      else {
        // Only others' word, and no refutation: our own probe decides (a failure counts us in, and
        // the next due timer makes it dead; an answer clears it: probe.ts onAck). Usually that probe
        // ran when the suspicion started (startSuspicion); not before round trips were measured,
        // where probes on slow links failed before the RTT was learnt, so it runs here.
        startProbe(s, ctx, e.name);
        susp.deadline = ctx.now + s.t.probeInterval;
        addTimer(s, susp.deadline, e);
      }
    } else if ((e.state === 'left' && ctx.now >= e.stateSince + s.t.leftRetention) || (e.state === 'dead' && ctx.now >= e.stateSince + deadRetention(s, e))) {
      const name = e.name;
      if (e.state === 'dead') noteForgotten(s, name, e.inc, ctx.now);
      removeEntry(s, name);
      s.queue.drop(name);
      setWarm(s, name, false);
    }
    // Dead, not due: its retention may have grown since its timer was set (it has talked to us since).
    else if (e.state === 'dead') addTimer(s, e.stateSince + deadRetention(s, e), e);
  }
}
