/**
 * The one backoff curve of the agent, used by container restarts
 * (agent/runtime/backoff.ts), gossip join retries (agent/gossip/timing.ts) and
 * Podman reconnects (agent/runtime/supervisor.ts). Pure.
 */
/** The shape of an exponential backoff: what `exponentialBackoff` needs of a policy. */
export interface BackoffCurve {
  /** Wait at attempt 0, before jitter. */
  baseMs: number;
  /** Longest wait before jitter. */
  capMs: number;
  /** Jitter as a fraction of the wait: the wait is scaled by [1 - j, 1 + j]; 0 for none. */
  jitter: number;
}

/**
 * The one backoff curve of the agent (container restarts, gossip join
 * retries, Podman reconnects): baseMs doubling per attempt (0, 1, 2, ...),
 * capped at capMs, scaled by the jitter, then capped at `ceilingMs`, in whole
 * milliseconds. Pure: `random`, in [0, 1), is the caller's draw.
 */
export function exponentialBackoff(attempt: number, curve: BackoffCurve, random: number, ceilingMs = curve.capMs): number {
  const exp = Math.min(curve.capMs, curve.baseMs * 2 ** Math.min(30, Math.max(0, attempt)));
  const scale = 1 - curve.jitter + 2 * curve.jitter * Math.min(Math.max(random, 0), 1);
  return Math.round(Math.min(ceilingMs, exp * scale));
}
