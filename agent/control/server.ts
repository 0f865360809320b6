import * as net from 'net';
import { promises as fs } from 'fs';
import * as path from 'path';
import { HeptoError, errnoCode, isHeptoError } from '../../shared/errors';
import type { Logger } from '../../shared/log';
import { MAX_REQUEST_BYTES, type ControlRequest, type ControlResponse } from './protocol';

export interface ControlHandlers {
  status(): unknown;
  members?(): unknown;
  /** `admission` is whatever the client sent: the handler checks it. */
  admit?(admission: unknown): unknown;
  remove?(removal: unknown): unknown;
  rotate?(box: unknown): unknown;
}

/** Is something answering on this unix socket? */
function probe(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * Serves `hepto-agent status`, and `admit`'s two requests (members, admit). A stale socket left by a crashed agent
 * is replaced; a live one means another agent already runs with this config.
 */
export class ControlServer {
  private server: net.Server | null = null;

  constructor(
    private readonly socketPath: string,
    private readonly handlers: ControlHandlers,
    private readonly logger: Logger,
  ) {}

  async start(): Promise<void> {
    const dir = path.dirname(this.socketPath);
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    if (await probe(this.socketPath)) {
      throw new HeptoError('USAGE', `another hepto-agent is already running with control socket ${this.socketPath}`, {
        hint: 'stop it first (systemctl stop hepto-agent), or give this one its own control_socket',
      });
    }
    await fs.unlink(this.socketPath).catch((e) => {
      if (errnoCode(e) !== 'ENOENT') throw e;
    });
    const server = net.createServer((sock) => this.serve(sock));
    const oldMask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.socketPath, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } finally {
      process.umask(oldMask);
    }
    await fs.chmod(this.socketPath, 0o600);
    server.on('error', (e) => this.logger.error('control socket error', { socket: this.socketPath, error: e.message }));
    this.server = server;
  }

  private serve(sock: net.Socket): void {
    let buf = '';
    sock.setTimeout(5000, () => sock.destroy());
    sock.on('error', () => undefined);
    sock.on('data', (chunk) => {
      buf += chunk.toString('utf8');
      if (buf.length > MAX_REQUEST_BYTES) {
        this.reply(sock, { ok: false, error: 'request too large' });
        return;
      }
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      const line = buf.slice(0, nl);
      let req: ControlRequest;
      try {
        req = JSON.parse(line) as ControlRequest;
      } catch {
        this.reply(sock, { ok: false, error: 'malformed request: expected one JSON line' });
        return;
      }
      const cmd = (req as { cmd?: unknown } | null)?.cmd;
      const handle: (() => unknown) | undefined =
        cmd === 'status'
          ? () => this.handlers.status()
          : cmd === 'members' && this.handlers.members
            ? () => this.handlers.members!()
            : cmd === 'admit' && this.handlers.admit
              ? () => this.handlers.admit!((req as { admission?: unknown }).admission)
              : cmd === 'remove' && this.handlers.remove
                ? () => this.handlers.remove!((req as { removal?: unknown }).removal)
                : cmd === 'rotate' && this.handlers.rotate
                  ? () => this.handlers.rotate!((req as { box?: unknown }).box)
                  : undefined;
      if (!handle) {
        this.reply(sock, { ok: false, error: `unknown command ${JSON.stringify(String(cmd)).slice(0, 40)}` });
        return;
      }
      try {
        this.reply(sock, { ok: true, data: handle() });
      } catch (e) {
        if (isHeptoError(e) && e.code === 'USAGE') {
          this.reply(sock, { ok: false, error: e.message });
          return;
        }
        this.logger.error(`${String(cmd)} failed`, { error: e as Error });
        this.reply(sock, { ok: false, error: `the agent could not answer "${String(cmd)}"; see its log` });
      }
    });
  }

  private reply(sock: net.Socket, res: ControlResponse): void {
    sock.end(JSON.stringify(res) + '\n');
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = null;
    if (!server) return;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await fs.unlink(this.socketPath).catch(() => undefined);
  }
}
