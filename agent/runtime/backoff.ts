/**
 * Restart backoff for containers that keep dying: the first death is
 * restarted at once; each further quick death doubles the wait, capped, with
 * jitter so that several nodes restarting together spread out. A container
 * that stayed up for `resetAfterMs` before dying starts over at "first death".
 */
export interface BackoffPolicy {
  /** Wait after the second quick death. */
  baseMs: number;
  /** Longest wait. */
  capMs: number;
  /** Uptime after which a death counts as the first again. */
  resetAfterMs: number;
  /** Jitter as a fraction of the wait: the wait is scaled by [1 - j, 1 + j]. */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = {
  // kubernetes-client and hyperswarm retry timers start around a second.
  baseMs: 1_000,
  // A minute: a crashlooping wesher or k3s still retries often enough to
  // recover by itself once the cause (disk, image, peer) is fixed.
  capMs: 60_000,
  // A container that ran a minute was working; its next death is news.
  resetAfterMs: 60_000,
  jitter: 0.2,
};

/**
 * Wait before restarting after the `failures`-th consecutive quick death
 * (1 = the first: no wait). `random` is in [0, 1).
 */
export function backoffDelay(failures: number, policy: BackoffPolicy, random: number): number {
  if (failures <= 1) return 0;
  const exp = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(failures - 2, 30));
  const scale = 1 - policy.jitter + 2 * policy.jitter * Math.min(Math.max(random, 0), 1);
  return Math.round(Math.min(policy.capMs * (1 + policy.jitter), exp * scale));
}
