/**
 * The gossip unit tests' cluster: real Membership instances in virtual time
 * (ManualClock), each driven by the daemon's own MembershipDriver, over the
 * simulator's network (bench/sim/network.ts: one connection per pair, FIFO,
 * FIN after the frames sent before it, dial timeouts across a partition,
 * keepalive). A thin layer of names over indices, with the taps the tests use:
 * every member event logged, sends recorded, frames filtered.
 * Messages are encoded and decoded as on the wire, so the codec is exercised.
 */
import type { Membership } from '../../agent/gossip/membership';
import type { GossipMessage, MemberEvent, Step } from '../../agent/gossip/membership';
import { MembershipDriver } from '../../agent/gossip/driver';
import type { Destination, PeerInfo } from '../../agent/net/transport';
import { ManualClock } from '../../shared/clock';
import { LatencyModel } from '../../bench/sim/latency';
import { DrivenEndpoint, SimNetwork } from '../../bench/sim/network';
import { mulberry32 } from '../../bench/sim/rng';

/** Most members one router holds (the latency model's capacity). */
const CAPACITY = 1024;

export interface SimNode {
  readonly name: string;
  readonly address: string;
  idPub: string;
  m: Membership;
  readonly driver: MembershipDriver;
  up: boolean;
  readonly bytesSent: number;
  readonly bytesReceived: number;
}

export interface LoggedEvent extends MemberEvent {
  at: number;
  observer: string;
}

export interface SimRouterOptions {
  rng: () => number;
  /** One-way latency in ms, uniform in [min, max]. */
  latency?: { min: number; max: number };
  /** Probability that a whole message is silently lost. */
  loss?: number;
  /**
   * A dial across a partition: 'fail' = it times out after failDelay (the
   * default, a quick 50 ms), 'drop' = only after the transport's own dial
   * timeout (5 s). Frames on a connection opened before the cut are lost
   * either way, until keepalive closes it.
   */
  partitionMode?: 'fail' | 'drop';
  /** The dial timeout across a partition in 'fail' mode (ms). */
  failDelay?: number;
  /**
   * true (default): crash() kills the process, its kernel closes the
   * connections and refuses dials. false: crash() is a power cut, nothing
   * answers and peers find out by timeouts and keepalive.
   */
  notifyDisconnect?: boolean;
  start?: number;
}

class Node extends DrivenEndpoint implements SimNode {
  m: Membership;
  readonly driver: MembershipDriver;
  up = true;

  constructor(
    private readonly router: SimRouter,
    readonly index: number,
    readonly name: string,
    readonly address: string,
    public idPub: string,
    m: Membership,
  ) {
    super();
    this.m = m;
    this.driver = new MembershipDriver(m, router.clock, {
      event: (ev) => router.events.push({ ...ev, at: router.now, observer: this.name }),
      close: (peer) => router.net.trim(this.index, peer),
      send: (out) => router.send(this, out.to, out.msg),
    });
  }

  get addresses(): string[] {
    return [this.address];
  }

  get peer(): PeerInfo {
    const admission = this.m.ownAdmission();
    const info: PeerInfo = { name: this.name, idPub: this.idPub, remote: this.address };
    return admission ? { ...info, admission } : info;
  }

  get bytesSent(): number {
    return this.router.net.stats[this.index]?.bytesSent ?? 0;
  }

  get bytesReceived(): number {
    return this.router.net.stats[this.index]?.bytesReceived ?? 0;
  }
}

export class SimRouter {
  readonly clock: ManualClock;
  readonly net: SimNetwork;
  readonly nodes = new Map<string, SimNode>();
  readonly events: LoggedEvent[] = [];
  private readonly byIndex: Node[] = [];
  private readonly byAddress = new Map<string, Node>();
  /** Optional tap: return the message to deliver (possibly changed), or null to drop it silently. */
  filter: ((from: SimNode, to: SimNode, msg: GossipMessage) => GossipMessage | null) | null = null;
  /** Every message handed to the network, for assertions. */
  readonly sent: { at: number; from: string; to: string; msg: GossipMessage }[] = [];
  /** Set to record into `sent` (off by default: long runs would keep millions). */
  recordSent = false;
  private readonly powerCut: boolean;

  constructor(opts: SimRouterOptions) {
    this.clock = new ManualClock(opts.start ?? 1_000_000);
    const latency = opts.latency ?? { min: 1, max: 5 };
    const model = new LatencyModel(
      { name: 'router', geography: { regions: [{ name: 'lan', weight: 1 }], oneWayMs: [[0]] }, jitter: { kind: 'uniform', ...latency } },
      CAPACITY,
      mulberry32(1),
    );
    this.net = new SimNetwork({
      queue: this.clock,
      latency: model,
      rng: opts.rng,
      loss: opts.loss ?? 0,
      lossModel: 'drop',
      dialTimeoutMs: (opts.partitionMode ?? 'fail') === 'fail' ? (opts.failDelay ?? 50) : undefined,
      wire: 'decode',
    });
    this.net.filter = (from, to, msg) => (this.filter ? this.filter(this.at(from), this.at(to), msg) : msg);
    this.powerCut = opts.notifyDisconnect === false;
  }

  /** Virtual now. */
  get now(): number {
    return this.clock.now();
  }

  /**
   * Adds a member listening on `address`. `key` names it in the router when
   * its member name is already taken (an impostor claiming a live name).
   */
  add(m: Membership, address: string, key?: string): SimNode {
    const self = m.view().find((v) => v.state === 'alive' && v.record.addresses.includes(address)) ?? m.view()[0];
    if (!self) throw new Error('sim-router: membership has no self entry');
    if (this.byIndex.length >= CAPACITY) throw new Error(`sim-router: at most ${CAPACITY} members`);
    const node = new Node(this, this.byIndex.length, self.name, address, self.record.id_pub, m);
    this.byIndex.push(node);
    this.nodes.set(key ?? node.name, node);
    this.byAddress.set(address, node);
    this.net.attach(node);
    node.driver.start();
    return node;
  }

  /** Replaces a member's state machine (a restart), keeping its address. */
  replace(name: string, m: Membership): SimNode {
    const old = this.own(name);
    old.m = m;
    old.driver.membership = m;
    const self = m.view().find((v) => v.name === old.name);
    if (self) old.idPub = self.record.id_pub;
    if (!old.up) this.net.attach(old); // a crashed process starts again: reachable, with no connections
    old.up = true;
    old.driver.start();
    return old;
  }

  /** Another address reaching the same member (a hostname, a second interface). */
  alias(address: string, name: string): void {
    const n = this.own(name);
    this.byAddress.set(address, n);
    this.net.alias(address, n.index);
  }

  node(name: string): SimNode {
    return this.own(name);
  }

  private own(name: string): Node {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`sim-router: no node ${name}`);
    return n as Node;
  }

  private at(i: number): Node {
    return this.byIndex[i] as Node;
  }

  /** Applies a Step returned by a direct call on a member (bootstrap, leave, updateSelf...). */
  handle(from: SimNode, step: Step): void {
    from.driver.apply(step);
  }

  /** The members `name` holds a connection with. */
  connected(name: string): string[] {
    return this.net
      .peersOf(this.own(name).index)
      .map((i) => this.at(i).name)
      .sort();
  }

  /** Crash: the member stops (see notifyDisconnect for what its peers see). */
  crash(name: string): void {
    const n = this.own(name);
    n.up = false;
    n.driver.stop();
    if (this.powerCut) this.net.silence(n.index);
    else this.net.kill(n.index);
  }

  /** Members in different groups cannot reach each other until heal(). */
  partition(groups: string[][]): void {
    this.net.partition(groups.map((g) => g.map((name) => this.own(name).index)));
  }

  heal(): void {
    this.net.heal();
  }

  setLoss(loss: number): void {
    this.net.loss = loss;
  }

  /** Cuts the link between two members, both ways (behaves like a partition). */
  cut(a: string, b: string): void {
    this.net.cut(this.own(a).index, this.own(b).index);
  }

  restore(a: string, b: string): void {
    this.net.uncut(this.own(a).index, this.own(b).index);
  }

  /** @internal a member's Step.send. */
  send(from: Node, dest: Destination, msg: GossipMessage): void {
    if (this.recordSent) {
      const to = (dest.name !== undefined ? this.nodes.get(dest.name) : undefined) ?? dest.addresses.map((a) => this.byAddress.get(a)).find((n) => n);
      this.sent.push({ at: this.now, from: from.name, to: to?.name ?? dest.name ?? dest.addresses.join(','), msg });
    }
    this.net.send(from.index, dest, msg);
  }

  /** Runs the network until virtual time `until` (inclusive). */
  runUntil(until: number): void {
    // Members may have been called directly since (restorePeers...): re-arm their timers.
    for (const n of this.byIndex) if (n.up) n.driver.arm();
    this.clock.runUntil(until);
  }

  run(ms: number): void {
    this.runUntil(this.now + ms);
  }

  /** Runs until cond() holds, checking after every step; returns the virtual time it took, or throws at the deadline. */
  runUntilTrue(cond: () => boolean, maxMs: number, what = 'condition'): number {
    const start = this.now;
    const deadline = start + maxMs;
    while (!cond()) {
      if (this.now >= deadline) throw new Error(`sim-router: ${what} not reached within ${maxMs} ms of virtual time`);
      this.runUntil(Math.min(deadline, this.now + 10));
    }
    return this.now - start;
  }

  /** What `observer` believes about `name`, or undefined. */
  stateOf(observer: string, name: string): string | undefined {
    return this.node(observer)
      .m.view()
      .find((v) => v.name === name)?.state;
  }

  /** True when every up member sees exactly the given states for the given names. */
  allSee(names: string[], state: string, observers?: string[]): boolean {
    const obs = observers ?? [...this.nodes.values()].filter((n) => n.up).map((n) => n.name);
    return obs.every((o) => {
      const seen = new Map(
        this.node(o)
          .m.view()
          .map((v) => [v.name, v.state]),
      );
      return names.every((n) => seen.get(n) === state);
    });
  }
}

/** Small deterministic PRNG for seeded tests: the simulator's mulberry32, so both replay alike. */
export function seededRng(seed: number): () => number {
  return mulberry32(seed);
}
