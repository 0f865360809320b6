/**
 * An in-memory Transport for deterministic tests (only tests use it, so it
 * lives with them, not in agent/). It models channels that are already
 * authenticated (no crypto), but keeps the contract
 * of the WebSocket transport: one connection per peer pair reused both ways,
 * peers report their name and identity, unreachable or misnamed destinations
 * reject the send with the same kind of error, `disconnected` fires when a
 * connection goes away. A MemoryNetwork is created per test, never global.
 *
 * Delivery is FIFO over the whole network: after `latencyMs` on the given
 * clock (virtual time) or, by default, on the next event-loop turn.
 */
import { createHash } from 'crypto';
import type { Clock } from '../../shared/clock';
import { HeptoError } from '../../shared/errors';
import { FRAME_OVERHEAD, DEFAULT_LIMITS } from '../../agent/net/limits';
import { oversizedError, refusedByReason, stoppedError } from '../../agent/net/send-errors';
import { sendToAddresses, type Destination, type PeerInfo, type Transport, type TransportEvents, type VetRefusal } from '../../agent/net/transport';

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

interface Link {
  a: MemoryTransport;
  b: MemoryTransport;
  open: boolean;
  /**
   * Closed by a crash or a partition: what was in flight is lost. A link one
   * side closed on purpose (stop, disconnect) still delivers what was sent
   * before, as a WebSocket close frame follows the frames queued before it.
   */
  lost?: boolean;
}

export class MemoryNetwork {
  private readonly listening = new Map<string, MemoryTransport>();
  private readonly groups = new Map<string, number>();
  private readonly links = new Set<Link>();
  private queue: (() => void)[] = [];
  private scheduled = false;
  private inFlight = 0;

  constructor(private readonly opts: MemoryNetworkOptions = {}) {}

  transport(opts: MemoryTransportOptions): MemoryTransport {
    return new MemoryTransport(this, opts);
  }

  /** Cuts every path between the two groups of node names (existing connections close). */
  partition(groupA: string[], groupB: string[]): void {
    const id = this.groups.size === 0 ? 1 : Math.max(...this.groups.values()) + 1;
    for (const n of groupA) this.groups.set(n, id);
    for (const n of groupB) this.groups.set(n, id + 1);
    for (const l of [...this.links]) {
      if (this.reachable(l.a.name, l.b.name)) continue;
      l.lost = true;
      this.cut(l);
    }
  }

  /** Removes every partition. */
  heal(): void {
    this.groups.clear();
  }

  /** The node crashes: no goodbye, its connections vanish, peers see `disconnected`. */
  drop(name: string): void {
    for (const t of new Set(this.listening.values())) if (t.name === name) t.crash();
  }

  /** Resolves once every queued delivery (and those they cause) has run. */
  async flush(): Promise<void> {
    for (let i = 0; i < 10_000 && (this.queue.length > 0 || this.inFlight > 0); i++) {
      await new Promise<void>((r) => setImmediate(r));
    }
  }

  reachable(a: string, b: string): boolean {
    const ga = this.groups.get(a);
    const gb = this.groups.get(b);
    return ga === undefined || gb === undefined || ga === gb;
  }

  /** @internal */
  listen(t: MemoryTransport): void {
    for (const addr of t.addresses) {
      const other = this.listening.get(addr);
      if (other && other !== t) throw new HeptoError('CONFIG_INVALID', `cannot listen on ${addr}: address in use by "${other.name}"`);
    }
    for (const addr of t.addresses) this.listening.set(addr, t);
  }

  /** @internal */
  unlisten(t: MemoryTransport): void {
    for (const [addr, x] of this.listening) if (x === t) this.listening.delete(addr);
  }

  /** @internal */
  at(addr: string): MemoryTransport | undefined {
    return this.listening.get(addr);
  }

  /** @internal */
  connect(a: MemoryTransport, b: MemoryTransport): Link {
    const link: Link = { a, b, open: true };
    this.links.add(link);
    return link;
  }

  /** @internal closes a link and tells each side that still runs. */
  cut(link: Link, trimmed = false): void {
    if (!link.open) return;
    link.open = false;
    this.links.delete(link);
    link.a.linkClosed(link, trimmed);
    link.b.linkClosed(link, trimmed);
  }

  /** @internal */
  enqueue(fn: () => void): void {
    if (this.opts.clock) {
      this.inFlight++;
      this.opts.clock.setTimeout(() => {
        this.inFlight--;
        run(fn);
      }, this.opts.latencyMs ?? 0);
      return;
    }
    this.queue.push(fn);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const batch = this.queue;
      this.queue = [];
      for (const f of batch) run(f);
    });
  }
}

/** Runs one delivery; a throwing event handler must not take the network (or the process) down. */
function run(fn: () => void): void {
  try {
    fn();
  } catch {
    /* the handler's problem, as with the WebSocket transport */
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
  private readonly events: TransportEvents;
  private readonly maxFrameBytes: number;
  private state: 'new' | 'running' | 'stopped' = 'new';
  private readonly byName = new Map<string, Link>();
  private readonly byAddress = new Map<string, Link>();
  private bytesSent = 0;
  private bytesReceived = 0;

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
    this.net.listen(this);
    this.state = 'running';
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    this.net.unlisten(this);
    for (const l of new Set(this.byName.values())) this.net.cut(l);
  }

  /** @internal see MemoryNetwork.drop */
  crash(): void {
    for (const l of this.byName.values()) l.lost = true;
    void this.stop();
  }

  async send(to: Destination, payload: Uint8Array): Promise<PeerInfo> {
    if (this.state === 'stopped') throw stoppedError();
    if (payload.length > this.maxFrameBytes) throw oversizedError(payload.length, this.maxFrameBytes);
    if (to.name !== undefined) {
      const l = this.byName.get(to.name);
      if (l && l.open) return this.deliver(l, payload);
    }
    return sendToAddresses<Link>(
      to,
      (addr) => {
        const result = this.linkTo(addr);
        if (typeof result !== 'string') return { conn: result, peer: this.other(result).name };
        return { problem: result, nameConflict: result.includes('(name conflict)'), notAdmitted: NOT_ADMITTED_RE.test(result), self: result === SELF };
      },
      (l) => this.deliver(l, payload),
    );
  }

  disconnect(name: string, trimmed = false): void {
    const l = this.byName.get(name);
    if (l) this.net.cut(l, trimmed);
  }

  stats(): { bytesSent: number; bytesReceived: number; connections: number } {
    return { bytesSent: this.bytesSent, bytesReceived: this.bytesReceived, connections: new Set(this.byName.values()).size };
  }

  /** @internal */
  linkClosed(link: Link, trimmed: boolean): void {
    const peer = this.other(link);
    if (this.byName.get(peer.name) === link) this.byName.delete(peer.name);
    for (const [addr, l] of this.byAddress) if (l === link) this.byAddress.delete(addr);
    if (this.state === 'stopped') return;
    const info = peer.info;
    this.net.enqueue(() => {
      if (this.state !== 'stopped') this.events.disconnected(info, trimmed);
    });
  }

  private other(link: Link): MemoryTransport {
    return link.a === this ? link.b : link.a;
  }

  private linkTo(addr: string): Link | string {
    const existing = this.byAddress.get(addr);
    if (existing && existing.open) return existing;
    const target = this.net.at(addr);
    if (!target || target.state !== 'running') return 'connection refused (nothing listening there)';
    if (!this.net.reachable(this.name, target.name)) return `no authenticated answer (network partitioned)`;
    if (target === this || target.idPub === this.idPub) return SELF;
    const already = this.byName.get(target.name);
    if (already && already.open) {
      this.byAddress.set(addr, already);
      return already;
    }
    const held = target.byName.get(this.name);
    if (held && held.open && target.other(held).idPub !== this.idPub) {
      const reason = `claims the name "${this.name}" already held by a connected peer with another identity`;
      target.net.enqueue(() => target.events.rejected({ remote: this.info.remote, reason, peer: this.name }));
      return `the peer refused us: it has a connected peer with our name and another identity (name conflict)`;
    }
    // Both ends vet each other as the WebSocket transport does once the handshake completes.
    const mine = this.info;
    const theirs = target.info;
    const theyRefuse = target.vetPeer(mine);
    if (theyRefuse !== undefined) {
      target.net.enqueue(() => target.events.rejected({ remote: mine.remote, reason: theyRefuse.reason, peer: this.name }));
      this.net.enqueue(() => this.events.refusedBy?.({ remote: addr, reason: refusedByReason(theyRefuse.tell), peer: target.name }));
      return `the peer refused us: ${refusedByReason(theyRefuse.tell)}`;
    }
    const weRefuse = this.vetPeer(theirs);
    if (weRefuse !== undefined) {
      this.net.enqueue(() => this.events.rejected({ remote: addr, reason: weRefuse.reason, peer: target.name }));
      return `refused the peer: ${weRefuse.reason}`;
    }
    const link = this.net.connect(this, target);
    this.byName.set(target.name, link);
    this.byAddress.set(addr, link);
    target.byName.set(this.name, link);
    return link;
  }

  /** @internal the `vet` hook, a throwing one refusing. */
  vetPeer(peer: PeerInfo): VetRefusal | undefined {
    try {
      return this.events.vet?.(peer);
    } catch {
      return { reason: 'could not check its admission', tell: 'not admitted' };
    }
  }

  private deliver(link: Link, payload: Uint8Array): PeerInfo {
    const peer = this.other(link);
    const copy = new Uint8Array(payload);
    const wire = copy.length + FRAME_OVERHEAD;
    this.bytesSent += wire;
    const from = this.info;
    this.net.enqueue(() => {
      if (link.lost || peer.state !== 'running') return;
      peer.bytesReceived += wire;
      peer.events.message(from, copy);
    });
    return peer.info;
  }
}
