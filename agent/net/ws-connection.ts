/**
 * One WebSocket connection of the transport, from the first handshake
 * message to close: runs the handshake (handshake.ts) and then seals and
 * opens data frames (frames.ts). Anything unexpected ends the connection
 * through `hooks.failed` with a reason; nothing throws out of a socket
 * callback. The transport (ws-transport.ts) owns the registry of connections.
 */
import type WebSocket from 'ws';
import { HeptoError, errorMessage, isHeptoError } from '../../shared/errors';
import type { PeerInfo } from './transport';
import type { OverlayKeys } from './crypto';
import { ClientHandshake, HandshakeLocal, ServerHandshake, SessionKeys } from './handshake';
import { FrameOpener, FrameSealer } from './frames';
import { FRAME_OVERHEAD, Limits } from './limits';
import { refusedByReason } from './send-errors';

/** Close code for a connection dropped because the same peer has another one (no `disconnected`). */
export const CLOSE_SUPERSEDED = 4000;
/** Close code for a refused handshake or frame. */
export const CLOSE_POLICY = 1008;
/** Close code: the name is held by a connected peer with another identity. */
export const CLOSE_NAME_CONFLICT = 4001;
/** Close code: the dialer reached itself. */
export const CLOSE_SELF = 4002;
/** Close code: the peer's identity is not admitted under its name (pinned names, agent/gossip/admissions.ts). */
export const CLOSE_NOT_ADMITTED = 4003;
/** Close code: the peer is at one of its caps on authenticated connections (limits.ts); try again later. */
export const CLOSE_BUSY = 4004;
/** Close code for a connection the peer no longer needs: its active view is full (gossip/active-view.ts). Not a failure. */
export const CLOSE_TRIMMED = 4005;

export interface ConnHooks {
  /** The handshake completed; the transport registers the connection (and may close it). */
  authenticated(conn: Conn): void;
  message(conn: Conn, payload: Uint8Array): void;
  /** The connection is being closed because of something the peer sent (or failed to send). */
  failed(conn: Conn, reason: string): void;
  /** The socket is closed, whatever the reason. Called once. */
  closed(conn: Conn): void;
}

export interface ConnOptions {
  role: 'client' | 'server';
  /** Remote address for logs and PeerInfo, e.g. "127.0.0.2:7947". */
  remote: string;
  /** The overlay keys: a client dials with the first; a server takes any (key rotation's grace), the first first. */
  keys: OverlayKeys[];
  local: HandshakeLocal;
  limits: Limits;
  hooks: ConnHooks;
  /** Server: where the socket comes from, as the listener counted it (connection caps). */
  source?: { host: string; known: boolean; key: string };
}

/**
 * handshake: M1..M3 in flight. confirming (client only): M3 sent, waiting for
 * the server's first sealed frame (empty), which says it checked our identity
 * and registered us. open: data flows. closed: done.
 */
type State = 'handshake' | 'confirming' | 'open' | 'closed';

export class Conn {
  readonly role: 'client' | 'server';
  readonly remote: string;
  /** Server: the remote address and whether it is a known member's (limits.ts caps). */
  readonly source: { host: string; known: boolean; key: string } | undefined;
  peer: PeerInfo | undefined;
  /** Set when this connection was replaced by another to the same peer (no `disconnected`). */
  superseded = false;
  /** Closed with CLOSE_TRIMMED, by either side: `disconnected` says so. */
  trimmed = false;
  /** Why the connection ended before authenticating, for the dialer's error. */
  failure: string | undefined;
  /** The failure is a name conflict (our name is held by another identity, or theirs is here). */
  nameConflict = false;
  /** The peer closed with CLOSE_NOT_ADMITTED: it does not admit our identity under our name. */
  notAdmitted = false;
  /** The reason the peer gave with CLOSE_NOT_ADMITTED ("not admitted", "removed", "superseded"). */
  notAdmittedWhy = '';
  /** Client: the peer refused our hello (closed with CLOSE_POLICY before answering it), as it does a hello under another overlay key. */
  helloRefused = false;
  /** The handshake failed, on our side or the peer's (a policy close before open): another overlay key, a bad identity proof. */
  authFailed = false;
  /** Closed in the handshake as this very agent (CLOSE_SELF); the transport trusts it only with the peer's proven identity. */
  self = false;
  /** Server: which of our overlay keys the peer's hello opened with (0: the current one). */
  keyIndex = 0;
  private helloAnsweredByPeer = false;
  private state: State = 'handshake';
  private client: ClientHandshake | undefined;
  private server: ServerHandshake | undefined;
  private sealer: FrameSealer | undefined;
  private opener: FrameOpener | undefined;
  private keepalive: NodeJS.Timeout | undefined;
  /** Anything (frame, ping, pong) arrived since the last keepalive tick. */
  private heard = true;
  private missed = 0;
  private closing = false;
  /** Set by fail(): whatever the peer sends after a refusal is ignored. */
  private failed = false;
  private helloAnswered = false;
  /** When the peer was last heard from (frame or pong), ms since the epoch. */
  lastHeard = Date.now();
  private readonly hooks: ConnHooks;
  private readonly limits: Limits;

  constructor(
    private readonly ws: WebSocket,
    opts: ConnOptions,
  ) {
    this.role = opts.role;
    this.remote = opts.remote;
    this.source = opts.source;
    this.hooks = opts.hooks;
    this.limits = opts.limits;
    if (opts.role === 'client') this.client = new ClientHandshake(opts.keys[0] as OverlayKeys, opts.local);
    else this.server = new ServerHandshake(opts.keys, opts.local);

    ws.on('message', (data, isBinary) => this.onMessage(toBytes(data), isBinary));
    ws.on('error', (err) => this.onWsError(err));
    ws.on('close', (code, reason) => this.onClose(code, reason));
    // Pings and pongs are signs of life like frames (ws answers pings by itself).
    ws.on('pong', () => this.onLife());
    ws.on('ping', () => this.onLife());
    if (opts.role === 'client') {
      ws.on('open', () => this.guard(() => this.ws.send(this.client!.hello())));
    }
  }

  /** Authenticated, not closing on either side: frames sent now reach the peer. */
  get isOpen(): boolean {
    return this.state === 'open' && !this.closing && this.ws.readyState === this.ws.OPEN;
  }

  /** Seals and hands one payload to the socket. */
  send(payload: Uint8Array): number {
    if (!this.isOpen || !this.sealer) throw new HeptoError('PEER_UNREACHABLE', `connection to ${this.remote} is closed`);
    if (this.ws.bufferedAmount > this.limits.maxBufferedBytes) {
      throw new HeptoError(
        'FRAME_REJECTED',
        `peer ${this.peer?.name ?? this.remote} is not reading: ${this.ws.bufferedAmount} bytes already queued; frame dropped`,
      );
    }
    const frame = this.sealer.seal(payload);
    this.ws.send(frame);
    return frame.length;
  }

  /** Closes gracefully (queued frames are flushed first). */
  close(code = 1000, reason = ''): void {
    if (this.state === 'closed') return;
    this.closing = true;
    this.stopKeepalive();
    try {
      this.ws.close(code, reason);
    } catch {
      this.ws.terminate();
    }
  }

  terminate(): void {
    this.stopKeepalive();
    this.ws.terminate();
  }

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      if (this.state !== 'open' && isHeptoError(e) && e.code === 'PEER_AUTH_FAILED') this.authFailed = true;
      this.fail(errorMessage(e));
    }
  }

  private fail(reason: string): void {
    if (this.state === 'closed' || this.failed) return;
    this.failed = true;
    if (this.state !== 'open' && this.failure === undefined) this.failure = reason;
    this.hooks.failed(this, reason);
    this.close(CLOSE_POLICY);
    // A peer that ignores the close frame is cut after a short grace period.
    setTimeout(() => this.ws.terminate(), 1_000).unref();
  }

  private onMessage(data: Uint8Array, isBinary: boolean): void {
    if (this.state === 'closed' || this.failed) return;
    if (!isBinary) return this.fail('text frame where only binary frames are allowed');
    if (this.state === 'handshake' || this.state === 'confirming') {
      if (data.length > this.limits.maxPreAuthFrameBytes) {
        return this.fail(`handshake message exceeds the pre-auth limit of ${this.limits.maxPreAuthFrameBytes} bytes`);
      }
      return this.guard(() => this.onHandshake(data));
    }
    let payload: Uint8Array;
    this.onLife();
    try {
      payload = this.opener!.open(data);
    } catch (e) {
      return this.fail(errorMessage(e));
    }
    try {
      this.hooks.message(this, payload);
    } catch {
      /* a throwing listener must not kill the connection or the process */
    }
  }

  private onHandshake(data: Uint8Array): void {
    if (this.state === 'confirming') {
      const confirmation = this.opener!.open(data);
      if (confirmation.length !== 0) throw new HeptoError('PEER_AUTH_FAILED', 'the peer did not confirm the handshake');
      this.open();
    } else if (this.client) {
      this.helloAnsweredByPeer = true;
      const { message, session } = this.client.finish(data);
      this.ws.send(message);
      this.keys(session);
      this.state = 'confirming';
    } else if (this.server) {
      if (!this.helloAnswered) {
        this.helloAnswered = true;
        this.ws.send(this.server.respond(data));
        this.keyIndex = this.server.keyIndex;
      } else {
        this.established(this.server.complete(data));
      }
    }
  }

  private keys(s: SessionKeys): void {
    this.sealer = new FrameSealer(s.sendKey);
    this.opener = new FrameOpener(s.recvKey);
    this.peer = { name: s.peerName, idPub: s.peerIdPub, remote: this.remote, ...(s.peerAdmission ? { admission: s.peerAdmission } : {}) };
  }

  /** Server: M3 checked. Register, then confirm with an empty sealed frame unless registration closed us. */
  private established(s: SessionKeys): void {
    this.keys(s);
    this.open();
    if (!this.closing && this.state === 'open') this.ws.send(this.sealer!.seal(new Uint8Array(0)));
  }

  private open(): void {
    this.state = 'open';
    this.lastHeard = Date.now();
    this.keepalive = setInterval(() => this.tick(), this.limits.keepaliveMs);
    this.keepalive.unref();
    this.hooks.authenticated(this);
  }

  private onLife(): void {
    this.heard = true;
    this.lastHeard = Date.now();
  }

  /**
   * Keepalive, once per keepaliveMs. Any frame counts as life, so a connection
   * that carries gossip needs no ping. On an idle connection only the dialer
   * pings, after each whole interval without news, so every other interval;
   * the listener hears those pings and pings only after two silent intervals
   * of its own. A side gives up after silent intervals in a row, two for the dialer and
   * three for the listener, never after one: one long pause of our own event
   * loop (timers run before pending socket reads) is not a dead peer. An idle
   * full mesh used to cost 16 B per connection every interval (both ends
   * pinging); now 8 B every other interval.
   */
  private tick(): void {
    this.missed = this.heard ? 0 : this.missed + 1;
    this.heard = false;
    const dialer = this.role === 'client';
    if (this.missed >= (dialer ? 2 : 3)) {
      this.hooks.failed(this, `no answer to keepalive within ${this.missed * this.limits.keepaliveMs} ms`);
      this.terminate();
      return;
    }
    if (this.missed < (dialer ? 1 : 2)) return;
    try {
      this.ws.ping();
    } catch {
      /* closing already */
    }
  }

  private stopKeepalive(): void {
    if (this.keepalive) clearInterval(this.keepalive);
    this.keepalive = undefined;
  }

  private onWsError(err: Error): void {
    const code = (err as { code?: string }).code;
    if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') {
      this.fail(`frame larger than the limit (${this.limits.maxFrameBytes + FRAME_OVERHEAD} bytes on the wire)`);
    } else if (code && code.startsWith('WS_ERR_')) {
      this.fail(`malformed WebSocket frame (${err.message})`);
    } else if (this.state !== 'open' && this.failure === undefined) {
      this.failure = describeSocketError(err);
    }
    // ws closes the socket itself after an error; onClose follows.
  }

  private onClose(code: number, reason?: Buffer): void {
    if (this.state === 'closed') return;
    const before = this.state;
    this.state = 'closed';
    this.stopKeepalive();
    if (code === CLOSE_SUPERSEDED) this.superseded = true;
    if (code === CLOSE_TRIMMED) this.trimmed = true;
    if (this.role === 'client' && before === 'handshake' && !this.helloAnsweredByPeer && code === CLOSE_POLICY) this.helloRefused = true;
    if (before !== 'open' && code === CLOSE_POLICY) this.authFailed = true;
    if (code === CLOSE_NAME_CONFLICT && before !== 'open') this.nameConflict = true;
    if (code === CLOSE_SELF && before !== 'open') this.self = true;
    if (code === CLOSE_NOT_ADMITTED && !this.closing) {
      this.notAdmitted = true;
      this.notAdmittedWhy = (reason ?? Buffer.alloc(0))
        .toString('utf8')
        .replace(/[^a-z -]/g, '')
        .slice(0, 40);
    }
    if (before !== 'open' && this.failure === undefined)
      this.failure = code === CLOSE_NOT_ADMITTED ? `the peer refused us: ${refusedByReason(this.notAdmittedWhy)}` : closeReason(code, before === 'confirming');
    this.hooks.closed(this);
  }
}

function closeReason(code: number, confirming: boolean): string {
  if (code === CLOSE_NAME_CONFLICT) return 'the peer refused us: it has a connected peer with our name and another identity (name conflict)';
  if (code === CLOSE_SELF) return 'that address is this agent itself';
  if (code === CLOSE_BUSY) return 'the peer refused us: it has too many connections (busy, at one of its connection caps); retrying later';
  if (code === CLOSE_POLICY) {
    return confirming ? 'the peer rejected our identity' : 'the peer rejected the handshake: probably a different overlay key';
  }
  return `the peer closed the connection during the handshake (code ${code}): probably a different overlay key, or not a hepto agent`;
}

function toBytes(data: WebSocket.RawData): Uint8Array {
  if (Array.isArray(data)) return new Uint8Array(Buffer.concat(data));
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export function describeSocketError(err: Error): string {
  const code = (err as { code?: string }).code;
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused (nothing listening there)';
    case 'ETIMEDOUT':
      return 'connection timed out';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `no route to host (${code})`;
    case 'ECONNRESET':
      return 'connection reset by the peer';
    case 'EADDRNOTAVAIL':
      return 'local bind address not available (EADDRNOTAVAIL)';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `host name does not resolve (${code})`;
    default:
      return code ? `${err.message}` : err.message;
  }
}
