/**
 * A real Podman for tests: its own `podman system service` on a socket in a
 * temp dir, with its own containers.conf (runc, explicit ulimits, file
 * events, no systemd) and its own store, so it never sees or touches other
 * containers on the machine. The store and its stand-in images are cached
 * under /var/tmp/hepto-podman-test (rebuilt when missing). If Podman cannot
 * run, start() throws with the reason and the fix: tests fail, never skip.
 */
import { spawn, type ChildProcess } from 'child_process';
import { createHash } from 'crypto';
import fs from 'fs';
import os from 'os';
import path from 'path';
import Dockerode from 'dockerode';
import { PodmanCli, run, storePaths } from '../helpers/podman-cli';

/** Overridable so that two runs on one machine keep apart (a developer's and a helper's). */
/**
 * This kernel has no WireGuard module: the agent's overlay link is made as a
 * veth instead, through the one test hook for it (agent/runtime/overlay-link.ts).
 */
process.env.HEPTO_TEST_LINK_KIND ??= 'veth';

export const STATE_DIR = process.env.HEPTO_PODMAN_TEST_DIR ?? '/var/tmp/hepto-podman-test';

/**
 * containers.conf for a test Podman: runc (crun refuses hybrid cgroups here),
 * ulimits the sandbox allows, file events (no journald), cgroupfs (no systemd),
 * state kept apart from the host's Podman. Also used by the netns hosts.
 */
export function testContainersConf(stateDir: string, runDir: string): string {
  return [
    '[containers]',
    'default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]',
    '[engine]',
    'runtime = "runc"',
    'cgroup_manager = "cgroupfs"',
    'events_logger = "file"',
    `events_logfile_path = "${runDir}/events.log"`,
    `tmp_dir = "${runDir}/libpod"`,
    '[network]',
    // netavark, as on a Debian 12 install with its Recommends; never CNI picked up from old state.
    'network_backend = "netavark"',
    `network_config_dir = "${stateDir}/networks"`,
    '',
  ].join('\n');
}
export const RUN_DIR = process.env.HEPTO_PODMAN_TEST_RUN ?? '/run/hepto-podman-test';
const REPO = path.resolve(__dirname, '../../..');
export const STAND_INS = {
  wesher: 'localhost/hepto-standin-wesher:test',
  k3s: 'localhost/hepto-standin-k3s:test',
  exits: 'localhost/hepto-standin-exits:test',
};

export interface Deadline {
  timeoutMs?: number;
  what: string;
}

/** Polls `cond` until it returns a truthy value or the deadline passes (then throws naming `what`). */
export async function waitFor<T>(cond: () => Promise<T> | T, d: Deadline): Promise<NonNullable<T>> {
  const end = Date.now() + (d.timeoutMs ?? 15_000);
  let last: unknown;
  for (;;) {
    try {
      const v = await cond();
      if (v) return v as NonNullable<T>;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out waiting for ${d.what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The network namespace the test Podman runs in: a `--network host` container
 * (wesher) and the overlay link the agent makes in it stay off this machine's
 * own network. Named after the store, so two harnesses on one machine keep apart.
 */
export const NETNS = `hepto-pt-${createHash('sha256').update(STATE_DIR).digest('hex').slice(0, 8)}`;

const HOST_ADDRESS = '2001:db8:7e57::1';

export class PodmanHarness extends PodmanCli {
  readonly dir: string;
  /** Network namespace of the Podman service (see NETNS); `ip -n` it, or nsenter --net=/run/netns/<it>. */
  readonly netns = NETNS;
  private service: ChildProcess | null = null;
  private serviceLog = '';

  private constructor(dir: string) {
    super({ socket: path.join(dir, 'podman.sock'), ...storePaths(STATE_DIR, RUN_DIR) });
    this.dir = dir;
  }

  /** The podman CLI inside the service's network namespace, so `podman run` sees what the agent's containers see. */
  override podman(...args: string[]): Promise<string> {
    return run('nsenter', [`--net=/run/netns/${this.netns}`, 'podman', ...this.globalArgs, ...args], this.env);
  }

  /** Runs `ip` inside the service's network namespace. */
  ip(...args: string[]): Promise<string> {
    return run('ip', ['-n', this.netns, ...args], process.env);
  }

  /**
   * The namespace's own address (documentation prefix, on a veth made for it):
   * what a node in host mode gives wesher to bind to, as a machine's address.
   */
  readonly hostAddress = HOST_ADDRESS;

  private static async freshNetns(): Promise<void> {
    await run('ip', ['netns', 'del', NETNS], process.env).catch(() => undefined);
    await run('ip', ['netns', 'add', NETNS], process.env);
    const ip = (...args: string[]): Promise<string> => run('ip', ['-n', NETNS, ...args], process.env);
    await ip('link', 'set', 'lo', 'up');
    await ip('link', 'add', 'hpt-host0', 'type', 'veth', 'peer', 'name', 'hpt-host1');
    await ip('addr', 'add', `${HOST_ADDRESS}/64`, 'dev', 'hpt-host0', 'nodad');
    await ip('addr', 'add', '192.0.2.200/24', 'dev', 'hpt-host0');
    await ip('link', 'set', 'hpt-host0', 'up');
    await ip('link', 'set', 'hpt-host1', 'up');
  }

  /**
   * `registriesConf`: the text of a registries.conf (e.g. registriesConf() from
   * test/helpers/registry.ts, which sends docker.io and ghcr.io to a local
   * registry). Written into this harness's temp dir and passed as
   * CONTAINERS_REGISTRIES_CONF to both the CLI and `podman system service`.
   * Without it, Podman reads the machine's registries.conf as before.
   */
  static async start(opts: { registriesConf?: string } = {}): Promise<PodmanHarness> {
    for (const bin of ['podman', 'runc']) {
      try {
        await run('sh', ['-c', `command -v ${bin}`], process.env);
      } catch {
        throw new Error(`${bin} is not installed; the Podman tests need it: apt-get install -y podman runc busybox-static (test/run.sh does this)`);
      }
    }
    fs.mkdirSync(STATE_DIR, { recursive: true });
    fs.mkdirSync(RUN_DIR, { recursive: true });
    fs.writeFileSync(path.join(STATE_DIR, 'containers.conf'), testContainersConf(STATE_DIR, RUN_DIR));
    const h = new PodmanHarness(fs.mkdtempSync(path.join(os.tmpdir(), 'hepto-podman-')));
    if (opts.registriesConf !== undefined) {
      const file = path.join(h.dir, 'registries.conf');
      fs.writeFileSync(file, opts.registriesConf);
      h.env.CONTAINERS_REGISTRIES_CONF = file; // the service is spawned with h.env too
    }
    try {
      await PodmanHarness.freshNetns();
      await h.removeAll(); // leftovers of an interrupted run
      // ...and the anonymous volumes of containers a test ran by hand without -v (the store is shared across runs).
      await h.podman('volume', 'prune', '-f');
      await h.buildStandIns(path.join(REPO, 'test/fixtures/stand-in-images.sh'));
      await h.startService();
    } catch (e) {
      await h.close().catch(() => undefined);
      throw new Error(`Podman cannot run for the tests: ${(e as Error).message}`);
    }
    return h;
  }

  docker(): Dockerode {
    return new Dockerode({ socketPath: this.socket });
  }

  async startService(): Promise<void> {
    if (this.service) return;
    fs.rmSync(this.socket, { force: true });
    this.serviceLog = '';
    // nsenter --net rather than `ip netns exec`, which remounts /sys and hides the cgroup mounts runc needs.
    const p = spawn('nsenter', [`--net=/run/netns/${this.netns}`, 'podman', ...this.globalArgs, 'system', 'service', '--time=0', `unix://${this.socket}`], {
      env: this.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    p.stdout?.on('data', (d) => (this.serviceLog += d));
    p.stderr?.on('data', (d) => (this.serviceLog += d));
    this.service = p;
    let exited = false;
    p.once('exit', () => {
      exited = true;
      if (this.service === p) this.service = null;
    });
    const d = this.docker();
    await waitFor(
      async () => {
        if (exited) throw new Error(`podman system service exited: ${this.serviceLog.trim().slice(-500)}`);
        await d.ping();
        return true;
      },
      { what: `Podman API on ${this.socket}`, timeoutMs: 20_000 },
    );
  }

  async stopService(): Promise<void> {
    const p = this.service;
    if (!p) return;
    this.service = null;
    const gone = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill('SIGTERM');
    const t = setTimeout(() => p.kill('SIGKILL'), 5_000);
    await gone;
    clearTimeout(t);
  }

  /** Removes every container and hepto network in the test store, and the overlay link the agent made. */
  async removeAll(): Promise<void> {
    await this.removeContainers();
    await this.ip('link', 'del', 'wgoverlay').catch(() => undefined);
    const nets = (await this.podman('network', 'ls', '--format', '{{.Name}}').catch(() => '')).split('\n').filter((n) => n.startsWith('hepto-'));
    for (const n of nets) await this.podman('network', 'rm', '-f', n).catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.removeAll();
    await this.stopService();
    await run('ip', ['netns', 'del', this.netns], process.env).catch(() => undefined);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
