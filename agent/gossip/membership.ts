/**
 * The membership state machine (SWIM + Lifeguard ideas over a reliable but
 * possibly slow transport). Pure: every method takes `now` and returns the
 * messages to send and the events that happened; randomness comes from the
 * injected rng. The daemon wraps it with a transport and one timer at
 * nextWakeup(). The rules live in rules.ts (precedence), probe.ts (failure
 * detection), sync.ts (anti-entropy), join.ts (join and rejoin),
 * dissemination.ts (retransmit queue), timing.ts (presets and math).
 */
import { HeptoError } from '../../shared/errors';
import type { MemberRecord, MemberState } from '../../shared/member';
import type { Destination, PeerInfo, VetRefusal } from '../net/transport';
import { BroadcastQueue } from './dissemination';
import { joinTick, reconnectTick, retrySoon } from './join';
import type { GossipMessage, Update } from './messages';
import { addToProbeOrder, onAck, onNack, onPing, onPingReq, pingFailed, probeTick, probeWakeup, startProbe } from './probe';
import { publicKeyOf, signLeft, signRecord } from './records';
import { recordConflict, runTimers } from './rules';
import type { Ctx, GossipHooks, State, Step } from './state';
import {
  MET,
  activeMode,
  count,
  deadIds,
  internalError,
  destOf,
  drawGossipTarget,
  emit,
  entriesOf,
  isLive,
  liveCount,
  liveIds,
  nextTimer,
  nudge,
  pick,
  replyDest,
  selfEntry,
  setWarm,
} from './state';
import { activeIds, activeTick, newActiveView, pickNeighbours } from './active-view';
import { describeProblems } from './problems';
import { forgetForgotten } from './newnames';
import { verifyAdmission, verifyProof, verifyRemoval, type Admission, type AdmissionProof, type Removal } from '../admin/admission';
import {
  admissionProblems,
  admissionUpdate,
  applyAdmission,
  forgetRefusals,
  noteRefusal,
  offerAdmission,
  ownProof,
  refusalReason,
  vetIdentity,
  evictOverUsed,
} from './admissions';
import { MemberTable, NameIndex } from './table';
import { TimerHeap } from './timers';
import { applyAll, compareDigest, digestHash, digestMessages, itemsFor, sendChunked, syncHashMessage } from './sync';
import { applyRemoval, offerRemovals, removalUpdate, removedNames, type RemovalResult } from './removals';
import { applyRotation, heldBoxes, offerRotation, ownBox, rotationUpdate, type RotationResult } from './rotations';
import type { RotationBox } from '../admin/rotation';
import { grantUse, type GrantResult } from './invitations';
import type { InvitationUse } from '../admin/invitation';
import type { GossipTiming } from './timing';
import { byCodePoint } from '../../shared/order';

/** The longest a driver waits between two ticks (nextTickAt). */
export const TICK_CAP_MS = 1000;

export type { Outgoing, Step, MemberEvent, GossipHooks } from './state';
export type { GossipMessage } from './messages';
export type { GossipTiming } from './timing';
export { encodeMessage } from './messages';
export { decodeMessage } from './validate';

export interface MembershipOptions {
  /** This node's record (record.id_pub = its identity). */
  record: MemberRecord;
  /** ed25519 secret key (64-byte tweetnacl form) to sign own records; never in views or messages. */
  secretKey: Uint8Array;
  /** Starting incarnation, above any previous run's (e.g. wall clock seconds). */
  incarnation: number;
  timing: GossipTiming;
  now: number;
  /** [0,1), seeded in tests and in the simulator. */
  rng: () => number;
  /** Member names to table ids; the simulator shares one between all its members (table.ts). */
  names?: NameIndex;
  /** admin_pub (text form): names are pinned to admitted identities (admissions.ts). Null or absent: not pinned. */
  adminPub?: string | null;
  /** Removals kept by a previous run (removals.ts); checked against adminPub, ignored without it. */
  removals?: Removal[];
  /** The boxes of the newest rotation kept by a previous run (rotations.ts); checked like received ones. */
  rotation?: RotationBox[];
}

export interface MemberView {
  name: string;
  state: MemberState;
  incarnation: number;
  record: MemberRecord;
  /** ms, local clock. */
  lastSeen: number;
  stateSince: number;
}

export interface PersistedPeer {
  name: string;
  addresses: string[];
  id_pub: string;
}

const MAX_PERSISTED = 64;

export class Membership {
  private readonly s: State;
  /**
   * Internal time never goes backwards: a wall clock stepped back (NTP, an
   * operator's `date -s`) counts as no time passing, instead of freezing
   * every timer until the clock catches up. With a well-behaved clock it
   * equals the caller's clock exactly.
   */
  private rawLast: number;
  private monoLast: number;

  constructor(opts: MembershipOptions) {
    const pub = publicKeyOf(opts.secretKey);
    if (pub !== opts.record.id_pub) {
      throw new HeptoError('INTERNAL', 'membership: record.id_pub does not match the secret key', {
        hint: 'pass the identity key pair that belongs to this node',
      });
    }
    if (!Number.isSafeInteger(opts.incarnation) || opts.incarnation < 0) {
      throw new HeptoError('INTERNAL', `membership: incarnation ${opts.incarnation} is not a non-negative integer`);
    }
    const t = opts.timing;
    const now = opts.now;
    const adminPub = opts.adminPub ?? null;
    let record = opts.record;
    const own: Admission | undefined = record.admission && { node: record.name, id_pub: pub, ...record.admission };
    if (own && adminPub !== null && !verifyProof(adminPub, own.node, own.id_pub, own)) {
      // Signed by another admin key (or damaged): showing it would only get us refused. admissionProblems() says what to do.
      record = { ...record };
      delete record.admission;
    }
    const signed = signRecord(record, opts.incarnation, opts.secretKey);
    this.s = {
      t,
      rng: opts.rng,
      secretKey: opts.secretKey,
      selfName: opts.record.name,
      selfPub: pub,
      entries: new MemberTable(opts.names ?? new NameIndex(), opts.record.name),
      queue: new BroadcastQueue(t.retransmitMult),
      counters: new Map(),
      conflicts: new Map(),
      adminPub,
      admissions: new Map(record.admission && own ? [[record.name, own]] : []),
      invUses: new Map(),
      invChanged: new Set(),
      removals: new Map((adminPub === null ? [] : (opts.removals ?? []).filter((r) => verifyRemoval(adminPub, r))).map((r) => [r.id_pub, r])),
      refusals: new Map(),
      rotation: null,
      claims: new Map(),
      verifyBudgets: new Map(),
      leftAt: null,
      seq: 0,
      probe: {
        active: new Map(),
        late: new Map(),
        relays: new Map(),
        order: [],
        round: 0,
        index: 0,
        health: 0,
        rtt: { srtt: null, rttvar: 0 },
        lastRtt: new Map(),
      },
      // Start loops at random offsets so members do not probe and sync in lockstep.
      nextProbe: now + Math.floor(opts.rng() * t.probeInterval),
      nextGossip: now,
      nextSync: now + Math.floor(t.syncInterval * (0.5 + 0.5 * opts.rng())),
      nextReconnect: now + t.reconnectInterval,
      nudged: new Map(),
      nextCurious: now,
      join: { anchors: [], peers: [], active: false, attempt: 0, next: now, since: now, selfLoop: false },
      timers: new TimerHeap(),
      warm: [],
      active: newActiveView(now, t.reconnectInterval),
      strangers: new Set(),
      sortedIds: null,
      newNames: new Map(),
      forgotten: new Map(),
      hooks: {},
    };
    this.s.entries.add(record.name, { signed, state: 'alive', inc: opts.incarnation, stateSince: now, lastSeen: now, warmAt: MET, probeRound: -1 });
    this.rawLast = now;
    this.monoLast = now;
    if (adminPub !== null) for (const b of opts.rotation ?? []) applyRotation(this.s, { now, send: [], events: [] }, rotationUpdate(b));
  }

  private mono(now: number): number {
    const d = now - this.rawLast;
    this.rawLast = now;
    if (d > 0) this.monoLast += d;
    return this.monoLast;
  }

  /** Internal time → the caller's clock. */
  private toRaw(t: number): number {
    return t + (this.rawLast - this.monoLast);
  }

  /** Join via every anchor (host:port); retried with capped jittered backoff while no other member is alive. */
  bootstrap(anchors: string[], now: number): Step {
    this.s.join.anchors = [...new Set(anchors)];
    this.s.entries.watch(this.s.join.anchors);
    return this.run(now, undefined, (ctx) => joinTick(this.s, ctx));
  }

  /** Peers persisted by a previous run: extra rejoin targets when the anchors are down. */
  restorePeers(peers: PersistedPeer[], now: number): void {
    this.mono(now);
    this.s.join.peers = peers
      .filter((p) => p && typeof p.name === 'string' && p.name !== this.s.selfName && Array.isArray(p.addresses))
      .map((p) => ({ name: p.name, addresses: p.addresses.filter((a) => typeof a === 'string') }));
  }

  receive(from: PeerInfo, msg: GossipMessage, now: number): Step {
    return this.run(now, from, (ctx) => this.dispatch(ctx, from, msg));
  }

  /**
   * Whether a freshly authenticated peer may stay connected (the transport
   * asks): undefined, or the sentence saying why not. Only ever refuses
   * where admin_pub is configured (pinned names).
   */
  checkPeer(peer: PeerInfo): VetRefusal | undefined {
    if (peer.name === this.s.selfName && peer.idPub === this.s.selfPub) return undefined;
    const refused = vetIdentity(this.s, peer.name, peer.idPub, peer.admission);
    if (!refused) return undefined;
    return { reason: refusalReason(peer.name, peer.idPub, refused), tell: refused === 'removed' || refused === 'superseded' ? refused : 'not admitted' };
  }

  /** A peer refused us as not admitted: while alone, join again within seconds (join.ts retrySoon). */
  refusedByPeer(now: number): void {
    retrySoon(this.s, this.mono(now));
  }

  /** This node's name and identity key (base64). */
  identity(): { name: string; idPub: string } {
    return { name: this.s.selfName, idPub: this.s.selfPub };
  }

  /** This node's admission, as its record carries it; undefined until admitted. */
  ownAdmission(): AdmissionProof | undefined {
    return ownProof(this.s);
  }

  /**
   * An admission made by `hepto-agent admit` (control socket): checked
   * against admin_pub when there is one, then spread like any received one.
   * `result` says what became of it, for the command's output.
   */
  admit(a: Admission, now: number): { step: Step; result: 'admitted' | 'already' | 'refused'; why?: string } {
    const s = this.s;
    if (s.adminPub !== null && !verifyAdmission(s.adminPub, a)) {
      return {
        step: { send: [], events: [] },
        result: 'refused',
        why: "the admission does not verify with this agent's admin_pub: sign with the admin key whose public half is admin_pub",
      };
    }
    const known = s.admissions.get(a.node);
    if (known && known.id_pub === a.id_pub && known.at >= a.at) return { step: { send: [], events: [] }, result: 'already' };
    if (known && known.at >= a.at)
      return {
        step: { send: [], events: [] },
        result: 'refused',
        why: `a newer admission (${new Date(known.at).toISOString()}) of another identity is already known for "${a.node}"`,
      };
    const step = this.run(now, undefined, (ctx) => applyAdmission(s, ctx, admissionUpdate(a)));
    return {
      step,
      result: s.admissions.get(a.node) === undefined ? 'refused' : 'admitted',
      ...(s.admissions.get(a.node) === undefined ? { why: 'the agent could not keep it' } : {}),
    };
  }

  /**
   * An enrolling machine's use of an invitation, handed over by the
   * enrolment protocol: granted (an admission, spread at once) or refused
   * with a one-line reason (invitations.ts).
   */
  grant(use: InvitationUse, now: number): { step: Step } & GrantResult {
    let out: GrantResult = { ok: false, reason: 'the anchor has left the cluster' };
    const step = this.run(now, undefined, (ctx) => {
      out = grantUse(this.s, ctx, use);
    });
    return { step, ...out };
  }

  /** A removal made by `hepto-agent remove` (control socket): checked against admin_pub, kept and spread. */
  remove(r: Removal, now: number): { step: Step } & RemovalResult {
    let out: RemovalResult = { result: 'refused', why: 'the agent has left the cluster' };
    const step = this.run(now, undefined, (ctx) => {
      out = applyRemoval(this.s, ctx, removalUpdate(r));
    });
    return { step, ...out };
  }

  /** A rotation box from `hepto-agent rotate-keys` (control socket): checked against admin_pub, kept and spread. */
  rotate(b: RotationBox, now: number): { step: Step } & RotationResult {
    let out: RotationResult = { result: 'refused', why: 'the agent has left the cluster' };
    const step = this.run(now, undefined, (ctx) => {
      out = applyRotation(this.s, ctx, rotationUpdate(b));
    });
    return { step, ...out };
  }

  /** The boxes of the newest rotation held, for the daemon to persist. */
  rotationBoxes(): RotationBox[] {
    return heldBoxes(this.s);
  }

  /** This node's own box of the newest rotation, if held. */
  ownRotationBox(): RotationBox | undefined {
    return ownBox(this.s);
  }

  /** Every removal held, for the daemon to persist. */
  removals(): Removal[] {
    return [...this.s.removals.values()];
  }

  /** Names removed and not admitted again since: the master deletes them from Kubernetes. */
  removedNames(): string[] {
    return removedNames(this.s);
  }

  /** The transport could not deliver (connection refused, auth failed, timeout). */
  sendFailed(_to: Destination, msg: GossipMessage, now: number, why: { selfLoop?: boolean } = {}): Step {
    return this.run(now, undefined, (ctx) => {
      count(this.s, 'send-failed');
      // A join that reached this very agent: an anchor address (a hostname, say) is one of ours.
      if (why.selfLoop && msg.t === 'd') this.s.join.selfLoop = true;
      if (msg.t === 'p') pingFailed(this.s, ctx, msg.s);
    });
  }

  /**
   * The connection to a member closed: probe it now rather than at its turn.
   * Not when the member closed it as trimmed (its active view was full,
   * active-view.ts): it lives, and will be probed by its own neighbours.
   */
  disconnected(name: string, now: number, trimmed = false): Step {
    const s = this.s;
    setWarm(s, name, false);
    s.active.chosen.delete(name);
    return this.run(now, undefined, (ctx) => {
      if (!trimmed) return startProbe(s, ctx, name);
      // Its ack, if it comes at all, would need a new connection: stop waiting for it, blaming nobody.
      for (const [seq, p] of s.probe.active) if (p.target === name) s.probe.active.delete(seq);
    });
  }

  /** All timer-driven work. */
  tick(now: number): Step {
    return this.run(now, undefined, (ctx) => {
      const s = this.s;
      runTimers(s, ctx);
      probeTick(s, ctx);
      const view = activeTick(s, ctx);
      for (const name of view.fill) startProbe(s, ctx, name);
      for (const name of view.check) startProbe(s, ctx, name, { check: true });
      this.gossipTick(ctx);
      this.syncTick(ctx);
      reconnectTick(s, ctx);
      this.forgetOld(ctx.now);
    });
  }

  /**
   * When a driver (GossipNode, the simulator's World) calls tick() next: at
   * nextWakeup(), and at least every TICK_CAP_MS, so that a clock that jumps
   * or a wakeup computed before a change costs at most a second.
   */
  nextTickAt(now: number): number {
    const wake = this.nextWakeup();
    return now + Math.min(Number.isFinite(wake) ? Math.max(0, wake - now) : TICK_CAP_MS, TICK_CAP_MS);
  }

  /** Absolute ms when tick() next has something to do. */
  nextWakeup(): number {
    const s = this.s;
    if (s.leftAt !== null) return Number.POSITIVE_INFINITY;
    return this.toRaw(this.wakeupInternal());
  }

  private wakeupInternal(): number {
    const s = this.s;
    let w = Math.min(probeWakeup(s), s.nextSync, s.nextReconnect);
    if (s.queue.size > 0) w = Math.min(w, s.nextGossip);
    if (s.join.active) w = Math.min(w, s.join.next);
    if (activeMode(s)) w = Math.min(w, s.active.next);
    return Math.min(w, nextTimer(s));
  }

  /** New incarnation, re-signed and disseminated (container health, addresses). */
  updateSelf(patch: Partial<MemberRecord>, now: number): Step {
    return this.run(now, undefined, (ctx) => {
      const s = this.s;
      if (s.leftAt !== null) return;
      const me = selfEntry(s);
      const record: MemberRecord = { ...me.signed.record, ...patch, name: s.selfName, id_pub: s.selfPub };
      me.signed = signRecord(record, me.inc + 1, s.secretKey);
      me.inc += 1;
      s.queue.enqueue(s.selfName, { k: 'a', r: me.signed });
      emit(ctx, 'updated', s.selfName, me.inc);
    });
  }

  /** Announces 'left' (signed) to several members directly; afterwards this instance stays silent. */
  leave(now: number): Step {
    return this.run(now, undefined, (ctx) => {
      const s = this.s;
      if (s.leftAt !== null) return;
      const me = selfEntry(s);
      const g = signLeft(s.selfName, me.inc, s.secretKey);
      me.state = 'left';
      me.leftSig = g;
      me.stateSince = ctx.now;
      const u: Update[] = [{ k: 'l', n: s.selfName, i: me.inc, g }];
      for (const e of entriesOf(s, pick(liveIds(s), s.t.leaveFanout, s.rng))) ctx.send.push({ to: destOf(e), msg: { t: 'g', u } });
      emit(ctx, 'left', s.selfName, me.inc);
      s.leftAt = ctx.now;
    });
  }

  /**
   * The connections this agent keeps (active-view.ts): `bounded` once more
   * other members are live than activeMax; `neighbours`, the live members
   * it holds a connection with; `chosen`, those it picked itself.
   */
  activeView(): { bounded: boolean; neighbours: string[]; chosen: string[] } {
    const s = this.s;
    return {
      bounded: activeMode(s),
      neighbours: activeIds(s)
        .map((id) => s.entries.index.names[id] as string)
        .sort(),
      chosen: [...s.active.chosen].sort(),
    };
  }

  /** Every member, self included. */
  view(): MemberView[] {
    const out: MemberView[] = [];
    for (const [name, e] of this.s.entries) {
      const self = name === this.s.selfName;
      out.push({
        name,
        state: e.state,
        incarnation: e.inc,
        record: e.signed.record,
        lastSeen: self ? this.rawLast : this.toRaw(e.lastSeen),
        stateSince: this.toRaw(e.stateSince),
      });
    }
    return out.sort((a, b) => byCodePoint(a.name, b.name));
  }

  /** One operator sentence each, with what to do. */
  problems(): string[] {
    return [...describeProblems(this.s, this.monoLast), ...admissionProblems(this.s)];
  }

  persistable(): PersistedPeer[] {
    return entriesOf(this.s, [...liveIds(this.s), ...deadIds(this.s)])
      .sort((a, b) => b.lastSeen - a.lastSeen)
      .slice(0, MAX_PERSISTED)
      .map((e) => ({ name: e.signed.record.name, addresses: [...e.signed.record.addresses], id_pub: e.signed.record.id_pub }));
  }

  /** Dropped or odd inputs by reason (bad-signature, name-conflict, unverifiable-incarnation, ...), for status and tests. */
  counters(): Record<string, number> {
    return Object.fromEntries(this.s.counters);
  }

  /** Callbacks for the daemon (metrics, internal error logs): see GossipHooks. */
  setHooks(hooks: GossipHooks): void {
    this.s.hooks = hooks;
  }

  /** Our current incarnation. */
  incarnation(): number {
    return selfEntry(this.s).inc;
  }

  private run(raw: number, from: PeerInfo | undefined, fn: (ctx: Ctx) => void): Step {
    const now = this.mono(raw);
    const ctx: Ctx = from ? { now, send: [], events: [], from } : { now, send: [], events: [] };
    if (this.s.leftAt !== null) return { send: [], events: [] };
    try {
      fn(ctx);
      evictOverUsed(this.s, ctx);
      for (const ev of ctx.events) if (ev.type === 'alive' && ev.name !== this.s.selfName) addToProbeOrder(this.s, ev.name);
      // A refuted suspicion is no arrival (Ctx.arrived): counted as one, a storm of false suspicions
      // kept the active view in its join-storm mode, and connections grew by hundreds a second at N = 300.
      if (ctx.arrived) {
        this.s.active.learntAt = ctx.now;
        // With bounded connections news comes from a few neighbours, and all of them can miss a
        // member: while members keep arriving (a join storm, a merge), compare digests sooner.
        if (activeMode(this.s)) this.s.nextSync = Math.min(this.s.nextSync, ctx.now + Math.round(this.s.t.syncInterval / 4));
      }
      joinTick(this.s, ctx);
    } catch (e) {
      internalError(this.s, 'step', e);
    }
    return ctx.close ? { send: ctx.send, events: ctx.events, close: ctx.close } : { send: ctx.send, events: ctx.events };
  }

  /** Checks the sender against what we know; false = drop the message. */
  private acceptSender(ctx: Ctx, from: PeerInfo, msg: GossipMessage): boolean {
    const s = this.s;
    if (s.adminPub !== null && !(from.name === s.selfName && from.idPub === s.selfPub)) {
      // The transport vets at the handshake too, but the admission may have been replaced since.
      const refused = vetIdentity(s, from.name, from.idPub, from.admission);
      if (refused) {
        noteRefusal(s, ctx, from.name, from.idPub, from.remote, refused);
        return false;
      }
      if (from.name === s.selfName) return false; // the admin gave our name to that identity: admissionProblems() says so
    }
    offerAdmission(s, ctx, from);
    if (from.name === s.selfName) {
      if (from.idPub === s.selfPub) return false; // our own message: transports refuse a connection to themselves
      recordConflict(
        s,
        ctx,
        s.selfName,
        { idPub: s.selfPub, addr: `${selfEntry(s).signed.record.addresses[0] ?? 'no address'} (this agent)` },
        { idPub: from.idPub, addr: from.remote },
      );
      return false;
    }
    const e = s.entries.get(from.name);
    if (!e) {
      // Someone we have never heard of talks to us: we missed updates (join storms have long
      // tails). Compare digests with it now rather than at the next sync, at most every so often.
      if ((msg.t === 'p' || msg.t === 'k' || msg.t === 'g' || msg.t === 'r') && ctx.now >= s.nextCurious) {
        s.nextCurious = ctx.now + Math.round(s.t.syncInterval / 10);
        ctx.send.push({ to: { name: from.name, addresses: [] }, msg: syncHashMessage(s) });
      }
      setWarm(s, from.name, true);
      return true;
    }
    if (e.signed.record.id_pub !== from.idPub) {
      if (isLive(e)) {
        recordConflict(
          s,
          ctx,
          from.name,
          { idPub: e.signed.record.id_pub, addr: e.signed.record.addresses[0] ?? 'no address' },
          { idPub: from.idPub, addr: from.remote },
        );
        return false;
      }
      return true; // a new identity taking over a dead or left name: its signed record decides
    }
    e.lastSeen = ctx.now;
    setWarm(s, from.name, true);
    if (e.state === 'dead' && msg.t !== 'd' && msg.t !== 'y' && msg.t !== 'h') {
      // It talks to us, so it lives: show it our digest so it learns it is held dead and refutes.
      nudge(s, ctx, destOf(e), () => digestMessages(s));
    }
    return true;
  }

  private dispatch(ctx: Ctx, from: PeerInfo, msg: GossipMessage): void {
    const s = this.s;
    if (!this.acceptSender(ctx, from, msg)) return count(s, 'sender-refused');
    switch (msg.t) {
      case 'p':
        applyAll(s, ctx, msg.u, false);
        return onPing(s, ctx, from, msg.s);
      case 'k':
        applyAll(s, ctx, msg.u, false);
        return onAck(s, ctx, msg.s, from.name);
      case 'n':
        return onNack(s, ctx, msg.s, from.name);
      case 'r':
        return onPingReq(s, ctx, from, msg.s, msg.n);
      case 'g':
        return applyAll(s, ctx, msg.u, false);
      case 'h':
        offerRemovals(s, ctx, from, msg.x);
        offerRotation(s, ctx, from, msg.r);
        if (msg.h !== digestHash(s)) {
          const to = replyDest(this.s, from);
          for (const m of digestMessages(s)) ctx.send.push({ to, msg: m });
        }
        return;
      case 'd': {
        applyAll(s, ctx, msg.u, true);
        const { push, want } = compareDigest(s, ctx, msg.d, msg.b);
        if (push.length > 0 || want.length > 0) {
          sendChunked(ctx, replyDest(this.s, from), push, s.t.messageBytes, want);
          // Views differ (a join storm, a merge): compare again soon, with someone else.
          s.nextSync = Math.min(s.nextSync, ctx.now + Math.round(s.t.syncInterval / 10));
        }
        return;
      }
      case 'y': {
        applyAll(s, ctx, msg.u, true);
        const items: Update[] = [];
        for (const name of new Set(msg.w)) {
          const e = s.entries.get(name);
          if (e) items.push(...itemsFor(s, e));
        }
        if (items.length > 0) sendChunked(ctx, replyDest(this.s, from), items, s.t.messageBytes, []);
        return;
      }
      default:
        return count(s, 'unknown-message');
    }
  }

  /**
   * Up to gossipFanout messages of queued updates, each to a different member
   * that still lacks some of them (a target that already got everything
   * queued is skipped, not counted), drawn by drawGossipTarget.
   */
  private gossipTick(ctx: Ctx): void {
    const s = this.s;
    if (s.queue.size === 0 || ctx.now < s.nextGossip) return;
    s.nextGossip = ctx.now + s.t.gossipInterval;
    const n = liveCount(s);
    const live = liveIds(s);
    const k = Math.min(s.t.gossipFanout, live.length);
    const tried = new Set<string>();
    let sent = 0;
    for (let draws = 0; sent < k && draws < 4 * k && s.queue.size > 0; draws++) {
      const e = drawGossipTarget(s, live, ctx.now);
      if (!e) continue;
      const name = e.signed.record.name;
      if (tried.has(name)) continue;
      tried.add(name);
      const u = s.queue.take(s.t.messageBytes, n, name);
      if (u.length === 0) continue;
      ctx.send.push({ to: destOf(e), msg: { t: 'g', u } });
      sent++;
    }
  }

  private syncTick(ctx: Ctx): void {
    const s = this.s;
    if (ctx.now < s.nextSync) return;
    s.nextSync = ctx.now + Math.round(s.t.syncInterval * (0.75 + 0.5 * s.rng()));
    const [peer] = pickNeighbours(s, 1);
    if (peer) ctx.send.push({ to: destOf(peer), msg: syncHashMessage(s) });
  }

  /** Drops name conflicts and nudge stamps past their memory (left members go by their timer: runTimers()). */
  private forgetOld(now: number): void {
    const s = this.s;
    for (const [name, c] of s.conflicts) if (now >= c.lastSeen + s.t.conflictMemory) s.conflicts.delete(name);
    forgetRefusals(s, now, s.t.conflictMemory);
    for (const [name, t] of s.nudged) if (now - t > s.t.syncInterval * 4) s.nudged.delete(name);
    forgetForgotten(s, now);
  }
}
