/**
 * An in-memory Transport for deterministic tests (only tests use it, so it
 * lives with them, not in agent/). It keeps the contract of the WebSocket
 * transport (one connection per peer pair reused both ways, peers report
 * their name and identity, unreachable or misnamed destinations reject the
 * send with the same kind of error, `disconnected` fires when a connection
 * goes away) over the simulator's network model (bench/sim/network.ts): the
 * same connections, FIFO delivery, clean closes and resets as the simulator
 * and the gossip tests. Channels are already authenticated (no crypto). A
 * MemoryNetwork is created per test, never global.
 *
 * Delivery takes `latencyMs` on the given clock (virtual time) or, by
 * default, the next event-loop turn.
 */
import { createHash } from 'crypto';
import type { Clock } from '../../shared/clock';
import { HeptoError } from '../../shared/errors';
import { DEFAULT_LIMITS } from '../../agent/net/limits';
import { oversizedError, refusedByReason, stoppedError } from '../../agent/net/send-errors';
import { sendToAddresses, type Destination, type PeerInfo, type Transport, type TransportEvents, type VetRefusal } from '../../agent/net/transport';
import { LatencyModel } from '../../bench/sim/latency';
import { SimNetwork, type Agenda, type Codec, type Endpoint } from '../../bench/sim/network';
import { mulberry32 } from '../../bench/sim/rng';

export interface MemoryNetworkOptions {
  /** With a clock, deliveries happen `latencyMs` later on it; without, on the next setImmediate. */
  clock?: Clock;
  latencyMs?: number;
}

export interface MemoryTransportOptions {
  name: string;
  events: TransportEvents;
  /** Addresses other nodes dial to reach this one; default `<name>:7947`. */
  addresses?: string[];
  /** base64 identity; default derived from the name (stable across restarts of the same name). */
  idPub?: string;
  maxFrameBytes?: number;
}

/** Most transports one network ever starts (the latency model's capacity). */
const CAPACITY = 1024;

/** Frames are bytes; each delivery gets its own copy, as off a socket. */
const BYTES: Codec<Uint8Array> = { encode: (b) => b, decode: (b) => new Uint8Array(b) };

export class MemoryNetwork {
  /** The connections, their delivery and their ends, as the simulator models them. */
  readonly sim: SimNetwork<Uint8Array>;
  private readonly listening = new Map<string, MemoryTransport>();
  private readonly byIndex: MemoryTransport[] = [];
  private readonly agenda: Agenda;
  private inFlight = 0;

  constructor(opts: MemoryNetworkOptions = {}) {
    const clock = opts.clock;
    this.agenda = clock
      ? { now: () => clock.now(), at: (at, fn) => this.track(fn, (f) => clock.setTimeout(f, at - clock.now())) }
      : { now: () => 0, at: (_at, fn) => this.track(fn, (f) => setImmediate(f)) };
    const latency = new LatencyModel(
      {
        name: 'memory',
        geography: { regions: [{ name: 'lan', weight: 1 }], oneWayMs: [[0]] },
        jitter: { kind: 'constant', ms: clock ? (opts.latencyMs ?? 0) : 0 },
      },
      CAPACITY,
      mulberry32(1),
    );
    this.sim = new SimNetwork<Uint8Array>({
      queue: this.agenda,
      latency,
      rng: mulberry32(2),
      codec: BYTES,
      wire: 'decode',
      handshake: false,
      partitionCloses: 'at-once',
    });
  }

  /** Counts what is scheduled, for flush(); a throwing event handler never takes the network down. */
  private track(fn: () => void, schedule: (f: () => void) => unknown): unknown {
    this.inFlight++;
    return schedule(() => {
      this.inFlight--;
      try {
        fn();
      } catch {
        /* the handler's problem, as with the WebSocket transport */
      }
    });
  }

  transport(opts: MemoryTransportOptions): MemoryTransport {
    return new MemoryTransport(this, opts);
  }

  /** Cuts every path between the two groups of node names: their connections reset, both ends told. */
  partition(groupA: string[], groupB: string[]): void {
    const indices = (names: string[]): number[] => this.byIndex.filter((t) => names.includes(t.name)).map((t) => t.index);
    this.sim.partition([indices(groupA), indices(groupB)]);
  }

  /** Removes every partition. */
  heal(): void {
    this.sim.heal();
  }

  /** The node crashes: no goodbye, its connections reset, what was in flight is lost, peers see `disconnected`. */
  drop(name: string): void {
    for (const t of new Set(this.listening.values())) if (t.name === name) t.crash();
  }

  /** Resolves once every queued delivery (and those they cause) has run. */
  async flush(): Promise<void> {
    for (let i = 0; i < 10_000 && this.inFlight > 0; i++) {
      await new Promise<void>((r) => setImmediate(r));
    }
  }

  /** @internal */
  listen(t: MemoryTransport, ep: Endpoint<Uint8Array>): number {
    for (const addr of t.addresses) {
      const other = this.listening.get(addr);
      if (other && other !== t) throw new HeptoError('CONFIG_INVALID', `cannot listen on ${addr}: address in use by "${other.name}"`);
    }
    for (const addr of t.addresses) this.listening.set(addr, t);
    this.byIndex[ep.index] = t;
    this.sim.attach(ep);
    return ep.index;
  }

  /** @internal */
  unlisten(t: MemoryTransport): void {
    for (const [addr, x] of this.listening) if (x === t) this.listening.delete(addr);
  }

  /** @internal */
  nextIndex(): number {
    if (this.byIndex.length >= CAPACITY) throw new Error(`memory network: at most ${CAPACITY} transports`);
    return this.byIndex.length;
  }

  /** @internal the running transport listening at `addr`. */
  at(addr: string): MemoryTransport | undefined {
    return this.listening.get(addr);
  }

  /** @internal */
  transportAt(index: number): MemoryTransport {
    return this.byIndex[index] as MemoryTransport;
  }

  /** @internal runs `fn` on the agenda, after the current step (how the transport reports events of its own). */
  later(fn: () => void): void {
    this.agenda.at(this.agenda.now(), fn);
  }
}

/** How a dial that reached this very agent reads, as the WebSocket transport words it (ws-connection.ts closeReason). */
const SELF = 'that address is this agent itself';

/** How a refusal by the vet hook reads, as the WebSocket transport words it (ws-connection.ts, send-errors.ts refusedByReason). */
const NOT_ADMITTED_RE = /^the peer refused us: it (says|does not admit)/;

function defaultIdPub(name: string): string {
  return createHash('sha256').update(`memory-identity:${name}`).digest('base64');
}

export class MemoryTransport implements Transport {
  readonly name: string;
  readonly idPub: string;
  readonly addresses: string[];
  index = -1;
  private readonly events: TransportEvents;
  private readonly maxFrameBytes: number;
  private state: 'new' | 'running' | 'stopped' = 'new';

  constructor(
    private readonly net: MemoryNetwork,
    opts: MemoryTransportOptions,
  ) {
    this.name = opts.name;
    this.events = opts.events;
    this.addresses = opts.addresses ?? [`${opts.name}:7947`];
    this.idPub = opts.idPub ?? defaultIdPub(opts.name);
    this.maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_LIMITS.maxFrameBytes;
  }

  get info(): PeerInfo {
    const admission = this.events.ownAdmission?.();
    const info: PeerInfo = { name: this.name, idPub: this.idPub, remote: this.addresses[0] ?? `memory:${this.name}` };
    return admission ? { ...info, admission } : info;
  }

  async start(): Promise<void> {
    if (this.state !== 'new') return;
    const t = this;
    const ep: Endpoint<Uint8Array> = {
      index: this.net.nextIndex(),
      get peer() {
        return t.info;
      },
      addresses: this.addresses,
      message: (from, payload) => {
        if (t.state === 'running') t.events.message(from, payload);
      },
      sendFailed: () => undefined, // this transport tries addresses itself (send)
      disconnected: (peer, trimmed) => {
        if (t.state === 'running') t.events.disconnected(peer, trimmed === true);
      },
    };
    this.index = this.net.listen(this, ep);
    this.state = 'running';
  }

  /** A clean stop: what was sent first still arrives, then each peer sees `disconnected`. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    const was = this.state;
    this.state = 'stopped';
    this.net.unlisten(this);
    if (was === 'running') this.net.sim.stop(this.index);
  }

  /** @internal see MemoryNetwork.drop */
  crash(): void {
    if (this.state !== 'running') return;
    this.state = 'stopped';
    this.net.unlisten(this);
    this.net.sim.reset(this.index);
  }

  async send(to: Destination, payload: Uint8Array): Promise<PeerInfo> {
    if (this.state !== 'running') throw stoppedError();
    if (payload.length > this.maxFrameBytes) throw oversizedError(payload.length, this.maxFrameBytes);
    const held = this.net.sim.peerNamed(this.index, to);
    if (held !== undefined) return this.deliver(held, payload);
    return sendToAddresses<number>(
      to,
      (addr) => {
        const result = this.dial(addr);
        if (typeof result !== 'string') return { conn: result, peer: this.net.transportAt(result).name };
        return { problem: result, nameConflict: result.includes('(name conflict)'), notAdmitted: NOT_ADMITTED_RE.test(result), self: result === SELF };
      },
      (h) => this.deliver(h, payload),
    );
  }

  disconnect(name: string, trimmed = false): void {
    const h = this.net.sim.peerNamed(this.index, { name, addresses: [] });
    if (h === undefined) return;
    const peer = this.net.transportAt(h).info;
    this.net.sim.closeTo(this.index, h, trimmed);
    // Our own side of the close, as the WebSocket transport reports it.
    this.net.later(() => {
      if (this.state === 'running') this.events.disconnected(peer, trimmed);
    });
  }

  stats(): { bytesSent: number; bytesReceived: number; connections: number } {
    const s = this.net.sim.stats[this.index];
    return { bytesSent: s?.bytesSent ?? 0, bytesReceived: s?.bytesReceived ?? 0, connections: this.index < 0 ? 0 : this.net.sim.peersOf(this.index).length };
  }

  /** A connection to whoever listens at `addr` (opened now, the handshake done), or why not. */
  private dial(addr: string): number | string {
    const target = this.net.at(addr);
    if (!target) return 'connection refused (nothing listening there)';
    if (!this.net.sim.reachable(this.index, target.index)) return 'no authenticated answer (network partitioned)';
    if (target === this || target.idPub === this.idPub) return SELF;
    if (this.net.sim.peersOf(this.index).includes(target.index)) return target.index;
    const held = this.net.sim.peerNamed(target.index, { name: this.name, addresses: [] });
    if (held !== undefined && this.net.transportAt(held).idPub !== this.idPub) {
      const reason = `claims the name "${this.name}" already held by a connected peer with another identity`;
      const remote = this.info.remote;
      this.net.later(() => target.events.rejected({ remote, reason, peer: this.name }));
      return `the peer refused us: it has a connected peer with our name and another identity (name conflict)`;
    }
    // Both ends vet each other as the WebSocket transport does once the handshake completes.
    const mine = this.info;
    const theirs = target.info;
    const theyRefuse = target.vetPeer(mine);
    if (theyRefuse !== undefined) {
      this.net.later(() => target.events.rejected({ remote: mine.remote, reason: theyRefuse.reason, peer: this.name }));
      this.net.later(() => this.events.refusedBy?.({ remote: addr, reason: refusedByReason(theyRefuse.tell), peer: target.name }));
      return `the peer refused us: ${refusedByReason(theyRefuse.tell)}`;
    }
    const weRefuse = this.vetPeer(theirs);
    if (weRefuse !== undefined) {
      this.net.later(() => this.events.rejected({ remote: addr, reason: weRefuse.reason, peer: target.name }));
      return `refused the peer: ${weRefuse.reason}`;
    }
    this.net.sim.openTo(this.index, target.index);
    return target.index;
  }

  /** @internal the `vet` hook, a throwing one refusing. */
  vetPeer(peer: PeerInfo): VetRefusal | undefined {
    try {
      return this.events.vet?.(peer);
    } catch {
      return { reason: 'could not check its admission', tell: 'not admitted' };
    }
  }

  private deliver(h: number, payload: Uint8Array): PeerInfo {
    this.net.sim.deliver(this.index, h, payload);
    return this.net.transportAt(h).info;
  }
}
