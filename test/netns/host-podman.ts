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
import { spawn, type ChildProcess } from 'child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'fs';
import * as http from 'http';
import * as path from 'path';
import { waitFor } from '../helpers/agent-cluster';
import { testContainersConf } from '../podman/harness';
import type { NetnsHost } from '../helpers/netns';
import { PodmanCli, run, storePaths } from '../helpers/podman-cli';

const STAND_IN_SCRIPT = path.resolve(__dirname, '../../../test/fixtures/stand-in-images.sh');

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

export class HostPodman extends PodmanCli {
  private service: ChildProcess | null = null;
  private log = '';

  private constructor(
    readonly host: NetnsHost,
    readonly dir: string,
  ) {
    super({ socket: path.join(dir, 'podman.sock'), ...storePaths(dir, dir) });
  }

  /** Builds the store (stand-in images) and starts the API service inside the host's namespace. */
  static async start(host: NetnsHost, dir: string): Promise<HostPodman> {
    mkdirSync(dir, { recursive: true });
    const p = new HostPodman(host, dir);
    writeFileSync(path.join(dir, 'containers.conf'), testContainersConf(dir, dir));
    try {
      await p.buildStandIns(STAND_IN_SCRIPT);
      await p.startService();
    } catch (e) {
      await p.close();
      throw new Error(`Podman cannot run on ${host.ns}: ${(e as Error).message}`);
    }
    return p;
  }

  private async startService(): Promise<void> {
    rmSync(this.socket, { force: true });
    const proc = spawn(
      'nsenter',
      [`--net=/run/netns/${this.host.ns}`, 'podman', ...this.globalArgs, 'system', 'service', '--time=0', `unix://${this.socket}`],
      {
        env: this.env,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
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

  /** Removes every container, stops the service, deletes the store. Never throws. */
  async close(): Promise<void> {
    await this.removeContainers();
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
