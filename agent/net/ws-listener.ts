/**
 * The listening half of the WebSocket transport: one HTTP server per listen
 * address, WebSocket upgrades only, and the guards that keep strangers cheap:
 * a cap on unauthenticated sockets per source (an IPv4 address or an IPv6
 * /64) and in total, with the busiest source's oldest socket evicted to make
 * room rather than the newest refused, a pool of its own for known members'
 * addresses, a deadline for the first bytes and one for the handshake, and a
 * byte budget before authentication. Plain HTTP gets a short 426.
 * Authenticated sockets are handed over and no longer counted here.
 * WebSocket paths: `/` is gossip; `routes` adds others (enrolment, with its
 * own message size), under the very same guards; any other path is refused.
 */
import * as http from 'http';
import type { Socket } from 'net';
import { WebSocketServer } from 'ws';
import type WebSocket from 'ws';
import { HeptoError, errnoCode } from '../../shared/errors';
import { FRAME_OVERHEAD, Limits } from './limits';
import { networkOf, parseIp } from '../runtime/ip';

export interface ListenerHooks {
  /**
   * A WebSocket was accepted on `path` (`/`, or one of the routes); call
   * `authenticated()` once its handshake completes: until then the pre-auth
   * guards (deadline, byte budget, per-source cap) hold it.
   */
  accepted(ws: WebSocket, remote: string, authenticated: () => void, path: string, source: PendingSource): void;
  rejected(remote: string, reason: string): void;
  /** Whether an address (as sourceOf gives it) is a known member's: its sockets use their own pool. */
  knownHost?(host: string): boolean;
}

/** Where an accepted socket comes from, as the listener counted it. */
export interface PendingSource {
  /** The remote address (IPv4-mapped IPv6 unmapped). */
  host: string;
  /** Whether `knownHost` said it is a known member's. */
  known: boolean;
  /** What it is counted by: sourceKey(host), or `known <host>` for a known member's address. */
  key: string;
}

/** A WebSocket path besides gossip's `/`. */
export interface ListenerRoute {
  path: string;
  /** Largest message on it, refused from the frame header (ws maxPayload). */
  maxPayload: number;
  /** What must finish before the handshake timeout, for the refusal ("enrolment"). */
  what: string;
}

/** The gossip WebSocket path. */
export const GOSSIP_PATH = '/';

interface Pending {
  /** The counting key: sourceKey(host), or `known <host>` for a known member's address. */
  key: string;
  known: boolean;
  /** Accept order, for eviction. */
  seq: number;
  timer: NodeJS.Timeout;
  /** Cleared by the first byte. */
  firstTimer: NodeJS.Timeout | undefined;
  onData: (chunk: Buffer) => void;
  bytes: number;
  /** Set at the upgrade, for a route: names it in the deadline's refusal. */
  what?: string;
}

/** HTTP upgrade request headers, on top of the handshake messages, before a socket is cut. */
const UPGRADE_HEADER_BUDGET = 8 * 1024;

export function sourceOf(addr: string | undefined): string {
  if (!addr) return 'unknown';
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
}

/**
 * What unauthenticated (and authenticated) sockets are counted by: an IPv4
 * address as it is, an IPv6 address by its /64 (`2001:db8:1:2::/64`), since
 * whoever holds one address of a /64 usually holds all 2^64 of them.
 */
export function sourceKey(addr: string): string {
  const host = sourceOf(addr);
  if (!host.includes(':')) return host;
  try {
    return networkOf({ bytes: parseIp(host.replace(/%.*$/, '').toLowerCase()), prefix: 64 });
  } catch {
    return host;
  }
}

export function formatRemote(addr: string | undefined, port: number | undefined): string {
  const a = sourceOf(addr);
  return a.includes(':') ? `[${a}]:${port ?? 0}` : `${a}:${port ?? 0}`;
}

export class WsListener {
  private readonly servers: http.Server[] = [];
  private readonly wss: WebSocketServer;
  private readonly routes = new Map<string, WebSocketServer>();
  private readonly routeWhat = new Map<string, string>();
  private readonly pending = new Map<Socket, Pending>();
  /** Pending sockets per counting key, oldest first. */
  private readonly bySource = new Map<string, Set<Socket>>();
  /** Pending sockets from known members' addresses (the rest are strangers'). */
  private pendingKnown = 0;
  private seq = 0;
  private readonly sockets = new Set<Socket>();
  private closedRead = 0;
  private closedWritten = 0;
  private stopping = false;

  constructor(private readonly opts: { hosts: string[]; port: number; limits: Limits; hooks: ListenerHooks; routes?: ListenerRoute[] }) {
    this.wss = new WebSocketServer({
      noServer: true,
      maxPayload: opts.limits.maxFrameBytes + FRAME_OVERHEAD,
      perMessageDeflate: false,
      clientTracking: false,
    });
    for (const r of opts.routes ?? []) {
      if (r.path === GOSSIP_PATH) throw new RangeError('the gossip path cannot be rerouted');
      this.routes.set(r.path, new WebSocketServer({ noServer: true, maxPayload: r.maxPayload, perMessageDeflate: false, clientTracking: false }));
      this.routeWhat.set(r.path, r.what);
    }
  }

  async start(): Promise<void> {
    for (const host of this.opts.hosts) {
      const server = http.createServer({ maxHeaderSize: UPGRADE_HEADER_BUDGET });
      server.on('connection', (s: Socket) => this.onConnection(s));
      server.on('request', (_req, res) => {
        res.writeHead(426, { 'content-type': 'text/plain', connection: 'close', upgrade: 'websocket' });
        res.end('hepto-agent gossip port: WebSocket only\n');
      });
      server.on('upgrade', (req: http.IncomingMessage, socket: Socket, head: Buffer) => this.onUpgrade(req, socket, head));
      server.on('clientError', (err, socket: Socket) => {
        this.opts.hooks.rejected(formatRemote(socket.remoteAddress, socket.remotePort), `malformed HTTP request (${errnoCode(err) ?? 'parse error'})`);
        if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
        socket.destroy();
      });
      await new Promise<void>((resolve, reject) => {
        const onError = (e: Error): void => reject(listenError(host, this.opts.port, e));
        server.once('error', onError);
        server.listen({ host, port: this.opts.port, ipv6Only: false }, () => {
          server.off('error', onError);
          server.on('error', () => undefined);
          resolve();
        });
      }).catch(async (e) => {
        await this.stop();
        throw e;
      });
      this.servers.push(server);
    }
  }

  address(): { host: string; port: number }[] {
    const out: { host: string; port: number }[] = [];
    for (const s of this.servers) {
      const a = s.address();
      if (a && typeof a === 'object') out.push({ host: a.address, port: a.port });
    }
    return out;
  }

  pendingCount(): number {
    return this.pending.size;
  }

  /** Pending sockets from strangers and from known members' addresses. */
  pendingCounts(): { strangers: number; known: number } {
    return { strangers: this.pending.size - this.pendingKnown, known: this.pendingKnown };
  }

  bytes(): { read: number; written: number } {
    let read = this.closedRead;
    let written = this.closedWritten;
    for (const s of this.sockets) {
      read += s.bytesRead;
      written += s.bytesWritten;
    }
    return { read, written };
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const s of this.sockets) s.destroy();
    await Promise.all(this.servers.splice(0).map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }

  private onConnection(socket: Socket): void {
    const host = sourceOf(socket.remoteAddress);
    const remote = formatRemote(socket.remoteAddress, socket.remotePort);
    const { limits } = this.opts;
    if (this.stopping) {
      socket.destroy();
      return;
    }
    let known = false;
    try {
      known = this.opts.hooks.knownHost?.(host) === true;
    } catch {
      /* a failing hook makes a stranger, never a crash */
    }
    // A known member's address is a source of its own: strangers in its /64 cannot crowd it out.
    const key = known ? `known ${host}` : sourceKey(host);
    const fromSrc = this.bySource.get(key)?.size ?? 0;
    if (fromSrc >= limits.maxPendingPerSource) {
      socket.destroy();
      this.opts.hooks.rejected(remote, `too many unauthenticated sockets from ${known ? host : key} (limit ${limits.maxPendingPerSource})`);
      return;
    }
    const inPool = known ? this.pendingKnown : this.pending.size - this.pendingKnown;
    const cap = known ? limits.maxPendingKnown : limits.maxPendingTotal;
    if (inPool >= cap) this.evict(known, cap);
    this.sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.sockets.delete(socket);
      this.closedRead += socket.bytesRead;
      this.closedWritten += socket.bytesWritten;
      this.release(socket);
    });
    const budget = UPGRADE_HEADER_BUDGET + 4 * limits.maxPreAuthFrameBytes;
    const entry: Pending = {
      key,
      known,
      seq: this.seq++,
      bytes: 0,
      timer: setTimeout(() => {
        const late = entry.what === undefined ? 'no authenticated handshake' : `${entry.what} not finished`;
        this.opts.hooks.rejected(remote, `${late} within ${limits.handshakeTimeoutMs} ms`);
        socket.destroy();
      }, limits.handshakeTimeoutMs),
      firstTimer: setTimeout(() => {
        this.opts.hooks.rejected(remote, `no bytes within ${limits.firstBytesMs} ms of connecting`);
        socket.destroy();
      }, limits.firstBytesMs),
      onData: (chunk: Buffer) => {
        if (entry.firstTimer) {
          clearTimeout(entry.firstTimer);
          entry.firstTimer = undefined;
        }
        entry.bytes += chunk.length;
        if (entry.bytes > budget) {
          this.opts.hooks.rejected(remote, `more than ${budget} bytes before authenticating`);
          socket.destroy();
        }
      },
    };
    entry.timer.unref();
    entry.firstTimer?.unref();
    socket.on('data', entry.onData);
    this.pending.set(socket, entry);
    if (known) this.pendingKnown++;
    let set = this.bySource.get(key);
    if (!set) this.bySource.set(key, (set = new Set()));
    set.add(socket);
  }

  /**
   * Makes room in a full pool (strangers' or known members'): closes the
   * oldest socket of the source that holds the most in it (ties: the one whose
   * oldest socket is oldest). A flood holds many sockets per source, a
   * newcomer one, so the flood pays for the room, not the newcomer.
   */
  private evict(known: boolean, cap: number): void {
    let victim: Socket | undefined;
    let most = 0;
    let oldest = Infinity;
    for (const set of this.bySource.values()) {
      const first = set.values().next().value as Socket | undefined;
      const e = first && this.pending.get(first);
      if (!e || e.known !== known) continue;
      if (set.size > most || (set.size === most && e.seq < oldest)) {
        victim = first;
        most = set.size;
        oldest = e.seq;
      }
    }
    if (!victim) return;
    const pool = known ? 'from known members' : 'in total';
    this.opts.hooks.rejected(
      formatRemote(victim.remoteAddress, victim.remotePort),
      `evicted to make room: too many unauthenticated sockets ${pool} (limit ${cap}); the oldest of the busiest source goes first`,
    );
    victim.destroy();
    this.release(victim);
  }

  private release(socket: Socket): void {
    const entry = this.pending.get(socket);
    if (!entry) return;
    this.pending.delete(socket);
    if (entry.known) this.pendingKnown--;
    clearTimeout(entry.timer);
    if (entry.firstTimer) clearTimeout(entry.firstTimer);
    socket.off('data', entry.onData);
    const set = this.bySource.get(entry.key);
    set?.delete(socket);
    if (set && set.size === 0) this.bySource.delete(entry.key);
  }

  private onUpgrade(req: http.IncomingMessage, socket: Socket, head: Buffer): void {
    if (this.stopping || !this.pending.has(socket)) {
      socket.destroy();
      return;
    }
    const remote = formatRemote(socket.remoteAddress, socket.remotePort);
    const path = pathOf(req.url);
    const wss = path === GOSSIP_PATH ? this.wss : this.routes.get(path);
    if (!wss) {
      // The path is not echoed: whatever a stranger put there stays out of the logs.
      this.opts.hooks.rejected(remote, 'WebSocket upgrade to an unknown path');
      if (socket.writable) socket.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      socket.destroy();
      return;
    }
    const entry = this.pending.get(socket)!;
    if (path !== GOSSIP_PATH) entry.what = this.routeWhat.get(path);
    try {
      wss.handleUpgrade(req, socket, head, (ws) => {
        this.opts.hooks.accepted(ws, remote, () => this.release(socket), path, { host: sourceOf(socket.remoteAddress), known: entry.known, key: entry.key });
      });
    } catch (e) {
      this.opts.hooks.rejected(remote, 'bad WebSocket upgrade');
      socket.destroy();
    }
  }
}

/** The path of a request target, without its query. */
function pathOf(url: string | undefined): string {
  const u = url ?? GOSSIP_PATH;
  const q = u.indexOf('?');
  return q < 0 ? u : u.slice(0, q);
}

function listenError(host: string, port: number, e: unknown): HeptoError {
  const code = errnoCode(e);
  const where = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  const hint =
    code === 'EADDRINUSE'
      ? 'another process (another agent?) already uses that port; stop it or change gossip_port'
      : code === 'EADDRNOTAVAIL'
        ? 'that address is not configured on this machine; fix gossip_listen'
        : code === 'EACCES'
          ? 'ports below 1024 need root; run the agent as root or change gossip_port'
          : 'check gossip_listen and gossip_port';
  return new HeptoError('CONFIG_INVALID', `cannot listen on ${where}: ${code ?? String(e)}`, { hint });
}
