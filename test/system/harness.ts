/**
 * Harness for the installer's end-to-end tests: cached Debian 12 systemd
 * images, the release tarball, a file server, an HTTP proxy for apt, and
 * privileged systemd containers that a test boots (each in a network
 * namespace of its own, or on the host network), drives with `podman exec`
 * and always removes.
 *
 * The servers run in this process on unix sockets; NamespacePort makes one
 * reachable on an address inside a network namespace (a forwarder process
 * entered there with nsenter), so the machines reach them without anything
 * added to this machine's own network.
 */
import { execFile, spawn, type ChildProcess } from 'child_process';
import { createReadStream, rmSync, statSync } from 'fs';
import * as http from 'http';
import * as https from 'https';
import * as net from 'net';
import * as path from 'path';

export const ROOT = path.resolve(__dirname, '../../..');

export interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program; never throws on a non-zero exit (the test asserts on it). */
export function run(cmd: string, args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv; input?: string } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024, env: opts.env ?? process.env, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
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
    if (opts.input !== undefined) child.stdin?.end(opts.input);
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
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
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
  await check('sh', [
    '-c',
    `mkdir -p "$2" && git -C "$1" archive --format=tar HEAD | tar -x -C "$2" && ln -s "$1/node_modules" "$2/node_modules"`,
    'sh',
    ROOT,
    dir,
  ]);
  return dir;
}

/** `scripts/package.sh` of the checkout at `root`, into `out`; the tarball's sha256. */
export async function packageFrom(root: string, out: string): Promise<string> {
  const stdout = await check('bash', [path.join(root, 'scripts/package.sh'), '--out', out], { timeoutMs: 5 * 60_000 });
  const m = /^([0-9a-f]{64})\s/m.exec(stdout);
  if (!m) throw new Error(`package.sh printed no checksum line:\n${stdout}`);
  return m[1];
}

function listen(server: http.Server | https.Server, where: { socket?: string }): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (where.socket) {
      rmSync(where.socket, { force: true });
      server.listen(where.socket, () => resolve());
    } else {
      server.listen(0, '127.0.0.1', () => resolve());
    }
  });
}

function closeServer(server: http.Server | https.Server): Promise<void> {
  return new Promise((resolve) => {
    server.closeAllConnections?.();
    server.close(() => resolve());
  });
}

/**
 * A static file server for install.sh, the tarball and the wesher release
 * files (subdirectories allowed, never above `dir`). On 127.0.0.1 (random
 * port), or on a unix socket (`socket`) to be exposed in a namespace with
 * NamespacePort; then set `base` to where clients reach it. With `tls` it
 * speaks https; `redirects` answers a path with a 302 to another URL.
 */
export class FileServer {
  /** Paths asked for, in order (without the leading /). */
  readonly requests: string[] = [];
  /** Path (without the leading /) -> where a request for it is redirected. */
  readonly redirects = new Map<string, string>();
  /** Where clients reach it: `http://host:port`, no trailing slash. */
  base: string;
  private constructor(
    private readonly server: http.Server | https.Server,
    readonly port: number,
  ) {
    this.base = `http://127.0.0.1:${port}`;
  }

  static async start(dir: string, opts: { socket?: string; tls?: { key: string; cert: string } } = {}): Promise<FileServer> {
    const requests: string[] = [];
    const redirects = new Map<string, string>();
    const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
      const name = decodeURIComponent((req.url ?? '/').split('?')[0]).replace(/^\/+/, '');
      requests.push(name);
      const to = redirects.get(name);
      if (to !== undefined) {
        res.writeHead(302, { location: to }).end();
        return;
      }
      const file = path.join(dir, name);
      let size = -1;
      try {
        const safe = name !== '' && name.split('/').every((seg) => seg !== '' && !seg.startsWith('.'));
        if (safe) size = statSync(file).isFile() ? statSync(file).size : -1;
      } catch {
        size = -1;
      }
      if (size < 0) {
        res.writeHead(404).end('not found\n');
        return;
      }
      res.writeHead(200, { 'content-length': size, 'content-type': 'application/octet-stream' });
      createReadStream(file).pipe(res);
    };
    const server = opts.tls ? https.createServer(opts.tls, handler) : http.createServer(handler);
    await listen(server, opts);
    const fs = new FileServer(server, opts.socket ? 0 : (server.address() as net.AddressInfo).port);
    (fs as { requests: string[] }).requests = requests;
    (fs as { redirects: Map<string, string> }).redirects = redirects;
    if (opts.tls) fs.base = fs.base.replace(/^http:/, 'https:');
    return fs;
  }

  url(name: string): string {
    return `${this.base}/${name}`;
  }

  close(): Promise<void> {
    return closeServer(this.server);
  }
}

/** Headers that belong to one hop, never forwarded by a proxy. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authorization',
  'proxy-authenticate',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/**
 * A forward HTTP proxy for apt, on a unix socket (exposed in a namespace with
 * NamespacePort): plain http GET and HEAD to the allowed hosts only (the
 * Debian mirrors the machine's apt sources name), anything else refused. So a
 * machine in a namespace without a route out still installs packages, and
 * reaches nothing else.
 */
export class AptProxy {
  /** `HOST PATH STATUS` per request, refused ones included. */
  readonly requests: string[] = [];
  private readonly allowed = new Set<string>();
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  private constructor(private readonly server: http.Server) {}

  static async start(socket: string): Promise<AptProxy> {
    let self: AptProxy | null = null;
    const server = http.createServer((req, res) => self!.handle(req, res));
    self = new AptProxy(server);
    await listen(server, { socket });
    return self;
  }

  /** Allows the hosts of the http(s) URLs in `sources` (apt sources.list text, one-line or deb822). */
  allowSources(sources: string): string[] {
    const hosts = [...sources.matchAll(/https?:\/\/([A-Za-z0-9.-]+)/g)].map((m) => m[1].toLowerCase());
    for (const h of hosts) this.allowed.add(h);
    return [...this.allowed];
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    let u: URL | null = null;
    try {
      u = new URL(req.url ?? '');
    } catch {
      u = null;
    }
    const refuse = (status: number, why: string): void => {
      this.requests.push(`${u?.host ?? '-'} ${u?.pathname ?? req.url} ${status}`);
      res.writeHead(status, { 'content-type': 'text/plain' }).end(`hepto test apt proxy: ${why}\n`);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return refuse(405, `${req.method} is not proxied`);
    if (!u || u.protocol !== 'http:') return refuse(400, 'only absolute http:// URLs are proxied');
    if (!this.allowed.has(u.hostname.toLowerCase())) return refuse(403, `${u.hostname} is not an apt mirror of this machine`);
    const headers: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) headers[k] = v;
    headers.host = u.host;
    const target = u;
    const up = http.request(target, { method: req.method, headers, agent: this.agent, timeout: 60_000 }, (r) => {
      this.requests.push(`${target.host} ${target.pathname} ${r.statusCode}`);
      const out: http.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(r.headers)) if (!HOP_BY_HOP.has(k) && v !== undefined) out[k] = v;
      res.writeHead(r.statusCode ?? 502, out);
      r.pipe(res);
      r.on('error', () => res.destroy());
    });
    up.on('timeout', () => up.destroy(new Error('no answer within 60 s')));
    up.on('error', (e) => {
      if (!res.headersSent) refuse(502, `${target.host}: ${e.message}`);
      else res.destroy();
    });
    req.on('aborted', () => up.destroy());
    up.end();
  }

  close(): Promise<void> {
    this.agent.destroy();
    return closeServer(this.server);
  }
}

/**
 * Relays TCP connections from this process' listener script, run inside a
 * network namespace, to a unix socket (the filesystem is shared, the network
 * is not). Half-closes are passed on, so a request and its answer both finish.
 */
const FORWARDER = `
const net = require('net');
const [host, port, sock] = process.argv.slice(1);
const srv = net.createServer({ allowHalfOpen: true }, (c) => {
  const u = net.connect({ path: sock, allowHalfOpen: true });
  const kill = () => { c.destroy(); u.destroy(); };
  c.on('error', kill);
  u.on('error', kill);
  c.pipe(u);
  u.pipe(c);
});
srv.on('error', (e) => { console.error(e.message); process.exit(1); });
srv.listen(Number(port), host, () => console.log('ready'));
process.on('SIGTERM', () => process.exit(0));
`;

/** A port inside a network namespace that leads to a server on a unix socket here. */
export class NamespacePort {
  private constructor(
    private proc: ChildProcess | null,
    readonly host: string,
    readonly port: number,
  ) {}

  /** `http://host:port` (IPv6 in brackets). */
  get base(): string {
    return `http://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`;
  }

  /** Listens on `host:port` inside namespace `netns` (/run/netns/<it>) and relays to `socket`. */
  static async open(netns: string, host: string, port: number, socket: string): Promise<NamespacePort> {
    const proc = spawn('nsenter', [`--net=/run/netns/${netns}`, process.execPath, '-e', FORWARDER, host, String(port), socket], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    proc.stderr?.on('data', (d) => (out += d));
    const p = new NamespacePort(proc, host, port);
    let timer: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        proc.stdout?.on('data', (d) => String(d).includes('ready') && resolve());
        proc.once('exit', (code) => reject(new Error(`the forwarder for ${host}:${port} in ${netns} exited (${code}): ${out.trim()}`)));
        proc.once('error', reject);
        timer = setTimeout(() => reject(new Error(`the forwarder for ${host}:${port} in ${netns} did not start within 10 s: ${out.trim()}`)), 10_000);
      });
    } catch (e) {
      await p.close();
      throw e;
    } finally {
      clearTimeout(timer);
    }
    return p;
  }

  async close(): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 3_000);
    await gone;
    clearTimeout(t);
  }
}

let seq = 0;

/**
 * A privileged Debian container booted with systemd as PID 1, in the network
 * namespace `netns` (/run/netns/<it>: the container then has that
 * namespace's interfaces and addresses, as a machine has its own), or on the
 * host network without one.
 */
export class SystemdContainer {
  private constructor(readonly name: string) {}

  static async boot(opts: { image: string; hostname: string; netns?: string; mounts?: Array<[string, string]> }): Promise<SystemdContainer> {
    const name = `hepto-systest-${process.pid}-${++seq}-${opts.hostname}`;
    const network = opts.netns ? `ns:/run/netns/${opts.netns}` : 'host';
    const args = ['run', '-d', '--name', name, '--hostname', opts.hostname, '--privileged', '--network', network, '--runtime', 'runc'];
    args.push('--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=4096:4096', '--systemd=always', '--label', 'io.hepto.systest=true');
    for (const [host, inside] of opts.mounts ?? []) args.push('-v', `${host}:${inside}:ro`);
    args.push(opts.image);
    await check('podman', args);
    const c = new SystemdContainer(name);
    try {
      await waitFor(
        `systemd to boot in ${name}`,
        async () => {
          const r = await c.exec('systemctl is-system-running');
          return ['running', 'degraded'].includes(r.stdout.trim());
        },
        60_000,
      );
    } catch (e) {
      await c.remove();
      throw e;
    }
    return c;
  }

  /**
   * Runs a sh script inside, as root unless `user` is given. With `stdin` the
   * script goes to `sh -s` on its standard input, not on sh's command line:
   * as a user types a line holding keys into a shell, where no process's
   * argv carries them (what ArgvSampler checks).
   */
  exec(script: string, opts: { user?: string; timeoutMs?: number; stdin?: boolean } = {}): Promise<Result> {
    const args = ['exec'];
    if (opts.stdin) args.push('-i');
    if (opts.user) args.push('--user', opts.user);
    args.push(this.name, 'sh');
    if (opts.stdin) {
      args.push('-s');
      return run('podman', args, { timeoutMs: opts.timeoutMs ?? 120_000, input: script });
    }
    args.push('-c', script);
    return run('podman', args, { timeoutMs: opts.timeoutMs ?? 120_000 });
  }

  /** Runs a script that must succeed; returns its stdout. */
  async ok(script: string, opts: { timeoutMs?: number } = {}): Promise<string> {
    const r = await this.exec(script, opts);
    if (r.code !== 0) throw new Error(`in ${this.name}: ${script}\nexited ${r.code}:\n${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  /** Writes `text` to `file` inside (mode 0644, directories made). */
  async writeFile(file: string, text: string): Promise<void> {
    const r = await run('podman', ['exec', '-i', this.name, 'sh', '-c', `mkdir -p "$(dirname "$1")" && cat > "$1" && chmod 0644 "$1"`, 'sh', file], {
      input: text,
    });
    if (r.code !== 0) throw new Error(`in ${this.name}: cannot write ${file}: ${r.stderr}`);
  }

  async remove(): Promise<void> {
    await run('podman', ['rm', '-f', '-t', '2', this.name], { timeoutMs: 60_000 }).catch(() => undefined);
  }
}

/** test/system/argv-sampler.c, built static into `dir` (gcc, as for the wesher stand-in); the binary's path. */
export async function buildArgvSampler(dir: string): Promise<string> {
  const out = path.join(dir, 'argv-sampler');
  await check('gcc', ['-static', '-O2', '-Wall', '-s', '-o', out, path.join(ROOT, 'test/system/argv-sampler.c')], { timeoutMs: 120_000 });
  return out;
}

/** What an ArgvSampler saw. */
export interface ArgvSample {
  /** Full passes over /proc/<pid>/cmdline. */
  sweeps: number;
  /** Command lines read in all (non-empty ones). */
  reads: number;
  ms: number;
  maxSweepUs: number;
  /** Each distinct command line seen, its NULs and newlines as spaces. */
  cmdlines: string[];
}

/**
 * argv-sampler running inside a machine as a transient systemd unit, sweeping
 * /proc/<pid>/cmdline of every process there (nested containers' included)
 * until stopped. It holds no secret: the test looks for the keys in what it saw.
 */
export class ArgvSampler {
  static readonly UNIT = 'hepto-test-argv-sampler';
  private static readonly DIR = '/root/.hepto-test-argv-sampler';
  private constructor(private readonly c: SystemdContainer) {}

  static async start(c: SystemdContainer, binary: string): Promise<ArgvSampler> {
    const d = ArgvSampler.DIR;
    await c.ok(`rm -rf ${d} && mkdir -m 0700 ${d}`);
    await check('podman', ['cp', binary, `${c.name}:${d}/argv-sampler`]);
    // Niced: it takes only what CPU the machine leaves idle, and still sweeps thousands of times a second.
    await c.ok(`systemd-run --quiet --collect --unit ${ArgvSampler.UNIT} -p Nice=19 ${d}/argv-sampler ${d}/out ${d}/stop`);
    const s = new ArgvSampler(c);
    await waitFor('argv-sampler to start', async () => (await c.exec(`head -n 1 ${d}/out`)).stdout === '# started\n', 10_000, 100);
    return s;
  }

  /** Stops it, and returns what it saw. */
  async stop(): Promise<ArgvSample> {
    const d = ArgvSampler.DIR;
    await this.c.ok(`touch ${d}/stop`);
    await waitFor('argv-sampler to stop', async () => (await this.c.exec(`systemctl is-active ${ArgvSampler.UNIT}`)).stdout.trim() !== 'active', 10_000, 100);
    const text = await this.c.ok(`cat ${d}/out; rm -rf ${d}`);
    const lines = text.split('\n').filter(Boolean);
    const m = /^# sweeps (\d+) reads (\d+) ms (\d+) max_sweep_us (\d+)$/.exec(lines[lines.length - 1] ?? '');
    if (!m) throw new Error(`argv-sampler did not finish its output (last line: ${JSON.stringify((lines[lines.length - 1] ?? '').slice(0, 80))})`);
    return { sweeps: Number(m[1]), reads: Number(m[2]), ms: Number(m[3]), maxSweepUs: Number(m[4]), cmdlines: lines.filter((l) => !l.startsWith('# ')) };
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

export { freePort } from '../helpers/free-port';
