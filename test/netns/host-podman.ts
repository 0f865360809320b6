/**
 * One Podman per test host, as on real machines: its own store, run dir,
 * events log and API socket, its service running in the host's network
 * namespace, so a `--network host` container (wesher) lives on that host's
 * network. The agent owns every hepto container of its Podman (it removes
 * those of nodes it does not host), so two agents must never share one.
 *
 * The service is entered with `nsenter --net` rather than `ip netns exec`:
 * the latter remounts /sys, which hides the cgroup mounts runc needs.
 * Images are the Podman tests' stand-ins (test/fixtures/stand-in-images.sh),
 * imported into each store (about 3 s). Settings follow the Podman tests'
 * harness (runc, explicit ulimits, cgroupfs, file events).
 */
import { execFile, spawn, type ChildProcess } from 'child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'fs';
import * as http from 'http';
import * as path from 'path';
import { waitFor } from '../helpers/agent-cluster';
import { testContainersConf } from '../podman/harness';
import type { NetnsHost } from '../helpers/netns';

const STAND_IN_SCRIPT = path.resolve(__dirname, '../../../test/fixtures/stand-in-images.sh');

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 120_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env, timeout: timeoutMs, maxBuffer: 8 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${String(stderr).trim() || err.message}`));
      else resolve(String(stdout));
    });
  });
}

function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ socketPath, path: '/_ping', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });
}

export class HostPodman {
  readonly socket: string;
  private readonly env: NodeJS.ProcessEnv;
  private readonly globalArgs: string[];
  private service: ChildProcess | null = null;
  private log = '';

  private constructor(
    readonly host: NetnsHost,
    readonly dir: string,
  ) {
    this.socket = path.join(dir, 'podman.sock');
    const conf = path.join(dir, 'containers.conf');
    this.env = { ...process.env, CONTAINERS_CONF: conf };
    this.globalArgs = ['--root', path.join(dir, 'root'), '--runroot', path.join(dir, 'runroot')];
  }

  /** Builds the store (stand-in images) and starts the API service inside the host's namespace. */
  static async start(host: NetnsHost, dir: string): Promise<HostPodman> {
    mkdirSync(dir, { recursive: true });
    const p = new HostPodman(host, dir);
    writeFileSync(path.join(dir, 'containers.conf'), testContainersConf(dir, dir));
    try {
      await run(STAND_IN_SCRIPT, ['build'], { ...p.env, PODMAN: ['podman', ...p.globalArgs].join(' ') }, 300_000);
      await p.startService();
    } catch (e) {
      await p.close();
      throw new Error(`Podman cannot run on ${host.ns}: ${(e as Error).message}`);
    }
    return p;
  }

  private async startService(): Promise<void> {
    rmSync(this.socket, { force: true });
    const proc = spawn('nsenter', [`--net=/run/netns/${this.host.ns}`, 'podman', ...this.globalArgs, 'system', 'service', '--time=0', `unix://${this.socket}`], {
      env: this.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.service = proc;
    proc.stdout?.on('data', (d) => (this.log += d));
    proc.stderr?.on('data', (d) => (this.log += d));
    proc.once('exit', () => {
      if (this.service === proc) this.service = null;
    });
    await waitFor(
      `Podman API on ${this.socket}`,
      async () => {
        if (!this.service) throw new Error(`podman system service exited: ${this.log.trim().slice(-400)}`);
        return ping(this.socket);
      },
      20_000,
    );
  }

  /** The podman CLI on this host's store. */
  podman(...args: string[]): Promise<string> {
    return run('podman', [...this.globalArgs, ...args], this.env);
  }

  async inspect(name: string): Promise<{ State: { Status: string; ExitCode: number; Pid: number } } | null> {
    try {
      return JSON.parse(await this.podman('inspect', '--type', 'container', name))[0];
    } catch {
      return null;
    }
  }

  async removeAll(): Promise<void> {
    // Twice: k3s shares wesher's namespace, so the first pass may refuse wesher.
    await this.podman('rm', '-af', '-t', '0').catch(() => undefined);
    await this.podman('rm', '-af', '-t', '0').catch(() => undefined);
  }

  /** Removes every container, stops the service, deletes the store. Never throws. */
  async close(): Promise<void> {
    await this.removeAll();
    const proc = this.service;
    if (proc) {
      this.service = null;
      const gone = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await gone;
      clearTimeout(t);
    }
    // containers/storage bind-mounts its overlay directory onto itself; nothing else may stay mounted.
    const mounts = readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[1])
      .filter((m) => m && (m === this.dir || m.startsWith(`${this.dir}/`)))
      .sort((a, b) => b.length - a.length);
    for (const m of mounts) await run('umount', ['-l', m], process.env).catch(() => undefined);
    try {
      rmSync(this.dir, { recursive: true, force: true });
    } catch (e) {
      console.error(`host-podman: could not remove ${this.dir}: ${(e as Error).message}`);
    }
  }
}
