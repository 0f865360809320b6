/**
 * Gossip timing presets and the pure timing math (suspicion timeouts,
 * retransmit limits, backoff). Nothing here reads a clock or a random source:
 * callers pass `now` and an injected `rng`.
 */
import { exponentialBackoff } from '../../shared/backoff';

export interface GossipTiming {
  /** One probe period: ping one member, and a failed probe turns into a suspicion at its end. */
  probeInterval: number;
  /** No ack by then: ask `indirectChecks` other members to ping the target for us. */
  probeTimeout: number;
  indirectChecks: number;
  /** Suspicion minimum = suspicionMult × max(1, log10 N) × probeInterval. */
  suspicionMult: number;
  /** Suspicion maximum = suspicionMaxMult × minimum (Lifeguard: start high, shrink with confirmations). */
  suspicionMaxMult: number;
  /** Gossip rounds: every gossipInterval, send pending updates to gossipFanout random members. */
  gossipInterval: number;
  gossipFanout: number;
  /**
   * Share of gossip targets drawn among members we already hold a connection
   * with (they talked to us), the rest among all live members. A first contact
   * costs a handshake on both ends; in a join storm, random targets made every
   * pair connect within seconds. 0 = uniform, as in SWIM.
   */
  gossipWarmShare: number;
  /** Each update is sent retransmitMult × ceil(log10(n+1)) times, n being the CURRENT cluster size. */
  retransmitMult: number;
  /** Anti-entropy: compare a digest hash with one random member. */
  syncInterval: number;
  /** Retry one random dead member this often (merges a split cluster). */
  reconnectInterval: number;
  /** Join/rejoin backoff while no other member is alive: from min, doubling, capped at max, jittered. */
  joinRetryMin: number;
  joinRetryMax: number;
  /** How many members a leaver tells directly. */
  leaveFanout: number;
  /** A left member is forgotten after this long. */
  leftRetention: number;
  /** A name conflict stays in problems() this long after it was last seen. */
  conflictMemory: number;
  /**
   * A new identity may take over a dead member's name only after it has been
   * dead this long (a left member's at once: its leave is signed). Dead claims
   * are unsigned, so without this anyone could declare a member dead and grab
   * its name before it refutes.
   */
  takeoverAfter: number;
  /**
   * Bounded connections (active-view.ts): with more other live members than
   * this, hold connections with about log2(n) + 3 chosen neighbours plus
   * those that dial us, and close the rest above this many. 0 = no bound.
   */
  activeMax: number;
  /** Budget for updates piggybacked on a ping or ack, and for one gossip or sync message (JSON bytes). */
  piggybackBytes: number;
  messageBytes: number;
}

/**
 * LAN: the default for real agents. Tuned against memberlist's LAN defaults
 * (memberlist-bench.md): a probe period of 1 s like memberlist, but a shorter
 * suspicion (log10 N s instead of 4 × log10 N s) because a suspect is told
 * directly over a reliable connection and refutes within one round trip, and
 * because a closed connection triggers an immediate probe. 1.5 × log10 N s
 * until December 7: the simulator's 1–10 % loss windows (tcp and drop) still
 * see no false death at 1 ×, and a silent failure is seen by all 1 s sooner
 * at N = 100. Crash seen by all at N = 100: about 1 s to suspect + 2 s
 * suspicion (with 3 confirmations) + gossip. Join retries back off to 10 s
 * at most (30 s until December 8): when 300 members joined through one busy
 * anchor on loopback, those it could not serve in the first seconds waited
 * out 16 and 30 s gaps after it was free again, and the join took 66 s
 * instead of about 20 s. An agent alone costs its anchors one dial per 10 s.
 */
export const LAN: GossipTiming = Object.freeze({
  probeInterval: 1000,
  probeTimeout: 400,
  indirectChecks: 3,
  suspicionMult: 1,
  suspicionMaxMult: 4,
  gossipInterval: 100,
  gossipFanout: 3,
  gossipWarmShare: 0.9,
  retransmitMult: 4,
  syncInterval: 5000,
  reconnectInterval: 10_000,
  joinRetryMin: 1000,
  joinRetryMax: 10_000,
  leaveFanout: 8,
  leftRetention: 3_600_000,
  conflictMemory: 600_000,
  takeoverAfter: 60_000,
  activeMax: 24,
  piggybackBytes: 1200,
  messageBytes: 60_000,
});

/** WAN: home uplinks across continents; slower probes, longer suspicion, rarer syncs. */
export const WAN: GossipTiming = Object.freeze({
  probeInterval: 5000,
  probeTimeout: 3000,
  indirectChecks: 3,
  suspicionMult: 4,
  suspicionMaxMult: 4,
  gossipInterval: 500,
  gossipFanout: 4,
  gossipWarmShare: 0.9,
  retransmitMult: 4,
  syncInterval: 30_000,
  reconnectInterval: 30_000,
  joinRetryMin: 2000,
  joinRetryMax: 60_000,
  leaveFanout: 8,
  leftRetention: 3_600_000,
  conflictMemory: 600_000,
  takeoverAfter: 300_000,
  activeMax: 24,
  piggybackBytes: 1200,
  messageBytes: 60_000,
});

/** TEST: fast timers for unit and integration tests (memberlist's DefaultLocalConfig idea). */
export const TEST: GossipTiming = Object.freeze({
  probeInterval: 200,
  probeTimeout: 80,
  indirectChecks: 3,
  suspicionMult: 2,
  suspicionMaxMult: 3,
  gossipInterval: 50,
  gossipFanout: 3,
  gossipWarmShare: 0.9,
  retransmitMult: 4,
  syncInterval: 1000,
  reconnectInterval: 1000,
  joinRetryMin: 200,
  joinRetryMax: 2000,
  leaveFanout: 8,
  leftRetention: 60_000,
  conflictMemory: 60_000,
  takeoverAfter: 2000,
  activeMax: 24,
  piggybackBytes: 1200,
  messageBytes: 60_000,
});

export const PRESETS: Readonly<Record<'LAN' | 'WAN' | 'TEST', GossipTiming>> = Object.freeze({ LAN, WAN, TEST });

/** Lower bound of the suspicion timeout for a cluster of n members (ms). */
export function suspicionMin(t: Pick<GossipTiming, 'suspicionMult' | 'probeInterval'>, n: number): number {
  const scale = Math.max(1, Math.log10(Math.max(1, n)));
  return Math.round(t.suspicionMult * scale * t.probeInterval);
}

/** Upper bound: where a suspicion starts when nobody else has confirmed it yet (ms). */
export function suspicionMax(t: Pick<GossipTiming, 'suspicionMult' | 'suspicionMaxMult' | 'probeInterval'>, n: number): number {
  return Math.round(t.suspicionMaxMult * suspicionMin(t, n));
}

/**
 * Lifeguard's shrinking suspicion timeout: max with no confirmation, falling
 * logarithmically to min once `expected` independent confirmations arrived.
 * With expected < 1 (tiny clusters: nobody else can confirm) it is min.
 */
export function suspicionTimeout(confirmations: number, expected: number, min: number, max: number): number {
  if (expected < 1) return min;
  const c = Math.max(0, Math.min(confirmations, expected));
  const frac = Math.log(c + 1) / Math.log(expected + 1);
  const raw = Math.floor(max - frac * (max - min));
  return Math.max(min, raw);
}

/** How many confirmations a suspicion waits for: indirectChecks, but never more than the other members who could confirm. */
export function expectedConfirmations(indirectChecks: number, n: number): number {
  return Math.max(0, Math.min(indirectChecks, n - 2));
}

/** Transmissions of one update before it leaves the queue, for the current cluster size n. */
export function retransmitLimit(mult: number, n: number): number {
  return mult * Math.max(1, Math.ceil(Math.log10(Math.max(1, n) + 1)));
}

/** Exponential, capped, jittered (×0.75..1.25, still capped) backoff for attempt 0, 1, 2, ..., at least 1 ms. */
export function backoffDelay(attempt: number, min: number, max: number, rng: () => number): number {
  return Math.max(1, exponentialBackoff(attempt, { baseMs: min, capMs: max, jitter: 0.25 }, rng()));
}
