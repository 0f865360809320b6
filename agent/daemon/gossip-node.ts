/**
 * The thin shell around the pure membership state machine: it owns the timer,
 * hands Step.send to the transport, feeds transport events back in, and
 * reports member events. All decisions are the state machine's.
 */
import type { Clock, TimerHandle } from '../../shared/clock';
import type { Logger } from '../../shared/log';
import { errorMessage, isHeptoError } from '../../shared/errors';
import { Membership, decodeMessage, encodeMessage, type GossipHooks, type MemberEvent, type Outgoing, type Step } from '../gossip/membership';
import { sliceUpdates, type GossipMessage } from '../gossip/messages';
import { MembershipDriver } from '../gossip/driver';
import { isSelfLoop } from '../net/send-errors';
import type { PeerInfo, Transport, TransportEvents } from '../net/transport';
import { admitCommand, type Admission, type Removal } from '../admin/admission';
import type { InvitationUse } from '../admin/invitation';
import type { GrantResult } from '../gossip/invitations';
import type { RotationBox } from '../admin/rotation';
import { PeerLinks } from '../mtu/links';

export interface GossipNodeOptions {
  membership: Membership;
  /** Builds the transport, given the events it must report to this node. */
  transport: (events: TransportEvents) => Transport;
  clock: Clock;
  logger: Logger;
  anchors: string[];
  /** What the daemon counts and logs (metrics, internal errors); see NodeHooks. */
  hooks?: NodeHooks;
}

/**
 * Callbacks for metrics and internal error logs (issue 15): the core's own
 * (GossipHooks: errors it caught, probe round trips), plus what this shell
 * sees. An `internalError` here also gets the shell's own caught errors.
 */
export interface NodeHooks extends GossipHooks {
  /** A gossip payload handed to the transport (one frame on the wire). */
  frameSent?(bytes: number): void;
  /** A gossip payload received from an authenticated peer. */
  frameReceived?(bytes: number): void;
  /** This node refused a connection, handshake or frame; `reason` is free text (classify it). */
  refused?(reason: string): void;
  /** A peer refused this node; `reason` is free text. */
  refusedBy?(reason: string): void;
}

/** A refused frame or handshake, remembered for status problems. */
export interface Rejection {
  remote: string;
  reason: string;
  peer?: string;
  at: number;
  count: number;
}

/** What a call returns besides its Step (each member of a union on its own). */
type Answer<R> = R extends unknown ? Omit<R, 'step'> : never;

/** The answer of admit, remove and rotate when the call could not run. */
const NOT_RUNNING = { result: 'refused', why: 'the agent is not running' } as const;
/** Updates applied per turn of the event loop: about 22 ms of signature checks (receiveLater). */
const UPDATES_PER_TURN = 256;
/**
 * Slices of big messages waiting per sender at most: two messages of 2,048
 * updates, a few MB decoded. More would only wait for a signature budget
 * (2,048 checks per sync interval and sender) already spent.
 */
const MAX_BACKLOG = 16;

export class GossipNode {
  readonly membership: Membership;
  readonly transport: Transport;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly anchors: string[];
  private readonly driver: MembershipDriver;
  private running = false;
  private readonly listeners: Array<(e: MemberEvent) => void> = [];
  private readonly rejections = new Map<string, Rejection>();
  private readonly refusedBy = new Map<string, Rejection>();
  private readonly inflight = new Set<Promise<unknown>>();
  /** Per sender, the slices of its big messages still to apply (receiveLater). */
  private readonly backlog = new Map<string, GossipMessage[]>();
  /** Per peer: the last probe round trip, and whether it is connected or answers (the record's `paths`, agent/mtu). */
  readonly links = new PeerLinks();
  private readonly hooks: NodeHooks;

  constructor(opts: GossipNodeOptions) {
    this.membership = opts.membership;
    this.hooks = opts.hooks ?? {};
    const hooks = this.hooks;
    this.membership.setHooks({
      internalError: (kind, e) => this.hook(() => hooks.internalError?.(kind, e)),
      probeRtt: (ms) => this.hook(() => hooks.probeRtt?.(ms)),
    });
    this.clock = opts.clock;
    this.log = opts.logger;
    this.driver = new MembershipDriver(
      this.membership,
      this.clock,
      {
        event: (ev) => this.onMemberEvent(ev),
        close: (name) => {
          if (this.running) this.transport.disconnect(name, true);
        },
        send: (out) => this.send(out),
      },
      {
        onError: (what, e) => this.internalError('node-step', e, () => this.log.error('membership step failed', { step: what, error: errorMessage(e) })),
      },
    );
    this.anchors = opts.anchors;
    this.transport = opts.transport({
      message: (from, payload) => this.onMessage(from, payload),
      disconnected: (peer, trimmed) => {
        this.backlog.delete(peer.name);
        this.links.disconnected(peer.name);
        this.guard('disconnected', () => this.membership.disconnected(peer.name, this.clock.now(), trimmed === true));
      },
      rejected: (info) => this.onRejected(info),
      vet: (peer) => this.membership.checkPeer(peer),
      ownAdmission: () => this.membership.ownAdmission(),
      refusedBy: (info) => this.onRefusedBy(info),
    });
  }

  onEvent(cb: (e: MemberEvent) => void): void {
    this.listeners.push(cb);
  }

  async start(): Promise<void> {
    if (this.running) return;
    await this.transport.start();
    this.running = true;
    this.driver.start();
    this.guard('bootstrap', () => this.membership.bootstrap(this.anchors, this.clock.now()));
  }

  /** Announces `left`, gives the announcements a moment to go out, then closes. */
  async stop(opts: { leave: boolean; flushMs?: number } = { leave: true }): Promise<void> {
    if (!this.running) return;
    if (opts.leave) {
      this.guard('leave', () => this.membership.leave(this.clock.now()));
      await this.flush(opts.flushMs ?? 1500);
    }
    this.running = false;
    this.backlog.clear();
    this.driver.stop();
    await this.transport.stop();
  }

  /** Re-signs and disseminates this node's record with new fields (container health...). */
  updateSelf(patch: Parameters<Membership['updateSelf']>[0]): void {
    this.guard('updateSelf', () => this.membership.updateSelf(patch, this.clock.now()));
  }

  rejectionsSince(since: number): Rejection[] {
    return [...this.rejections.values()].filter((r) => r.at >= since);
  }

  /** Peers that refused this node as not admitted, lately. */
  refusedBySince(since: number): Rejection[] {
    return [...this.refusedBy.values()].filter((r) => r.at >= since);
  }

  /** An admission from `hepto-agent admit`: checked, adopted or spread (Membership.admit). */
  admit(a: Admission): { result: 'admitted' | 'already' | 'refused'; why?: string } {
    return this.ask('admit', NOT_RUNNING, (now) => this.membership.admit(a, now));
  }

  /** A call that answers besides its Step (admit, grant, remove, rotate): the answer, or `idle` when the call failed. */
  private ask<R extends { step: Step }>(what: string, idle: Answer<R>, call: (now: number) => R): Answer<R> {
    let out = idle;
    this.guard(what, () => {
      const { step, ...answer } = call(this.clock.now());
      out = answer as Answer<R>;
      return step;
    });
    return out;
  }

  /** Waits, on the injected clock, until the sends in flight settle or `maxMs` passed. */
  private async flush(maxMs: number): Promise<void> {
    const deadline = this.clock.now() + maxMs;
    while (this.inflight.size > 0 && this.clock.now() < deadline) {
      let tick: TimerHandle | undefined;
      const slice = new Promise<void>((r) => (tick = this.clock.setTimeout(r, Math.min(50, deadline - this.clock.now()))));
      await Promise.race([Promise.allSettled([...this.inflight]), slice]);
      if (tick) this.clock.clearTimeout(tick);
    }
  }

  private onMessage(from: PeerInfo, payload: Uint8Array): void {
    if (!this.running) return;
    this.hook(() => this.hooks.frameReceived?.(payload.byteLength));
    let msg;
    try {
      msg = decodeMessage(payload);
    } catch (e) {
      this.onRejected({ remote: from.remote, peer: from.name, reason: isHeptoError(e) ? e.message : 'malformed gossip message' });
      return;
    }
    this.links.heard(from.name);
    if (msg.t === 'k') this.links.ackReceived(from.name, msg.s, this.clock.now());
    const [first, ...rest] = sliceUpdates(msg, UPDATES_PER_TURN);
    this.guard('receive', () => this.membership.receive(from, first as GossipMessage, this.clock.now()));
    if (rest.length > 0) this.receiveLater(from, rest);
  }

  /**
   * The rest of a big message, a slice per turn of the event loop, so that
   * the control socket, probes and acks are served between them: checking the
   * signatures of 2,048 records (issue 14's attack 2) held the loop for about
   * 170 ms. A sender's slices wait in order, at most MAX_BACKLOG of them (its
   * signature budget is spent long before: gossip/signatures.ts). They are
   * dropped when its connection closes: the sender would count as connected
   * again, and one cut off for a bad signature would still be heard. What is
   * dropped comes again by gossip or the next sync.
   */
  private receiveLater(from: PeerInfo, slices: GossipMessage[]): void {
    const waiting = this.backlog.get(from.name);
    if (waiting) {
      waiting.push(...slices.slice(0, MAX_BACKLOG - waiting.length));
      return;
    }
    const queue = slices.slice(0, MAX_BACKLOG);
    this.backlog.set(from.name, queue);
    const later = (fn: () => void): void => (this.clock.defer ? this.clock.defer(fn) : fn());
    const next = (): void => {
      if (this.backlog.get(from.name) !== queue || !this.running) return;
      const msg = queue.shift() as GossipMessage;
      this.guard('receive', () => this.membership.receive(from, msg, this.clock.now()));
      if (queue.length > 0) later(next);
      else this.backlog.delete(from.name);
    };
    later(next);
  }

  /** An enrolling machine's use of an invitation (Membership.grant): the admission, or why not. */
  grant(use: InvitationUse): GrantResult {
    return this.ask('grant', { ok: false, reason: 'the anchor is not running' }, (now) => this.membership.grant(use, now));
  }

  /** A removal from `hepto-agent remove` (Membership.remove). */
  remove(r: Removal): { result: 'removed' | 'already' | 'refused'; why?: string } {
    return this.ask('remove', NOT_RUNNING, (now) => this.membership.remove(r, now));
  }

  /** A rotation box from `hepto-agent rotate-keys` (Membership.rotate). */
  rotate(b: RotationBox): { result: 'kept' | 'already' | 'refused'; why?: string } {
    return this.ask('rotate', NOT_RUNNING, (now) => this.membership.rotate(b, now));
  }

  private onRefusedBy(info: { remote: string; reason: string; peer?: string }): void {
    this.hook(() => this.hooks.refusedBy?.(info.reason));
    this.membership.refusedByPeer(this.clock.now());
    this.driver.arm();
    const host = info.remote.replace(/:\d+$/, '');
    const prev = this.refusedBy.get(host);
    const n = (prev?.count ?? 0) + 1;
    this.refusedBy.set(host, { remote: host, reason: info.reason, peer: info.peer ?? prev?.peer, at: this.clock.now(), count: n });
    if (this.refusedBy.size > 64) this.refusedBy.delete(this.refusedBy.keys().next().value as string);
    if (n === 1 || n % 100 === 0) {
      const me = this.membership.identity();
      this.log.warn('a peer refused this node', {
        remote: info.remote,
        peer: info.peer,
        reason: info.reason,
        times: n,
        fix: `on the machine with the admin key, run: ${admitCommand(me.name, me.idPub)}`,
      });
    }
  }

  private onRejected(info: { remote: string; reason: string; peer?: string }): void {
    this.hook(() => this.hooks.refused?.(info.reason));
    const host = info.remote.replace(/:\d+$/, '');
    const key = `${host}|${info.reason}`;
    const prev = this.rejections.get(key);
    const now = this.clock.now();
    this.rejections.set(key, { remote: host, reason: info.reason, peer: info.peer ?? prev?.peer, at: now, count: (prev?.count ?? 0) + 1 });
    if (this.rejections.size > 256) {
      const oldest = [...this.rejections.entries()].sort((a, b) => a[1].at - b[1].at)[0];
      this.rejections.delete(oldest[0]);
    }
    // One line per event, but not a flood: the first, then every 100th from the same source and reason.
    const n = (prev?.count ?? 0) + 1;
    if (n === 1 || n % 100 === 0) this.log.warn('refused a peer', { remote: info.remote, peer: info.peer, reason: info.reason, times: n });
  }

  /** Runs one state-machine call through the driver: effects performed, timer re-armed, a bug never kills the agent. */
  private guard(what: string, fn: () => Step): void {
    this.driver.run(what, fn);
  }

  private onMemberEvent(ev: MemberEvent): void {
    if (ev.type === 'bad-signature' && this.running) {
      // Never an honest mistake (gossip/signatures.ts): cut the sender off, and say so in status.
      const [remote = 'unknown', ...rest] = (ev.detail ?? '').split(' ');
      this.transport.disconnect(ev.name);
      this.onRejected({ remote, peer: ev.name, reason: rest.join(' ') || 'sent a bad signature' });
    }
    for (const l of this.listeners) {
      try {
        l(ev);
      } catch (e) {
        this.internalError('event-listener', e, () => this.log.error('member event listener failed', { event: ev.type, error: errorMessage(e) }));
      }
    }
  }

  private send(out: Outgoing): void {
    if (!this.running) return;
    let bytes: Uint8Array;
    try {
      bytes = encodeMessage(out.msg);
    } catch (e) {
      this.internalError('encode', e, () => this.log.error('cannot encode gossip message', { error: errorMessage(e) }));
      return;
    }
    const size = bytes.byteLength;
    if (out.msg.t === 'p' && out.to.name !== undefined) this.links.pingSent(out.to.name, out.msg.s, this.clock.now());
    const p = this.transport.send(out.to, bytes).then(
      () => this.hook(() => this.hooks.frameSent?.(size)),
      (e) => {
        this.log.debug('send failed', { to: out.to.name ?? out.to.addresses.join(','), error: errorMessage(e) });
        if (this.running) this.guard('sendFailed', () => this.membership.sendFailed(out.to, out.msg, this.clock.now(), { selfLoop: isSelfLoop(e) }));
      },
    );
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  /** An error this shell caught: to the internal error hook (which logs it, rate-limited), else logged here. */
  private internalError(kind: string, e: unknown, fallback: () => void): void {
    if (this.hooks.internalError) this.hook(() => this.hooks.internalError?.(kind, e));
    else fallback();
  }

  /** Runs a hook; a failing hook never disturbs the mesh. */
  private hook(fn: () => void): void {
    try {
      fn();
    } catch {
      // metrics only
    }
  }
}
