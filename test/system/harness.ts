/**
 * Harness for the installer's end-to-end tests: cached Debian 12 systemd
 * images, the release tarball, a file server on 127.0.0.1, and privileged
 * systemd containers on the host network that a test boots, drives with
 * `podman exec` and always removes.
 */
import { execFile } from 'child_process';
import { createReadStream, statSync } from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as path from 'path';

export const ROOT = path.resolve(__dirname, '../../..');

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program; never throws on a non-zero exit (the test asserts on it). */
export function run(cmd: string, args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      { timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024, env: opts.env ?? process.env, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1) : 0;
        if (err && code === -1 && (err as { killed?: boolean }).killed) {
          reject(new Error(`${cmd} ${args.join(' ')} timed out after ${opts.timeoutMs ?? 120_000} ms\n${stderr}`));
          return;
        }
        if (err && code === -1) {
          reject(err);
          return;
        }
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Runs a program and returns stdout, throwing with its stderr when it fails. */
export async function check(cmd: string, args: string[], opts: { timeoutMs?: number } = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Quotes for sh. */
export function shq(value: string): string {
  return /^[A-Za-z0-9._:/,@=+%-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

/** `A=1 B=2` for a command line. */
export function envWords(env: Record<string, string>): string {
  return Object.entries(env)
    .map(([k, v]) => `${k}=${shq(v)}`)
    .join(' ');
}

/** Polls `probe` until it returns something truthy, or fails after `timeoutMs` with the last value seen. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs: number, intervalMs = 500): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** The cached image reference (builds it on the first run: minutes). */
export async function ensureImage(kind: 'base' | 'baked'): Promise<string> {
  const out = await check('bash', [path.join(ROOT, 'test/system/images.sh'), kind], { timeoutMs: 20 * 60_000 });
  return out.trim().split('\n').pop()!;
}

export interface Release {
  dir: string;
  tarball: string;
  sha256: string;
  version: string;
}

/** `npm run package` into `dir`. */
export async function buildRelease(dir: string): Promise<Release> {
  const out = await check('bash', [path.join(ROOT, 'scripts/package.sh'), '--out', dir], { timeoutMs: 5 * 60_000 });
  const m = /^([0-9a-f]{64})\s+(hepto-agent-(.+)\.tar\.gz)$/m.exec(out);
  if (!m) throw new Error(`package.sh printed no checksum line:\n${out}`);
  return { dir, sha256: m[1], tarball: m[2], version: m[3] };
}

/**
 * The committed tree (git archive HEAD) in `dir`, sharing the checkout's
 * node_modules: a checkout nobody edits while a test builds from it.
 */
export async function snapshotCheckout(dir: string): Promise<string> {
  await check('sh', ['-c', `mkdir -p "$2" && git -C "$1" archive --format=tar HEAD | tar -x -C "$2" && ln -s "$1/node_modules" "$2/node_modules"`, 'sh', ROOT, dir]);
  return dir;
}

/** `scripts/package.sh` of the checkout at `root`, into `out`; the tarball's sha256. */
export async function packageFrom(root: string, out: string): Promise<string> {
  const stdout = await check('bash', [path.join(root, 'scripts/package.sh'), '--out', out], { timeoutMs: 5 * 60_000 });
  const m = /^([0-9a-f]{64})\s/m.exec(stdout);
  if (!m) throw new Error(`package.sh printed no checksum line:\n${stdout}`);
  return m[1];
}

/** A static file server on 127.0.0.1 (random port) for install.sh and the tarball. */
export class FileServer {
  readonly requests: string[] = [];
  private constructor(
    private readonly server: http.Server,
    readonly port: number,
  ) {}

  static async start(dir: string): Promise<FileServer> {
    const requests: string[] = [];
    const server = http.createServer((req, res) => {
      const name = decodeURIComponent((req.url ?? '/').split('?')[0]).replace(/^\/+/, '');
      requests.push(name);
      const file = path.join(dir, name);
      let size = -1;
      try {
        if (!name.includes('..') && !name.includes('/')) size = statSync(file).isFile() ? statSync(file).size : -1;
      } catch {
        size = -1;
      }
      if (size < 0) {
        res.writeHead(404).end('not found\n');
        return;
      }
      res.writeHead(200, { 'content-length': size, 'content-type': 'application/octet-stream' });
      createReadStream(file).pipe(res);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const fs = new FileServer(server, (server.address() as net.AddressInfo).port);
    (fs as { requests: string[] }).requests = requests;
    return fs;
  }

  url(name: string): string {
    return `http://127.0.0.1:${this.port}/${name}`;
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.server.closeAllConnections?.();
      this.server.close(() => resolve());
    });
  }
}

/** A TCP port free on 127.0.0.1 right now (the OS picks it). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', () => resolve()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

let seq = 0;

/** A privileged Debian container booted with systemd as PID 1 on the host network. */
export class SystemdContainer {
  private constructor(readonly name: string) {}

  static async boot(opts: { image: string; hostname: string; mounts?: Array<[string, string]> }): Promise<SystemdContainer> {
    const name = `hepto-systest-${process.pid}-${++seq}-${opts.hostname}`;
    const args = ['run', '-d', '--name', name, '--hostname', opts.hostname, '--privileged', '--network', 'host', '--runtime', 'runc'];
    args.push('--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=4096:4096', '--systemd=always', '--label', 'io.hepto.systest=true');
    for (const [host, inside] of opts.mounts ?? []) args.push('-v', `${host}:${inside}:ro`);
    args.push(opts.image);
    await check('podman', args);
    const c = new SystemdContainer(name);
    await waitFor(
      `systemd to boot in ${name}`,
      async () => {
        const r = await c.exec('systemctl is-system-running');
        return ['running', 'degraded'].includes(r.stdout.trim());
      },
      60_000,
    );
    return c;
  }

  /** Runs a sh script inside, as root unless `user` is given. */
  exec(script: string, opts: { user?: string; timeoutMs?: number } = {}): Promise<Result> {
    const args = ['exec'];
    if (opts.user) args.push('--user', opts.user);
    args.push(this.name, 'sh', '-c', script);
    return run('podman', args, { timeoutMs: opts.timeoutMs ?? 120_000 });
  }

  /** Runs a script that must succeed; returns its stdout. */
  async ok(script: string, opts: { timeoutMs?: number } = {}): Promise<string> {
    const r = await this.exec(script, opts);
    if (r.code !== 0) throw new Error(`in ${this.name}: ${script}\nexited ${r.code}:\n${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  /** Loads the saved stand-in images into the nested Podman, under the agent's default image names too. */
  async loadStandIns(dirInside: string, tags: Record<string, string>): Promise<void> {
    const tagCmds = Object.entries(tags).map(([from, to]) => `podman tag ${shq(from)} ${shq(to)}`);
    await this.ok([`for f in ${dirInside}/*.tar; do podman load -q -i "$f" >/dev/null; done`, ...tagCmds].join(' && '), { timeoutMs: 120_000 });
  }

  async remove(): Promise<void> {
    await run('podman', ['rm', '-f', '-t', '2', this.name], { timeoutMs: 60_000 }).catch(() => undefined);
  }
}

/** Removes every container a (possibly crashed) earlier run of this suite left behind. */
export async function removeStaleContainers(): Promise<void> {
  const r = await run('podman', ['ps', '-a', '--filter', 'label=io.hepto.systest=true', '--format', '{{.Names}}']);
  for (const name of r.stdout.split('\n').filter(Boolean)) {
    const pid = Number(/^hepto-systest-(\d+)-/.exec(name)?.[1]);
    if (Number.isInteger(pid) && pid !== process.pid && !alive(pid)) await run('podman', ['rm', '-f', '-t', '2', name]).catch(() => undefined);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as { code?: string }).code === 'EPERM';
  }
}
