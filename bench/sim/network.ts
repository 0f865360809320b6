/**
 * The simulated network between members, modelled on the real transport
 * (agent/net/ws-transport.ts): one authenticated connection per pair, reused
 * both ways and opened by a dial + handshake (1.5 round trips); frames on a
 * connection arrive in order (TCP); a killed process closes its connections
 * (peers see `disconnected` one latency later) and refuses dials; a host that
 * goes silent (power cut) or a partition makes frames vanish, dials time out,
 * and open connections die by keepalive (two to four intervals later).
 *
 * The one in-memory network of the project: the simulator runs on it, and so
 * do the gossip unit tests (test/helpers/sim-router.ts) and the Transport fake
 * the daemon tests use (test/helpers/memory-transport.ts, which carries bytes
 * and tries addresses itself, through peerNamed/openTo/deliver/closeTo).
 *
 * Loss has two models. `tcp` (the real transport): each packet is lost with
 * probability p and retransmitted after an RTO (200 ms minimum, doubling), so
 * loss shows up as delay and head-of-line blocking, never as a missing
 * message. `drop`: the whole message vanishes with probability p (a harsher,
 * datagram-like stress test).
 */
import { encodeMessage, type GossipMessage } from '../../agent/gossip/messages';
import { decodeMessage } from '../../agent/gossip/validate';
import { DEFAULT_DIAL_TIMEOUT_MS, DEFAULT_LIMITS, FRAME_OVERHEAD } from '../../agent/net/limits';
import type { Destination, PeerInfo } from '../../agent/net/transport';
import type { MembershipDriver } from '../../agent/gossip/driver';
import type { LatencyModel } from './latency';
import type { Rng } from './rng';
import { ConnectionLedger, HANDSHAKE_BYTES } from './connections';

/** What the network schedules on: virtual time (ManualClock) or, for a transport fake on real time, timers. */
export interface Agenda {
  now(): number;
  at(at: number, fn: () => void): unknown;
}

/** How a payload goes on the wire: gossip messages by default, bytes for a transport fake. */
export interface Codec<P> {
  encode(p: P): Uint8Array;
  decode(b: Uint8Array): P;
}

export const GOSSIP_CODEC: Codec<GossipMessage> = { encode: encodeMessage, decode: decodeMessage };

/** What the network calls on a member (the simulated transport events). */
export interface Endpoint<P = GossipMessage> {
  readonly index: number;
  readonly peer: PeerInfo;
  readonly addresses: string[];
  message(from: PeerInfo, msg: P): void;
  /** `selfLoop`: every address tried was this member itself (the transports' isSelfLoop). */
  sendFailed(to: Destination, msg: P, why: { selfLoop: boolean }): void;
  disconnected(peer: PeerInfo, trimmed?: boolean): void;
}

/** An Endpoint whose member a MembershipDriver runs: the network's three calls go through it. */
export abstract class DrivenEndpoint implements Endpoint {
  abstract readonly index: number;
  abstract readonly peer: PeerInfo;
  abstract readonly addresses: string[];
  abstract readonly driver: MembershipDriver;

  message(from: PeerInfo, msg: GossipMessage): void {
    this.driver.run('receive', (now) => this.driver.membership.receive(from, msg, now));
  }

  sendFailed(to: Destination, msg: GossipMessage, why: { selfLoop: boolean }): void {
    this.driver.run('sendFailed', (now) => this.driver.membership.sendFailed(to, msg, now, why));
  }

  disconnected(peer: PeerInfo, trimmed?: boolean): void {
    this.driver.run('disconnected', (now) => this.driver.membership.disconnected(peer.name, now, trimmed === true));
  }
}

export type HostState = 'up' | 'killed' | 'silent' | 'gone';
export type LossModel = 'tcp' | 'drop';

export interface NetworkOptions<P = GossipMessage> {
  queue: Agenda;
  /** How payloads are encoded (bytes counted, `decode` wire). Default: gossip messages. */
  codec?: Codec<P>;
  /** A new connection carries data one round trip after the dial (the handshake). Default true. */
  handshake?: boolean;
  /**
   * A partition's connections: 'keepalive' (default), they die when keepalive
   * gives up; 'at-once', they are cut at once, frames in flight lost, both ends told.
   */
  partitionCloses?: 'keepalive' | 'at-once';
  latency: LatencyModel;
  rng: Rng;
  /** Per-packet (tcp) or per-message (drop) loss probability. */
  loss?: number;
  lossModel?: LossModel;
  dialTimeoutMs?: number;
  keepaliveMs?: number;
  /**
   * `decode`: every message is encoded and decoded like on the wire (full fidelity).
   * `shared`: the receiver gets the sender's object (no copy) - much faster and
   * lighter at 10,000 members; the unit test checks both give the same run.
   */
  wire?: 'decode' | 'shared';
  /** Count bytes (encodes every message); off speeds up big runs outside measurement windows. */
  countBytes?: boolean;
}

/** A test's tap on every frame about to go out: the message to deliver instead, or null to lose it. */
export type FrameFilter<P = GossipMessage> = (from: number, to: number, msg: P) => P | null;

/**
 * Bytes on the wire besides the gossip JSON, per frame: the sealed frame
 * header (type, counter, MAC = 25) plus a WebSocket binary frame header
 * (2 bytes, +2 over 125 bytes, +8 over 64 KiB, +4 mask from the dialing side).
 * TCP/IP headers and ACKs are not counted (memberlist's figure does not count them either).
 */
export function frameBytes(payload: number, masked: boolean): number {
  const len = payload + FRAME_OVERHEAD;
  const ws = 2 + (len > 65535 ? 8 : len > 125 ? 2 : 0) + (masked ? 4 : 0);
  return len + ws;
}

/** Handshake cost of one connection (see connections.ts for where the figures come from). */
export { HANDSHAKE_BYTES };

const MSS = 1400;
const MIN_RTO = 200;

interface Conn {
  a: number; // dialer
  b: number; // listener
  open: boolean;
  /** A clean close (FIN): frames sent before it still arrive, and before the close is seen. */
  finAt?: number;
  readyAt: number;
  lastAB: number;
  lastBA: number;
}

export interface HostStats {
  /** Everything sent: frames plus handshakes. */
  bytesSent: number;
  bytesReceived: number;
  framesSent: number;
  /** Of bytesSent, connection handshakes (the transport keeps every connection, so these fade once all pairs are connected). */
  handshakeBytesSent: number;
}

export class SimNetwork<P = GossipMessage> {
  private readonly q: Agenda;
  private readonly codec: Codec<P>;
  private readonly handshake: boolean;
  private readonly partitionCloses: 'keepalive' | 'at-once';
  private readonly lat: LatencyModel;
  private readonly rng: Rng;
  private readonly eps: Endpoint<P>[] = [];
  private readonly state: HostState[] = [];
  private readonly group: number[] = [];
  private readonly conns: Map<number, Conn>[] = [];
  private readonly byAddress = new Map<string, number>();
  private readonly byName = new Map<string, number>();
  /** Names two endpoints claim (a test's impostor): connections to them are looked up one by one. */
  private readonly sharedNames = new Set<string>();
  readonly stats: HostStats[] = [];
  /** Open connections and handshakes per member (counted whether or not bytes are). */
  readonly connections = new ConnectionLedger(HANDSHAKE_BYTES);
  loss: number;
  lossModel: LossModel;
  countBytes: boolean;
  readonly wire: 'decode' | 'shared';
  readonly dialTimeoutMs: number;
  readonly keepaliveMs: number;
  /** Totals for the report. */
  readonly totals = { messages: 0, dials: 0, dialFailures: 0, dropped: 0, disconnects: 0, trims: 0 };
  /** See FrameFilter (tests only; null in simulations). */
  filter: FrameFilter<P> | null = null;
  /** Links cut one by one (`${a}|${b}`, both ways), on top of the partition groups. */
  private readonly cuts = new Set<string>();

  constructor(opts: NetworkOptions<P>) {
    this.q = opts.queue;
    this.codec = opts.codec ?? (GOSSIP_CODEC as unknown as Codec<P>);
    this.handshake = opts.handshake ?? true;
    this.partitionCloses = opts.partitionCloses ?? 'keepalive';
    this.lat = opts.latency;
    this.rng = opts.rng;
    this.loss = opts.loss ?? 0;
    this.lossModel = opts.lossModel ?? 'tcp';
    this.wire = opts.wire ?? 'decode';
    this.countBytes = opts.countBytes ?? true;
    this.dialTimeoutMs = opts.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS;
    this.keepaliveMs = opts.keepaliveMs ?? DEFAULT_LIMITS.keepaliveMs;
  }

  /** Adds (or, after a restart, replaces) the member at ep.index; it starts up. */
  attach(ep: Endpoint<P>): void {
    const i = ep.index;
    const old = this.eps[i];
    if (old) for (const a of old.addresses) this.byAddress.delete(a);
    this.eps[i] = ep;
    this.state[i] = 'up';
    this.group[i] = this.group[i] ?? 0;
    this.conns[i] = this.conns[i] ?? new Map();
    this.stats[i] = this.stats[i] ?? { bytesSent: 0, bytesReceived: 0, framesSent: 0, handshakeBytesSent: 0 };
    for (const a of ep.addresses) this.byAddress.set(a, i);
    const holder = this.byName.get(ep.peer.name);
    if (holder !== undefined && holder !== i) this.sharedNames.add(ep.peer.name);
    this.byName.set(ep.peer.name, i);
  }

  /** Another address reaching member i (a hostname, a second interface). */
  alias(address: string, i: number): void {
    this.byAddress.set(address, i);
  }

  hostState(i: number): HostState {
    return this.state[i] ?? 'gone';
  }

  isUp(i: number): boolean {
    return this.state[i] === 'up';
  }

  /** True when frames can flow between a and b right now. */
  reachable(a: number, b: number): boolean {
    return this.state[a] === 'up' && this.state[b] === 'up' && this.linked(a, b);
  }

  /** No partition or cut between a and b (whether they run or not). */
  private linked(a: number, b: number): boolean {
    return this.group[a] === this.group[b] && (this.cuts.size === 0 || !this.cuts.has(`${a}|${b}`));
  }

  /** Members i holds an open connection with. */
  peersOf(i: number): number[] {
    return [...(this.conns[i]?.keys() ?? [])];
  }

  connectionCount(i: number): number {
    return this.connections.openCount(i);
  }

  /**
   * WebSocket keepalive bytes member i sends per keepalive interval on its open
   * connections, taken idle (ws-connection.ts): the dialer pings every other
   * interval and the listener answers; a control frame is 2 B, plus a 4 B mask
   * from the dialing side.
   */
  keepaliveBytesPerInterval(i: number): number {
    let b = 0;
    for (const c of this.conns[i]?.values() ?? []) b += c.a === i ? (2 + 4) / 2 : 2 / 2;
    return b;
  }

  /** The transport's send: reuse the connection to `to.name`, else dial `to.addresses` in order. */
  send(from: number, to: Destination, msg: P): void {
    if (this.state[from] !== 'up') return;
    this.totals.messages++;
    const target = this.connectedTo(from, to);
    if (target !== undefined) {
      this.transmit(this.conns[from].get(target) as Conn, from, target, msg, this.q.now());
      return;
    }
    this.dial(from, to, msg);
  }

  /** The peer `from` holds an open connection with under the name `to.name` (the one at `to.addresses` if two claim it). */
  private connectedTo(from: number, to: Destination): number | undefined {
    if (to.name === undefined) return undefined;
    if (!this.sharedNames.has(to.name)) {
      const i = this.byName.get(to.name);
      return i !== undefined && i !== from && this.conns[from].get(i)?.open === true ? i : undefined;
    }
    const named = [...this.conns[from].entries()].filter(([i, c]) => i !== from && c.open && this.eps[i].peer.name === to.name).map(([i]) => i);
    return named.find((i) => to.addresses.some((a) => this.byAddress.get(a) === i)) ?? named[0];
  }

  private dial(from: number, to: Destination, msg: P): void {
    const now = this.q.now();
    let t = now;
    this.totals.dials++;
    let selfLoop = to.addresses.length > 0;
    for (const addr of to.addresses) {
      const h = this.byAddress.get(addr);
      selfLoop &&= h === from;
      if (h === undefined || h === from || this.state[h] === 'gone') {
        // Nothing (or ourselves) at that address: a refused or self-closed connection, one local round trip.
        t += 1;
        continue;
      }
      if (!this.linked(h, from) || this.state[h] === 'silent') {
        // SYNs vanish: the send waits out the whole dial timeout.
        t = now + this.dialTimeoutMs;
        break;
      }
      const rtt = this.lat.rtt(from, h, this.rng);
      if (this.state[h] === 'killed') {
        t += rtt; // RST from the host's kernel
        continue;
      }
      if (to.name !== undefined && this.eps[h].peer.name !== to.name) {
        t += 1.5 * rtt; // handshake completes, the name does not match: refused
        continue;
      }
      if (t - now >= this.dialTimeoutMs) break;
      let c = this.conns[from].get(h);
      if (!c || !c.open) {
        c = this.connect(from, h, t + (this.handshake ? rtt : 0));
      }
      this.transmit(c, from, h, msg, t);
      return;
    }
    this.totals.dialFailures++;
    const at = Math.min(t, now + this.dialTimeoutMs);
    this.q.at(at, () => {
      if (this.state[from] === 'up') this.eps[from].sendFailed(to, msg, { selfLoop });
    });
  }

  /** A new connection from `from` to `h`, ready for data at `readyAt`; its handshake is counted. */
  private connect(from: number, h: number, readyAt: number): Conn {
    const c: Conn = { a: from, b: h, open: true, readyAt, lastAB: 0, lastBA: 0 };
    this.conns[from].set(h, c);
    this.conns[h].set(from, c);
    this.connections.opened(from, h);
    if (this.countBytes) {
      this.stats[from].bytesSent += HANDSHAKE_BYTES.dialer;
      this.stats[from].handshakeBytesSent += HANDSHAKE_BYTES.dialer;
      this.stats[from].bytesReceived += HANDSHAKE_BYTES.listener;
      this.stats[h].bytesSent += HANDSHAKE_BYTES.listener;
      this.stats[h].handshakeBytesSent += HANDSHAKE_BYTES.listener;
      this.stats[h].bytesReceived += HANDSHAKE_BYTES.dialer;
    }
    return c;
  }

  private transmit(c: Conn, from: number, to: number, sent: P, start: number): void {
    const msg = this.filter ? this.filter(from, to, sent) : sent;
    if (!msg) {
      this.totals.dropped++;
      return;
    }
    let bytes: Uint8Array | null = null;
    let size = 0;
    if (this.countBytes || this.wire === 'decode') {
      bytes = this.codec.encode(msg);
      size = bytes.length;
    }
    if (this.countBytes) {
      const wireBytes = frameBytes(size, c.a === from);
      this.stats[from].bytesSent += wireBytes;
      this.stats[from].framesSent++;
      if (this.reachable(from, to)) this.stats[to].bytesReceived += wireBytes;
    }
    if (!this.reachable(from, to)) {
      this.totals.dropped++;
      return;
    }
    let extra = 0;
    if (this.loss > 0) {
      if (this.lossModel === 'drop') {
        if (this.rng() < this.loss) {
          this.totals.dropped++;
          return;
        }
      } else {
        extra = this.retransmitDelay(from, to, Math.max(1, Math.ceil((size || 600) / MSS)));
      }
    }
    const ready = Math.max(start, c.readyAt);
    let at = ready + this.lat.oneWay(from, to, this.rng) + extra;
    if (from === c.a) {
      at = Math.max(at, c.lastAB);
      c.lastAB = at;
    } else {
      at = Math.max(at, c.lastBA);
      c.lastBA = at;
    }
    const delivered = this.wire === 'decode' && bytes ? this.codec.decode(bytes) : msg;
    const peer = this.eps[from].peer;
    const sentAt = this.q.now();
    this.q.at(at, () => {
      const live = c.open || (c.finAt !== undefined && sentAt <= c.finAt);
      if (live && this.state[to] === 'up' && this.eps[to]) this.eps[to].message(peer, delivered);
    });
  }

  /** TCP: the slowest of the message's packets, each retransmitted after an RTO that doubles per consecutive loss. */
  private retransmitDelay(from: number, to: number, packets: number): number {
    const rto = Math.max(MIN_RTO, 2 * this.lat.base(from, to) * 2 + 10);
    let worst = 0;
    for (let p = 0; p < packets; p++) {
      let d = 0;
      let r = rto;
      while (this.rng() < this.loss && d < 120_000) {
        d += r;
        r *= 2;
      }
      if (d > worst) worst = d;
    }
    return worst;
  }

  private close(c: Conn, fin = false): void {
    if (!c.open) return;
    c.open = false;
    if (fin) c.finAt = this.q.now();
    this.connections.closed(c.a, c.b);
    if (this.conns[c.a]?.get(c.b) === c) this.conns[c.a].delete(c.b);
    if (this.conns[c.b]?.get(c.a) === c) this.conns[c.b].delete(c.a);
  }

  /** Tells `to` (if up) that its connection to `gone` went away, at `at`. */
  private notifyDisconnected(to: number, gone: number, at: number, trimmed = false): void {
    this.totals.disconnects++;
    const peer = this.eps[gone].peer;
    this.q.at(at, () => {
      if (this.state[to] === 'up') this.eps[to].disconnected(peer, trimmed);
    });
  }

  /** The transport's disconnect(name, trimmed): member `from` closes its connection with `name` (active view full); the peer hears it one latency later. */
  trim(from: number, name: string): void {
    const other = this.byName.get(name);
    if (other === undefined || this.state[from] !== 'up') return;
    const c = this.conns[from].get(other);
    if (!c || !c.open) return;
    this.close(c, true);
    this.totals.trims++;
    if (this.reachable(from, other)) this.notifyDisconnected(other, from, this.finArrival(c, from, other), true);
  }

  /**
   * A connection reset, no FIN: frames in flight are lost, and each end in
   * `told` that still runs hears of it one latency later.
   */
  private resetConnection(c: Conn, told: number[]): void {
    this.close(c);
    for (const end of told) {
      const other = end === c.a ? c.b : c.a;
      if (this.state[end] === 'up') this.notifyDisconnected(end, other, this.q.now() + this.lat.oneWay(other, end, this.rng));
    }
  }

  /** The process is gone at once and its connections reset (RST): frames in flight are lost, peers told, dials refused. */
  reset(i: number): void {
    this.state[i] = 'killed';
    for (const c of [...this.conns[i].values()]) this.resetConnection(c, [c.a === i ? c.b : c.a]);
  }

  // The calls a Transport fake makes (test/helpers/memory-transport.ts): it tries addresses itself.

  /** The peer `from` holds an open connection with under the name `to.name`, if any. */
  peerNamed(from: number, to: Destination): number | undefined {
    return this.connectedTo(from, to);
  }

  /** Opens a connection from `from` to `h` unless one is open (a dial whose handshake succeeded). */
  openTo(from: number, h: number): void {
    const c = this.conns[from].get(h);
    if (c?.open) return;
    this.totals.dials++;
    this.connect(from, h, this.q.now() + (this.handshake ? this.lat.rtt(from, h, this.rng) : 0));
  }

  /** Sends `msg` on the open connection from `from` to `h`. */
  deliver(from: number, h: number, msg: P): void {
    const c = this.conns[from].get(h);
    if (!c?.open) throw new Error(`sim-network: no open connection from ${from} to ${h}`);
    this.totals.messages++;
    this.transmit(c, from, h, msg, this.q.now());
  }

  /** `from` closes its connection to `h` (a clean close: what was sent first arrives, then `h` hears of it). */
  closeTo(from: number, h: number, trimmed: boolean): void {
    const c = this.conns[from].get(h);
    if (!c?.open) return;
    this.close(c, true);
    if (trimmed) this.totals.trims++;
    if (this.reachable(from, h)) this.notifyDisconnected(h, from, this.finArrival(c, from, h), trimmed);
  }

  /** SIGKILL: the process dies, its kernel closes every connection (FIN), later dials are refused. */
  kill(i: number): void {
    this.state[i] = 'killed';
    this.closeAll(i, true);
  }

  /** A clean stop after a leave: like kill for the network (connections close, dials refused). */
  stop(i: number): void {
    this.kill(i);
  }

  /** Power cut or cable cut: nothing answers; peers find out by keepalive or dial timeout. */
  silence(i: number): void {
    this.state[i] = 'silent';
    this.closeAll(i, false);
  }

  /** The member's slot is free again (before a restart attaches a new endpoint). */
  remove(i: number): void {
    if (this.state[i] === 'up') this.kill(i);
    this.state[i] = 'gone';
  }

  private closeAll(i: number, fin: boolean): void {
    for (const c of [...this.conns[i].values()]) {
      const other = c.a === i ? c.b : c.a;
      if (fin && this.state[other] === 'up' && this.linked(other, i)) {
        this.close(c, true);
        this.notifyDisconnected(other, i, this.finArrival(c, i, other));
      } else {
        this.keepaliveCheck(c, other, i);
      }
    }
  }

  /** When `to` sees the FIN that `from` sends now: one latency, and never before the frames sent ahead of it (TCP). */
  private finArrival(c: Conn, from: number, to: number): number {
    const at = this.q.now() + this.lat.oneWay(from, to, this.rng);
    return Math.max(at, from === c.a ? c.lastAB : c.lastBA);
  }

  /** The side `alive` of connection c notices by keepalive that `lost` is unreachable, unless it came back. */
  private keepaliveCheck(c: Conn, alive: number, lost: number): void {
    // ws-connection.ts gives up after silent intervals in a row: two for the dialer (2 to 3 intervals
    // after the cut), three for the listener (3 to 4).
    const at = this.q.now() + this.keepaliveMs * ((c.a === alive ? 2 : 3) + this.rng());
    this.q.at(at, () => {
      if (c.open && this.reachable(alive, lost)) return; // the link came back in time
      this.close(c);
      if (this.state[alive] === 'up') {
        this.totals.disconnects++;
        this.eps[alive].disconnected(this.eps[lost].peer);
      }
    });
  }

  /** Splits members into groups (group index per member; members absent from every group form group 0). */
  partition(groups: number[][]): void {
    for (let i = 0; i < this.group.length; i++) this.group[i] = 0;
    groups.forEach((g, k) => {
      for (const m of g) this.group[m] = k + 1;
    });
    for (let i = 0; i < this.conns.length; i++) {
      for (const c of [...(this.conns[i]?.values() ?? [])]) {
        if (c.a !== i || this.group[c.a] === this.group[c.b]) continue;
        if (this.partitionCloses === 'at-once') {
          this.resetConnection(c, [c.a, c.b]);
          continue;
        }
        this.keepaliveCheck(c, c.a, c.b);
        this.keepaliveCheck(c, c.b, c.a);
      }
    }
  }

  /** Cuts the link between a and b, both ways: like a partition between the two alone. */
  cut(a: number, b: number): void {
    this.cuts.add(`${a}|${b}`);
    this.cuts.add(`${b}|${a}`);
    const c = this.conns[a]?.get(b);
    if (c) {
      this.keepaliveCheck(c, a, b);
      this.keepaliveCheck(c, b, a);
    }
  }

  /** The link between a and b carries frames again. */
  uncut(a: number, b: number): void {
    this.cuts.delete(`${a}|${b}`);
    this.cuts.delete(`${b}|${a}`);
  }

  /** A silent host (cable cut) is reachable again; its surviving connections carry on. */
  restore(i: number): void {
    if (this.state[i] === 'silent') this.state[i] = 'up';
  }

  heal(): void {
    for (let i = 0; i < this.group.length; i++) this.group[i] = 0;
  }

  resetStats(): void {
    for (const s of this.stats) {
      if (!s) continue;
      s.bytesSent = 0;
      s.bytesReceived = 0;
      s.framesSent = 0;
      s.handshakeBytesSent = 0;
    }
  }
}
