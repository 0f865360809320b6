/**
 * The real Transport: authenticated, encrypted WebSocket connections between
 * agents (handshake.ts, frames.ts), one per peer reused in both directions.
 * Listening lives in ws-listener.ts, one connection's life in ws-connection.ts;
 * this file keeps the registry of connections and dials. With `enrol` hooks,
 * the same port also serves enrolment on ENROL_PATH (enrol-server.ts).
 */
import { isIP } from 'net';
import WebSocket from 'ws';
import { HeptoError, errorMessage, isHeptoError } from '../../shared/errors';
import type { Logger } from '../../shared/log';
import { registerSecret } from '../../shared/log';
import { checkOverlayKey, deriveOverlayKeys, OverlayKeys } from './crypto';
import { ENROL_MAX_MESSAGE, ENROL_PATH } from './enrol';
import { serveEnrolment, type EnrolServerHooks } from './enrol-server';
import { checkName, type HandshakeLocal } from './handshake';
import { fingerprint, Identity } from './identity';
import { DEFAULT_DIAL_TIMEOUT_MS, FRAME_OVERHEAD, Limits, resolveLimits } from './limits';
import { oversizedError, refusedByReason, stoppedError } from './send-errors';
import { sendToAddresses, type Destination, type PeerInfo, type Transport, type TransportEvents, type VetRefusal } from './transport';
import {
  CLOSE_BUSY,
  CLOSE_NAME_CONFLICT,
  CLOSE_NOT_ADMITTED,
  CLOSE_SELF,
  CLOSE_SUPERSEDED,
  CLOSE_TRIMMED,
  Conn,
  ConnHooks,
  describeSocketError,
} from './ws-connection';
import { formatRemote, WsListener, type PendingSource } from './ws-listener';

export interface WsTransportOptions {
  overlayKey: string;
  identity: Identity;
  /** This node's name, proved to peers in the handshake. */
  name: string;
  listen: { hosts: string[]; port: number };
  /** Local address for outgoing connections (same family only), e.g. "127.0.0.3" in tests. */
  bindAddress?: string;
  events: TransportEvents;
  logger: Logger;
  limits?: Partial<Limits>;
  /** How long a send waits for one address to connect and authenticate. */
  dialTimeoutMs?: number;
  /** Serve enrolments on ENROL_PATH (anchors); without it, an upgrade there is refused like any unknown path. */
  enrol?: EnrolServerHooks;
  /**
   * Whether `host` (an IP address, IPv4-mapped IPv6 unmapped) is a known
   * member's, e.g. one of the addresses in the membership's records. Sockets
   * from a known host have pending slots strangers cannot use
   * (`maxPendingKnown`) and are not bound by `maxAuthStrangers`. Called for
   * every accepted socket: keep it cheap. Without it, everyone is a stranger.
   */
  knownHost?(host: string): boolean;
}

/** Parses "host:port" / "[v6]:port" (the transport does not guess default ports). */
export function parseEndpoint(addr: string): { host: string; port: number } {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(addr) ?? /^([^:[\]]+):(\d{1,5})$/.exec(addr);
  const port = m ? Number(m[2]) : NaN;
  if (!m || !(port >= 1 && port <= 65535) || (addr.startsWith('[') && isIP(m[1]) !== 6)) {
    throw new HeptoError('ADDRESS_INVALID', `cannot dial "${addr}": not host:port or [IPv6]:port`, {
      hint: 'peer addresses carry an explicit port, e.g. 192.0.2.1:7947 or [2001:db8::1]:7947',
    });
  }
  return { host: m[1], port };
}

type Lifecycle = 'new' | 'running' | 'stopped';

export class WsTransport implements Transport {
  /** The overlay keys taken: the current one first, then (a key rotation's grace) the previous one. */
  private keys: OverlayKeys[];
  private readonly limits: Limits;
  private readonly log: Logger;
  private readonly listener: WsListener;
  private readonly dialTimeoutMs: number;
  private state: Lifecycle = 'new';
  /** Preferred open connection per peer name. */
  private readonly byName = new Map<string, Conn>();
  /** Outgoing connections per dialed address (reuse for anchors whose name is unknown). */
  private readonly byAddress = new Map<string, Conn>();
  private readonly dialing = new Map<string, Promise<Conn>>();
  private readonly conns = new Set<Conn>();
  private readonly clientSockets = new Set<import('net').Socket>();
  /** Outgoing WebSockets still dialing or handshaking (stop() cuts them). */
  private readonly dialSockets = new Set<WebSocket>();
  private closedRead = 0;
  private closedWritten = 0;

  constructor(private readonly opts: WsTransportOptions) {
    checkOverlayKey(opts.overlayKey);
    registerSecret(opts.overlayKey);
    checkName(opts.name);
    this.keys = [deriveOverlayKeys(opts.overlayKey)];
    this.limits = resolveLimits(opts.limits);
    this.log = opts.logger;
    this.dialTimeoutMs = opts.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS;
    this.listener = new WsListener({
      hosts: opts.listen.hosts,
      port: opts.listen.port,
      limits: this.limits,
      hooks: {
        accepted: (ws, remote, authenticated, path, source) =>
          path === ENROL_PATH ? this.onEnrol(ws, remote, authenticated) : this.onAccepted(ws, remote, authenticated, source),
        rejected: (remote, reason) => this.reject(remote, reason),
        knownHost: opts.knownHost ? (host) => opts.knownHost!(host) : undefined,
      },
      routes: opts.enrol ? [{ path: ENROL_PATH, maxPayload: ENROL_MAX_MESSAGE, what: 'enrolment' }] : [],
    });
  }

  /**
   * A key rotation (docs/trust.md): from now on dial with `primary`, and take
   * hellos under `primary` or any of `accepted`. Open connections stay: their
   * session keys do not depend on the overlay key any more.
   */
  setKeys(keys: { primary: string; accepted: string[] }): void {
    const all = [keys.primary, ...keys.accepted.filter((k) => k !== keys.primary)];
    for (const k of all) {
      checkOverlayKey(k);
      registerSecret(k);
    }
    this.keys = all.map(deriveOverlayKeys);
  }

  async start(): Promise<void> {
    if (this.state !== 'new') return;
    this.state = 'running';
    try {
      await this.listener.start();
    } catch (e) {
      this.state = 'stopped';
      throw e;
    }
    this.log.info('gossip transport listening', { addresses: this.address().map((a) => formatRemote(a.host, a.port)) });
  }

  /** Sockets not yet authenticated, from strangers and from known members' addresses (limits.ts). */
  pending(): { strangers: number; known: number } {
    return this.listener.pendingCounts();
  }

  /** Bound addresses (after start), useful with port 0. */
  address(): { host: string; port: number }[] {
    return this.listener.address();
  }

  async stop(): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'stopped';
    const closing = [...this.conns].map(
      (c) =>
        new Promise<void>((resolve) => {
          const t = setTimeout(() => {
            c.terminate();
            resolve();
          }, 500);
          this.onceClosed.set(c, () => {
            clearTimeout(t);
            resolve();
          });
          c.close(1001, 'agent stopping');
        }),
    );
    await Promise.all(closing);
    for (const ws of this.dialSockets) ws.terminate();
    for (const s of this.clientSockets) s.destroy();
    await this.listener.stop();
  }
  private readonly onceClosed = new Map<Conn, () => void>();

  async send(to: Destination, payload: Uint8Array): Promise<PeerInfo> {
    if (this.state === 'stopped') throw stoppedError();
    if (payload.length > this.limits.maxFrameBytes) throw oversizedError(payload.length, this.limits.maxFrameBytes);
    if (to.name !== undefined) {
      const c = this.byName.get(to.name);
      if (c && c.isOpen) return this.deliver(c, payload);
    }
    return sendToAddresses<Conn>(
      to,
      async (addr) => {
        try {
          const c = await this.connection(addr);
          return { conn: c, peer: c.peer!.name };
        } catch (e) {
          return {
            problem: errorMessage(e),
            nameConflict: isHeptoError(e) && e.code === 'NAME_CONFLICT',
            notAdmitted: isHeptoError(e) && e.code === 'NOT_ADMITTED',
            authFailed: (e as { authFailed?: boolean }).authFailed === true,
            self: (e as { self?: boolean }).self === true,
          };
        }
      },
      (c) => this.deliver(c, payload),
    );
  }

  disconnect(name: string, trimmed = false): void {
    for (const c of [...this.conns]) {
      if (c.peer?.name === name) {
        if (trimmed) {
          c.trimmed = true;
          c.close(CLOSE_TRIMMED, 'trimmed');
        } else c.close(1000, 'disconnected');
      }
    }
  }

  stats(): { bytesSent: number; bytesReceived: number; connections: number } {
    const l = this.listener.bytes();
    let read = l.read + this.closedRead;
    let written = l.written + this.closedWritten;
    for (const s of this.clientSockets) {
      read += s.bytesRead;
      written += s.bytesWritten;
    }
    return { bytesSent: written, bytesReceived: read, connections: this.conns.size };
  }

  private deliver(c: Conn, payload: Uint8Array): PeerInfo {
    c.send(payload);
    return c.peer!;
  }

  private reject(remote: string, reason: string, peer?: string): void {
    if (this.state === 'stopped') return;
    // debug: the `rejected` listener (gossip node) logs refusals, throttled, and a flood must not flood the journal.
    this.log.debug('connection refused', { remote, reason, peer });
    try {
      this.opts.events.rejected(peer === undefined ? { remote, reason } : { remote, reason, peer });
    } catch {
      /* listener errors stay with the listener */
    }
  }

  private hooks(onAuthenticated?: () => void): ConnHooks {
    return {
      authenticated: (c) => {
        onAuthenticated?.();
        this.register(c);
      },
      message: (c, payload) => this.opts.events.message(c.peer!, payload),
      failed: (c, reason) => this.reject(c.remote, reason, c.peer?.name),
      closed: (c) => this.onClosed(c),
    };
  }

  private onAccepted(ws: WebSocket, remote: string, authenticated: () => void, source: PendingSource): void {
    if (this.state !== 'running') {
      ws.terminate();
      return;
    }
    new Conn(ws, {
      role: 'server',
      remote,
      source,
      keys: this.keys,
      local: this.local(),
      limits: this.limits,
      hooks: this.hooks(authenticated),
    });
  }

  /** An enrolment socket: served by enrol-server.ts, never registered as a peer. */
  private onEnrol(ws: WebSocket, remote: string, release: () => void): void {
    const hooks = this.opts.enrol;
    if (this.state !== 'running' || !hooks) {
      ws.terminate();
      return;
    }
    serveEnrolment(ws, { remote, hooks, logger: this.log, rejected: (reason) => this.reject(remote, reason), release });
  }

  /** What this node shows in a handshake: its name, identity and, once admitted, its admission. */
  private local(): HandshakeLocal {
    const admission = this.opts.events.ownAdmission?.();
    return admission ? { name: this.opts.name, identity: this.opts.identity, admission } : { name: this.opts.name, identity: this.opts.identity };
  }

  /** Registers a freshly authenticated connection, or closes it (self, not admitted, name conflict, duplicate). */
  private register(c: Conn): void {
    const peer = c.peer!;
    if (this.state === 'stopped') {
      c.failure = 'transport is stopped';
      return c.terminate();
    }
    if (peer.idPub === this.opts.identity.idPub) {
      c.failure = 'that address is this agent itself';
      c.self = true;
      c.close(CLOSE_SELF, 'self');
      return;
    }
    let refused: VetRefusal | undefined;
    try {
      refused = this.opts.events.vet?.(peer);
    } catch {
      refused = { reason: 'could not check its admission', tell: 'not admitted' };
    }
    if (refused !== undefined) {
      c.failure = refused.reason;
      this.reject(c.remote, refused.reason, peer.name);
      c.close(CLOSE_NOT_ADMITTED, refused.tell);
      return;
    }
    const current = this.byName.get(peer.name);
    if (current && current.isOpen && current.peer!.idPub !== peer.idPub) {
      const reason = `claims the name "${peer.name}" already held by a connected peer with another identity (${fingerprint(current.peer!.idPub)}, new ${fingerprint(peer.idPub)})`;
      c.failure = reason;
      c.nameConflict = true;
      this.reject(c.remote, reason, peer.name);
      c.close(CLOSE_NAME_CONFLICT, 'name conflict');
      return;
    }
    const over = this.overCap(c, current);
    if (over !== undefined) {
      c.failure = over;
      this.reject(c.remote, over, peer.name);
      c.close(CLOSE_BUSY, 'busy');
      return;
    }
    this.conns.add(c);
    // A current connection silent for longer than an idle one ever is (the dialer
    // pings every other keepalive interval) is likely dead: the peer rebooted or
    // changed address. A fresh one replaces it.
    const stale = current !== undefined && Date.now() - current.lastHeard > 2.5 * this.limits.keepaliveMs;
    if (current && current.isOpen && current.role !== c.role && !stale) {
      // Both sides dialed at once. Both keep the connection dialed by the smaller name.
      const keepClient = this.opts.name < peer.name;
      const loser = (c.role === 'client') === keepClient ? current : c;
      const winner = loser === c ? current : c;
      this.byName.set(peer.name, winner);
      loser.superseded = true;
      loser.close(CLOSE_SUPERSEDED, 'duplicate');
    } else {
      if (current && current.isOpen) {
        // Same direction again, or a stale one: the peer restarted or redialed; the new one wins.
        current.superseded = true;
        if (stale)
          current.terminate(); // a dead path would not carry a close frame anyway
        else current.close(CLOSE_SUPERSEDED, 'replaced');
      }
      this.byName.set(peer.name, c);
    }
    this.log.debug('peer connected', { peer: peer.name, id: fingerprint(peer.idPub), remote: c.remote, role: c.role });
  }

  /**
   * Why a freshly authenticated connection would exceed a cap (limits.ts:
   * maxAuthTotal, maxAuthStrangers, maxAuthPerSource, maxAuthPerIdentity), or
   * undefined. Only open connections count; one that will replace `current`
   * (same name and identity: a restart, or both sides dialing at once) adds
   * nothing. Existing connections are never dropped to make room.
   */
  private overCap(c: Conn, current: Conn | undefined): string | undefined {
    const peer = c.peer!;
    const L = this.limits;
    const replaces = current !== undefined && current.isOpen && current.peer!.idPub === peer.idPub ? current : undefined;
    const src = c.role === 'server' ? c.source : undefined;
    let total = 0;
    let strangers = 0;
    let fromSource = 0;
    let sameIdentity = 0;
    for (const o of this.conns) {
      if (o === replaces || !o.isOpen) continue;
      total++;
      const os = o.role === 'server' ? o.source : undefined;
      if (os && !os.known) strangers++;
      if (src && os && os.key === src.key) fromSource++;
      if (o.peer!.idPub === peer.idPub) sameIdentity++;
    }
    if (sameIdentity >= L.maxAuthPerIdentity)
      return `too many authenticated connections for identity ${fingerprint(peer.idPub)} (limit ${L.maxAuthPerIdentity})`;
    if (replaces) return undefined;
    if (total >= L.maxAuthTotal) return `too many authenticated connections (limit ${L.maxAuthTotal})`;
    if (src && !src.known && strangers >= L.maxAuthStrangers) {
      return `too many authenticated connections from addresses no member records (limit ${L.maxAuthStrangers})`;
    }
    if (src && fromSource >= L.maxAuthPerSource)
      return `too many authenticated connections from ${src.known ? src.host : src.key} (limit ${L.maxAuthPerSource})`;
    return undefined;
  }

  private onClosed(c: Conn): void {
    this.onceClosed.get(c)?.();
    this.onceClosed.delete(c);
    if (c.notAdmitted && this.state !== 'stopped') {
      try {
        this.opts.events.refusedBy?.({ remote: c.remote, reason: refusedByReason(c.notAdmittedWhy), ...(c.peer ? { peer: c.peer.name } : {}) });
      } catch {
        /* listener errors stay with the listener */
      }
    }
    if (!this.conns.delete(c)) return; // never authenticated or refused at registration
    const peer = c.peer!;
    for (const [addr, x] of this.byAddress) if (x === c) this.byAddress.delete(addr);
    if (this.byName.get(peer.name) === c) {
      this.byName.delete(peer.name);
      for (const other of this.conns) {
        if (other.isOpen && other.peer!.name === peer.name) this.byName.set(peer.name, other);
      }
    }
    if (c.superseded || this.state === 'stopped') return;
    // Another connection with that peer is still open (a trimmed one closing while a new one opened): still connected.
    if (this.byName.has(peer.name)) return;
    this.log.debug('peer disconnected', { peer: peer.name, remote: c.remote });
    try {
      this.opts.events.disconnected(peer, c.trimmed);
    } catch {
      /* listener errors stay with the listener */
    }
  }

  /** An open authenticated connection for `addr`: reused, joined (dial in flight) or dialed. */
  private connection(addr: string): Promise<Conn> {
    const existing = this.byAddress.get(addr);
    if (existing && existing.isOpen && this.conns.has(existing)) return Promise.resolve(existing);
    const inFlight = this.dialing.get(addr);
    if (inFlight) return inFlight;
    const p = this.dial(addr).finally(() => this.dialing.delete(addr));
    this.dialing.set(addr, p);
    return p;
  }

  /**
   * Dials with the current overlay key; where the peer refuses that hello
   * and a previous key is still taken (a key rotation's grace), again with
   * that one: the peer may not have switched yet (it was off).
   */
  private async dial(addr: string): Promise<Conn> {
    const ring = this.keys;
    for (let i = 0; ; i++) {
      try {
        const c = await this.dialWith(addr, ring[i] as OverlayKeys);
        if (i > 0) this.log.debug('peer took only a previous overlay key', { remote: addr, peer: c.peer?.name });
        return c;
      } catch (e) {
        if (!(e as { helloRefused?: boolean }).helloRefused || i + 1 >= ring.length || this.state === 'stopped') throw e;
      }
    }
  }

  private dialWith(addr: string, keys: OverlayKeys): Promise<Conn> {
    const { host, port } = parseEndpoint(addr);
    const family = isIP(host);
    const bind = this.opts.bindAddress;
    const localAddress = bind && (family === 0 || isIP(bind) === family) ? bind : undefined;
    const url = `ws://${family === 6 ? `[${host}]` : host}:${port}/`;
    return new Promise<Conn>((resolve, reject) => {
      let settled = false;
      const ws = new WebSocket(url, {
        maxPayload: this.limits.maxFrameBytes + FRAME_OVERHEAD,
        perMessageDeflate: false,
        followRedirects: false,
        handshakeTimeout: this.dialTimeoutMs,
        localAddress,
      });
      this.dialSockets.add(ws);
      const finish = (err: string | undefined, c?: Conn): void => {
        if (settled) return;
        settled = true;
        this.dialSockets.delete(ws);
        clearTimeout(timer);
        if (err === undefined && c) resolve(c);
        else if (conn.nameConflict) reject(new HeptoError('NAME_CONFLICT', err ?? 'name conflict'));
        else if (conn.notAdmitted) reject(new HeptoError('NOT_ADMITTED', err ?? 'not admitted'));
        else {
          // A self-loop only when the peer proved our own identity in the handshake: a close code alone is anyone's word.
          const self = conn.self && conn.peer?.idPub === this.opts.identity.idPub;
          reject(Object.assign(new Error(err ?? 'handshake failed'), { helloRefused: conn.helloRefused, authFailed: conn.authFailed, self }));
        }
      };
      const timer = setTimeout(() => {
        finish(`no authenticated answer within ${this.dialTimeoutMs} ms`);
        ws.terminate();
      }, this.dialTimeoutMs);
      timer.unref();
      ws.on('upgrade', (res) => {
        const s = res.socket as import('net').Socket;
        this.clientSockets.add(s);
        s.once('close', () => {
          this.clientSockets.delete(s);
          this.closedRead += s.bytesRead;
          this.closedWritten += s.bytesWritten;
        });
      });
      ws.on('unexpected-response', (_req, res) => {
        finish(`answered HTTP ${res.statusCode} instead of a WebSocket upgrade: not a hepto agent gossip port?`);
        ws.terminate();
      });
      const base = this.hooks();
      const conn = new Conn(ws, {
        role: 'client',
        remote: addr,
        keys: [keys],
        local: this.local(),
        limits: this.limits,
        hooks: {
          ...base,
          authenticated: (c) => {
            base.authenticated(c);
            // Registration may have kept another connection to the same peer (both dialed at once).
            const kept = this.conns.has(c) ? this.byName.get(c.peer!.name) : undefined;
            if (kept && kept.isOpen) {
              if (kept === c) this.byAddress.set(addr, c);
              finish(undefined, kept);
            } else {
              finish(c.failure ?? 'connection refused after the handshake');
            }
          },
          failed: (c, reason) => {
            if (c.isOpen) base.failed(c, reason);
            else finish(reason);
          },
          closed: (c) => {
            base.closed(c);
            // Both sides dialed at once and the peer kept the other connection: use that one.
            const other = c.superseded && c.peer ? this.byName.get(c.peer.name) : undefined;
            if (other && other.isOpen) finish(undefined, other);
            else finish(c.failure ?? 'connection closed');
          },
        },
      });
      ws.on('error', (e) => finish(conn.failure ?? describeSocketError(e)));
      if (this.state === 'stopped') {
        finish('transport is stopped');
        ws.terminate();
      }
    });
  }
}
