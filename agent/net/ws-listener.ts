/**
 * The listening half of the WebSocket transport: one HTTP server per listen
 * address, WebSocket upgrades only, and the guards that keep strangers cheap:
 * a cap on unauthenticated sockets per source and in total, a deadline for
 * the handshake, and a byte budget before authentication. Plain HTTP gets a
 * short 426. Authenticated sockets are handed over and no longer counted.
 * WebSocket paths: `/` is gossip; `routes` adds others (enrolment, with its
 * own message size), under the very same guards; any other path is refused.
 */
import * as http from 'http';
import type { Socket } from 'net';
import { WebSocketServer } from 'ws';
import type WebSocket from 'ws';
import { HeptoError, errnoCode } from '../../shared/errors';
import { FRAME_OVERHEAD, Limits } from './limits';

export interface ListenerHooks {
  /**
   * A WebSocket was accepted on `path` (`/`, or one of the routes); call
   * `authenticated()` once its handshake completes: until then the pre-auth
   * guards (deadline, byte budget, per-source cap) hold it.
   */
  accepted(ws: WebSocket, remote: string, authenticated: () => void, path: string): void;
  rejected(remote: string, reason: string): void;
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
  src: string;
  timer: NodeJS.Timeout;
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
  private readonly perSource = new Map<string, number>();
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
      server.on('request', (req, res) => {
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
    await Promise.all(
      this.servers.splice(0).map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
    );
  }

  private onConnection(socket: Socket): void {
    const src = sourceOf(socket.remoteAddress);
    const remote = formatRemote(socket.remoteAddress, socket.remotePort);
    const { limits } = this.opts;
    if (this.stopping) {
      socket.destroy();
      return;
    }
    const fromSrc = this.perSource.get(src) ?? 0;
    if (fromSrc >= limits.maxPendingPerSource || this.pending.size >= limits.maxPendingTotal) {
      const why =
        fromSrc >= limits.maxPendingPerSource
          ? `too many unauthenticated sockets from ${src} (limit ${limits.maxPendingPerSource})`
          : `too many unauthenticated sockets in total (limit ${limits.maxPendingTotal})`;
      socket.destroy();
      this.opts.hooks.rejected(remote, why);
      return;
    }
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
      src,
      bytes: 0,
      timer: setTimeout(() => {
        const late = entry.what === undefined ? 'no authenticated handshake' : `${entry.what} not finished`;
        this.opts.hooks.rejected(remote, `${late} within ${limits.handshakeTimeoutMs} ms`);
        socket.destroy();
      }, limits.handshakeTimeoutMs),
      onData: (chunk: Buffer) => {
        entry.bytes += chunk.length;
        if (entry.bytes > budget) {
          this.opts.hooks.rejected(remote, `more than ${budget} bytes before authenticating`);
          socket.destroy();
        }
      },
    };
    entry.timer.unref();
    socket.on('data', entry.onData);
    this.pending.set(socket, entry);
    this.perSource.set(src, fromSrc + 1);
  }

  private release(socket: Socket): void {
    const entry = this.pending.get(socket);
    if (!entry) return;
    this.pending.delete(socket);
    clearTimeout(entry.timer);
    socket.off('data', entry.onData);
    const n = (this.perSource.get(entry.src) ?? 1) - 1;
    if (n <= 0) this.perSource.delete(entry.src);
    else this.perSource.set(entry.src, n);
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
        this.opts.hooks.accepted(ws, remote, () => this.release(socket), path);
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
