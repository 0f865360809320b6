/**
 * Helpers for the transport integration tests: real WsTransports on loopback,
 * a recording TCP proxy, and a raw client that speaks the handshake itself.
 * Everything made through a Cleanup is closed by `cleanup.run()`.
 */
import * as net from 'net';
import WebSocket from 'ws';
import { deriveOverlayKeys } from '../../../agent/net/crypto';
import { FrameOpener, FrameSealer } from '../../../agent/net/frames';
import { ClientHandshake } from '../../../agent/net/handshake';
import { generateIdentity, Identity } from '../../../agent/net/identity';
import type { Limits } from '../../../agent/net/limits';
import { WsTransport } from '../../../agent/net/ws-transport';
import { memoryLogger } from '../../helpers/memory-logger';
import { Recorder } from '../../helpers/transport-contract';

/** A fixed test key (32 letters and digits); never a real cluster's key. */
export const TEST_OVERLAY_KEY = 'TestOverlayKey0123456789abcdefgh';
export const OTHER_OVERLAY_KEY = 'IntruderKey0123456789abcdefghijk';

/** A loopback host:port where nothing listens (bound once, then released). */
export async function deadLoopbackAddress(host = '127.0.0.1'): Promise<string> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, host, () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return `${host}:${port}`;
}

export class Cleanup {
  private readonly fns: (() => Promise<void> | void)[] = [];
  add(fn: () => Promise<void> | void): void {
    this.fns.push(fn);
  }
  async run(): Promise<void> {
    for (const fn of this.fns.splice(0).reverse()) {
      try {
        await fn();
      } catch {
        /* keep cleaning */
      }
    }
  }
}

export interface TestNode {
  name: string;
  t: WsTransport;
  rec: Recorder;
  identity: Identity;
  addr: string;
  logLines: string[];
}

export async function startNode(
  cleanup: Cleanup,
  name: string,
  opts: {
    key?: string;
    host?: string;
    bind?: string;
    limits?: Partial<Limits>;
    dialTimeoutMs?: number;
    identity?: Identity;
    /** WsTransportOptions.knownHost: which source addresses count as known members'. */
    knownHost?: (host: string) => boolean;
  } = {},
): Promise<TestNode> {
  const rec = new Recorder();
  const identity = opts.identity ?? generateIdentity(Date.now());
  const { logger, lines } = memoryLogger('debug');
  const host = opts.host ?? '127.0.0.1';
  const t = new WsTransport({
    overlayKey: opts.key ?? TEST_OVERLAY_KEY,
    identity,
    name,
    listen: { hosts: [host], port: 0 },
    bindAddress: opts.bind,
    events: rec.events,
    logger,
    limits: opts.limits,
    dialTimeoutMs: opts.dialTimeoutMs ?? 2_000,
    knownHost: opts.knownHost,
  });
  cleanup.add(() => t.stop());
  await t.start();
  const a = t.address()[0];
  const addr = a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
  return { name, t, rec, identity, addr, logLines: lines };
}

export const text = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'));

/** A TCP proxy that records both directions and can tamper with or swallow traffic. */
export class TcpProxy {
  readonly c2s: Buffer[] = [];
  readonly s2c: Buffer[] = [];
  /** When true, bytes are swallowed in both directions (a silent network cut). */
  blackhole = false;
  /** Rewrites client→server chunks (after recording). */
  tamper: ((chunk: Buffer, index: number) => Buffer) | undefined;
  private readonly server = net.createServer((c) => this.onClient(c));
  private readonly sockets = new Set<net.Socket>();
  private chunks = 0;
  addr = '';

  constructor(private readonly target: string) {}

  async start(cleanup: Cleanup): Promise<string> {
    cleanup.add(() => this.stop());
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    this.addr = `127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
    return this.addr;
  }

  all(dir: 'c2s' | 's2c'): Buffer {
    return Buffer.concat(dir === 'c2s' ? this.c2s : this.s2c);
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  private onClient(client: net.Socket): void {
    const [host, port] = [this.target.slice(0, this.target.lastIndexOf(':')), Number(this.target.slice(this.target.lastIndexOf(':') + 1))];
    const upstream = net.connect(port, host);
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        this.sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.on('data', (chunk: Buffer) => {
      this.c2s.push(Buffer.from(chunk));
      if (this.blackhole) return;
      upstream.write(this.tamper ? this.tamper(chunk, this.chunks++) : chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      this.s2c.push(Buffer.from(chunk));
      if (!this.blackhole) client.write(chunk);
    });
  }
}

/** A client that performs the handshake itself and exposes the sealed frames it sends. */
export interface RawSession {
  ws: WebSocket;
  socket: net.Socket;
  sealer: FrameSealer;
  opener: FrameOpener;
  closed: Promise<number>;
}

export function rawWs(
  cleanup: Cleanup,
  addr: string,
  opts: { localAddress?: string } = {},
): Promise<{ ws: WebSocket; socket: net.Socket; closed: Promise<number> }> {
  const ws = new WebSocket(`ws://${addr}/`, { perMessageDeflate: false, localAddress: opts.localAddress });
  cleanup.add(() => ws.terminate());
  ws.on('error', () => undefined);
  const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
  return new Promise((resolve, reject) => {
    let socket: net.Socket | undefined;
    ws.on('upgrade', (res) => {
      socket = res.socket as net.Socket;
    });
    ws.on('open', () => resolve({ ws, socket: socket!, closed }));
    ws.on('close', () => reject(new Error('closed before open')));
  });
}

export async function rawSession(
  cleanup: Cleanup,
  addr: string,
  name: string,
  opts: { key?: string; identity?: Identity; localAddress?: string } = {},
): Promise<RawSession> {
  const { ws, socket, closed } = await rawWs(cleanup, addr, { localAddress: opts.localAddress });
  const hs = new ClientHandshake(deriveOverlayKeys(opts.key ?? TEST_OVERLAY_KEY), { name, identity: opts.identity ?? generateIdentity(Date.now()) });
  const m2 = new Promise<Uint8Array>((resolve, reject) => {
    ws.once('message', (d) => resolve(new Uint8Array(d as Buffer)));
    ws.once('close', () => reject(new Error('closed during handshake')));
  });
  ws.send(hs.hello());
  const { message, session } = hs.finish(await m2);
  const confirmation = new Promise<Uint8Array>((resolve, reject) => {
    ws.once('message', (d) => resolve(new Uint8Array(d as Buffer)));
    ws.once('close', (code) => reject(new Error(`closed before confirming (code ${code})`)));
  });
  ws.send(message);
  const opener = new FrameOpener(session.recvKey);
  if (opener.open(await confirmation).length !== 0) throw new Error('server confirmation is not empty');
  return { ws, socket, sealer: new FrameSealer(session.sendKey), opener, closed };
}

/** A frame header announcing `length` bytes of binary payload (masked, as a client must). */
export function binaryFrameHeader(length: number): Buffer {
  const head = Buffer.alloc(2 + 8 + 4);
  head[0] = 0x82; // FIN + binary
  head[1] = 0x80 | 127; // masked, 64-bit length follows
  head.writeBigUInt64BE(BigInt(length), 2);
  head.writeUInt32BE(0x01020304, 10);
  return head;
}
