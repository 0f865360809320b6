/**
 * systemd readiness and status (sd_notify) for a Node 18 daemon.
 *
 * Node cannot send a datagram to a unix socket, so each message is handed to
 * systemd's own `systemd-notify` tool. Its well-known weakness is attribution:
 * systemd learns the sender from the socket credentials, and a helper that
 * exits before PID 1 reads the message cannot be mapped to its unit, so the
 * message is dropped. We avoid that race by passing `--pid=<our pid>`:
 * systemd-notify then sends with our PID as the credential sender (allowed for
 * root, which the agent is), so systemd attributes the message to the
 * service's main process, which is alive by definition. If forging the PID is
 * refused, systemd-notify falls back to its own PID; the unit's
 * `NotifyAccess=all` then still accepts it whenever PID 1 reads it while the
 * helper lives.
 *
 * Messages go out one at a time, in order. A status line is sent only when it
 * changes, and a newer line replaces one still waiting. Everything is a no-op
 * when NOTIFY_SOCKET is unset (not under systemd, or not Type=notify).
 */
import { execFile } from 'child_process';
import type { Logger } from '../../shared/log';
import { scrub } from '../../shared/log';
import { errnoCode, errorMessage } from '../../shared/errors';

export interface Notifier {
  /** The daemon is up (mesh ready): systemd moves the unit from activating to active. */
  ready(): void;
  /** One line for `systemctl status`; repeated identical lines are not resent. */
  status(line: string): void;
  /** The daemon is shutting down on purpose. */
  stopping(): void;
  /** Keep-alive for WatchdogSec=; present only when systemd asked for it. */
  watchdog?(): void;
  /** Resolves once every queued message has been handed to systemd (or failed). */
  flush(): Promise<void>;
  /** Watchdog period systemd asked for (WATCHDOG_USEC), in ms; undefined if none. */
  readonly watchdogMs: number | undefined;
}

/** Sends one notification made of `KEY=value` assignments. Rejects on failure. */
export type NotifySender = (assignments: string[]) => Promise<void>;

export interface NotifierOptions {
  env: NodeJS.ProcessEnv;
  logger: Logger;
  /** Replaces the systemd-notify helper (tests). */
  send?: NotifySender;
  /** The helper to run; defaults to `systemd-notify` from PATH. */
  command?: string;
  /** Our PID, as systemd should see it; defaults to process.pid. */
  pid?: number;
}

/** Longest status text we hand to systemd; `systemctl status` shows one line anyway. */
export const MAX_STATUS_LENGTH = 200;
const HELPER_TIMEOUT_MS = 5000;

/** One printable line: no newlines or control characters, no secrets, bounded length. */
export function statusText(line: string): string {
  // eslint-disable-next-line no-control-regex
  const flat = scrub(line)
    .replace(/[\u0000-\u001f\u007f]+/g, ' ')
    .trim();
  return flat.length > MAX_STATUS_LENGTH ? flat.slice(0, MAX_STATUS_LENGTH - 1) + '…' : flat;
}

/** WATCHDOG_USEC in ms, honouring WATCHDOG_PID when it names another process. */
export function watchdogPeriodMs(env: NodeJS.ProcessEnv, pid: number): number | undefined {
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isFinite(usec) || usec <= 0) return undefined;
  if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== pid) return undefined;
  return Math.floor(usec / 1000);
}

function helperSender(command: string, pid: number, env: NodeJS.ProcessEnv): NotifySender {
  return (assignments) =>
    new Promise<void>((resolve, reject) => {
      execFile(command, [`--pid=${pid}`, ...assignments], { env, timeout: HELPER_TIMEOUT_MS }, (err, _out, stderr) => {
        if (err) {
          const detail = String(stderr ?? '').trim() || errorMessage(err);
          reject(Object.assign(new Error(detail), { code: errnoCode(err) }));
        } else {
          resolve();
        }
      });
    });
}

const noop = (): void => undefined;

function disabledNotifier(): Notifier {
  return { ready: noop, status: noop, stopping: noop, flush: async () => undefined, watchdogMs: undefined };
}

export function createNotifier(opts: NotifierOptions): Notifier {
  if (!opts.env.NOTIFY_SOCKET) return disabledNotifier();
  const log = opts.logger.child('sd-notify');
  const pid = opts.pid ?? process.pid;
  const send = opts.send ?? helperSender(opts.command ?? 'systemd-notify', pid, opts.env);

  /** Queue of messages; a pending status-only message is replaced, not appended. */
  const queue: { assignments: string[]; statusOnly: boolean }[] = [];
  let lastStatus: string | undefined;
  let running: Promise<void> | undefined;
  let helperMissing = false;
  let failures = 0;

  const pump = async (): Promise<void> => {
    while (queue.length > 0) {
      const msg = queue.shift()!;
      if (helperMissing) continue;
      try {
        await send(msg.assignments);
        failures = 0;
      } catch (e) {
        if (errnoCode(e) === 'ENOENT') {
          helperMissing = true;
          log.error('cannot notify systemd: systemd-notify is not installed', {
            hint: 'install systemd (it ships systemd-notify), or use Type=simple in the unit',
          });
        } else if (failures++ < 3) {
          // Logged a few times, then quietly retried with the next message.
          log.warn('systemd notification failed', { what: msg.assignments.map((a) => a.split('=')[0]).join(','), error: errorMessage(e) });
        }
      }
    }
  };

  const enqueue = (assignments: string[], statusOnly: boolean): void => {
    const last = queue[queue.length - 1];
    if (statusOnly && last?.statusOnly) {
      last.assignments = assignments;
    } else {
      queue.push({ assignments, statusOnly });
    }
    if (!running) {
      running = pump().finally(() => {
        running = undefined;
      });
    }
  };

  const notifier: Notifier = {
    watchdogMs: watchdogPeriodMs(opts.env, pid),
    ready() {
      const extra = lastStatus !== undefined ? [`STATUS=${lastStatus}`] : [];
      enqueue(['READY=1', ...extra], false);
    },
    status(line: string) {
      const text = statusText(line);
      if (text === lastStatus) return;
      lastStatus = text;
      enqueue([`STATUS=${text}`], true);
    },
    stopping() {
      enqueue(['STOPPING=1', 'STATUS=stopping'], false);
      lastStatus = 'stopping';
    },
    async flush() {
      while (running) await running;
    },
  };
  if (notifier.watchdogMs !== undefined) notifier.watchdog = () => enqueue(['WATCHDOG=1'], false);
  return notifier;
}
