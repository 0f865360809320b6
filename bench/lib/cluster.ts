/**
 * An in-process cluster of real gossip members for the benchmark: each member
 * is built the way agent/daemon/agent.ts builds one (identity, signed record,
 * Membership with a timing preset, GossipNode around a real WsTransport with
 * real encryption), listening on its own loopback address. Every member event
 * is logged with a monotonic timestamp so the bench can compute figures after
 * the fact.
 */
import { randomInt } from 'crypto';
import * as net from 'net';
import * as os from 'os';
import { performance } from 'perf_hooks';
import { systemClock } from '../../shared/clock';
import { createLogger, type Logger } from '../../shared/log';
import type { MemberRecord } from '../../shared/member';
import { ClusterView } from './view';
import { GossipNode } from '../../agent/daemon/gossip-node';
import { Membership, type MemberEvent } from '../../agent/gossip/membership';
import type { GossipTiming } from '../../agent/gossip/timing';
import { generateIdentity } from '../../agent/net/identity';
import { WsTransport } from '../../agent/net/ws-transport';
import { AGENT_VERSION } from '../../agent/version';
import { FaultSwitch } from './fault-switch';

/** Only used between the bench's own in-process members; never leaves this process. */
export const BENCH_OVERLAY_KEY = 'BenchOverlayKey0123456789abcdefX';

export interface BenchMember {
  index: number;
  name: string;
  host: string;
  port: number;
  address: string;
  node: GossipNode;
  transport: WsTransport;
  fault: FaultSwitch;
  started: boolean;
  stopped: boolean;
}

export interface LoggedEvent {
  /** ms since the cluster was created (performance.now based); absolute (timeOrigin + now) when streamed by onEvent. */
  t: number;
  observer: number;
  type: MemberEvent['type'];
  name: string;
}

export interface ClusterOptions {
  n: number;
  timing: GossipTiming;
  /** First three octets of the members' loopback addresses, e.g. "127.0.1": member i listens on 127.0.1.(i+1), past 250 on 127.0.2.x and on (memberHost). */
  subnet: string;
  /** When true, every member listens on 127.0.0.1 (shows the per-source socket cap at work). */
  sameHost?: boolean;
  /** Receives every log line at debug level (diagnosis); by default only warnings are counted. */
  debugSink?: (line: string) => void;
  /** Members this cluster hosts (default 0..n-1): a worker of ThreadedCluster hosts a share. */
  indices?: number[];
  /** Where members join (default: member 0 of this cluster, which must then be hosted here). */
  anchor?: string;
  /** Called with every member event, time as performance.timeOrigin + performance.now() (comparable across threads). */
  onEvent?: (e: LoggedEvent) => void;
}

/** Member i's loopback address: `subnet`.(i+1) for the first 250, then on in the next /24s (127.0.1.x, 127.0.2.x...). */
export function memberHost(subnet: string, index: number): string {
  const [a, b, c] = subnet.split('.').map(Number) as [number, number, number];
  return `${a}.${b}.${c + Math.floor(index / 250)}.${(index % 250) + 1}`;
}

/** A free TCP port on `host` (bound and released; a tiny race is acceptable for a bench). */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export class BenchCluster {
  readonly members: BenchMember[] = [];
  readonly view = new ClusterView();
  /** Warnings and errors the members logged (connection refusals, failed steps...). */
  readonly warnings = new Map<string, number>();
  private readonly t0 = performance.now();

  private constructor(private readonly opts: ClusterOptions) {}

  /** Creates every member (not started). */
  static async create(opts: ClusterOptions): Promise<BenchCluster> {
    const c = new BenchCluster(opts);
    for (const i of opts.indices ?? Array.from({ length: opts.n }, (_, k) => k)) await c.addMember(i);
    return c;
  }

  now(): number {
    return performance.now() - this.t0;
  }

  private logger(): Logger {
    const debug = this.opts.debugSink;
    return createLogger({
      level: debug ? 'debug' : 'warn',
      format: 'plain',
      sink: (line) => {
        if (debug) return debug(line);
        // Keep the message, drop the per-peer fields, so the summary stays small.
        const key = line.replace(/ \w+=.*$/, '').slice(0, 120);
        this.warnings.set(key, (this.warnings.get(key) ?? 0) + 1);
      },
    });
  }

  private async addMember(index: number): Promise<void> {
    const host = this.opts.sameHost ? '127.0.0.1' : memberHost(this.opts.subnet, index);
    const port = await freePort(host);
    const name = `m${String(index).padStart(3, '0')}`;
    const identity = generateIdentity(Date.now());
    const address = `${host}:${port}`;
    const record: MemberRecord = {
      name,
      role: index === 0 ? 'master' : 'node',
      addresses: [address],
      node_ips: [host],
      overlay_ip: null,
      facts: { cores: os.cpus().length, memory_mb: Math.round(os.totalmem() / 1048576), os: `${os.type()} ${os.release()}`, agent_version: AGENT_VERSION },
      containers: {},
      id_pub: identity.idPub,
      created_at: identity.createdAt,
    };
    const membership = new Membership({
      record,
      secretKey: identity.secretKey,
      incarnation: Math.floor(Date.now() / 1000),
      timing: this.opts.timing,
      now: systemClock.now(),
      rng: () => randomInt(0, 2 ** 32) / 2 ** 32,
    });
    const log = this.logger();
    let transport: WsTransport | undefined;
    const fault = new FaultSwitch();
    const node = new GossipNode({
      membership,
      clock: systemClock,
      logger: log.child('gossip'),
      anchors: index === 0 ? [] : [this.opts.anchor ?? this.members[0].address],
      transport: (events) => {
        transport = new WsTransport({
          overlayKey: BENCH_OVERLAY_KEY,
          identity,
          name,
          listen: { hosts: [host], port },
          bindAddress: host,
          events: fault.wrapEvents(events),
          logger: log.child('transport'),
        });
        return fault.wrapTransport(transport);
      },
    });
    this.view.addObserver(index);
    const sink = this.opts.onEvent;
    node.onEvent((ev) => {
      if (sink) sink({ t: performance.timeOrigin + performance.now(), observer: index, type: ev.type, name: ev.name });
      else this.view.record({ t: this.now(), observer: index, type: ev.type, name: ev.name }, name);
    });
    this.members.push({ index, name, host, port, address, node, transport: transport!, fault, started: false, stopped: false });
  }

  /**
   * A gentler start for scaffolding (not a measurement): `batch` members at a
   * time, each batch joining once the previous ones see each other alive.
   */
  async startInBatches(batch: number, timeoutMs: number): Promise<boolean> {
    await this.start(this.members[0]);
    for (let i = 1; i < this.members.length; i += batch) {
      await Promise.all(this.members.slice(i, i + batch).map((m) => this.start(m)));
      if (!(await this.waitFor(() => this.allSeeAllAlive(), timeoutMs))) return false;
    }
    return true;
  }

  /** The hosted member with this index. */
  member(index: number): BenchMember {
    const m = this.members.find((x) => x.index === index);
    if (!m) throw new Error(`bench cluster: member ${index} is not hosted here`);
    return m;
  }

  /** Starts the given hosted members at once. */
  async startMembers(indices: number[]): Promise<void> {
    await Promise.all(indices.map((i) => this.start(this.member(i))));
  }

  private async start(m: BenchMember): Promise<void> {
    m.started = true;
    await m.node.start();
  }

  /** Members started and still running (not crashed, frozen or gone). */
  running(): BenchMember[] {
    return this.members.filter((m) => m.started && !m.stopped && !m.fault.blackholed);
  }

  /** True when every running member sees every other running member alive. */
  allSeeAllAlive(): boolean {
    return this.view.allSeeAllAlive(this.running());
  }

  waitFor(cond: () => boolean, timeoutMs: number): Promise<boolean> {
    return this.view.waitFor(cond, timeoutMs);
  }

  /** Sum of bytes sent by every member's transport, and open authenticated connections (each counted at both ends). */
  traffic(): { bytesSent: number; connections: number } {
    let bytesSent = 0;
    let connections = 0;
    for (const m of this.members) {
      const s = m.transport.stats();
      bytesSent += s.bytesSent;
      connections += s.connections;
    }
    return { bytesSent, connections };
  }

  /** Starts (or stops, with false) tallying sent payloads per message type on every member. */
  tallyTypes(on: boolean): Map<string, { count: number; bytes: number }> {
    const sum = new Map<string, { count: number; bytes: number }>();
    for (const m of this.members) {
      for (const [k, v] of m.fault.tally ?? []) {
        const t = sum.get(k) ?? { count: 0, bytes: 0 };
        t.count += v.count;
        t.bytes += v.bytes;
        sum.set(k, t);
      }
      m.fault.tally = on ? new Map() : null;
    }
    return sum;
  }

  /** Crash without leave: the transport closes its sockets, as the kernel does for a killed process. */
  async crash(m: BenchMember): Promise<void> {
    m.stopped = true;
    await m.node.stop({ leave: false });
  }

  /** Leave then stop, as SIGTERM does. */
  async leave(m: BenchMember): Promise<void> {
    m.stopped = true;
    await m.node.stop({ leave: true });
  }

  /** Stops every member without leave (idempotent). */
  async close(): Promise<void> {
    await Promise.all(
      this.members.map(async (m) => {
        m.stopped = true;
        await m.node.stop({ leave: false }).catch(() => undefined);
        await m.transport.stop().catch(() => undefined);
      }),
    );
  }
}
