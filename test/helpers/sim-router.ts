/**
 * A tiny discrete-event network for Membership instances, in virtual time
 * (ManualClock): delivers Step.send between members with latency, random
 * loss, crashes and partitions, and records every event. Each member is driven
 * by the daemon's own MembershipDriver, so it ticks as an agent does.
 * Messages go through encodeMessage/decodeMessage, so the codec is exercised.
 */
import { Membership, decodeMessage, encodeMessage } from '../../agent/gossip/membership';
import type { GossipMessage, MemberEvent, Step } from '../../agent/gossip/membership';
import { MembershipDriver } from '../../agent/gossip/driver';
import { ManualClock } from '../../shared/clock';
import type { Destination, PeerInfo } from '../../agent/net/transport';
import { mulberry32 } from '../../bench/sim/rng';

export interface SimNode {
  name: string;
  address: string;
  idPub: string;
  m: Membership;
  readonly driver: MembershipDriver;
  up: boolean;
  bytesSent: number;
  bytesReceived: number;
}

export interface LoggedEvent extends MemberEvent {
  at: number;
  observer: string;
}

export interface SimRouterOptions {
  rng: () => number;
  /** One-way latency in ms, uniform in [min, max]. */
  latency?: { min: number; max: number };
  /** Probability that a message is silently lost. */
  loss?: number;
  /** How a send across a partition ends: 'fail' = sendFailed after failDelay (TCP dial timeout), 'drop' = silently lost. */
  partitionMode?: 'fail' | 'drop';
  /** Delay before sendFailed is reported for a crashed or partitioned peer (ms). */
  failDelay?: number;
  /** Tell members that had talked with a crashed member that the connection closed. */
  notifyDisconnect?: boolean;
  start?: number;
}

type Pending =
  | { kind: 'deliver'; from: SimNode; to: SimNode; bytes: Uint8Array }
  | { kind: 'failed'; from: SimNode; dest: Destination; msg: GossipMessage }
  | { kind: 'disconnect'; node: SimNode; peer: string; trimmed?: boolean };

export class SimRouter {
  readonly clock: ManualClock;
  readonly nodes = new Map<string, SimNode>();
  readonly events: LoggedEvent[] = [];
  private readonly byAddress = new Map<string, SimNode>();
  private groups: Map<string, number> | null = null;
  private readonly talked = new Map<string, Set<string>>();
  private readonly cuts = new Set<string>();
  /** Optional tap: return the message to deliver (possibly changed), or null to drop it silently. */
  filter: ((from: SimNode, to: SimNode, msg: GossipMessage) => GossipMessage | null) | null = null;
  /** Every message handed to the network, for assertions. */
  readonly sent: { at: number; from: string; to: string; msg: GossipMessage }[] = [];
  /** Set to record into `sent` (off by default: long runs would keep millions). */
  recordSent = false;
  private readonly o: Required<Omit<SimRouterOptions, 'start'>>;

  constructor(opts: SimRouterOptions) {
    this.clock = new ManualClock(opts.start ?? 1_000_000);
    this.o = {
      rng: opts.rng,
      latency: opts.latency ?? { min: 1, max: 5 },
      loss: opts.loss ?? 0,
      partitionMode: opts.partitionMode ?? 'fail',
      failDelay: opts.failDelay ?? 50,
      notifyDisconnect: opts.notifyDisconnect ?? true,
    };
  }

  /**
   * Adds a member listening on `address`. `key` names it in the router when
   * its member name is already taken (an impostor claiming a live name).
   */
  add(m: Membership, address: string, key?: string): SimNode {
    const self = m.view().find((v) => v.state === 'alive' && v.record.addresses.includes(address)) ?? m.view()[0];
    if (!self) throw new Error('sim-router: membership has no self entry');
    const node: SimNode = {
      name: self.name,
      address,
      idPub: self.record.id_pub,
      m,
      driver: this.driverOf(m, () => node),
      up: true,
      bytesSent: 0,
      bytesReceived: 0,
    };
    this.nodes.set(key ?? node.name, node);
    this.byAddress.set(address, node);
    node.driver.start();
    return node;
  }

  /** Virtual now. */
  get now(): number {
    return this.clock.now();
  }

  private driverOf(m: Membership, node: () => SimNode): MembershipDriver {
    return new MembershipDriver(m, this.clock, {
      event: (ev) => this.events.push({ ...ev, at: this.now, observer: node().name }),
      close: (name) => this.trim(node(), name),
      send: (out) => this.send(node(), out.to, out.msg),
    });
  }

  /** Replaces a member's state machine (a restart), keeping its address. */
  replace(name: string, m: Membership): SimNode {
    const old = this.nodes.get(name);
    if (!old) throw new Error(`sim-router: no node ${name}`);
    old.m = m;
    old.driver.membership = m;
    old.up = true;
    old.driver.start();
    const self = m.view().find((v) => v.name === old.name);
    if (self) old.idPub = self.record.id_pub;
    return old;
  }

  /** Another address reaching the same member (a hostname, a second interface). */
  alias(address: string, name: string): void {
    this.byAddress.set(address, this.node(name));
  }

  node(name: string): SimNode {
    const n = this.nodes.get(name);
    if (!n) throw new Error(`sim-router: no node ${name}`);
    return n;
  }

  /** Applies a Step returned by a direct call on a member (bootstrap, leave, updateSelf...). */
  handle(from: SimNode, step: Step): void {
    from.driver.apply(step);
  }

  /** Step.close: `from` closes its connection with `name` as trimmed (active view full); the peer hears it one latency later. */
  private trim(from: SimNode, name: string): void {
    if (!this.talked.get(from.name)?.delete(name)) return;
    this.talked.get(name)?.delete(from.name);
    const to = this.nodes.get(name);
    if (to) this.push(this.now + this.o.latency.max, { kind: 'disconnect', node: to, peer: from.name, trimmed: true });
  }

  /** The members `name` holds a connection with (it talked with them, not closed since). */
  connected(name: string): string[] {
    return [...(this.talked.get(name) ?? [])].sort();
  }

  /** Crash: the member stops; peers that talked to it see the connection close. */
  crash(name: string): void {
    const n = this.node(name);
    n.up = false;
    n.driver.stop();
    if (!this.o.notifyDisconnect) return;
    // Peers see the connection close after whatever it had already sent (same stream).
    const at = this.now + this.o.latency.max + 1;
    for (const other of this.talked.get(name) ?? []) {
      const o = this.nodes.get(other);
      if (o) this.push(at, { kind: 'disconnect', node: o, peer: name });
      this.talked.get(other)?.delete(name);
    }
    this.talked.delete(name);
  }

  /** Members in different groups cannot reach each other until heal(). */
  partition(groups: string[][]): void {
    this.groups = new Map();
    groups.forEach((g, i) => g.forEach((name) => this.groups?.set(name, i)));
  }

  heal(): void {
    this.groups = null;
  }

  setLoss(loss: number): void {
    this.o.loss = loss;
  }

  /** Cuts the link between two members, both ways (behaves like a partition). */
  cut(a: string, b: string): void {
    this.cuts.add(`${a}|${b}`);
    this.cuts.add(`${b}|${a}`);
  }

  restore(a: string, b: string): void {
    this.cuts.delete(`${a}|${b}`);
    this.cuts.delete(`${b}|${a}`);
  }

  private reachable(a: SimNode, b: SimNode): boolean {
    if (!b.up) return false;
    if (this.cuts.has(`${a.name}|${b.name}`)) return false;
    if (!this.groups) return true;
    const ga = this.groups.get(a.name);
    const gb = this.groups.get(b.name);
    return ga === undefined || gb === undefined || ga === gb;
  }

  private resolve(dest: Destination): SimNode | undefined {
    for (const a of dest.addresses) {
      const n = this.byAddress.get(a);
      if (n) return n;
    }
    return dest.name !== undefined ? this.nodes.get(dest.name) : undefined;
  }

  private push(at: number, p: Pending): void {
    this.clock.at(at, () => this.process(p));
  }

  private send(from: SimNode, dest: Destination, msg: GossipMessage): void {
    const to = this.resolve(dest);
    if (this.recordSent && (!to || !to.up)) this.sent.push({ at: this.now, from: from.name, to: dest.name ?? dest.addresses.join(','), msg });
    if (!to || !to.up) {
      this.push(this.now + 1, { kind: 'failed', from, dest, msg });
      return;
    }
    if (!this.reachable(from, to)) {
      if (this.o.partitionMode === 'fail') this.push(this.now + this.o.failDelay, { kind: 'failed', from, dest, msg });
      return;
    }
    if (this.recordSent) this.sent.push({ at: this.now, from: from.name, to: to.name, msg });
    const kept = this.filter ? this.filter(from, to, msg) : msg;
    if (!kept) return;
    const bytes = encodeMessage(kept);
    from.bytesSent += bytes.byteLength;
    if (this.o.rng() < this.o.loss) return;
    const { min, max } = this.o.latency;
    const at = this.now + min + Math.floor(this.o.rng() * (max - min + 1));
    this.push(at, { kind: 'deliver', from, to, bytes });
  }

  /** Runs the network until virtual time `until` (inclusive). */
  runUntil(until: number): void {
    // Members may have been called directly since (restorePeers...): re-arm their timers.
    for (const n of this.nodes.values()) if (n.up) n.driver.arm();
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

  private process(p: Pending): void {
    if (p.kind === 'failed') {
      if (p.from.up) this.handle(p.from, p.from.m.sendFailed(p.dest, p.msg, this.now));
      return;
    }
    if (p.kind === 'disconnect') {
      // A trimmed connection that a later message opened again (a new connection): nothing closed.
      if (p.trimmed && this.talked.get(p.node.name)?.has(p.peer)) return;
      if (p.node.up) this.handle(p.node, p.node.m.disconnected(p.peer, this.now, p.trimmed === true));
      return;
    }
    // A message already on the wire is delivered even if its sender crashed since.
    if (!p.to.up) return;
    if (!this.reachable(p.from, p.to)) return;
    p.to.bytesReceived += p.bytes.byteLength;
    this.noteTalk(p.from.name, p.to.name);
    const msg = decodeMessage(p.bytes);
    const admission = p.from.m.ownAdmission();
    const info: PeerInfo = admission
      ? { name: p.from.name, idPub: p.from.idPub, remote: p.from.address, admission }
      : { name: p.from.name, idPub: p.from.idPub, remote: p.from.address };
    this.handle(p.to, p.to.m.receive(info, msg, this.now));
  }

  private noteTalk(a: string, b: string): void {
    if (!this.talked.has(a)) this.talked.set(a, new Set());
    if (!this.talked.has(b)) this.talked.set(b, new Set());
    this.talked.get(a)?.add(b);
    this.talked.get(b)?.add(a);
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
