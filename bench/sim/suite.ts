/**
 * One full simulator run at one cluster size: builds the World and runs the
 * phases in order on it, with phase lengths scaled to the timing preset and
 * to N (false-positive windows aim at a fixed number of member-hours).
 */
import type { GossipTiming } from '../../agent/gossip/timing';
import { suspicionMax } from '../../agent/gossip/timing';
import { HANDSHAKE_BYTES } from './connections';
import type { LatencySpec } from './latency';
import type { LossModel } from './network';
import { stream } from './rng';
import * as sc from './scenarios';
import { World } from './world';

/** The home cut: one member loses its uplink, for this long at most (healed as soon as the rest holds it dead). */
export const HOME_CUT_MS = 30_000;

export interface SuiteOptions {
  n: number;
  seed: number;
  timing: GossipTiming;
  timingName: string;
  latency: LatencySpec;
  anchors: number;
  /** Members start within this window (ms) after the anchors. */
  startSpreadMs: number;
  lossRates: number[];
  lossModels: LossModel[];
  /** Member-hours each false-positive window aims at (bounded to 60 s..1 h of virtual time). */
  memberHours: number;
  churnPairs: number;
  wire: 'decode' | 'shared';
  /** Extra convergence-only runs with seeds seed+1, seed+2, ... (spread of the convergence time). */
  repeat: number;
  /** Only the convergence phase (a sweep over N). */
  convergeOnly: boolean;
  /** Also the partition, the churn and the drop-model loss windows (see --heavy-max). */
  heavy: boolean;
  /** Print a line as each phase ends. */
  progress?: (line: string) => void;
}

/** The first minute after the join storm's start, over which its handshakes are counted. */
export const FIRST_MINUTE_MS = 60_000;

/** Connection costs (connections.ts): the baseline a bounded set of connections is measured against. */
export interface ConnectionsResult {
  /** Bytes counted per handshake, each side. */
  handshakeBytes: { dialer: number; listener: number };
  /** From the first start until FIRST_MINUTE_MS later (converge, rest, and the start of the crash phase), over the members up then. */
  firstMinute: {
    windowS: number;
    handshakesPerMember: number;
    handshakeBytesPerMember: number;
    handshakeBytesPerMemberPerS: number;
    maxHandshakeBytesPerMember: number;
  } | null;
  /** At the end of the rest window: open connections per member, and handshake bytes per member per second in that window. */
  rest: { atS: number; openMean: number; openMax: number; handshakeBytesPerMemberPerS: number } | null;
  /** After the loss windows, long after the start: open connections per member (toward N-1: the transport never closes an idle one). */
  later: { atS: number; openMean: number; openMax: number } | null;
}

export interface SuiteResult {
  n: number;
  seed: number;
  timing: string;
  latency: string;
  wire: string;
  converge: sc.ConvergeResult;
  /** The heavy phases ran (false: N above --heavy-max). Absent in files written before the flag. */
  heavy?: boolean;
  /** Convergence of this seed and of every repeat seed (first = `converge`). */
  convergeRuns: { seed: number; ms: number | null; gossipRounds: number | null; p50: number | null; p90: number | null }[];
  rest: sc.RestResult | null;
  crashes: sc.CrashResult[];
  falsePositives: sc.FalsePositiveResult[];
  /** One member (a home losing its uplink) cut off until the rest holds it dead (at most HOME_CUT_MS), at every N. Absent in files written before it. */
  homeCut?: sc.PartitionResult | null;
  partition: sc.PartitionResult | null;
  churn: sc.ChurnResult | null;
  /** Open connections and handshakes. Absent in files written before it. */
  connections?: ConnectionsResult;
  runtime: { realMs: number; events: number; memberCalls: number; messages: number; peakHeapMB: number; phasesMs: Record<string, number> };
}

export function runSuite(o: SuiteOptions): SuiteResult {
  const t0 = Date.now();
  const say = o.progress ?? (() => undefined);
  const capacity = o.n + o.churnPairs;
  const rng = stream(o.seed, 'scenarios');
  const t = o.timing;
  // Long enough for anything the protocol should manage: many suspicion timeouts or sync rounds.
  const limit = Math.max(120_000, 20 * suspicionMax(t, o.n), 20 * t.syncInterval);
  const phases: Record<string, number> = {};
  let peak = 0;
  const phase = <T>(name: string, fn: () => T): T => {
    const p0 = Date.now();
    const r = fn();
    phases[name] = Date.now() - p0;
    peak = Math.max(peak, process.memoryUsage().heapUsed / 1e6);
    say(`  N=${o.n} ${name}: ${JSON.stringify(r)} (${((Date.now() - p0) / 1000).toFixed(1)} s)`);
    return r;
  };

  // The main world lives inside this function only, so that the repeat seeds below
  // do not hold two worlds of N² member entries at once.
  const main = (): SuiteResult => {
    const w = new World({ seed: o.seed, timing: o.timing, latency: o.latency, capacity, wire: o.wire, countBytes: false });
    const ledger = w.net.connections;
    const t0 = w.now();
    const upMembers = (): number[] => {
      const up: number[] = [];
      for (let i = 0; i < w.size; i++) if (w.isUp(i)) up.push(i);
      return up;
    };
    const connections: ConnectionsResult = { handshakeBytes: { ...HANDSHAKE_BYTES }, firstMinute: null, rest: null, later: null };
    if (!o.convergeOnly) {
      const start = ledger.snapshot();
      // An observation only: it reads counters, draws no random number, so the run stays the same.
      w.q.at(t0 + FIRST_MINUTE_MS, () => {
        const up = upMembers();
        let hs = 0;
        let bytes = 0;
        let max = 0;
        for (const i of up) {
          const m = ledger.member(i);
          hs += m.dialed + m.answered;
          const b = ledger.since(start, i);
          bytes += b;
          max = Math.max(max, b);
        }
        const n = Math.max(1, up.length);
        connections.firstMinute = {
          windowS: FIRST_MINUTE_MS / 1000,
          handshakesPerMember: hs / n,
          handshakeBytesPerMember: bytes / n,
          handshakeBytesPerMemberPerS: bytes / n / (FIRST_MINUTE_MS / 1000),
          maxHandshakeBytesPerMember: max,
        };
      });
    }
    const converge = phase('converge', () => sc.converge(w, o.n, { anchors: o.anchors, spreadMs: o.startSpreadMs, limitMs: limit, rng }));
    const result: SuiteResult = {
      n: o.n,
      seed: o.seed,
      timing: o.timingName,
      latency: o.latency.name,
      wire: o.wire,
      converge,
      heavy: o.heavy,
      convergeRuns: [{ seed: o.seed, ms: converge.ms, gossipRounds: converge.gossipRounds, p50: converge.fractions.p50, p90: converge.fractions.p90 }],
      rest: null,
      crashes: [],
      falsePositives: [],
      homeCut: null,
      partition: null,
      churn: null,
      runtime: { realMs: 0, events: 0, memberCalls: 0, messages: 0, peakHeapMB: 0, phasesMs: phases },
    };
    if (converge.ms !== null && !o.convergeOnly) {
      result.rest = phase('rest', () => sc.rest(w, { warmMs: 10 * t.probeInterval, windowMs: 30 * t.probeInterval }));
      const restOpen = ledger.openStats(upMembers());
      connections.rest = {
        atS: (w.now() - t0) / 1000,
        openMean: restOpen.mean,
        openMax: restOpen.max,
        handshakeBytesPerMemberPerS: result.rest.handshakeBytesPerMemberPerS,
      };
      for (const mode of ['kill', 'power-off'] as const) {
        result.crashes.push(phase(`crash-${mode}`, () => sc.crash(w, { mode, anchors: o.anchors, limitMs: limit, rng })));
        w.runFor(2 * t.syncInterval);
      }
      const durationMs = Math.round(Math.min(3_600_000, Math.max(60_000, (o.memberHours * 3_600_000) / o.n)));
      for (const model of o.lossModels.filter((m) => o.heavy || m !== 'drop')) {
        for (const loss of o.lossRates) {
          result.falsePositives.push(phase(`loss-${model}-${loss}`, () => sc.falsePositives(w, { loss, model, durationMs, recoverLimitMs: limit })));
        }
      }
      const later = ledger.openStats(upMembers());
      connections.later = { atS: (w.now() - t0) / 1000, openMean: later.mean, openMax: later.max };
      // A home losing its uplink, healed once the rest holds it dead: affordable at any N, where two
      // halves are N² state changes (see docs/sim.md for a cut-off site of 1%).
      result.homeCut = phase('home-cut', () => sc.partition(w, { limitMs: limit, rng, count: 1, holdMs: HOME_CUT_MS, untilCutSeen: true }));
      if (o.heavy) result.partition = phase('partition', () => sc.partition(w, { limitMs: limit, rng }));
      if (o.heavy && o.churnPairs > 0) {
        result.churn = phase('churn', () =>
          sc.churn(w, { pairs: o.churnPairs, spacingMs: 2 * t.probeInterval, anchors: o.anchors, firstNew: o.n, settleMs: limit, rng }),
        );
      }
    }
    if (!o.convergeOnly) {
      result.connections = connections;
      say(`  N=${o.n} connections: ${JSON.stringify(connections)}`);
    }
    result.runtime = { realMs: 0, events: w.q.processed, memberCalls: w.calls, messages: w.net.totals.messages, peakHeapMB: 0, phasesMs: phases };
    return result;
  };
  const result = main();
  for (let k = 1; k < o.repeat; k++) {
    const seed = o.seed + k;
    const wk = new World({ seed, timing: o.timing, latency: o.latency, capacity: o.n, wire: o.wire, countBytes: false });
    const c = phase(`converge-seed-${seed}`, () =>
      sc.converge(wk, o.n, { anchors: o.anchors, spreadMs: o.startSpreadMs, limitMs: limit, rng: stream(seed, 'scenarios') }),
    );
    result.convergeRuns.push({ seed, ms: c.ms, gossipRounds: c.gossipRounds, p50: c.fractions.p50, p90: c.fractions.p90 });
  }
  result.runtime.realMs = Date.now() - t0;
  result.runtime.peakHeapMB = Math.round(peak);
  return result;
}
