/**
 * SWIM failure detection: one probe per probe period on a shuffled
 * round-robin of the live members (of the neighbours, with bounded
 * connections: active-view.ts); no ack by probeTimeout (or the ping could
 * not even be delivered) → ping-req through indirectChecks other members; no
 * ack by the end of the period → suspect.
 */
import type { Destination, PeerInfo } from '../net/transport';
import type { Update } from './messages';
import { applySuspect, clearSuspicionOnAnswer } from './rules';
import type { Ctx, Probe, State } from './state';
import { activeMode, arriving, count, destOf, isLive, isMet, isProbing, liveCount, liveIds, replyDest, shuffled } from './state';
import { activeIds, pickNeighbours } from './active-view';

/**
 * Lifeguard's local health: failed probes and suspicions of ourselves raise a
 * score (0..MAX_HEALTH), successful probes lower it, and probe timeouts and
 * intervals are multiplied by 1 + score. An agent starved of CPU or on a
 * lossy link then probes less and waits longer instead of accusing healthy
 * members of its own slowness.
 */
export const MAX_HEALTH = 8;

export function healthMultiplier(s: State): number {
  return 1 + s.probe.health;
}

export function worseHealth(s: State): void {
  s.probe.health = Math.min(MAX_HEALTH, s.probe.health + 1);
}

/** Round-trip estimate, TCP style (srtt + 4 × rttvar), from direct acks; 0 until measured. */
export function rto(s: State): number {
  return s.probe.rtt.srtt === null ? 0 : s.probe.rtt.srtt + 4 * s.probe.rtt.rttvar;
}

/** Updates to piggyback on a ping or an ack. */
export function piggyback(s: State, target: string): Update[] | undefined {
  const u = s.queue.take(s.t.piggybackBytes, liveCount(s), target);
  return u.length > 0 ? u : undefined;
}

/** Probe timeout and period multiplier for a target that has never talked to us. */
const FIRST_CONTACT_MULT = 2;
/** A quick probe's timeout (a member already suspect), as a share of the regular one. */
export const QUICK_TIMEOUT_SHARE = 0.25;

function nextTarget(s: State): string | null {
  const t = s.entries;
  const self = t.index.find(s.selfName);
  const bounded = activeMode(s);
  for (let tries = 0; tries < 2; tries++) {
    while (s.probe.index < s.probe.order.length) {
      const id = s.probe.order[s.probe.index++] as number;
      if (id !== self && t.has(id) && isLive(t.at(id)) && (!bounded || t.at(id).warmAt >= 0)) return t.index.names[id] as string;
    }
    const live = bounded ? activeIds(s) : liveIds(s);
    s.probe.round++;
    for (const id of live) t.roundOf[id] = s.probe.round;
    s.probe.order = shuffled(live, s.rng);
    s.probe.index = 0;
    if (s.probe.order.length === 0) return null;
  }
  return null;
}

/**
 * A new member joins the round-robin at a random place among those not yet
 * probed this round; the member that held that place moves to the end (one
 * swap, not a splice of the whole list: at 10,000 members a join storm made
 * the splice a tenth of the simulator's time).
 */
export function addToProbeOrder(s: State, name: string): void {
  const e = s.entries.get(name);
  if (!e || e.probeRound === s.probe.round) return;
  e.probeRound = s.probe.round;
  const at = s.probe.index + Math.floor(s.rng() * (s.probe.order.length - s.probe.index + 1));
  if (at < s.probe.order.length) s.probe.order.push(s.probe.order[at] as number);
  s.probe.order[at] = e.id;
}

/** How long a ping already known to matter waits for its ack: a quarter of `timeout`, never under four retransmission timeouts nor twice the last round trip to `name`; all of `timeout` before round trips are measured. */
function quickWait(s: State, name: string, timeout: number): number {
  if (s.probe.rtt.srtt === null) return timeout;
  return Math.max(timeout * QUICK_TIMEOUT_SHARE, 4 * rto(s), 2 * (s.probe.lastRtt.get(name) ?? 0));
}

export function startProbe(s: State, ctx: Ctx, name: string, opts: { check?: boolean } = {}): void {
  const e = s.entries.get(name);
  if (!e || !isLive(e) || isProbing(s, name)) return;
  const seq = ++s.seq;
  // Never time out faster than the round trips we actually measure (a loaded event loop, a slow
  // uplink): the indirect stage after one retransmission timeout, the verdict after two more.
  const r = rto(s);
  // A first contact (the target never talked to us over a connection) also waits for a dial
  // and a handshake, on both machines' CPUs: in a join storm that alone outlasted the timeout,
  // and each false suspicion it raised cost a refutation spread to the whole cluster. Members
  // met before keep the plain timing, even once their connections are gone: doubling for them
  // too slowed power-off detection and partition merges in the simulator (docs/sim.md).
  const m = healthMultiplier(s) * (isMet(e) ? 1 : FIRST_CONTACT_MULT);
  const timeout = Math.max(s.t.probeTimeout, r) * m;
  const period = Math.max(s.t.probeInterval, Math.max(s.t.probeTimeout, r) + 2 * r) * m;
  // A member already suspect (another member's probe failed, indirect stage included) is checked
  // by our direct ping alone: the indirect stage guards against our own bad link to it, and it is
  // told of the suspicion and refutes if it lives. The stage cost a whole probe period at each hop
  // of a suspicion through the cluster, the longest part of a silent failure's detection.
  // Its timeout is shorter too (a quarter, never under four retransmission timeouts): a claim
  // travels on only with the failure of a probe of our own, so this timeout is paid at every hop;
  // a failure only adds our confirmation, and the death still waits for our own suspicion deadline.
  // Not before round trips are measured: the floor is what keeps it above the network's. Nor
  // under twice the last round trip to this very member: the estimate above follows the members
  // probed most, and a home across an ocean among neighbours on one LAN is probed seldom.
  const quick = e.state === 'suspect';
  const wait = quick ? quickWait(s, name, timeout) : timeout;
  s.probe.active.set(seq, {
    seq,
    target: name,
    start: ctx.now,
    timeout: wait,
    period,
    indirectSent: false,
    directFailed: false,
    helpers: 0,
    asked: [],
    quick,
    inc: e.signed.incarnation,
    // A first contact (a member that never talked to us) while members arrive, to fill our active
    // view or in the round-robin: if it fails, we pick another and suspect nobody. In the N = 300
    // join on loopback sockets nearly every suspicion of the join came from such a failure: two
    // loaded machines failed to finish a handshake within the timeout. Each suspicion made every
    // member that heard of it dial the suspect to check (rules.ts startSuspicion), up to N dials
    // and handshakes at a member already slow to answer. A member that really went away is still
    // suspected: by those that met it, and by a check (active-view.ts), whose failures always count
    // (a stream of made-up records, issue 14's attack 2, keeps members arriving).
    lenient: !quick && !opts.check && !isMet(e) && arriving(s, ctx.now),
  });
  const u = piggyback(s, name);
  ctx.send.push({ to: destOf(e), msg: u ? { t: 'p', s: seq, u } : { t: 'p', s: seq } });
}

export function sendIndirect(s: State, ctx: Ctx, p: Probe): void {
  p.indirectSent = true;
  const target = s.entries.get(p.target);
  if (!target) return;
  const helpers = pickNeighbours(s, s.t.indirectChecks, target.id);
  p.helpers = helpers.length;
  p.asked = helpers.map((h) => h.name);
  for (const h of helpers) {
    ctx.send.push({ to: destOf(h), msg: { t: 'r', s: p.seq, n: p.target, a: [...target.signed.record.addresses] } });
  }
}

function failProbe(s: State, ctx: Ctx, p: Probe): void {
  // Our own health suffers only when the failure may be ours, as in Lifeguard: not when every
  // helper reported that it could not reach the target either (a crash: its connections are
  // closed), nor for a quick probe of a member others already hold suspect. Counting those made
  // every member that saw a crash probe at half speed for seconds after it: a silent failure
  // right after a crash took twice as long to suspect.
  const targetsFault = p.quick || (p.helpers > 0 && p.asked.length === 0);
  if (!targetsFault) worseHealth(s);
  s.probe.active.delete(p.seq);
  if (s.probe.late.size >= MAX_LATE) s.probe.late.clear();
  s.probe.late.set(p.seq, { start: p.start, target: p.target });
  const e = s.entries.get(p.target);
  // The target refuted a suspicion since our probe started: its new incarnation is newer news than
  // our silence. Suspecting that one too made a storm on a loaded machine (the N = 300 join on two
  // cores): every member that heard of a suspicion probed the suspect, its refutation overtook
  // their probes, the late failures raised a suspicion of the new incarnation everywhere, and so on.
  if (e && e.signed.incarnation > p.inc) return count(s, 'probe-outdated');
  if (p.lenient) {
    s.active.chosen.delete(p.target);
    return count(s, 'first-contact-failed');
  }
  if (e && isLive(e)) {
    count(s, 'probe-failed');
    applySuspect(s, ctx, p.target, e.signed.incarnation, s.selfName);
  }
}

/**
 * Lifeguard-style early verdict: our own ping went unanswered (timed out, or
 * could not even be delivered) and every helper reported the same, so waiting
 * for the end of the probe period would only delay the suspicion. With nobody
 * to ask, only an undelivered ping counts: a timed-out one may still be
 * answered before the period ends.
 */
function maybeFailEarly(s: State, ctx: Ctx, p: Probe): void {
  if (p.indirectSent && p.asked.length === 0 && (p.helpers > 0 || p.directFailed)) failProbe(s, ctx, p);
}

/** The transport could not deliver one of our pings: as a prober, go indirect now (a quick probe fails); as a helper, tell the requester. */
export function pingFailed(s: State, ctx: Ctx, seq: number): void {
  const p = s.probe.active.get(seq);
  if (p) {
    p.directFailed = true;
    if (p.quick) return failProbe(s, ctx, p);
    if (!p.indirectSent) sendIndirect(s, ctx, p);
    maybeFailEarly(s, ctx, p);
    return;
  }
  const r = s.probe.relays.get(seq);
  if (r) {
    s.probe.relays.delete(seq);
    ctx.send.push({ to: r.requester, msg: { t: 'n', s: r.origSeq } });
  }
}

/** A helper could not reach our probe's target either. Only the helpers asked count, each once: anyone else's nack could hasten a verdict. */
export function onNack(s: State, ctx: Ctx, seq: number, from: string): void {
  const p = s.probe.active.get(seq);
  if (!p) return;
  const i = p.asked.indexOf(from);
  if (i < 0) return count(s, 'nack-unasked');
  p.asked.splice(i, 1);
  maybeFailEarly(s, ctx, p);
}

/** Timer-driven probe work: indirect stage, failed probes, the next regular probe, expired relays. */
export function probeTick(s: State, ctx: Ctx): void {
  for (const p of [...s.probe.active.values()]) {
    if (ctx.now >= p.start + p.period || (p.quick && ctx.now >= p.start + p.timeout)) {
      failProbe(s, ctx, p);
    } else if (!p.indirectSent && ctx.now >= p.start + p.timeout) {
      sendIndirect(s, ctx, p);
    }
  }
  for (const [seq, r] of s.probe.relays) {
    if (ctx.now >= r.deadline) s.probe.relays.delete(seq);
    else if (ctx.now >= r.nackAt) {
      r.nackAt = Infinity;
      ctx.send.push({ to: r.requester, msg: { t: 'n', s: r.origSeq } });
    }
  }
  if (ctx.now >= s.nextProbe) {
    const interval = s.t.probeInterval * healthMultiplier(s);
    const next = s.nextProbe + interval;
    s.nextProbe = next > ctx.now ? next : ctx.now + interval;
    const target = nextTarget(s);
    if (target) startProbe(s, ctx, target);
  }
}

export function probeWakeup(s: State): number {
  let w = s.nextProbe;
  for (const p of s.probe.active.values()) w = Math.min(w, p.indirectSent ? p.start + p.period : p.start + p.timeout);
  for (const r of s.probe.relays.values()) w = Math.min(w, r.deadline, r.nackAt);
  return w;
}

export function onPing(s: State, ctx: Ctx, from: PeerInfo, seq: number): void {
  const u = piggyback(s, from.name);
  ctx.send.push({ to: replyDest(s, from), msg: u ? { t: 'k', s: seq, u } : { t: 'k', s: seq } });
}

function sampleRtt(s: State, sample: number): void {
  const r = s.probe.rtt;
  if (r.srtt === null) {
    r.srtt = sample;
    r.rttvar = sample / 2;
  } else {
    r.rttvar = 0.75 * r.rttvar + 0.25 * Math.abs(r.srtt - sample);
    r.srtt = 0.875 * r.srtt + 0.125 * sample;
  }
}

const MAX_LATE = 64;
/** Members whose last round trip is kept: the active view and then some; without bounded connections, the members probed last. */
const MAX_LAST_RTT = 256;

function noteLastRtt(s: State, name: string, ms: number): void {
  const m = s.probe.lastRtt;
  m.delete(name);
  if (m.size >= MAX_LAST_RTT) m.delete(m.keys().next().value as string);
  m.set(name, ms);
}

export function onAck(s: State, ctx: Ctx, seq: number, from: string): void {
  const p = s.probe.active.get(seq);
  if (p) {
    s.probe.active.delete(seq);
    s.probe.health = Math.max(0, s.probe.health - 1);
    if (from === p.target) {
      sampleRtt(s, ctx.now - p.start);
      noteLastRtt(s, from, ctx.now - p.start);
      s.hooks.probeRtt?.(ctx.now - p.start);
    }
    // It answered (directly, or through a helper): it lives (claims.ts).
    const e = s.entries.get(p.target);
    if (e) clearSuspicionOnAnswer(s, ctx, e);
    return;
  }
  const late = s.probe.late.get(seq);
  if (late && late.target === from) {
    // The ack of a probe we already gave up on: our timeouts are too short for this network.
    s.probe.late.delete(seq);
    sampleRtt(s, ctx.now - late.start);
    noteLastRtt(s, from, ctx.now - late.start);
  }
  const r = s.probe.relays.get(seq);
  if (r) {
    s.probe.relays.delete(seq);
    ctx.send.push({ to: r.requester, msg: { t: 'k', s: r.origSeq } });
    return;
  }
  count(s, 'late-ack');
}

const MAX_RELAYS = 512;

/** Someone asks us to ping `target` for them and forward the ack. */
export function onPingReq(s: State, ctx: Ctx, from: PeerInfo, origSeq: number, target: string): void {
  if (target === s.selfName) {
    ctx.send.push({ to: requesterDest(s, from), msg: { t: 'k', s: origSeq } });
    return;
  }
  // Only members we know, at the addresses their own signed records give: never an address that only
  // the request names (a member could otherwise make us dial anyone; issue 14, attack 4).
  // No nack for a target we do not know: "I could not reach it either" would be a verdict, and a
  // helper that has not met the target yet (a join storm) knows nothing of it; the requester waits
  // for its other helpers. Nor when our ping has to dial it: a dial and a handshake on two busy
  // machines can outlast the timeout. Over a connection already open, no ack is a nack, as in
  // Lifeguard: when every helper says so, the requester suspects at once instead of at the end of
  // its period. The requester's own ping already waited its full timeout, so ours waits as a quick
  // probe does (a hung machine, whose connections stay open, is suspected 500 ms sooner with the
  // LAN preset).
  const e = s.entries.get(target);
  if (!e || !isLive(e)) return count(s, 'relay-unknown-target');
  if (s.probe.relays.size >= MAX_RELAYS) return count(s, 'relay-overflow');
  const seq = ++s.seq;
  const wait = quickWait(s, target, Math.max(s.t.probeTimeout, rto(s)) * healthMultiplier(s));
  const nackAt = e.warmAt >= 0 ? ctx.now + wait : Infinity;
  s.probe.relays.set(seq, { requester: requesterDest(s, from), origSeq, nackAt, deadline: ctx.now + s.t.probeInterval });
  ctx.send.push({ to: destOf(e), msg: { t: 'p', s: seq } });
}

function requesterDest(s: State, from: PeerInfo): Destination {
  const e = s.entries.get(from.name);
  return e ? destOf(e) : { name: from.name, addresses: [] };
}
