/**
 * The self-healing supervisor: keeps each hosted node's wesher and k3s
 * containers as the config and the cluster view say, through Podman's API.
 * A thin loop around the pure planner: it runs on Podman die/oom/stop events
 * (at once), on membership changes that alter a spec (debounced) and on a
 * node-cron schedule (safety net); one run at a time, each with a timeout.
 * Podman being down never rejects start(): it shows in status and the
 * supervisor reconnects with backoff, then reconciles. stop() leaves the
 * workloads running.
 */
import type Dockerode from 'dockerode';
import { scheduleCron, validCron, type CronTask } from './cron';
import { EarliestTimer, type Clock, type TimerHandle } from '../../shared/clock';
import type { HeptoConfig } from '../../shared/config/types';
import { errorMessage, isHeptoError } from '../../shared/errors';
import { registerSecret, type Logger } from '../../shared/log';
import { applyActions } from './apply';
import { backoffDelay, DEFAULT_BACKOFF, type BackoffPolicy } from './backoff';
import { exponentialBackoff, type BackoffCurve } from '../../shared/backoff';
import { computeDesired, type ClusterView, type DesiredState } from './desired';
import {
  deleteNodeArgv,
  emptyRemovalState,
  forgetRemovals,
  hostsMaster,
  noteDeleted,
  noteRemovalFailed,
  planRemovals,
  summarizeOutput,
  type RemovalPlan,
} from './node-removal';
import { observeLinks, serverAgentTokens, serverCaHash, serverTokenProblems } from './node-observe';
import { readNodePassword, type AgentTokenPlan, type AgentTokenRotation } from './k3s-token';
import { clearResync, markResyncPending, putTokenRotate, readTokenRotate, resyncMarkerPath, resyncPending, supervisorLoopback } from './k3s-resync';
import { writeFileAtomic } from '../../shared/atomic-write';
import type { ClusterKeys, RuntimeHooks } from '../daemon/runtime-seam';
import { promises as fsp } from 'fs';
import { subscribeEvents, type EventSubscription } from './events';
import { ExitWatchers } from './exit-watch';
import { defaultRouteIface, probeNetavarkVersion } from './host-facts';
import type { NetworkFacts } from './network';
import { OverlayLinks, type LinkState } from './overlay-link';
import { containerHistory, emptyHistory, planReconcile, specMatches, type History, type Observed, type ObservedContainer } from './planner';
import { PodmanClient } from './podman-client';
import { isUnreachable, toHeptoError } from './podman-errors';
import { containerName, k3sDataDir } from './specs';
import { buildSupervisorStatus, type SupervisorStatus } from './runtime-status';

export type { ContainerStatus, SupervisorStatus } from './runtime-status';
export { overlayIp } from './overlay-ip';

export interface SupervisorOptions {
  config: HeptoConfig;
  clock: Clock;
  logger: Logger;
  dockerFactory?: (socketPath: string) => Dockerode;
  /** node-cron expression of the safety-net reconcile; default every 30 s. */
  cronSchedule?: string;
  backoff?: Partial<BackoffPolicy>;
  /** Longest a single reconcile run may take (pulls included). */
  runTimeoutMs?: number;
  /** Idle timeout of a single Podman API request (streams have none); default 60 s. */
  requestTimeoutMs?: number;
  /** Debounce of membership-triggered runs. */
  membershipDebounceMs?: number;
  random?: () => number;
  /** How the host facts are found (tests replace them). */
  facts?: { defaultIface?: () => string | null; netavarkVersion?: () => Promise<string | null> };
  /** Reads and sets the overlay links (tests may swap the command runner). */
  links?: OverlayLinks;
  /** How often the overlay links are re-read, to undo wesher's MTU resets; default 3 s. */
  linkCheckMs?: number;
  /** See planner JOIN_DEADLINE_MS. */
  joinDeadlineMs?: number;
  /** Longest a command run inside a container (kubectl delete node) may take; default 30 s. */
  execTimeoutMs?: number;
  /**
   * Set when this agent starts after a key rotation switched (config.overlay_key
   * and agent_key already the new ones): the agent token the master's k3s
   * datastore may still hold (null: none or unknown). Absent: no rotation known,
   * so the datastore's agent token is never changed (k3s-token.ts).
   */
  previousAgentKey?: string | null;
}

const LINK_CHECK_MS = 3_000;
const EXEC_TIMEOUT_MS = 30_000;

/** Podman reconnects: from 500 ms, doubling, capped at 30 s, without jitter. */
const RECONNECT_BACKOFF: BackoffCurve = { baseMs: 500, capMs: 30_000, jitter: 0 };

export class Supervisor {
  private opts: SupervisorOptions;
  private readonly log: Logger;
  private readonly client: PodmanClient;
  private readonly policy: BackoffPolicy;
  private view: ClusterView = { members: [] };
  private facts: NetworkFacts = { defaultIface: null, netavarkVersion: null };
  private desired: DesiredState;
  private signature = '';
  private readonly history: History = emptyHistory();
  private observed: ObservedContainer[] | null = null;
  private observedNetworks: string[] = [];
  /** Containers named by events since the last run: a run for events only re-inspects these. */
  private readonly dirty = new Set<string>();
  private fullObserveNeeded = true;
  private readonly watchers: ExitWatchers;
  private podman: 'connected' | 'unreachable' = 'unreachable';
  private podmanProblem: string | null = null;
  private started = false;
  private connecting = false;
  private reconnectAttempts = 0;
  private reconnectTimer: TimerHandle | null = null;
  private readonly debounce: EarliestTimer;
  private wakeTimer: TimerHandle | null = null;
  private inFlight: Promise<void> | null = null;
  private pending = false;
  private events: EventSubscription | null = null;
  private cronTask: CronTask | null = null;
  private readonly listeners: Array<() => void> = [];
  private lastEmitted = '';
  private readonly links: OverlayLinks;
  private linkTimer: TimerHandle | null = null;
  /** Last link read per node, for status (the MTU in force). */
  private linkStates: Record<string, LinkState> = {};
  /** Why containers wait, from the last plan. */
  private waits: Record<string, string> = {};
  /** Hosted master nodes whose datastore the current cluster_key cannot open. */
  private serverToken: Record<string, string> = {};
  /** The agent token each hosted master's k3s server gets, as its datastore allows (k3s-token.ts). */
  private agentTokens: Record<string, AgentTokenPlan> = {};
  /** The hosted master's k3s CA hash, read once its k3s server runs; published as k3s_ca. */
  private k3sCa: string | null = null;
  /** Set when the current run outlived its timeout: it stops before its next action. */
  private abortRun = false;
  /** Removed nodes deleted from Kubernetes in this agent run, and failed attempts (node-removal.ts). */
  private readonly removals = emptyRemovalState();
  private removalPlan: RemovalPlan = { due: [], forget: [], nextAt: null, problems: [] };
  private removedSignature = '';
  /** Set by a key rotation (setKeys, or previousAgentKey at start): the master's server may move to agent_key. */
  private rotation: AgentTokenRotation | null = null;
  /** Failed attempts at re-syncing the master's datastore (k3s-resync.ts), for backoff and status. */
  private resync: { failures: number; nextAt: number; lastError: string | null } = { failures: 0, nextAt: 0, lastError: null };
  /** Metrics and internal error callbacks (runtime-seam.ts RuntimeHooks). */
  private hooks: RuntimeHooks = {};

  constructor(opts: SupervisorOptions) {
    this.opts = opts;
    this.debounce = new EarliestTimer(opts.clock);
    this.log = opts.logger;
    this.policy = { ...DEFAULT_BACKOFF, ...(opts.backoff ?? {}) };
    this.links = opts.links ?? new OverlayLinks();
    this.client = new PodmanClient({ socketPath: opts.config.podman_socket, dockerFactory: opts.dockerFactory, requestTimeoutMs: opts.requestTimeoutMs });
    this.watchers = new ExitWatchers(this.client, this.log, (id) => {
      if (!this.started) return;
      this.dirty.add(id);
      this.trigger('event exit', 0);
    });
    registerSecret(opts.config.overlay_key);
    registerSecret(opts.config.cluster_key);
    registerSecret(opts.config.agent_key);
    registerSecret(Buffer.from(opts.config.overlay_key, 'utf8').toString('base64'));
    if (opts.previousAgentKey !== undefined) {
      registerSecret(opts.previousAgentKey);
      this.rotation = { previous: opts.previousAgentKey };
    }
    this.podmanProblem = `Podman API at ${opts.config.podman_socket} not reached yet`;
    this.desired = this.compute();
    this.signature = this.signatureOf(this.desired);
  }

  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    this.facts.defaultIface = (this.opts.facts?.defaultIface ?? defaultRouteIface)();
    this.desired = this.compute();
    const expr = this.opts.cronSchedule ?? '*/30 * * * * *';
    if (expr) {
      if (!validCron(expr)) this.log.error('invalid cron schedule, safety-net reconcile disabled', { schedule: expr });
      else this.cronTask = scheduleCron(expr, () => (this.podman === 'connected' ? this.trigger('schedule', 0) : void this.connect()));
    }
    this.scheduleLinkCheck();
    await this.connect();
  }

  /** Re-reads the overlay links now and then: wesher sets its MTU back to 1420 at every membership change. */
  private scheduleLinkCheck(): void {
    const every = this.opts.linkCheckMs ?? LINK_CHECK_MS;
    if (!this.started || every <= 0) return;
    this.linkTimer = this.opts.clock.setTimeout(() => {
      this.linkTimer = null;
      if (this.podman === 'connected' && this.desired.links.length > 0) this.trigger('link check', 0);
      this.scheduleLinkCheck();
    }, every);
  }

  async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    this.cronTask?.stop();
    this.cronTask = null;
    for (const t of [this.reconnectTimer, this.wakeTimer, this.linkTimer]) if (t) this.opts.clock.clearTimeout(t);
    this.reconnectTimer = this.wakeTimer = this.linkTimer = null;
    this.debounce.clear();
    this.events?.close();
    this.events = null;
    if (this.inFlight) await this.inFlight.catch(() => undefined);
    this.watchers.closeAll();
    this.log.info('supervisor stopped; containers keep running');
  }

  setCluster(view: ClusterView): void {
    this.view = view;
    this.desired = this.compute();
    const sig = this.signatureOf(this.desired);
    const removed = hostsMaster(this.opts.config) ? JSON.stringify([...new Set(view.removed ?? [])].sort()) : '';
    this.refreshRemovals();
    if (sig !== this.signature || removed !== this.removedSignature) {
      this.signature = sig;
      this.removedSignature = removed;
      this.trigger('membership', this.opts.membershipDebounceMs ?? 250);
    }
    this.emitIfChanged();
  }

  /**
   * New keys after a rotation (issue 13). wesher's spec carries the overlay
   * key, so it is recreated with the new one at once (its k3s with it: k3s
   * lives in wesher's network namespace). A k3s agent's token file is
   * rewritten in place (a live file, not a recreate). The master's server
   * moves from the datastore's agent token (previous_agent_key) to the new
   * agent_key, and its datastore is re-synced once it runs with it.
   */
  setKeys(keys: ClusterKeys): void {
    for (const k of [keys.overlay_key, keys.agent_key, keys.previous_agent_key]) registerSecret(k);
    registerSecret(Buffer.from(keys.overlay_key, 'utf8').toString('base64'));
    const before = this.opts.config;
    this.opts = { ...this.opts, config: { ...before, overlay_key: keys.overlay_key, agent_key: keys.agent_key } };
    this.rotation = { previous: keys.previous_agent_key };
    this.log.info('new cluster keys; containers follow', {
      overlay_key_changed: before.overlay_key !== keys.overlay_key,
      agent_key_changed: before.agent_key !== keys.agent_key,
    });
    this.desired = this.compute();
    this.signature = this.signatureOf(this.desired);
    this.fullObserveNeeded = true;
    this.trigger('keys', 0);
    this.emitIfChanged();
  }

  status(): SupervisorStatus {
    const st = buildSupervisorStatus({
      desired: this.desired,
      observed: this.observed,
      history: this.history,
      waits: this.waits,
      links: this.linkStates,
      podman: this.podman,
      podmanProblem: this.podmanProblem,
      now: this.opts.clock.now(),
      k3sCa: this.k3sCa,
    });
    if (this.removalPlan.problems.length > 0) st.problems = [...new Set([...st.problems, ...this.removalPlan.problems])];
    if (this.resync.lastError !== null) {
      st.problems = [
        ...st.problems,
        `the k3s datastore of ${this.opts.config.master} is not yet re-synced with the new agent token (${this.resync.lastError}); retrying. Until it is, ` +
          'a restart of its k3s server starts once more and then fails with "…/server/cred/passwd newer than datastore" (docs/upstream.md K28)',
      ];
    }
    return st;
  }

  onChange(cb: () => void): void {
    this.listeners.push(cb);
  }

  setHooks(hooks: RuntimeHooks): void {
    this.hooks = hooks;
  }

  /** Seconds each desired container still waits before its next start (its backoff), 0 when it may start now. */
  backoffs(): Record<string, number> {
    const now = this.opts.clock.now();
    return Object.fromEntries(this.desired.containers.map((c) => [c.name, Math.max(0, containerHistory(this.history, c.name).nextStartAt - now) / 1000]));
  }

  /** An error caught here that is a bug: to the hook (logged there, rate-limited), else logged as before. */
  private internalError(kind: string, e: unknown, fallback: () => void): void {
    if (!this.hooks.internalError) return fallback();
    try {
      this.hooks.internalError(kind, e);
    } catch {
      fallback();
    }
  }

  /** Resolves when no reconcile is running or scheduled to run at once (tests, bench). */
  async idle(): Promise<void> {
    while (this.inFlight) await this.inFlight.catch(() => undefined);
  }

  private compute(): DesiredState {
    return computeDesired(this.opts.config, this.view, this.facts, this.serverToken, this.agentTokens);
  }

  private signatureOf(d: DesiredState): string {
    return JSON.stringify([d.containers.map((c) => [c.name, c.spec?.hash ?? `wait:${c.waiting}`]), d.networks.map((n) => n.name), d.problems]);
  }

  private emitIfChanged(): void {
    const s = JSON.stringify(this.status());
    if (s === this.lastEmitted) return;
    this.lastEmitted = s;
    for (const cb of this.listeners) {
      try {
        cb();
      } catch (e) {
        this.internalError('status-listener', e, () => this.log.error('status listener failed', { error: errorMessage(e) }));
      }
    }
  }

  private async connect(): Promise<void> {
    if (!this.started || this.connecting || this.podman === 'connected') return;
    this.connecting = true;
    try {
      await this.client.ping();
      const info = await this.client.info();
      this.facts.netavarkVersion = info.netavarkVersion ?? (await (this.opts.facts?.netavarkVersion ?? probeNetavarkVersion)());
      this.events?.close();
      this.events = await subscribeEvents(
        this.client.streams,
        this.log,
        (ev) => {
          this.log.info('container event', { event: ev.kind, container: ev.name ?? ev.id.slice(0, 12), exit_code: ev.exitCode ?? undefined });
          this.dirty.add(ev.id);
          this.trigger(`event ${ev.kind}`, 0);
        },
        (reason) => this.onEventsEnded(reason),
      ).catch((e) => {
        throw toHeptoError(e, 'subscribe to events', this.opts.config.podman_socket);
      });
      if (!this.started) {
        this.events.close();
        return;
      }
      const was = this.podman;
      this.podman = 'connected';
      this.podmanProblem = null;
      this.reconnectAttempts = 0;
      this.log.info(was === 'unreachable' && this.observed !== null ? 'reconnected to Podman' : 'connected to Podman', {
        socket: this.opts.config.podman_socket,
        version: info.version,
        netavark: this.facts.netavarkVersion ?? 'unknown',
      });
      this.desired = this.compute();
      this.signature = this.signatureOf(this.desired);
      this.fullObserveNeeded = true;
      this.trigger('connected', 0);
    } catch (e) {
      this.markUnreachable(e);
    } finally {
      this.connecting = false;
      this.emitIfChanged();
    }
  }

  /** The event stream ended: Podman went away, or only the stream did (then subscribe again). */
  private onEventsEnded(reason: string): void {
    if (!this.started) return;
    this.events = null;
    this.log.debug('event stream ended', { reason });
    this.client
      .ping()
      .then(() => {
        // Podman answers: reconnect through the normal path to resubscribe.
        this.podman = 'unreachable';
        this.podmanProblem = `Podman event stream at ${this.opts.config.podman_socket} ended (${reason}); resubscribing`;
        return this.connect();
      })
      .catch((e) => this.markUnreachable(e));
  }

  private markUnreachable(e: unknown): void {
    const err = toHeptoError(e, 'reach the Podman API', this.opts.config.podman_socket);
    const sentence =
      isHeptoError(err) && err.code === 'PODMAN_UNREACHABLE' ? err.describe() : `Podman API at ${this.opts.config.podman_socket} failed: ${err.describe()}`;
    if (this.podman === 'connected' || this.podmanProblem !== sentence)
      this.log.warn('Podman unreachable; containers are left as they are, retrying', { socket: this.opts.config.podman_socket, error: err.message });
    this.podman = 'unreachable';
    this.podmanProblem = sentence;
    this.events?.close();
    this.events = null;
    this.watchers.closeAll();
    if (this.started && !this.reconnectTimer) {
      const delay = exponentialBackoff(this.reconnectAttempts, RECONNECT_BACKOFF, 0);
      this.reconnectAttempts++;
      this.reconnectTimer = this.opts.clock.setTimeout(() => {
        this.reconnectTimer = null;
        void this.connect();
      }, delay);
    }
    this.emitIfChanged();
  }

  /** Asks for a reconcile in `delayMs`; an earlier request wins, later ones merge into it. */
  private trigger(reason: string, delayMs: number): void {
    if (!this.started) return;
    this.debounce.request(this.opts.clock.now() + delayMs, () => this.run(reason));
  }

  private run(reason: string): void {
    if (!this.started) return;
    if (this.inFlight) {
      this.pending = true;
      return;
    }
    const timeoutMs = this.opts.runTimeoutMs ?? 15 * 60_000;
    this.abortRun = false;
    // A run that outlives its timeout is stopped between two actions, and the next
    // run waits for it: two runs never act on Podman at once.
    const timer = this.opts.clock.setTimeout(() => {
      this.abortRun = true;
      this.log.error('reconcile run took too long; stopping it after its current action', { reason, timeout_ms: timeoutMs });
    }, timeoutMs);
    const t0 = process.hrtime.bigint();
    let ok = true;
    this.inFlight = this.reconcileOnce(reason)
      .catch((e) => {
        ok = false;
        if (isUnreachable(e)) this.markUnreachable(e);
        else {
          const detail = isHeptoError(e) ? e.describe() : errorMessage(e);
          this.internalError('reconcile', e, () => this.log.error('reconcile failed', { reason, error: detail }));
        }
      })
      .finally(() => {
        try {
          this.hooks.reconciled?.(Number(process.hrtime.bigint() - t0) / 1e9, ok);
        } catch {
          // metrics only
        }
        this.opts.clock.clearTimeout(timer);
        this.inFlight = null;
        this.emitIfChanged();
        if (this.pending) {
          this.pending = false;
          this.trigger('pending', 0);
        }
      });
  }

  /**
   * What Podman has. A run caused only by events about containers already
   * known re-inspects just those (the fast path of self-heal); any other run
   * lists everything.
   */
  private async observe(): Promise<Observed> {
    const names = this.desired.containers.map((c) => c.name);
    const dirty = [...this.dirty];
    this.dirty.clear();
    let containers: ObservedContainer[];
    let networks: string[];
    const cached = this.observed;
    if (!this.fullObserveNeeded && cached && dirty.every((id) => cached.some((c) => c.id === id))) {
      const fresh = await Promise.all(dirty.map((id) => this.client.inspectOne(id)));
      containers = cached.filter((c) => !dirty.includes(c.id)).concat(fresh.filter((c): c is ObservedContainer => c !== null && c.name !== ''));
      networks = this.observedNetworks;
    } else {
      [containers, networks] = await Promise.all([this.client.listContainers(names), this.client.listManagedNetworks()]);
      this.fullObserveNeeded = false;
    }
    this.observedNetworks = networks;
    // Images matter only where a container has to be (re)created with a changed spec.
    const byName = new Map(containers.map((c) => [c.name, c]));
    const needed = new Set<string>();
    for (const d of this.desired.containers) {
      const o = byName.get(d.name);
      if (d.spec && (!o || !specMatches(o, d.spec))) needed.add(d.spec.image);
    }
    const images: string[] = [];
    for (const img of needed) if (await this.client.imageExists(img)) images.push(img);
    // An image there now (loaded by hand, say) has no pull failure left to report.
    for (const img of images) delete this.history.images[img];
    const { links, wesherStateAt } = await observeLinks(this.links, this.opts.config, this.desired, byName, this.history);
    this.linkStates = links;
    return { containers, networks, managedNetworks: networks, images, links, wesherStateAt };
  }

  /** The overlay link in each running wesher's namespace, and when each wesher last wrote its state (a membership event). */
  private async reconcileOnce(reason: string): Promise<void> {
    if (this.podman !== 'connected') return;
    if (!reason.startsWith('event') && reason !== 'link check') this.fullObserveNeeded = true;
    const t0 = Date.now();
    this.serverToken = await serverTokenProblems(this.opts.config);
    this.agentTokens = await serverAgentTokens(this.opts.config, this.rotation);
    // An agent token kept from the datastore (not agent_key) is a key too.
    for (const plan of Object.values(this.agentTokens)) registerSecret(plan.token);
    // A server about to move to a new agent token owes its datastore a re-sync: noted before it is recreated.
    for (const [node, plan] of Object.entries(this.agentTokens)) {
      if (plan.rotating) await markResyncPending(resyncMarkerPath(this.opts.config, node), this.opts.clock.now());
    }
    this.desired = this.compute();
    const observed = await this.observe();
    this.observed = observed.containers;
    await this.refreshLiveFiles();
    await this.readK3sCa();
    if (this.started && this.podman === 'connected') this.watchers.sync(this.observed);
    const now = this.opts.clock.now();
    const actions = planReconcile(this.desired, observed, this.history, now, {
      policy: this.policy,
      random: this.opts.random ?? Math.random,
      joinDeadlineMs: this.opts.joinDeadlineMs,
    });
    this.waits = Object.fromEntries(actions.flatMap((a) => (a.type === 'wait' ? [[a.name, a.reason]] : [])));
    if (actions.every((a) => a.type === 'wait')) {
      this.log.debug('reconciled, nothing to do', { reason });
      await this.resyncDatastore();
      await this.deleteRemovedNodes();
      this.scheduleWake();
      return;
    }
    const done = await applyActions(actions, {
      client: this.client,
      links: this.links,
      history: this.history,
      logger: this.log,
      now: () => this.opts.clock.now(),
      policy: this.policy,
      random: this.opts.random ?? Math.random,
      aborted: () => this.abortRun || !this.started,
      image: (how, ok) => {
        try {
          this.hooks.image?.(how, ok);
        } catch {
          // metrics only
        }
      },
    });
    const acted = actions.some((a) => a.type !== 'backoff' && a.type !== 'wait');
    if (acted) {
      this.fullObserveNeeded = true;
      const again = await this.observe();
      this.observed = again.containers;
      if (this.started && this.podman === 'connected') this.watchers.sync(this.observed);
      // What waited on these actions (a link on a started wesher, k3s on a ready link) goes next.
      if (!this.abortRun) this.trigger('follow-up', 0);
    }
    if (done.length > 0) this.log.info('reconciled', { reason, actions: done.join(', '), ms: Date.now() - t0 });
    await this.resyncDatastore();
    await this.deleteRemovedNodes();
    this.scheduleWake();
  }

  /**
   * Once the hosted master's k3s server runs, the hash of its CA (which it
   * makes at its first start), for the member record (k3s_ca). A stopped
   * server keeps the last hash read: its CA stays on disk.
   */
  private async readK3sCa(): Promise<void> {
    if (!this.masterK3s()) return;
    const hash = await serverCaHash(this.opts.config);
    if (hash !== null && hash !== this.k3sCa) {
      this.log.info('k3s server CA read; published for agents to pin', { node: this.opts.config.master, ca_sha256: hash });
      this.k3sCa = hash;
    }
  }

  /** The running k3s server container of the master, when this agent hosts it. */
  private masterK3s(): { id: string; name: string; pid: number | null } | null {
    if (!hostsMaster(this.opts.config)) return null;
    const name = containerName(this.opts.config.master, 'k3s');
    const c = this.observed?.find((o) => o.name === name && o.node !== null);
    return c && c.state === 'running' ? { id: c.id, name, pid: c.pid ?? null } : null;
  }

  /**
   * Live files (a k3s agent's token) of containers that run the wanted spec
   * but for them: rewritten in place, atomically; the container reads them
   * at its next start and is not recreated (specs.ts SecretFile.live).
   */
  private async refreshLiveFiles(): Promise<void> {
    for (const d of this.desired.containers) {
      const live = d.spec?.files.filter((f) => f.live) ?? [];
      if (!d.spec || live.length === 0) continue;
      const o = this.observed?.find((c) => c.name === d.name && c.node !== null);
      if (!o || !specMatches(o, d.spec)) continue;
      for (const f of live) {
        const have = await fsp.readFile(f.path, 'utf8').catch(() => null);
        if (have === f.content) continue;
        try {
          await writeFileAtomic(f.path, f.content, { mode: 0o600 });
          this.log.info('token file rewritten in place; the container reads it at its next start', { container: d.name, file: f.path });
        } catch (e) {
          this.log.error('cannot rewrite a token file', { container: d.name, file: f.path, error: isHeptoError(e) ? e.describe() : errorMessage(e) });
        }
      }
    }
  }

  /**
   * After the master's k3s server was given a new agent token, and once it
   * runs with it (its passwd's node password is agent_key), sends the
   * request that re-saves its bootstrap data (k3s-resync.ts); retried with
   * backoff until it succeeds. No key is logged or put in argv.
   */
  private async resyncDatastore(): Promise<void> {
    const config = this.opts.config;
    if (!hostsMaster(config) || config.agent_key === null) return;
    const marker = resyncMarkerPath(config, config.master);
    if (!(await resyncPending(marker).catch(() => false))) {
      this.resync = { failures: 0, nextAt: 0, lastError: null };
      return;
    }
    const k3s = this.masterK3s();
    if (!k3s || !k3s.pid || this.abortRun || !this.started) return;
    const dataDir = k3sDataDir(config, config.master);
    const node = await readNodePassword(dataDir);
    if (node !== config.agent_key) return; // the server has not started with the new agent token yet
    const now = this.opts.clock.now();
    if (now < this.resync.nextAt) return;
    let error: string;
    const req = await readTokenRotate(dataDir);
    if ('error' in req) error = req.error;
    else {
      try {
        const r = await putTokenRotate(k3s.pid, req, { host: supervisorLoopback(config.service_cidr), timeoutMs: this.opts.execTimeoutMs ?? EXEC_TIMEOUT_MS });
        if (r.status === 200) {
          await clearResync(marker);
          this.resync = { failures: 0, nextAt: 0, lastError: null };
          this.log.info('k3s datastore re-synced with the new agent token (PUT /v1-k3s/token, the server token unchanged)', { node: config.master });
          return;
        }
        error = r.status === null ? r.detail : `HTTP ${r.status}${r.detail ? `: ${r.detail}` : ''}`;
      } catch (e) {
        error = errorMessage(e);
      }
    }
    const failures = this.resync.failures + 1;
    this.resync = {
      failures,
      nextAt: now + Math.max(this.policy.baseMs, backoffDelay(failures, this.policy, (this.opts.random ?? Math.random)())),
      lastError: error,
    };
    this.log.warn('cannot re-sync the k3s datastore yet; retrying', { node: config.master, error, attempt: failures, retry_in_ms: this.resync.nextAt - now });
  }

  /** Re-plans the removals: forgets re-admitted names, and keeps what is due and the problems for status. */
  private refreshRemovals(): RemovalPlan {
    const plan = planRemovals({
      config: this.opts.config,
      view: this.view,
      state: this.removals,
      now: this.opts.clock.now(),
      masterK3sRunning: this.masterK3s() !== null,
    });
    if (plan.forget.length > 0) {
      forgetRemovals(this.removals, plan.forget);
      this.log.debug('removed nodes re-admitted; forgotten', { nodes: plan.forget.join(', ') });
    }
    this.removalPlan = plan;
    return plan;
  }

  /**
   * The master deletes each removed node from Kubernetes, once: kubectl in
   * its k3s server container (docs/upstream.md K19-K24). A failure (the API
   * not up yet, most often) is retried with backoff and shown in status.
   */
  private async deleteRemovedNodes(): Promise<void> {
    const plan = this.refreshRemovals();
    const k3s = this.masterK3s();
    if (!k3s || plan.due.length === 0) return;
    for (const node of plan.due) {
      if (this.abortRun || !this.started || this.podman !== 'connected') break;
      let error: string;
      try {
        const r = await this.client.exec(k3s.id, k3s.name, deleteNodeArgv(node), this.opts.execTimeoutMs ?? EXEC_TIMEOUT_MS);
        if (r.exitCode === 0) {
          noteDeleted(this.removals, node);
          this.log.info('deleted removed node from Kubernetes', { node, output: summarizeOutput(r.output) });
          continue;
        }
        error = `kubectl exited with code ${r.exitCode ?? 'unknown'}${r.output ? `: ${summarizeOutput(r.output)}` : ''}`;
      } catch (e) {
        if (isUnreachable(e)) throw e;
        error = isHeptoError(e) ? e.describe() : errorMessage(e);
      }
      const a = noteRemovalFailed(this.removals, node, error, this.opts.clock.now(), this.policy, (this.opts.random ?? Math.random)());
      this.log.warn('cannot delete removed node from Kubernetes; retrying', {
        node,
        error,
        attempt: a.failures,
        retry_in_ms: a.nextAt - this.opts.clock.now(),
      });
    }
    this.refreshRemovals();
  }

  /** Wakes the loop when the earliest backoff or pull retry falls due. */
  private scheduleWake(): void {
    const now = this.opts.clock.now();
    const times = [
      ...Object.values(this.history.containers).map((h) => h.nextStartAt),
      ...Object.values(this.history.images).map((h) => h.nextPullAt),
      ...Object.values(this.history.links ?? {}).map((h) => h.nextAt),
      ...(this.removalPlan.nextAt !== null ? [this.removalPlan.nextAt] : []),
      ...(this.resync.nextAt > 0 ? [this.resync.nextAt] : []),
    ].filter((t) => t > now);
    if (times.length === 0) return;
    const at = Math.min(...times);
    if (this.wakeTimer) this.opts.clock.clearTimeout(this.wakeTimer);
    this.wakeTimer = this.opts.clock.setTimeout(
      () => {
        this.wakeTimer = null;
        this.trigger('backoff due', 0);
      },
      at - now + 5,
    );
  }
}
