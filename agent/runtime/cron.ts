/**
 * node-cron, the parts the supervisor uses: its in-process scheduled task and
 * its expression check. Not its index, which also loads the scheduler of
 * string tasks (a `child_process.fork` per task, never used here) and keeps
 * every task in a global map for ever: 0.5 MiB of the agent's resident memory
 * (docs/bench/README.md, Memory).
 */

/** A scheduled task: stop() ends it. */
export interface CronTask {
  stop(): void;
}

type ScheduledTaskClass = new (expression: string, fn: () => void) => CronTask;

/** Whether node-cron takes `expression` (six fields with seconds, or five). */
export function validCron(expression: string): boolean {
  const check = require('node-cron/src/pattern-validation') as (expression: string) => void;
  try {
    check(expression);
    return true;
  } catch {
    return false;
  }
}

/** Runs `fn` whenever the clock matches `expression`, from now on (node-cron checks once a second). */
export function scheduleCron(expression: string, fn: () => void): CronTask {
  const ScheduledTask = require('node-cron/src/scheduled-task') as ScheduledTaskClass;
  return new ScheduledTask(expression, fn);
}
