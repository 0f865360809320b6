/**
 * One exit watcher (PodmanClient.watchExit) per running hepto container, the
 * fast path of self-heal: it reports a dead container tens of ms after the
 * crash, where Podman's event stream can lag by its file poll interval.
 * Events stay the backup. A watch that ended while the same process still
 * runs (same StartedAt) is reopened a few times only, so a misbehaving
 * attach cannot make the loop spin.
 */
import { errorMessage } from '../../shared/errors';
import type { Logger } from '../../shared/log';
import type { ObservedContainer } from './planner';
import type { PodmanClient } from './podman-client';

interface Watch {
  startedAt: number | null;
  close: (() => void) | null;
  ended: boolean;
  /** Watches reopened on this same process after one ended without a death. */
  reopened: number;
}

/** A watch that keeps ending while its process runs is given up after this many reopenings. */
const MAX_REOPEN = 3;

export class ExitWatchers {
  private readonly watches = new Map<string, Watch>();

  constructor(
    private readonly client: PodmanClient,
    private readonly log: Logger,
    private readonly onExit: (id: string) => void,
  ) {}

  closeAll(): void {
    for (const w of this.watches.values()) w.close?.();
    this.watches.clear();
  }

  /** Opens watches on running hepto containers, closes those of containers gone or stopped. */
  sync(observed: ObservedContainer[]): void {
    const running = new Map(observed.filter((o) => o.node !== null && o.state === 'running').map((o) => [o.id, o]));
    for (const [id, w] of this.watches) {
      if (running.has(id)) continue;
      w.close?.();
      this.watches.delete(id);
    }
    for (const [id, o] of running) {
      const w = this.watches.get(id);
      const same = w !== undefined && w.startedAt === o.startedAt;
      if (w && (!w.ended || (same && w.reopened >= MAX_REOPEN))) continue;
      w?.close?.();
      const entry: Watch = { startedAt: o.startedAt, close: null, ended: false, reopened: same ? w!.reopened + 1 : 0 };
      this.watches.set(id, entry);
      this.client
        .watchExit(id, (why) => {
          entry.ended = true;
          this.log.debug('exit watch ended', { container: o.name, why });
          if (this.watches.get(id) === entry) this.onExit(id);
        })
        .then((h) => {
          if (this.watches.get(id) === entry && !entry.ended) entry.close = () => h.close();
          else h.close();
        })
        .catch((e) => {
          entry.ended = true;
          this.log.debug('exit watch failed; relying on events', { container: o.name, error: errorMessage(e) });
        });
    }
  }
}
