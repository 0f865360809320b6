/**
 * The agent's Prometheus metrics (issue 15; docs/metrics.md lists them all).
 * One prom-client Registry per Agent, never the global one: tests run several
 * agents in one process. Most values are read at scrape time from state the
 * agent keeps anyway (membership view, transport byte counts, supervisor
 * status); only events that leave no state behind are counted as they happen,
 * through the hooks the gossip node and the runtime call (NodeHooks,
 * RuntimeHooks). Label values come from small fixed sets (reasonKind folds
 * free-text reasons into a few words), plus member and container names.
 * Nothing here reads a key: no key and no secret can reach the output.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { MemberState, MemberRecord } from '../../shared/member';
import type { MemberEvent } from '../gossip/membership';
import { KNOWN_INTERNAL_ERRORS, type ErrorComponent } from './internal-errors';
import type { RuntimeStatus } from './runtime-seam';

/** Where the scrape-time values come from (the Agent passes closures over its own state). */
export interface MetricsSources {
  node: string;
  version: string;
  /** Every member as this agent sees it, self included. */
  members(): { name: string; state: MemberState; record: MemberRecord }[];
  transport(): { bytesSent: number; bytesReceived: number; connections: number };
  /** The gossip core's counters of odd or dropped inputs (Membership.counters()). */
  gossipCounters(): Record<string, number>;
  internalErrors(): { component: ErrorComponent; kind: string; count: number }[];
  runtime(): RuntimeStatus;
  /** Seconds each container still waits before its next start. */
  backoffs(): Record<string, number>;
}

export const MEMBER_STATES: readonly MemberState[] = ['alive', 'suspect', 'dead', 'left'];
export const CONTAINER_STATES = ['running', 'restarting', 'exited', 'missing', 'crashloop', 'waiting'] as const;

/** The reason label of refused connections: a few fixed words for the free-text reasons of the transport and the membership. */
export const REFUSAL_KINDS = [
  'wrong-key',
  'version',
  'bad-signature',
  'not-admitted',
  'removed',
  'superseded',
  'name-conflict',
  'timeout',
  'limit',
  'malformed',
  'other',
] as const;
export type RefusalKind = (typeof REFUSAL_KINDS)[number];

/**
 * Folds a refusal reason (a sentence from agent/net or agent/gossip) into
 * one of REFUSAL_KINDS. Quoted parts (a peer's claimed name, which the peer
 * chooses) are left out first, so a name cannot pick the label.
 */
export function reasonKind(reason: string): RefusalKind {
  const r = reason.replace(/"[^"]*"/g, '""').toLowerCase();
  if (/overlay key|does not open/.test(r)) return 'wrong-key';
  if (/protocol version/.test(r)) return 'version';
  if (/signature/.test(r)) return 'bad-signature';
  if (/removed/.test(r)) return 'removed';
  if (/superseded|replaced by a newer admission|newer admission gave/.test(r)) return 'superseded';
  if (/admit|admission|invitation/.test(r)) return 'not-admitted';
  if (/already held|same name|node name/.test(r)) return 'name-conflict';
  if (/within \d+ ms|no bytes|no answer|timed? ?out/.test(r)) return 'timeout';
  if (/too many|more than|larger than|exceeds|limit/.test(r)) return 'limit';
  if (
    /malformed|unexpected|too short|too long|wrong length|wrong type|out of order|text frame|second hello|unknown path|bad websocket|not utf-8|not allowed|degenerate|not a |is not/.test(
      r,
    )
  )
    return 'malformed';
  return 'other';
}

/** prom-client default metrics whose names break the conventions (see the constructor). */
const MISNAMED_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

/** Probe round trips: from a LAN (1 ms) to a slow intercontinental path through a busy agent (5 s). */
const RTT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];
/** Reconcile runs: nothing to do (ms) to pulls of large images (minutes). */
const RECONCILE_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300];

/** A counter whose value is read at scrape time from a monotonic source (prom-client counters only go up by inc). */
function snapshot(c: Counter<string>, values: Array<[Record<string, string>, number]>): void {
  c.reset();
  for (const [labels, v] of values) if (v >= 0) c.inc(labels, v);
}

export class AgentMetrics {
  readonly registry = new Registry();
  private readonly suspicions: Counter<string>;
  private readonly refutations: Counter<string>;
  private readonly deaths: Counter<string>;
  private readonly leaves: Counter<string>;
  private readonly probeRttHist: Histogram<string>;
  private readonly framesSent: Counter<string>;
  private readonly framesReceived: Counter<string>;
  private readonly refusedCounter: Counter<string>;
  private readonly refusedByCounter: Counter<string>;
  private readonly pulls: Counter<string>;
  private readonly pullFailures: Counter<string>;
  private readonly builds: Counter<string>;
  private readonly buildFailures: Counter<string>;
  private readonly reconciles: Counter<string>;
  private readonly reconcileFailures: Counter<string>;
  private readonly reconcileDuration: Histogram<string>;

  constructor(private readonly src: MetricsSources) {
    const registers = [this.registry];
    const self = this;
    collectDefaultMetrics({ register: this.registry });
    // Gauges that prom-client names with `_total`, which promtool (rightly) refuses; each is
    // the sum of its per-type twin without the suffix (nodejs_active_handles{type} ...).
    for (const name of MISNAMED_DEFAULTS) this.registry.removeSingleMetric(name);

    new Gauge({
      name: 'hepto_agent_info',
      help: 'Always 1; the labels say which node and hepto-agent version this is.',
      labelNames: ['node', 'version'],
      registers,
      collect() {
        this.set({ node: self.src.node, version: self.src.version }, 1);
      },
    });
    new Gauge({
      name: 'hepto_members',
      help: 'Members of the cluster as this agent sees them, by state (self included).',
      labelNames: ['state'],
      registers,
      collect() {
        const n: Record<string, number> = Object.fromEntries(MEMBER_STATES.map((s) => [s, 0]));
        for (const m of self.src.members()) n[m.state] = (n[m.state] ?? 0) + 1;
        for (const s of MEMBER_STATES) this.set({ state: s }, n[s] ?? 0);
      },
    });
    new Gauge({
      name: 'hepto_path_mtu_bytes',
      help: "Path MTU from this agent to each peer's node address, as last measured (peers not measured yet are left out).",
      labelNames: ['peer'],
      registers,
      collect() {
        this.reset();
        const own = self.src.members().find((m) => m.name === self.src.node);
        for (const [peer, p] of Object.entries(own?.record.paths ?? {})) if (typeof p?.mtu === 'number') this.set({ peer }, p.mtu);
      },
    });
    this.suspicions = new Counter({ name: 'hepto_member_suspicions_total', help: 'Members this agent came to hold suspect.', registers });
    this.refutations = new Counter({
      name: 'hepto_member_refutations_total',
      help: 'Suspicions refuted: by this agent of itself (by="self"), or by a suspect member (by="peer").',
      labelNames: ['by'],
      registers,
    });
    this.deaths = new Counter({ name: 'hepto_member_deaths_total', help: 'Members this agent came to hold dead.', registers });
    this.leaves = new Counter({ name: 'hepto_member_leaves_total', help: 'Members that left the cluster (announced their leave).', registers });
    for (const by of ['self', 'peer']) this.refutations.inc({ by }, 0);
    this.probeRttHist = new Histogram({
      name: 'hepto_probe_rtt_seconds',
      help: 'Round trip of direct probes answered by their target.',
      buckets: RTT_BUCKETS,
      registers,
    });
    new Counter({
      name: 'hepto_transport_sent_bytes_total',
      help: 'Bytes sent on gossip sockets (encrypted frames, handshakes included).',
      registers,
      collect() {
        snapshot(this, [[{}, self.src.transport().bytesSent]]);
      },
    });
    new Counter({
      name: 'hepto_transport_received_bytes_total',
      help: 'Bytes received on gossip sockets, those refused before authenticating included.',
      registers,
      collect() {
        snapshot(this, [[{}, self.src.transport().bytesReceived]]);
      },
    });
    this.framesSent = new Counter({ name: 'hepto_transport_sent_frames_total', help: 'Gossip messages handed to the transport (one frame each).', registers });
    this.framesReceived = new Counter({ name: 'hepto_transport_received_frames_total', help: 'Gossip messages received from authenticated peers.', registers });
    new Gauge({
      name: 'hepto_transport_connections',
      help: 'Authenticated gossip connections open now.',
      registers,
      collect() {
        this.set(self.src.transport().connections);
      },
    });
    this.refusedCounter = new Counter({
      name: 'hepto_transport_refused_total',
      help: 'Connections, handshakes and messages this agent refused, by reason.',
      labelNames: ['reason'],
      registers,
    });
    this.refusedByCounter = new Counter({
      name: 'hepto_transport_refused_by_peers_total',
      help: 'Times a peer refused this agent, by reason.',
      labelNames: ['reason'],
      registers,
    });
    new Counter({
      name: 'hepto_internal_errors_total',
      help: 'Errors caught inside the gossip core (component="gossip") or the container supervisor (component="runtime"), by kind: each one is a bug.',
      labelNames: ['component', 'kind'],
      registers,
      collect() {
        const seen = self.src.internalErrors();
        const known = KNOWN_INTERNAL_ERRORS.filter((k) => !seen.some((e) => e.component === k.component && e.kind === k.kind)).map((k) => ({ ...k, count: 0 }));
        snapshot(
          this,
          [...known, ...seen].map((e) => [{ component: e.component, kind: e.kind }, e.count]),
        );
      },
    });
    new Counter({
      name: 'hepto_gossip_dropped_total',
      help: "Odd or refused gossip inputs and failed sends, by the gossip core's reason (a fixed set of words).",
      labelNames: ['reason'],
      registers,
      collect() {
        snapshot(
          this,
          Object.entries(self.src.gossipCounters())
            .filter(([k]) => k !== 'internal-error')
            .map(([k, v]) => [{ reason: k }, v]),
        );
      },
    });
    new Gauge({
      name: 'hepto_containers',
      help: 'Containers this agent supervises, by state.',
      labelNames: ['state'],
      registers,
      collect() {
        const n: Record<string, number> = Object.fromEntries(CONTAINER_STATES.map((s) => [s, 0]));
        for (const c of self.src.runtime().containers) n[c.state] = (n[c.state] ?? 0) + 1;
        for (const [state, v] of Object.entries(n)) this.set({ state }, v);
      },
    });
    new Counter({
      name: 'hepto_container_restarts_total',
      help: 'Restarts of each supervised container since the agent started.',
      labelNames: ['container'],
      registers,
      collect() {
        snapshot(
          this,
          self.src.runtime().containers.map((c) => [{ container: c.name }, c.restarts]),
        );
      },
    });
    new Gauge({
      name: 'hepto_container_backoff_seconds',
      help: 'Seconds each supervised container still waits before its next start (its restart backoff); 0 when none.',
      labelNames: ['container'],
      registers,
      collect() {
        this.reset();
        for (const [container, s] of Object.entries(self.src.backoffs())) this.set({ container }, s);
      },
    });
    this.pulls = new Counter({ name: 'hepto_image_pulls_total', help: 'Image pulls the supervisor ran, failed ones included.', registers });
    this.pullFailures = new Counter({ name: 'hepto_image_pull_failures_total', help: 'Image pulls that failed.', registers });
    this.builds = new Counter({ name: 'hepto_image_builds_total', help: 'Builds of the wesher image, failed ones included.', registers });
    this.buildFailures = new Counter({ name: 'hepto_image_build_failures_total', help: 'Builds of the wesher image that failed.', registers });
    this.reconciles = new Counter({ name: 'hepto_reconcile_runs_total', help: 'Reconcile runs of the supervisor, failed ones included.', registers });
    this.reconcileFailures = new Counter({ name: 'hepto_reconcile_failures_total', help: 'Reconcile runs that ended in an error.', registers });
    this.reconcileDuration = new Histogram({
      name: 'hepto_reconcile_duration_seconds',
      help: 'How long reconcile runs took.',
      buckets: RECONCILE_BUCKETS,
      registers,
    });
  }

  /** A member event from the gossip node (GossipNode.onEvent). */
  memberEvent(ev: MemberEvent): void {
    if (ev.type === 'suspect') this.suspicions.inc();
    else if (ev.type === 'dead') this.deaths.inc();
    else if (ev.type === 'left') this.leaves.inc();
    else if (ev.type === 'refuted') this.refutations.inc({ by: 'self' });
    else if (ev.type === 'alive' && ev.detail === 'refuted') this.refutations.inc({ by: 'peer' });
  }

  probeRtt(ms: number): void {
    if (Number.isFinite(ms) && ms >= 0) this.probeRttHist.observe(ms / 1000);
  }

  frameSent(): void {
    this.framesSent.inc();
  }

  frameReceived(): void {
    this.framesReceived.inc();
  }

  refused(reason: string): void {
    this.refusedCounter.inc({ reason: reasonKind(reason) });
  }

  refusedBy(reason: string): void {
    this.refusedByCounter.inc({ reason: reasonKind(reason) });
  }

  reconciled(seconds: number, ok: boolean): void {
    this.reconciles.inc();
    if (!ok) this.reconcileFailures.inc();
    if (Number.isFinite(seconds) && seconds >= 0) this.reconcileDuration.observe(seconds);
  }

  image(how: 'pull' | 'build', ok: boolean): void {
    (how === 'pull' ? this.pulls : this.builds).inc();
    if (!ok) (how === 'pull' ? this.pullFailures : this.buildFailures).inc();
  }

  /** The exposition text, and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
