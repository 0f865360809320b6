/**
 * The podman command line bound to one test store (its own root, runroot and
 * containers.conf), shared by the Podman harness and the netns hosts' Podmans.
 */
import { execFile } from 'child_process';
import * as path from 'path';

export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs = 120_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { env, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${String(stderr).trim() || err.message}`));
      else resolve(String(stdout));
    });
  });
}

export interface ContainerInspect {
  Id: string;
  State: { Status: string; Pid: number; StartedAt: string; ExitCode: number };
  Config: { Env: string[]; Labels: Record<string, string>; Hostname: string; Cmd: string[] | null };
  HostConfig: Record<string, unknown>;
}

export class PodmanCli {
  readonly socket: string;
  readonly env: NodeJS.ProcessEnv;
  readonly globalArgs: string[];

  constructor(opts: { socket: string; conf: string; root: string; runroot: string }) {
    this.socket = opts.socket;
    this.env = { ...process.env, CONTAINERS_CONF: opts.conf };
    this.globalArgs = ['--root', opts.root, '--runroot', opts.runroot];
  }

  podman(...args: string[]): Promise<string> {
    return run('podman', [...this.globalArgs, ...args], this.env);
  }

  /** Builds (or finds cached) the busybox stand-in images in this store. */
  buildStandIns(script: string): Promise<string> {
    return run(script, ['build'], { ...this.env, PODMAN: ['podman', ...this.globalArgs].join(' ') }, 300_000);
  }

  async inspect(name: string): Promise<ContainerInspect | null> {
    try {
      return JSON.parse(await this.podman('inspect', '--type', 'container', name))[0];
    } catch {
      return null;
    }
  }

  /** Removes every container. Twice: k3s shares wesher's namespace, so the first pass may refuse wesher. */
  async removeContainers(): Promise<void> {
    await this.podman('rm', '-af', '-t', '0').catch(() => undefined);
    await this.podman('rm', '-af', '-t', '0').catch(() => undefined);
  }
}

export function storePaths(stateDir: string, runDir: string): { conf: string; root: string; runroot: string } {
  return { conf: path.join(stateDir, 'containers.conf'), root: path.join(stateDir, 'root'), runroot: path.join(runDir, 'runroot') };
}
