/**
 * The order in which this agent first saw each node name, for overlay-IP
 * collisions (runtime/collisions.ts, issue 14), kept in
 * `<storage_base>/<node>/names.json` so that it survives restarts:
 *
 *   { "version": 1, "next": <seq>, "names": { "<node>": { "seq": n, "at": ms } } }
 *
 * Names first seen in one view refresh share a sequence number (the smaller
 * name wins a tie). The order is a counter, not the clock, so a clock set
 * back cannot reorder it. A hosted node enters when it is pinned.
 *
 * Bounded: a name no non-left member claims any more is forgotten an hour
 * after it went (long enough for a restart to find it again in the first
 * sync), and sooner once more than LEDGER_SLACK such names are kept.
 * Nothing here is secret; it is written like the rest of the state
 * (atomically, 0600).
 */
import * as path from 'path';
import type { HeptoConfig } from '../../shared/config/types';
import { writeFileAtomic } from '../../shared/atomic-write';
import { loadStateFile } from './state-file';
import type { Logger } from '../../shared/log';
import { overlayCollisions, safeOverlayIp } from '../runtime/collisions';
import { hostedNodes, type ClusterView } from '../runtime/desired';

export const NAMES_FILE = 'names.json';
/** How long a name no member claims any more is remembered. */
export const NAME_RETENTION_MS = 3_600_000;
/** How many names no member claims are kept at most (the oldest gone go first). */
export const LEDGER_SLACK = 4096;

interface Entry {
  seq: number;
  /** When it was first seen (ms), for people reading the file. */
  at: number;
}

export class NameLedger {
  readonly file: string;
  private names = new Map<string, Entry>();
  private next = 1;
  /** Names no member claims, since when (in memory: a restart gives them another hour). */
  private readonly goneSince = new Map<string, number>();
  private dirty = false;
  private startedAt: number | null = null;
  /** Since when another member has been alive without a break (null: none is). */
  private meshSince: number | null = null;

  /** settleMs: how long the view must have held another live member before a hosted node is pinned (a sync interval). */
  constructor(
    dir: string,
    private readonly logger: Logger,
    private readonly settleMs: number,
  ) {
    this.file = path.join(dir, NAMES_FILE);
  }

  /** A missing file is a first start; a damaged one is set aside and said: hosted nodes are then pinned again. */
  async load(): Promise<void> {
    const words = {
      unreadable: 'cannot read the order node names were first seen in; starting a new one',
      damaged: 'the file of the order node names were first seen in is damaged; kept aside, starting a new one (hosted nodes are pinned again)',
    };
    await loadStateFile(this.file, this.logger, words, (text) => {
      const o = JSON.parse(text) as { version?: unknown; next?: unknown; names?: unknown };
      if (o?.version !== 1 || !Number.isSafeInteger(o.next) || typeof o.names !== 'object' || o.names === null) throw new Error('unexpected shape');
      const names = new Map<string, Entry>();
      for (const [name, e] of Object.entries(o.names as Record<string, Partial<Entry>>)) {
        if (!e || !Number.isSafeInteger(e.seq) || (e.seq as number) < 1 || (e.seq as number) >= (o.next as number) || !Number.isFinite(e.at))
          throw new Error(`bad entry for "${name}"`);
        names.set(name, { seq: e.seq as number, at: e.at as number });
      }
      this.names = names;
      this.next = o.next as number;
    });
  }

  /**
   * Takes a view refresh: gives the names seen for the first time a sequence
   * number, pins the hosted nodes whose wesher may now start, forgets names
   * long gone. Returns the view with `firstSeen` set, and when to call again
   * for a pin that waits for the view to settle (null: none waits).
   */
  observe(config: HeptoConfig, view: ClusterView, now: number): { view: ClusterView; recheckAt: number | null } {
    this.startedAt ??= now;
    const claimed = new Set<string>();
    for (const m of view.members) {
      if (m.name === config.node || m.state === 'left') continue;
      for (const node of Object.keys(m.record.containers)) claimed.add(node);
    }
    const hosted = hostedNodes(config).map((n) => n.node);
    for (const n of hosted) claimed.delete(n);
    const fresh = [...claimed].filter((n) => !this.names.has(n));
    if (fresh.length > 0) {
      const seq = this.next++;
      for (const n of fresh) this.names.set(n, { seq, at: now });
      this.dirty = true;
    }
    this.forget(new Set([...claimed, ...hosted]), now);
    const others = view.members.filter((m) => m.name !== config.node);
    if (!others.some((m) => m.state === 'alive')) this.meshSince = null;
    else this.meshSince ??= now;
    let out: ClusterView = { ...view, firstSeen: this.order() };
    let recheckAt: number | null = null;
    const unpinned = hosted.filter((n) => !this.names.has(n));
    if (unpinned.length > 0) {
      // The view is the cluster's once another member has been alive a while (the names of a big
      // cluster come in several messages), or, on a first machine with no anchors, once nobody came.
      const settled =
        this.meshSince !== null
          ? now - this.meshSince >= this.settleMs
          : config.anchors.length === 0 && others.length === 0 && now - this.startedAt >= this.settleMs;
      if (settled) {
        const losers = new Set(overlayCollisions(config, out).flatMap((c) => c.nodes.slice(1).map((l) => l.node)));
        const pin = unpinned.filter((n) => !losers.has(n) && safeOverlayIp(n, config.overlay_net) !== null);
        if (pin.length > 0) {
          const seq = this.next++;
          for (const n of pin) {
            this.names.set(n, { seq, at: now });
            this.logger.info('node pinned to its overlay IP; a node named later cannot take it', { node: n, overlay_ip: safeOverlayIp(n, config.overlay_net) });
          }
          this.dirty = true;
          out = { ...view, firstSeen: this.order() };
        }
      } else if (this.meshSince !== null || (config.anchors.length === 0 && others.length === 0)) {
        recheckAt = (this.meshSince ?? this.startedAt) + this.settleMs;
      }
    }
    return { view: out, recheckAt };
  }

  private order(): Record<string, number> {
    const out: Record<string, number> = Object.create(null) as Record<string, number>;
    for (const [n, e] of this.names) out[n] = e.seq;
    return out;
  }

  private forget(present: Set<string>, now: number): void {
    for (const n of this.names.keys()) {
      if (present.has(n)) this.goneSince.delete(n);
      else if (!this.goneSince.has(n)) this.goneSince.set(n, now);
    }
    for (const n of this.goneSince.keys()) if (!this.names.has(n)) this.goneSince.delete(n);
    const gone = [...this.goneSince].sort((a, b) => a[1] - b[1]);
    const over = gone.length - LEDGER_SLACK;
    gone.forEach(([n, since], i) => {
      if (i < over || now - since >= NAME_RETENTION_MS) {
        this.names.delete(n);
        this.goneSince.delete(n);
        this.dirty = true;
      }
    });
  }

  /** Whether the file is behind what is held. */
  get changed(): boolean {
    return this.dirty;
  }

  async save(): Promise<void> {
    const names: Record<string, Entry> = {};
    for (const [n, e] of [...this.names].sort((a, b) => a[1].seq - b[1].seq || (a[0] < b[0] ? -1 : 1))) names[n] = e;
    this.dirty = false;
    try {
      await writeFileAtomic(this.file, JSON.stringify({ version: 1, next: this.next, names }) + '\n', { mode: 0o600 });
    } catch (e) {
      this.dirty = true;
      throw e;
    }
  }
}
