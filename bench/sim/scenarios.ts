/**
 * The measurements, each a phase run on a live World. Phases run one after
 * another on the same cluster (converge, rest, crash, loss, partition,
 * churn), each leaving the cluster converged again for the next, so one
 * expensive join storm serves every figure.
 */
import { randInt, sample, type Rng } from './rng';
import type { LossModel } from './network';
import type { World } from './world';

export interface ConvergeResult {
  /** Virtual ms from the first start until every member sees every member alive; null = not within the limit. */
  ms: number | null;
  /** ms / gossipInterval: dissemination rounds. */
  gossipRounds: number | null;
  /** ms / probeInterval: SWIM protocol periods. */
  probePeriods: number | null;
  anchors: number;
  startSpreadMs: number;
  /** Virtual ms until half, 90% and 99% of members had a complete view. */
  fractions: { p50: number | null; p90: number | null; p99: number | null };
}

/** Members 0..anchors-1 are anchors (each lists the others); everyone else starts within `spreadMs` and joins through them. */
export function converge(w: World, n: number, o: { anchors: number; spreadMs: number; limitMs: number; rng: Rng }): ConvergeResult {
  const t0 = w.now();
  const anchors = Array.from({ length: Math.min(o.anchors, n) }, (_, i) => i);
  for (const a of anchors) w.start(a, anchors);
  for (let i = anchors.length; i < n; i++) w.startAt(t0 + o.rng() * o.spreadMs, i, anchors);
  const marks: { p50: number | null; p90: number | null; p99: number | null } = { p50: null, p90: null, p99: null };
  const started = (): boolean => w.obs.upMembers === n;
  const done = w.runFor(o.limitMs, () => {
    if (!started()) return false;
    const f = w.obs.fullViews() / n;
    const at = w.now() - t0;
    if (marks.p50 === null && f >= 0.5) marks.p50 = at;
    if (marks.p90 === null && f >= 0.9) marks.p90 = at;
    if (marks.p99 === null && f >= 0.99) marks.p99 = at;
    return f === 1;
  });
  const ms = done ? w.now() - t0 : null;
  return {
    ms,
    gossipRounds: ms === null ? null : ms / w.timing.gossipInterval,
    probePeriods: ms === null ? null : ms / w.timing.probeInterval,
    anchors: anchors.length,
    startSpreadMs: o.spreadMs,
    fractions: marks,
  };
}

export interface RestResult {
  windowS: number;
  /** Mean bytes sent per member per second, frames + handshakes. */
  bytesPerMemberPerS: number;
  /** Of which connection handshakes (new pairs still being connected by the probe round-robin). */
  handshakeBytesPerMemberPerS: number;
  framesPerMemberPerS: number;
  /** The busiest member (an anchor, usually). */
  maxBytesPerMemberPerS: number;
  /** Not in bytesPerMemberPerS: WebSocket pings and pongs on the connections open at the end of the window. */
  keepaliveBytesPerMemberPerS: number;
  /** Open connections per member at the end of the window (the transport never closes an idle one). */
  connectionsPerMember: number;
}

export function rest(w: World, o: { warmMs: number; windowMs: number }): RestResult {
  w.runFor(o.warmMs);
  const counting = w.net.countBytes;
  w.net.countBytes = true;
  w.net.resetStats();
  w.runFor(o.windowMs);
  w.net.countBytes = counting;
  let bytes = 0;
  let hs = 0;
  let frames = 0;
  let max = 0;
  let up = 0;
  let keepalive = 0;
  let conns = 0;
  for (let i = 0; i < w.size; i++) {
    if (!w.isUp(i)) continue;
    const s = w.net.stats[i];
    up++;
    keepalive += w.net.keepaliveBytesPerInterval(i) * (1000 / w.net.keepaliveMs);
    conns += w.net.connectionCount(i);
    bytes += s.bytesSent;
    hs += s.handshakeBytesSent;
    frames += s.framesSent;
    max = Math.max(max, s.bytesSent);
  }
  const sec = o.windowMs / 1000;
  return {
    windowS: sec,
    bytesPerMemberPerS: bytes / up / sec,
    handshakeBytesPerMemberPerS: hs / up / sec,
    framesPerMemberPerS: frames / up / sec,
    maxBytesPerMemberPerS: max / sec,
    keepaliveBytesPerMemberPerS: keepalive / up,
    connectionsPerMember: conns / up,
  };
}

export interface CrashResult {
  mode: 'kill' | 'power-off';
  victim: string;
  /** Virtual ms from the crash until the first member holds it dead, and until every member does; null = not within the limit. */
  firstMs: number | null;
  allMs: number | null;
}

function randomNonAnchor(w: World, anchors: number, rng: Rng): number {
  const candidates: number[] = [];
  for (let i = anchors; i < w.size; i++) if (w.isUp(i)) candidates.push(i);
  return candidates[randInt(rng, candidates.length)];
}

/** kill = SIGKILL (the kernel closes its connections), power-off = silence (peers notice by timeouts). */
export function crash(w: World, o: { mode: 'kill' | 'power-off'; anchors: number; limitMs: number; rng: Rng }): CrashResult {
  const victim = randomNonAnchor(w, o.anchors, o.rng);
  const t0 = w.now();
  w.obs.firstDead[victim] = NaN;
  if (o.mode === 'kill') w.kill(victim);
  else w.powerOff(victim);
  const done = w.runFor(o.limitMs, () => w.obs.goneCount(victim) >= w.obs.upMembers);
  const first = w.obs.firstDead[victim];
  return {
    mode: o.mode,
    victim: `m${victim}`,
    firstMs: Number.isNaN(first) ? null : first - t0,
    allMs: done ? w.now() - t0 : null,
  };
}

export interface FalsePositiveResult {
  loss: number;
  model: LossModel;
  durationS: number;
  memberHours: number;
  /** Distinct (member, incarnation) wrongly declared dead by at least one member. */
  deadIncidents: number;
  /** Observer-level: (observer, member) pairs where a live member was declared dead. */
  deadEvents: number;
  suspectEvents: number;
  refutations: number;
  /** deadIncidents per member-hour. */
  perMemberHour: number;
  /** Virtual ms after the loss stopped until all saw all alive again (0 = never diverged). */
  recoveryMs: number | null;
}

/** Runs `durationMs` at the given loss with no real failure; every dead/suspect verdict is a false alarm. */
export function falsePositives(w: World, o: { loss: number; model: LossModel; durationMs: number; recoverLimitMs: number }): FalsePositiveResult {
  w.obs.resetAlarms();
  w.net.loss = o.loss;
  w.net.lossModel = o.model;
  const up = w.obs.upMembers;
  w.runFor(o.durationMs);
  w.net.loss = 0;
  const alarms = w.obs.falseAlarms.filter((a) => a.type === 'dead');
  const incidents = new Set(alarms.map((a) => `${a.target}:${a.incarnation}`)).size;
  const result = {
    loss: o.loss,
    model: o.model,
    durationS: o.durationMs / 1000,
    memberHours: (up * o.durationMs) / 3_600_000,
    deadIncidents: incidents,
    deadEvents: w.obs.alarms.dead,
    suspectEvents: w.obs.alarms.suspect,
    refutations: w.obs.alarms.refutations,
    perMemberHour: 0,
    recoveryMs: null as number | null,
  };
  result.perMemberHour = incidents / result.memberHours;
  const t1 = w.now();
  result.recoveryMs = w.obs.converged() ? 0 : w.runFor(o.recoverLimitMs, () => w.obs.converged()) ? w.now() - t1 : null;
  return result;
}

export interface PartitionResult {
  groups: [number, number];
  /** The cut was held at most this long (virtual ms) waiting for the split to be seen. Absent in files written before it. */
  holdMs?: number;
  /** Virtual ms until every member held every member of the other side dead; null = not within holdMs. */
  splitMs: number | null;
  /** Virtual ms until every member of the larger side held every member of the cut-off one dead. Absent in files written before it. */
  cutSeenMs?: number | null;
  /** Virtual ms after the heal until every member saw every member alive again. */
  mergeMs: number | null;
}

/**
 * Cuts `count` random up members (default: half of them) off from the rest
 * until each side holds the other dead (or, with `untilCutSeen`, until the
 * rest holds the cut-off members dead), for at most `holdMs`; heals, and
 * times the merge (at most `limitMs`).
 */
export function partition(w: World, o: { limitMs: number; rng: Rng; count?: number; holdMs?: number; untilCutSeen?: boolean }): PartitionResult {
  const up: number[] = [];
  for (let i = 0; i < w.size; i++) if (w.isUp(i)) up.push(i);
  const order = sample(o.rng, up.length, up.length).map((k) => up[k]);
  const a = order.slice(0, Math.max(1, Math.min(order.length - 1, o.count ?? Math.floor(order.length / 2))));
  const b = order.slice(a.length);
  const holdMs = o.holdMs ?? o.limitMs;
  const t0 = w.now();
  w.net.partition([a, b]);
  const sideDead = (side: number[], other: number): boolean => side.every((t) => w.obs.goneCount(t) >= other);
  let splitMs: number | null = null;
  let cutSeenMs: number | null = null;
  const step = Math.max(100, w.timing.probeInterval / 2);
  while (w.now() - t0 < holdMs) {
    w.runFor(step);
    const cutSeen = sideDead(a, b.length);
    if (cutSeenMs === null && cutSeen) cutSeenMs = w.now() - t0;
    if (cutSeen && o.untilCutSeen) break;
    if (cutSeen && sideDead(b, a.length)) {
      splitMs = w.now() - t0;
      break;
    }
  }
  w.net.heal();
  const t1 = w.now();
  const merged = w.runFor(o.limitMs, () => w.obs.converged());
  return { groups: [a.length, b.length], holdMs, splitMs, cutSeenMs, mergeMs: merged ? w.now() - t1 : null };
}

export interface ChurnResult {
  joins: number;
  leaves: number;
  /** Per join: virtual ms until every up member saw the newcomer alive (sorted); missing = not within the run. */
  joinSeenMs: number[];
  /** Per leave (SIGTERM): virtual ms until no up member listed the leaver as alive or suspect (sorted). */
  leaveSeenMs: number[];
  /** Live members wrongly declared dead while churning. */
  falseDeadEvents: number;
}

/** `pairs` times, every `spacingMs`: one member leaves (SIGTERM), a new one joins through the anchors. */
export function churn(w: World, o: { pairs: number; spacingMs: number; anchors: number; firstNew: number; settleMs: number; rng: Rng }): ChurnResult {
  w.obs.resetAlarms();
  const anchors = Array.from({ length: o.anchors }, (_, i) => i);
  const joinAt = new Map<number, number>();
  const leaveAt = new Map<number, number>();
  const joinSeen: number[] = [];
  const leaveSeen: number[] = [];
  const sweep = (): boolean => {
    const up = w.obs.upMembers;
    for (const [t, at] of joinAt) {
      if (w.isUp(t) && w.obs.aliveCount(t) >= up - 1) {
        joinSeen.push(w.now() - at);
        joinAt.delete(t);
      }
    }
    for (const [t, at] of leaveAt) {
      // Seen by all = nobody lists it as alive or suspect any more (a member that never knew it need not learn it left).
      if (w.obs.aliveCount(t) + w.obs.suspectCount(t) === 0) {
        leaveSeen.push(w.now() - at);
        leaveAt.delete(t);
      }
    }
    return joinAt.size === 0 && leaveAt.size === 0;
  };
  for (let k = 0; k < o.pairs; k++) {
    const leaver = randomNonAnchor(w, o.anchors, o.rng);
    if (leaver !== undefined && !joinAt.has(leaver)) {
      leaveAt.set(leaver, w.now());
      w.leave(leaver);
    }
    const newcomer = o.firstNew + k;
    joinAt.set(newcomer, w.now());
    w.start(newcomer, anchors);
    w.runFor(o.spacingMs, () => {
      sweep();
      return false;
    });
  }
  w.runFor(o.settleMs, sweep);
  return {
    joins: o.pairs,
    leaves: o.pairs,
    joinSeenMs: joinSeen.sort((x, y) => x - y),
    leaveSeenMs: leaveSeen.sort((x, y) => x - y),
    falseDeadEvents: w.obs.alarms.dead,
  };
}
