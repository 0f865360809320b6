/**
 * Restart backoff for containers that keep dying: the first death is
 * restarted at once; each further quick death doubles the wait, capped, with
 * jitter so that several nodes restarting together spread out. A container
 * that stayed up for `resetAfterMs` before dying starts over at "first death".
 */
import { exponentialBackoff } from '../../shared/backoff';

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
  return exponentialBackoff(failures - 2, policy, random, policy.capMs * (1 + policy.jitter));
}

/**
 * When to try again after the `failures`-th failure of an action that is not a
 * restart (a start, a link set-up, a node removal): never at once, at least
 * `baseMs` later, then as backoffDelay.
 */
export function retryAt(now: number, failures: number, policy: BackoffPolicy, random: number): number {
  return now + Math.max(policy.baseMs, backoffDelay(failures, policy, random));
}
