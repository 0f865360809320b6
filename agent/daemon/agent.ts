/**
 * One running hepto-agent: config → identity → mesh → runtime → control
 * socket, with an ordered, idempotent shutdown. Everything external (clock,
 * logger, runtime driver, notifier) is passed in.
 */
import * as path from 'path';
import { randomInt } from 'crypto';
import type { Clock, TimerHandle } from '../../shared/clock';
import type { HeptoConfig } from '../../shared/config/types';
import { formatHostPort, parseCidr, parseHostPort } from '../../shared/config/address';
import { defaults } from '../../shared/config/defaults';
import type { Logger } from '../../shared/log';
import { errorMessage } from '../../shared/errors';
import type { MemberRecord } from '../../shared/member';
import { buildStatus, statusLine, type StatusDoc } from '../../shared/status';
import { Membership, type MemberView } from '../gossip/membership';
import { LIMITS } from '../gossip/messages';
import { LAN } from '../gossip/timing';
import type { GossipTiming } from '../gossip/timing';
import { fingerprint, loadOrCreateIdentity, type Identity } from '../net/identity';
import { WsTransport } from '../net/ws-transport';
import type { Transport, TransportEvents } from '../net/transport';
import type { SearchResult } from '../mtu/search';
import { ControlServer } from '../control/server';
import { AGENT_VERSION } from '../version';
import { advertiseAddresses, resolveAdvertised } from './advertise';
import { gatherFacts } from './facts';
import { GossipNode, type NodeHooks } from './gossip-node';
import { AgentMetrics } from './metrics';
import { MetricsServer } from './metrics-server';
import { InternalErrors } from './internal-errors';
import { PeerStore } from './peer-store';
import type { EnrolServerHooks } from '../net/enrol-server';
import type { EnrolDecision } from '../net/enrol';
import { AdmissionStore } from './admission-store';
import { admissionFromJson, admitCommand } from '../admin/admission';
import type { AdmitAnswer, MemberIdentity } from '../control/protocol';
import type { RuntimeDriver, RuntimeHooks, RuntimeStatus } from './runtime-seam';
import { rotationBoxFromJson } from '../admin/rotation';
import { KeyStore } from './keys';
import { KeyRotation } from './key-rotation';
import { SaveProblems } from './save-problems';
import { canonicalIp, hostOf } from '../runtime/ip';
import { NameLedger } from './name-ledger';
import type { ClusterView } from '../runtime/desired';
import { PathsService } from '../mtu/service';
import { pathMtuProblems } from '../mtu/paths';
import { measureWithPing } from '../mtu/ping';
import { timingFromEnv } from '../mtu/prober';
import type { Notifier } from './sd-notify';

export interface AgentOptions {
  config: HeptoConfig;
  clock: Clock;
  logger: Logger;
  runtime: RuntimeDriver;
  /** What the agent tells systemd (sd-notify.ts); the watchdog and flush stay with the caller. */
  notifier: Pick<Notifier, 'ready' | 'status' | 'stopping'>;
  timing?: GossipTiming;
  /** Overlay IP of the main node as wesher computes it (null when unknown). */
  overlayIp?: (name: string, net: string) => string | null;
  /**
   * The gossip transport; by default the WebSocket one on `gossip_listen`
   * (ws-transport.ts). Unit tests pass an in-memory one (test/helpers/memory-transport.ts).
   */
  transport?: (o: { events: TransportEvents; identity: Identity; name: string }) => Transport;
  /** One path MTU measurement towards an address; by default iputils ping (mtu/ping.ts). */
  measurePath?: (address: string) => Promise<SearchResult>;
}

/** Anchors as host:port; a bare host means the default gossip port (validated config, so parsing succeeds). */
export function anchorEndpoints(anchors: string[]): string[] {
  return anchors.map((a) => {
    const { host, port } = parseHostPort(a, defaults.gossip_port);
    return formatHostPort(host, port);
  });
}

/** What an operator should do about a refused peer, by what was refused. */
function adviceFor(reason: string): string {
  // Pinned names: the reason already ends with the admit command (agent/gossip/admissions.ts refusalReason).
  if (/the admin runs: hepto-agent admit /.test(reason)) return 'otherwise block that machine';
  if (/name/.test(reason) && /identity/.test(reason)) return 'two machines use the same node name: rename one of them (config field "node")';
  if (/handshake|overlay key|decrypt|authenticat/i.test(reason))
    return "if that machine belongs to the cluster, give it this cluster's overlay key; otherwise block it";
  return 'if that machine belongs to the cluster, check that it runs the same hepto-agent version; otherwise block it';
}

/** In status problems while the config has no admin_pub (issue 13; docs/trust.md). */
export const NO_ADMIN_KEY_PROBLEM =
  'no admin key (admin_pub) is configured, so any holder of the overlay key can take a node\'s name: run "hepto-agent admin init" on the machine that will keep the admin key and put the public half it prints in every machine\'s config as admin_pub';

type Phase = 'new' | 'starting' | 'running' | 'closing' | 'closed';

/** How long a refused peer stays listed under problems. */
const REJECTION_WINDOW_MS = 10 * 60_000;

/** Members learnt alive in one batch that are logged one line each; more make one line (a join storm, or issue 14's fakes). */
const ALIVE_LOG_LINES = 16;

export class Agent {
  private phase: Phase = 'new';
  private readonly log: Logger;
  // The fields marked `!` are set by start(), in order; after a start() that failed, the later ones are unset (stop() minds that).
  private identity!: Identity;
  private node!: GossipNode;
  private control!: ControlServer;
  private peers!: PeerStore;
  private admissions!: AdmissionStore;
  private startedAt = 0;
  private persistTimer: TimerHandle | null = null;
  private lastLine = '';
  private keys!: KeyRotation;
  /** State files whose last save failed (status problems). */
  private readonly saves = new SaveProblems();
  /** The IP addresses live members' records give (for the listener's reserved slots), rebuilt when asked after a member event. */
  private knownHosts = new Set<string>();
  private knownHostsStale = true;
  /** A cluster view and status line rebuild is queued (scheduleViewRefresh). */
  private viewRefreshPending = false;
  /** Members learnt alive since the last view refresh, logged then. */
  private readonly newlyAlive: { name: string; incarnation: number }[] = [];
  /** The order node names were first seen in, for overlay-IP collisions (name-ledger.ts). */
  private names!: NameLedger;
  private namesTimer: TimerHandle | null = null;
  private namesSaving = false;
  /** How many rotation boxes rotation.json holds, to save it only when that changed. */
  private savedBoxes = -1;
  /** Path MTU measurements and this record's `paths` (agent/mtu, issue 15). */
  private paths: PathsService | null = null;

  /** Errors caught in the gossip core and the supervisor: counted, logged rate-limited, bursts in status (issue 15). */
  private readonly internalErrors: InternalErrors;
  /** The Prometheus metrics and their endpoint (metrics_listen; docs/metrics.md); null when turned off. */
  private metrics: AgentMetrics | null = null;
  private metricsServer: MetricsServer | null = null;
  private metricsProblem: string | null = null;

  constructor(private readonly opts: AgentOptions) {
    this.log = opts.logger;
    this.internalErrors = new InternalErrors(opts.clock, opts.logger.child('internal'));
  }

  get gossip(): GossipNode {
    return this.node;
  }

  async start(): Promise<void> {
    if (this.phase !== 'new') return;
    this.phase = 'starting';
    const { config, clock } = this.opts;
    this.startedAt = clock.now();
    const stateDir = path.join(config.storage_base, config.node);
    this.identity = await loadOrCreateIdentity(stateDir, clock.now());
    this.peers = new PeerStore(stateDir, this.log.child('peers'));
    const saved = await this.peers.load();
    this.admissions = new AdmissionStore(stateDir, this.log.child('admission'));
    const admitted = await this.admissions.load(config.node, this.identity.idPub);
    const removals = await this.admissions.loadRemovals();
    const rotation = await this.admissions.loadRotation();
    this.keys = new KeyRotation(config, new KeyStore(stateDir, this.log.child('keys')), clock, this.log.child('keys'), this.saves);
    const plan = await this.keys.load();
    this.names = new NameLedger(stateDir, this.log.child('names'), (this.opts.timing ?? LAN).syncInterval);
    await this.names.load();
    const facts = await gatherFacts();
    // Host names resolved once here: peers take only IP literals from a record (issue 14).
    const advertised = await resolveAdvertised(advertiseAddresses(config), config);
    const record: MemberRecord = {
      name: config.node,
      role: config.node === config.master ? 'master' : 'node',
      addresses: advertised,
      // Where peers join this node's wesher: its ip, else the advertised addresses (wesher-bind.ts).
      node_ips:
        config.ip.length > 0
          ? config.ip.map((c) => parseCidr(c)?.address ?? c.replace(/\/\d+$/, ''))
          : advertised.map((a) => parseHostPort(a, config.gossip_port).host).slice(0, LIMITS.nodeIps),
      overlay_ip: this.opts.overlayIp?.(config.node, config.overlay_net) ?? null,
      facts,
      containers: {},
      id_pub: this.identity.idPub,
      created_at: this.identity.createdAt,
      ...(admitted ? { admission: { at: admitted.at, sig: admitted.sig } } : {}),
      ...(plan.rotation && plan.phase !== 'pending' ? { keys: plan.rotation.id } : {}),
    };
    // Incarnations must grow across restarts so that our fresh `alive` beats the `dead` others remember.
    const incarnation = Math.max(saved.incarnation + 1, Math.floor(clock.now() / 1000));
    const membership = new Membership({
      record,
      secretKey: this.identity.secretKey,
      incarnation,
      timing: this.opts.timing ?? LAN,
      now: clock.now(),
      rng: () => randomInt(0, 2 ** 32) / 2 ** 32,
      adminPub: config.admin_pub,
      removals,
      rotation,
    });
    membership.restorePeers(saved.peers, clock.now());
    const listenHosts = config.gossip_listen;
    this.node = new GossipNode({
      membership,
      clock,
      logger: this.log.child('gossip'),
      anchors: anchorEndpoints(config.anchors),
      hooks: this.gossipHooks(),
      transport: (events) =>
        this.opts.transport?.({ events, identity: this.identity, name: config.node }) ??
        new WsTransport({
          overlayKey: plan.primary,
          identity: this.identity,
          name: config.node,
          listen: { hosts: listenHosts, port: config.gossip_port },
          bindAddress: listenHosts.length === 1 && !['::', '0.0.0.0'].includes(listenHosts[0]) ? listenHosts[0] : undefined,
          events,
          logger: this.log.child('transport'),
          enrol: this.enrolHooks(),
          knownHost: (host) => this.isKnownHost(host),
        }),
    });
    this.node.onEvent((ev) => {
      const level = ev.type === 'conflict' || ev.type === 'dead' || ev.type === 'refused' || ev.type === 'bad-signature' ? 'warn' : 'info';
      // Members learnt alive are logged with the batch (scheduleViewRefresh): one line for a crowd.
      if (ev.type === 'alive' && ev.detail === undefined) this.newlyAlive.push(ev);
      else this.log[level](`member ${ev.type}`, { member: ev.name, incarnation: ev.incarnation, detail: ev.detail });
      if (ev.type === 'admitted' && ev.name === config.node) void this.saveAdmission();
      if (ev.type === 'removed') this.onRemoved(ev.name);
      if (ev.type === 'rotation' && ev.name === config.node) void this.takeOwnBox();
      this.knownHostsStale = true;
      this.schedulePersist();
      this.scheduleViewRefresh();
    });
    this.node.onEvent((ev) => this.metrics?.memberEvent(ev));
    this.opts.runtime.setHooks?.(this.runtimeHooks());
    this.opts.runtime.onChange(() => {
      if (this.phase !== 'running') return;
      const rt = this.opts.runtime.status();
      const self = this.selfRecord();
      const patch: Partial<MemberRecord> = {};
      if (JSON.stringify(rt.health) !== JSON.stringify(self?.containers ?? {})) patch.containers = rt.health;
      // The master's k3s CA hash, which the other machines pin in their agent token (issue 13).
      if (rt.k3sCa !== null && rt.k3sCa !== self?.k3s_ca) patch.k3s_ca = rt.k3sCa;
      if (Object.keys(patch).length > 0) this.node.updateSelf(patch);
      this.refreshStatusLine();
    });

    this.control = new ControlServer(
      config.control_socket,
      { status: () => this.status(), members: () => this.members(), admit: (a) => this.admit(a), remove: (r) => this.remove(r), rotate: (b) => this.rotate(b) },
      this.log.child('control'),
    );
    await this.control.start();
    try {
      await this.node.start();
    } catch (e) {
      await this.control.stop();
      throw e;
    }
    this.phase = 'running';
    await this.startMetrics();
    this.log.info('agent started', {
      node: config.node,
      version: AGENT_VERSION,
      identity: fingerprint(this.identity.idPub),
      listen: listenHosts.map((h) => `${h}:${config.gossip_port}`).join(','),
      advertise: record.addresses.join(','),
      anchors: config.anchors.length,
      known_peers: saved.peers.length,
      runtime: config.runtime,
    });
    if (config.anchors.length === 0 && saved.peers.length === 0) this.log.info('no anchors: this node starts a new cluster');
    this.opts.runtime.setCluster(this.clusterView());
    const mtuTiming = timingFromEnv(process.env);
    this.paths = new PathsService({
      clock,
      logger: this.log.child('mtu'),
      self: config.node,
      members: () => this.node.membership.view(),
      links: this.node.links,
      publish: (paths) => this.node.updateSelf({ paths }),
      measure: this.opts.measurePath ?? ((address) => measureWithPing(address, { waitS: mtuTiming.pingWaitS })),
      rng: () => randomInt(0, 2 ** 32) / 2 ** 32,
      timing: mtuTiming,
    });
    this.paths.start();
    // Keys from a rotation (keys.json): the runtime starts with them, not with the config's.
    this.keys.start({
      transportKeys: (k) => this.node.transport.setKeys?.(k),
      runtimeKeys: (k) => this.opts.runtime.setKeys(k),
      recordKeys: (id) => {
        if (this.selfRecord()?.keys !== id) this.node.updateSelf({ keys: id });
      },
      changed: () => this.refreshStatusLine(),
    });
    // Our own box may have come with the boxes kept by the last run, before the event listener was there.
    void this.takeOwnBox();
    await this.opts.runtime.start().catch((e) => this.log.error('runtime failed to start', { error: errorMessage(e) }));
    this.opts.notifier.ready();
    this.refreshStatusLine();
  }

  /**
   * Ordered shutdown: announce left, stop supervising (workloads keep running), close sockets, persist.
   * After a start() that failed, only what it set up is released: the fields it did not reach are
   * unset, and a mesh that never ran has nothing to leave and nothing to persist (the state files
   * may be another agent's, e.g. one holding the control socket).
   */
  async stop(opts: { leave?: boolean } = {}): Promise<void> {
    if (this.phase === 'closing' || this.phase === 'closed' || this.phase === 'new') return;
    const ran = this.phase === 'running';
    this.phase = 'closing';
    this.opts.notifier.stopping();
    this.log.info('agent stopping', { leave: ran && opts.leave !== false });
    if (this.persistTimer) this.opts.clock.clearTimeout(this.persistTimer);
    if (this.namesTimer) this.opts.clock.clearTimeout(this.namesTimer);
    this.keys?.stop();
    this.paths?.stop();
    await this.opts.runtime.stop().catch((e) => this.log.error('runtime stop failed', { error: errorMessage(e) }));
    if (ran) {
      await this.node.stop({ leave: opts.leave !== false }).catch((e) => this.log.error('mesh stop failed', { error: errorMessage(e) }));
      await this.persist();
    }
    await this.metricsServer?.stop();
    await this.control?.stop();
    this.phase = 'closed';
    this.log.info('agent stopped');
  }

  status(): StatusDoc {
    const { config } = this.opts;
    const view = this.node.membership.view();
    const rt = this.opts.runtime.status();
    return buildStatus({
      node: config.node,
      version: AGENT_VERSION,
      runtime: config.runtime,
      startedAt: this.startedAt,
      members: view.map((m) => ({ ...m, identity: fingerprint(m.record.id_pub) })),
      containers: rt.containers,
      problems: this.problems(view, rt),
      keys: this.keys.status(),
    });
  }

  /** Every problem for status, in order. */
  private problems(view: MemberView[], rt: RuntimeStatus): string[] {
    const { config, clock } = this.opts;
    const live = new Map(view.filter((m) => m.state === 'alive' || m.state === 'suspect').map((m) => [m.name, fingerprint(m.record.id_pub)]));
    const refusedBy = this.node.refusedBySince(clock.now() - REJECTION_WINDOW_MS).filter((r) => !(r.peer && live.has(r.peer)));
    // A refused node hears nothing: "cannot reach" advice would send its owner after the wrong cause.
    const problems = [...this.node.membership.problems(), ...rt.problems].filter((p) => refusedBy.length === 0 || !p.startsWith('cannot reach any anchor'));
    for (const r of this.node.rejectionsSince(clock.now() - REJECTION_WINDOW_MS)) {
      // A refused identity that has since been admitted and is live is no problem any more.
      const fp = /identity ([0-9a-f]{12}) of "([^"]+)"/.exec(r.reason);
      if (fp && live.get(fp[2] as string) === fp[1]) continue;
      problems.push(
        `refused ${r.count} connection${r.count > 1 ? 's' : ''} from ${r.remote}${r.peer ? ` (claiming to be "${r.peer}")` : ''}: ${r.reason}; ${adviceFor(r.reason)}`,
      );
    }
    for (const r of refusedBy) {
      const me = this.node.membership.identity();
      problems.push(
        `${r.peer ? `"${r.peer}"` : 'a peer'} at ${r.remote} refused this node ${r.count} time${r.count > 1 ? 's' : ''}: ${r.reason}; on the machine with the admin key, run: ${admitCommand(me.name, me.idPub)}`,
      );
    }
    // An isolated node's one problem is the membership's "cannot reach any anchor or known peer" (gossip/join.ts joinProblem).
    problems.push(...pathMtuProblems(view, config.mtu));
    problems.push(...this.keys.problems(view), ...this.saves.problems(), ...this.internalErrors.problems());
    if (this.metricsProblem !== null) problems.push(this.metricsProblem);
    // Last: an advice for the whole cluster, after what needs fixing now.
    if (config.admin_pub === null) problems.push(NO_ADMIN_KEY_PROBLEM);
    return problems;
  }

  /** Is `host` (a socket's peer address) one that a live member's signed record gives? Rebuilt at most once per burst of member events. */
  private isKnownHost(host: string): boolean {
    if (this.knownHostsStale) {
      this.knownHostsStale = false;
      const set = new Set<string>();
      for (const m of this.node.membership.view()) {
        if (m.name === this.opts.config.node || (m.state !== 'alive' && m.state !== 'suspect')) continue;
        for (const a of m.record.addresses) {
          const ip = canonicalIp(hostOf(a));
          if (ip) set.add(ip);
        }
      }
      this.knownHosts = set;
    }
    const ip = canonicalIp(host);
    return ip !== null && this.knownHosts.has(ip);
  }

  /** Every member's full identity key and admission time, for `admit --all-current`. */
  members(): MemberIdentity[] {
    return this.node.membership.view().map((m) => ({ name: m.name, state: m.state, id_pub: m.record.id_pub, admitted_at: m.record.admission?.at ?? null }));
  }

  /**
   * This agent as an anchor for machines enrolling with an invitation
   * (agent/net/enrol-server.ts): the membership grants the use
   * (gossip/invitations.ts); the welcome then carries what a member needs:
   * the overlay key, the k3s agent token (never the server token), admin_pub,
   * the master's name and anchors.
   */
  private enrolHooks(): EnrolServerHooks {
    const { config } = this.opts;
    return {
      self: () => {
        const admission = this.node?.membership.ownAdmission();
        return admission && !admission.inv ? { name: config.node, identity: this.identity, admission } : undefined;
      },
      adminPub: () => config.admin_pub,
      decide: (use, remote): EnrolDecision => {
        if (this.keys.newest().agent_key === null) {
          this.log.warn('refused an enrolment: this anchor has no agent_key to hand over', { remote, node: use.node });
          return {
            ok: false,
            reason: 'this anchor has no agent_key (the k3s agent token) to hand over: enrol through another anchor, or ask the admin to set agent_key',
          };
        }
        const r = this.node.grant(use);
        if (!r.ok) {
          this.log.warn('refused an enrolment', { remote, node: use.node, identity: fingerprint(use.id_pub), invitation: use.body.id, reason: r.reason });
          return { ok: false, reason: r.reason };
        }
        this.log.info('granted an enrolment', { remote, node: use.node, identity: fingerprint(use.id_pub), invitation: use.body.id });
        const own = this.selfRecord()?.addresses ?? [];
        // After a rotation, not the config's keys; before a pending switch, already the new ones (keys.ts newestKeys).
        const keys = this.keys.newest();
        return {
          ok: true,
          secrets: {
            overlay_key: keys.overlay_key,
            agent_key: keys.agent_key,
            cluster_key: null,
            admin_pub: config.admin_pub as string,
            master: config.master,
            anchors: [...new Set([...own, ...anchorEndpoints(config.anchors)])].slice(0, 16),
          },
          grant: { anchor: config.node, at: r.admission.at, sig: r.admission.sig },
        };
      },
    };
  }

  /** An admission from `hepto-agent admit`: logged, then checked and spread by the membership. */
  admit(raw: unknown): AdmitAnswer {
    const a = admissionFromJson(raw);
    const answer = this.node.admit(a);
    this.log.info('admission received from the control socket', { member: a.node, identity: fingerprint(a.id_pub), result: answer.result, why: answer.why });
    return answer;
  }

  /** A removal from `hepto-agent remove`: logged, then checked, kept and spread by the membership. */
  remove(raw: unknown): AdmitAnswer {
    const r = admissionFromJson(raw, 'removal');
    const answer = this.node.remove(r);
    this.log.info('removal received from the control socket', { member: r.node, identity: fingerprint(r.id_pub), result: answer.result, why: answer.why });
    return answer;
  }

  /** One member's box of a key rotation from `hepto-agent rotate-keys`: checked, kept and spread by the membership. */
  rotate(raw: unknown): AdmitAnswer {
    const b = rotationBoxFromJson(raw);
    const answer = this.node.rotate(b);
    this.log.info('key rotation box received from the control socket', {
      rotation: b.id,
      member: b.node,
      identity: fingerprint(b.id_pub),
      result: answer.result,
      why: answer.why,
    });
    this.schedulePersist();
    return answer;
  }

  /** This node's box of the newest rotation, if it holds one newer than its keys: opened, kept, followed (key-rotation.ts). */
  private async takeOwnBox(): Promise<void> {
    const box = this.node.membership.ownRotationBox();
    if (!box) return;
    await this.keys.take(box, this.identity.secretKey);
    void this.saveRotation();
  }

  private async saveRotation(): Promise<void> {
    const boxes = this.node.membership.rotationBoxes();
    if (boxes.length === this.savedBoxes) return;
    this.savedBoxes = boxes.length;
    if (!(await this.save(this.admissions.rotationFile, 'cannot save the key rotation boxes this node keeps', () => this.admissions.saveRotation(boxes))))
      this.savedBoxes = -1;
  }

  /** Runs one state file save: a failure is logged and listed in status problems until the next save of that file works. */
  private async save(file: string, what: string, write: () => Promise<void>): Promise<boolean> {
    try {
      await write();
      this.saves.ok(file);
      return true;
    } catch (e) {
      this.saves.failed(file, e);
      this.log.error(what, { file, error: errorMessage(e) });
      this.refreshStatusLine();
      return false;
    }
  }

  /** A member was removed: cut its connection, keep the removal, let the runtime act (the master deletes the node). */
  private onRemoved(name: string): void {
    if (name !== this.opts.config.node) this.node.transport.disconnect(name);
    const removals = this.node.membership.removals();
    void this.save(this.admissions.removalsFile, 'cannot save the removals this node knows', () => this.admissions.saveRemovals(removals));
  }

  private async saveAdmission(): Promise<void> {
    const own = this.node.membership.ownAdmission();
    if (!own) return;
    const done = await this.save(this.admissions.file, "cannot save this node's admission", () =>
      this.admissions.save({ node: this.opts.config.node, id_pub: this.identity.idPub, ...own }),
    );
    if (done) this.log.info('this node is admitted; admission saved', { file: this.admissions.file, at: new Date(own.at).toISOString() });
  }

  private selfRecord(): MemberRecord | undefined {
    return this.node.membership.view().find((m) => m.name === this.opts.config.node)?.record;
  }

  /** The view the runtime gets, with the order node names were first seen in (pinning hosted nodes when due, name-ledger.ts). */
  private clusterView(): ClusterView {
    const now = this.opts.clock.now();
    const { view, recheckAt } = this.names.observe(
      this.opts.config,
      {
        members: this.node.membership.view().map((m) => ({ name: m.name, state: m.state, record: m.record, lastSeen: m.lastSeen })),
        // Removed and not admitted again: the master deletes them from Kubernetes (runtime/node-removal.ts).
        removed: this.node.membership.removedNames(),
      },
      now,
    );
    if (this.names.changed) void this.saveNames();
    if (recheckAt !== null && !this.namesTimer && this.phase === 'running') {
      this.namesTimer = this.opts.clock.setTimeout(
        () => {
          this.namesTimer = null;
          this.scheduleViewRefresh();
        },
        Math.max(0, recheckAt - now),
      );
    }
    return view;
  }

  /** names.json, one save at a time (a pin is saved at once: it decides who keeps an overlay IP after a restart). */
  private async saveNames(): Promise<void> {
    if (this.namesSaving) return;
    this.namesSaving = true;
    try {
      while (this.names.changed) if (!(await this.save(this.names.file, 'cannot save the order node names were first seen in', () => this.names.save()))) break;
    } finally {
      this.namesSaving = false;
    }
  }

  /**
   * The cluster view for the runtime and the status line, rebuilt once for
   * all the member events of one batch (a microtask after the first): each
   * costs O(N), and a message with 2,048 new members (issue 14, attack 2)
   * made 2,048 events, O(N²) in all.
   */
  private scheduleViewRefresh(): void {
    if (this.viewRefreshPending) return;
    this.viewRefreshPending = true;
    queueMicrotask(() => {
      this.viewRefreshPending = false;
      const alive = this.newlyAlive.splice(0);
      if (alive.length <= ALIVE_LOG_LINES) for (const ev of alive) this.log.info('member alive', { member: ev.name, incarnation: ev.incarnation });
      else
        this.log.info('members alive', {
          count: alive.length,
          members: alive
            .slice(0, ALIVE_LOG_LINES)
            .map((ev) => ev.name)
            .join(','),
          more: alive.length - ALIVE_LOG_LINES,
        });
      this.opts.runtime.setCluster(this.clusterView());
      this.paths?.membersChanged();
      this.refreshStatusLine();
    });
  }

  private refreshStatusLine(): void {
    if (this.phase !== 'running') return;
    // What statusLine reads (member states, containers, problems), without the full document: it ran
    // for every batch of member events, and sorting and shaping a thousand members was most of it.
    const view = this.node.membership.view();
    const rt = this.opts.runtime.status();
    const line = statusLine({
      node: this.opts.config.node,
      members: view as unknown as StatusDoc['members'],
      containers: rt.containers,
      problems: [...new Set(this.problems(view, rt))],
    } as StatusDoc);
    if (line === this.lastLine) return;
    this.lastLine = line;
    this.opts.notifier.status(line);
  }

  /** The gossip node's calls out: errors it or the core caught, and what the metrics count as it happens. */
  private gossipHooks(): NodeHooks {
    return {
      internalError: (kind, e) => this.internalErrors.report('gossip', kind, e),
      probeRtt: (ms) => this.metrics?.probeRtt(ms),
      frameSent: () => this.metrics?.frameSent(),
      frameReceived: () => this.metrics?.frameReceived(),
      refused: (reason) => this.metrics?.refused(reason),
      refusedBy: (reason) => this.metrics?.refusedBy(reason),
    };
  }

  private runtimeHooks(): RuntimeHooks {
    return {
      internalError: (kind, e) => this.internalErrors.report('runtime', kind, e),
      reconciled: (seconds, ok) => this.metrics?.reconciled(seconds, ok),
      image: (how, ok) => this.metrics?.image(how, ok),
    };
  }

  /** The Prometheus endpoint on metrics_listen: a failed bind is a status problem, never a failed start. */
  private async startMetrics(): Promise<void> {
    const { config } = this.opts;
    if (config.metrics_listen === '') return;
    const metrics = new AgentMetrics({
      node: config.node,
      version: AGENT_VERSION,
      members: () => this.node.membership.view(),
      transport: () => this.node.transport.stats(),
      gossipCounters: () => this.node.membership.counters(),
      internalErrors: () => this.internalErrors.counts(),
      runtime: () => this.opts.runtime.status(),
      backoffs: () => this.opts.runtime.backoffs?.() ?? {},
    });
    this.metrics = metrics;
    this.metricsServer = new MetricsServer(config.metrics_listen, () => metrics.scrape(), this.log.child('metrics'));
    this.metricsProblem = await this.metricsServer.start();
    if (this.metricsProblem !== null) this.metricsServer = null;
  }

  private schedulePersist(): void {
    if (this.persistTimer || this.phase !== 'running') return;
    this.persistTimer = this.opts.clock.setTimeout(() => {
      this.persistTimer = null;
      void this.persist();
    }, 2000);
  }

  private async persist(): Promise<void> {
    const self = this.node.membership.view().find((m) => m.name === this.opts.config.node);
    await this.save(this.peers.file, 'cannot save known peers', () =>
      this.peers.save({ version: 1, incarnation: self?.incarnation ?? 0, peers: this.node.membership.persistable() }),
    );
    await this.saveRotation();
  }
}
