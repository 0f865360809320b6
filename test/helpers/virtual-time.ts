/**
 * Driving code that runs on a ManualClock but also awaits promises (sends,
 * file writes): time moves in small steps, with an event-loop turn after each.
 */
import type { ManualClock } from '../../shared/clock';

/** Advances `ms` of virtual time in `stepMs` steps until `until` holds; whether it does. */
export async function stepClock(clock: ManualClock, stepMs: number, ms: number, until?: () => boolean): Promise<boolean> {
  for (let t = 0; t < ms; t += stepMs) {
    if (until?.()) return true;
    clock.advance(stepMs);
    await new Promise((r) => setImmediate(r));
  }
  return until?.() ?? true;
}
