/**
 * The path MTU part of a running agent (issue 15), around the pure pieces:
 * it tells the prober which peers to measure (live members that have talked
 * to this agent directly, at their node address in the family wesher uses), and keeps this agent's `paths` record
 * field up to date within the publication throttle (paths.ts).
 */
import { isIP } from 'net';
import { EarliestTimer, type Clock, type TimerHandle } from '../../shared/clock';
import type { Logger } from '../../shared/log';
import type { MemberRecord, MemberState, PathView } from '../../shared/member';
import type { PeerLinks } from './links';
import { buildPaths, publishAt } from './paths';
import { PathMtuProber, type ProberTiming, type Target } from './prober';
import type { SearchResult } from './search';

/** How often the paths are rebuilt to see whether a publication is due (round trips and `up` change without events). */
export const PATHS_CHECK_MS = 5_000;

export interface PathsMember {
  name: string;
  state: MemberState;
  record: MemberRecord;
}

export interface PathsServiceOptions {
  clock: Clock;
  logger: Logger;
  self: string;
  members: () => PathsMember[];
  links: PeerLinks;
  /** Signs and gossips this agent's record with the new paths. */
  publish: (paths: Record<string, PathView>) => void;
  measure: (address: string) => Promise<SearchResult>;
  rng: () => number;
  timing?: ProberTiming;
}

/** The peer's node address to probe: one in the family of this node's own first node address, else its first. */
export function targetAddress(own: string[], peer: string[]): string | null {
  const ips = peer.filter((a) => isIP(a) !== 0);
  const family = own.map((a) => isIP(a)).find((f) => f !== 0);
  return ips.find((a) => isIP(a) === family) ?? ips[0] ?? null;
}

export class PathsService {
  private readonly prober: PathMtuProber;
  private timer: TimerHandle | null = null;
  private readonly publishTimer: EarliestTimer;
  private published: Record<string, PathView> | undefined;
  private publishedAt: number | null = null;
  private running = false;

  constructor(private readonly o: PathsServiceOptions) {
    this.publishTimer = new EarliestTimer(o.clock);
    this.prober = new PathMtuProber({
      clock: o.clock,
      measure: o.measure,
      rng: o.rng,
      timing: o.timing,
      logger: o.logger,
      onResult: () => this.check(),
    });
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.membersChanged();
    this.tick();
  }

  stop(): void {
    this.running = false;
    this.prober.stop();
    if (this.timer) this.o.clock.clearTimeout(this.timer);
    this.timer = null;
    this.publishTimer.clear();
  }

  /** Members came, went or changed: new targets, and maybe new paths. */
  membersChanged(): void {
    if (!this.running) return;
    const members = this.o.members();
    const own = members.find((m) => m.name === this.o.self)?.record.node_ips ?? [];
    const targets: Target[] = [];
    for (const m of members) {
      if (m.name === this.o.self || (m.state !== 'alive' && m.state !== 'suspect')) continue;
      // Only a member that talked to this agent itself: its record's node_ips are then a real member's
      // word, not a made-up member's, which could aim this agent's pings at a third party (issue 14).
      if (!this.o.links.met(m.name)) continue;
      const address = targetAddress(own, m.record.node_ips);
      if (address) targets.push({ name: m.name, address });
    }
    this.prober.setTargets(targets);
    this.o.links.retain(new Set(members.filter((m) => m.state !== 'left').map((m) => m.name)));
    this.check();
  }

  /** The measured path MTUs by peer (for metrics): null when nothing got through. */
  results(): Map<string, number | null> {
    return this.prober.results();
  }

  private tick(): void {
    this.timer = this.o.clock.setTimeout(() => {
      this.timer = null;
      if (!this.running) return;
      // Targets too: a member met since the last member event is measured without waiting for another.
      this.membersChanged();
      this.tick();
    }, PATHS_CHECK_MS);
  }

  /** Publishes the paths now if due, or arms a timer for when they will be. */
  private check(): void {
    if (!this.running) return;
    const now = this.o.clock.now();
    const next = this.current(now);
    const at = publishAt(this.published, this.publishedAt, next, this.o.timing?.publishGapMs);
    if (at === null) return;
    if (at <= now) {
      this.published = next;
      this.publishedAt = now;
      this.o.publish(next);
      return;
    }
    this.publishTimer.request(at, () => this.check());
  }

  private current(now: number): Record<string, PathView> {
    return buildPaths(this.o.self, this.o.members(), (name) => this.o.links.view(name, now), this.prober.results());
  }
}
