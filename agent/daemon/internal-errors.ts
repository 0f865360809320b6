/**
 * Errors caught inside the gossip core or the supervisor (issue 15,
 * "internal errors are seen"). Each is a bug: it is counted by component and
 * kind (metrics), logged with its detail the first time, then at most one line
 * per minute per kind saying how many were left out, and a burst of them
 * (BURST_COUNT within BURST_WINDOW_MS) becomes a problem in status for a
 * while. The clock is injected so that all of it runs under a manual clock.
 */
import type { Clock } from '../../shared/clock';
import { errorMessage } from '../../shared/errors';
import type { LogContext, Logger } from '../../shared/log';

/** Where the error was caught: a small fixed set (the `component` label). */
export type ErrorComponent = 'gossip' | 'runtime';

/** The kinds the code reports (shown at 0 in the metrics until they happen). */
export const KNOWN_INTERNAL_ERRORS: readonly { component: ErrorComponent; kind: string }[] = [
  // gossip/membership.ts run(): a rule threw; gossip/sync.ts applyAll(): one update threw.
  { component: 'gossip', kind: 'step' },
  { component: 'gossip', kind: 'apply-update' },
  // daemon/gossip-node.ts: around the core (a step, an event listener, encoding a message).
  { component: 'gossip', kind: 'node-step' },
  { component: 'gossip', kind: 'event-listener' },
  { component: 'gossip', kind: 'encode' },
  // runtime/supervisor.ts: a reconcile run threw (Podman unreachable aside); a status listener threw.
  { component: 'runtime', kind: 'reconcile' },
  { component: 'runtime', kind: 'status-listener' },
];

/** At most one log line per kind per this long, after the first. */
export const LOG_EVERY_MS = 60_000;
/** This many of one kind within BURST_WINDOW_MS make a burst. */
export const BURST_COUNT = 10;
export const BURST_WINDOW_MS = 60_000;
/** How long a burst stays listed in status after its last error. */
export const BURST_SHOWN_MS = 10 * 60_000;

interface KindState {
  component: ErrorComponent;
  kind: string;
  total: number;
  /** Times of the last BURST_COUNT errors, oldest first. */
  recent: number[];
  lastLogAt: number;
  /** Errors not logged since the last line. */
  suppressed: number;
  /** The last time BURST_COUNT fell within BURST_WINDOW_MS, and how many there were in that minute. */
  burstAt: number | null;
  burstCount: number;
}

/** Kinds are fixed words from the code; anything else is folded into one (labels stay few). */
const KIND = /^[a-z][a-z0-9-]{0,39}$/;

export class InternalErrors {
  private readonly kinds = new Map<string, KindState>();

  constructor(
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  /** One error caught: counted, logged as the rate limit allows, checked for a burst. */
  report(component: ErrorComponent, kind: string, error: unknown, context: LogContext = {}): void {
    const k = KIND.test(kind) ? kind : 'other';
    const key = `${component}/${k}`;
    const now = this.clock.now();
    let st = this.kinds.get(key);
    if (!st) {
      st = { component, kind: k, total: 0, recent: [], lastLogAt: -Infinity, suppressed: 0, burstAt: null, burstCount: 0 };
      this.kinds.set(key, st);
    }
    st.total++;
    st.recent.push(now);
    if (st.recent.length > BURST_COUNT) st.recent.shift();
    const inWindow = st.recent.filter((t) => now - t < BURST_WINDOW_MS).length;
    if (inWindow >= BURST_COUNT) {
      st.burstAt = now;
      st.burstCount = inWindow;
    }
    if (now - st.lastLogAt < LOG_EVERY_MS) {
      st.suppressed++;
      return;
    }
    const first = st.total === 1;
    this.log.error(first ? 'internal error' : 'internal error, again', {
      component,
      kind: k,
      error: errorMessage(error),
      at: stackTop(error),
      ...context,
      ...(first ? {} : { total: st.total, not_logged: st.suppressed }),
      report: 'this is a bug in hepto-agent: please report it with these log lines',
    });
    st.lastLogAt = now;
    st.suppressed = 0;
  }

  /** Errors so far, by component and kind (the metrics read it at scrape time). */
  counts(): { component: ErrorComponent; kind: string; count: number }[] {
    return [...this.kinds.values()].map((s) => ({ component: s.component, kind: s.kind, count: s.total }));
  }

  /** One sentence per kind that had a burst lately, with what to do. */
  problems(): string[] {
    const now = this.clock.now();
    const out: string[] = [];
    for (const s of this.kinds.values()) {
      if (s.burstAt === null || now - s.burstAt >= BURST_SHOWN_MS) continue;
      const where = s.component === 'gossip' ? 'the gossip core' : 'the container supervisor';
      out.push(
        `internal error "${s.kind}" in ${where} happened ${s.burstCount} times within a minute (last at ${new Date(s.burstAt).toISOString()}, ${s.total} in all): this is a bug in hepto-agent; report it with this agent's log lines that say "internal error" (journalctl -u hepto-agent | grep "internal error")`,
      );
    }
    return out;
  }
}

/** The first frames of the stack, where the error was thrown (no file contents, no values). */
function stackTop(e: unknown): string | undefined {
  if (!(e instanceof Error) || typeof e.stack !== 'string') return undefined;
  const frames = e.stack
    .split('\n')
    .slice(1)
    .map((l) => l.trim().replace(/^at /, ''))
    .filter((l) => l.length > 0);
  return frames.slice(0, 3).join(' < ') || undefined;
}
