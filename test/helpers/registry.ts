/**
 * A real OCI registry on loopback for pull tests: Debian's `docker-registry`
 * (distribution 2.8) serving a temp storage dir on 127.0.0.1, plain HTTP, no
 * auth. A test Podman reaches it through a registries.conf that rewrites
 * docker.io and ghcr.io to it (registriesConf()), so the agent's real image
 * references (docker.io/rancher/k3s:..., ghcr.io/...) are pulled for real,
 * progress and failures included, without any internet. What is pushed
 * there are stand-in images: a pull proves the agent drives Podman's pull,
 * not that the image is the real k3s.
 *
 * The test Podman runs in its own network namespace (PodmanHarness.netns),
 * where the host's loopback is out of reach; the registry then runs in that
 * namespace too (`netns` option), on its 127.0.0.1, and this helper reaches
 * it with curl through nsenter.
 */
import { execFile, spawn, type ChildProcess } from 'child_process';
import { createHash } from 'crypto';
import fs from 'fs';
import http from 'http';
import os from 'os';
import path from 'path';
import type { PodmanCli } from './podman-cli';
import { PodmanHarness, STAND_INS, waitFor } from '../podman/harness';

import { freePort } from './free-port';

export const REGISTRY_BIN = '/usr/bin/docker-registry';
/** The registry hosts a test Podman sends to the local registry. */
export const MIRRORED_REGISTRIES = ['docker.io', 'ghcr.io'];

function get(url: string, netns: string | null, timeoutMs = 2_000, accept = 'application/json'): Promise<{ status: number; body: string }> {
  if (netns) {
    // This process cannot enter the namespace; curl can.
    return new Promise((resolve, reject) => {
      const args = [
        `--net=/run/netns/${netns}`,
        'curl',
        '-sS',
        '--max-time',
        String(Math.ceil(timeoutMs / 1000)),
        '-H',
        `accept: ${accept}`,
        '-w',
        '\n%{http_code}',
        url,
      ];
      execFile('nsenter', args, { timeout: timeoutMs + 2_000 }, (err, stdout, stderr) => {
        if (err) return reject(new Error(`curl ${url} in netns ${netns}: ${String(stderr).trim() || err.message}`));
        const text = String(stdout);
        const cut = text.lastIndexOf('\n');
        resolve({ status: Number(text.slice(cut + 1)), body: text.slice(0, cut) });
      });
    });
  }
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: timeoutMs, headers: { accept } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url} within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

/**
 * registries.conf text sending each of `prefixes` (default docker.io and
 * ghcr.io) to `location` (host:port) over plain HTTP, and allowing the
 * location itself insecurely. No search registries: short names fail.
 */
export function registriesConf(location: string, prefixes: string[] = MIRRORED_REGISTRIES): string {
  const lines = ['unqualified-search-registries = []', ''];
  for (const prefix of prefixes) lines.push('[[registry]]', `prefix = "${prefix}"`, `location = "${location}"`, 'insecure = true', '');
  lines.push('[[registry]]', `location = "${location}"`, 'insecure = true', '');
  return lines.join('\n');
}

/** `docker.io/rancher/k3s:tag` → `rancher/k3s:tag` (the path inside any registry). */
export function repoPath(ref: string): string {
  const first = ref.split('/')[0];
  const hasHost = ref.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  return hasHost ? ref.slice(first.length + 1) : ref;
}

/** The manifest types a registry is asked for, as Podman asks (so that it serves the stored bytes). */
const MANIFEST_TYPES = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

/** One line of the registry's access log (combined log format), when started with `accessLog`. */
export interface RegistryAccess {
  /** The client's address. */
  from: string;
  method: string;
  path: string;
  status: number;
}

export class TestRegistry {
  private proc: ChildProcess | null;
  private log = '';
  private readonly access: RegistryAccess[] = [];
  private partial = '';

  private constructor(
    readonly port: number,
    readonly dir: string,
    /** The network namespace it listens in, or null for this machine's own loopback. */
    readonly netns: string | null,
    proc: ChildProcess,
    /** The address it listens on (default 127.0.0.1). */
    readonly address = '127.0.0.1',
  ) {
    this.proc = proc;
    proc.stdout?.on('data', (d) => this.onOutput(String(d)));
    proc.stderr?.on('data', (d) => this.onOutput(String(d)));
  }

  private onOutput(d: string): void {
    this.log = (this.log + d).slice(-20_000);
    const lines = (this.partial + d).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      // 198.51.100.1 - - [06/Dec/2026:13:48:02 +0000] "GET /v2/... HTTP/1.1" 200 348 "" "agent"
      const m = /^(\S+) \S+ \S+ \[[^\]]*\] "(\S+) (\S+) [^"]*" (\d{3}) /.exec(line);
      if (m) this.access.push({ from: m[1], method: m[2], path: m[3], status: Number(m[4]) });
    }
  }

  /** `127.0.0.1:PORT` (or `ADDRESS:PORT`, `[v6]:PORT`), the location for registries.conf and for pushes. */
  get host(): string {
    return `${this.address.includes(':') ? `[${this.address}]` : this.address}:${this.port}`;
  }

  /** Requests served so far, oldest first (empty unless started with `accessLog`). */
  requests(): RegistryAccess[] {
    return [...this.access];
  }

  /** The digest (sha256:...) of the manifest stored for `repo:tag`, as a pull by tag gets it. */
  async digest(repo: string, tag: string): Promise<string> {
    const r = await get(`http://${this.host}/v2/${repo}/manifests/${tag}`, this.netns, 5_000, MANIFEST_TYPES);
    if (r.status !== 200) throw new Error(`registry manifest ${repo}:${tag}: HTTP ${r.status} ${r.body}`);
    return `sha256:${createHash('sha256').update(r.body, 'utf8').digest('hex')}`;
  }

  /** The reference of `ref` (with or without registry host) in this registry. */
  ref(ref: string): string {
    return `${this.host}/${repoPath(ref)}`;
  }

  /** The last lines the registry printed (for failure messages). */
  output(): string {
    return this.log.trim().split('\n').slice(-20).join('\n');
  }

  /**
   * Starts a registry on 127.0.0.1, storage in a fresh temp dir. In `netns`
   * (a named namespace, /run/netns/<it>) when given: Podman's there, and the
   * registry must be where Podman can reach it. Port: `port` if given, else
   * 5000 in a netns (a fresh one has nothing listening), else a free port
   * picked by the kernel (not 5000: a docker-registry service installed by
   * the package may hold it, and parallel test runs would race for it).
   * Resolves once /v2/ answers 200; throws with the reason and the fix otherwise.
   * `address`: listen there instead of 127.0.0.1 (an address of `netns`, for
   * clients in other namespaces). `accessLog`: keep one RegistryAccess per
   * request served (requests()).
   */
  static async start(opts: { port?: number; netns?: string; timeoutMs?: number; address?: string; accessLog?: boolean } = {}): Promise<TestRegistry> {
    if (!fs.existsSync(REGISTRY_BIN)) {
      throw new Error(`${REGISTRY_BIN} is missing; the registry tests need it: apt-get install -y docker-registry (test/run.sh does this)`);
    }
    const netns = opts.netns ?? null;
    const address = opts.address ?? '127.0.0.1';
    const port = opts.port ?? (netns ? 5000 : await freePort());
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hepto-registry-'));
    const config = path.join(dir, 'config.yml');
    fs.mkdirSync(path.join(dir, 'storage'));
    fs.writeFileSync(
      config,
      [
        'version: 0.1',
        'log:',
        '  level: warn',
        '  accesslog:',
        `    disabled: ${opts.accessLog ? 'false' : 'true'}`,
        'storage:',
        '  filesystem:',
        `    rootdirectory: ${path.join(dir, 'storage')}`,
        '  delete:',
        '    enabled: true',
        '  maintenance:',
        '    uploadpurging:',
        '      enabled: false',
        'http:',
        `  addr: ${address.includes(':') ? `[${address}]` : address}:${port}`,
        '',
      ].join('\n'),
    );
    // nsenter execs the registry (no fork for a network namespace): its pid is the registry's.
    const argv = netns ? ['nsenter', `--net=/run/netns/${netns}`, REGISTRY_BIN, 'serve', config] : [REGISTRY_BIN, 'serve', config];
    const proc = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    const r = new TestRegistry(port, dir, netns, proc, address);
    let exited: string | null = null;
    proc.once('exit', (code, signal) => {
      exited = `exited (${signal ?? code})`;
      r.proc = null;
    });
    proc.once('error', (e) => (exited = e.message));
    try {
      await waitFor(
        async () => {
          if (exited) throw new Error(`docker-registry ${exited}: ${r.output()}`);
          return (await get(`http://${r.host}/v2/`, netns)).status === 200;
        },
        { what: `docker-registry answering on http://${r.host}/v2/${netns ? ` in netns ${netns}` : ''}`, timeoutMs: opts.timeoutMs ?? 15_000 },
      );
    } catch (e) {
      await r.stop();
      throw e;
    }
    return r;
  }

  /** The tags of `repo` (e.g. rancher/k3s) in this registry, [] if none. */
  async tags(repo: string): Promise<string[]> {
    const r = await get(`http://${this.host}/v2/${repo}/tags/list`, this.netns);
    if (r.status === 404) return [];
    if (r.status !== 200) throw new Error(`registry tags/list for ${repo}: HTTP ${r.status} ${r.body}`);
    return (JSON.parse(r.body) as { tags: string[] | null }).tags ?? [];
  }

  /**
   * Pushes `localRef` from `cli`'s store to this registry under the path of
   * `publicRef` (e.g. docker.io/rancher/k3s:v1.33.5-k3s1 → HOST/rancher/k3s:v1.33.5-k3s1),
   * so that a Podman with registriesConf(this.host) pulls it as `publicRef`.
   */
  async publish(cli: PodmanCli, localRef: string, publicRef: string): Promise<string> {
    const target = this.ref(publicRef);
    await cli.podman('push', '--quiet', '--tls-verify=false', localRef, `docker://${target}`);
    return target;
  }

  /** Stops the registry (SIGTERM, SIGKILL after 5 s) and removes its storage. */
  async stop(): Promise<void> {
    const p = this.proc;
    if (p && p.exitCode === null && p.signalCode === null) {
      const gone = new Promise<void>((res) => p.once('exit', () => res()));
      p.kill('SIGTERM');
      const t = setTimeout(() => p.kill('SIGKILL'), 5_000);
      await gone;
      clearTimeout(t);
    }
    this.proc = null;
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The k3s reference the agent pulls by default, published from the k3s stand-in. */
export const MIRRORED_K3S = 'docker.io/rancher/k3s:v1.33.5-k3s1';

export interface MirroredPodman {
  registry: TestRegistry;
  /** A test Podman whose docker.io and ghcr.io pulls go to `registry`. */
  harness: PodmanHarness;
  /** Public reference → the local stand-in pushed under it. */
  published: Record<string, string>;
  /**
   * Removes the published images from the Podman store, so that the next
   * reconcile has to pull them (the store is shared between test runs).
   */
  forget(): Promise<void>;
  /** Removes containers and pulled images, stops Podman and the registry. */
  close(): Promise<void>;
}

/**
 * A registry plus a Podman pointed at it, with stand-ins published under the
 * agent's real references. Default: the k3s stand-in as
 * docker.io/rancher/k3s:v1.33.5-k3s1 (DEFAULT_IMAGES.k3s). To run a whole
 * Supervisor against it:
 *
 *   const m = await startMirroredPodman();
 *   await m.forget();  // make the supervisor pull
 *   testConfig({ ..., podman_socket: m.harness.socket,
 *                images: { wesher: STAND_INS.wesher, k3s: MIRRORED_K3S } })
 *   ...
 *   await m.close();
 */
export async function startMirroredPodman(opts: { publish?: Record<string, string>; prefixes?: string[] } = {}): Promise<MirroredPodman> {
  const publish = opts.publish ?? { [MIRRORED_K3S]: STAND_INS.k3s };
  // The harness makes a fresh network namespace for its Podman; the registry
  // starts in it afterwards, on a port fixed beforehand for registries.conf.
  const port = 5000;
  const harness = await PodmanHarness.start({ registriesConf: registriesConf(`127.0.0.1:${port}`, opts.prefixes) });
  let registry: TestRegistry;
  try {
    registry = await TestRegistry.start({ netns: harness.netns, port });
  } catch (e) {
    await harness.close();
    throw e;
  }
  const forget = async (): Promise<void> => {
    for (const ref of Object.keys(publish)) await harness.podman('rmi', '-f', ref).catch(() => undefined);
  };
  const close = async (): Promise<void> => {
    try {
      await registry.stop();
    } finally {
      await forget();
      await harness.close(); // removes containers, stops Podman, deletes its namespace
    }
  };
  try {
    for (const [publicRef, localRef] of Object.entries(publish)) await registry.publish(harness, localRef, publicRef);
    await forget();
  } catch (e) {
    await close();
    throw e;
  }
  return { registry, harness, published: publish, forget, close };
}
