/**
 * Boots real hepto-agent processes on 127.0.0.x loopback addresses, each with
 * its own config, storage and control socket, and tears everything down
 * afterwards (processes, temp dirs, iptables chain), even when a test fails.
 */
import { spawn, execFileSync, type ChildProcess } from 'child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { requestStatus } from '../../agent/control/client';
import type { StatusDoc } from '../../shared/status';
import { AGENT_NODE_FLAGS } from '../../agent/node-flags';

export const CLI = path.resolve(__dirname, '../../agent/cli.js');
export const OVERLAY_KEY = 'Tst0verlayKey0123456789abcdefXYZ';
export const CLUSTER_KEY = 'Tst1clusterKey0123456789abcdeXYZ';

export interface AgentHandle {
  name: string;
  host: string;
  port: number;
  dir: string;
  configFile: string;
  config: Record<string, unknown>;
  proc: ChildProcess | null;
  logs: string[];
}

let portBase = 20000 + (process.pid % 2000) * 10;

export function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    let last: unknown;
    const attempt = async (): Promise<void> => {
      try {
        const v = await fn();
        last = undefined; // the condition is reachable now; a timeout means it never held
        if (v) return resolve(v as T);
      } catch (e) {
        last = e;
      }
      if (Date.now() > deadline) return reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`));
      setTimeout(() => void attempt(), everyMs);
    };
    void attempt();
  });
}

export class AgentCluster {
  readonly root = mkdtempSync(path.join(os.tmpdir(), 'hepto-cluster-'));
  readonly agents: AgentHandle[] = [];
  private chain: string | null = null;

  /** Adds an agent (not started). Host 127.0.0.(10+i) unless given. */
  add(name: string, opts: { anchors?: AgentHandle[]; overlayKey?: string; extra?: Record<string, unknown>; host?: string } = {}): AgentHandle {
    const i = this.agents.length;
    const host = opts.host ?? `127.0.0.${10 + i}`;
    const port = portBase++;
    const dir = path.join(this.root, name);
    mkdirSync(dir, { recursive: true });
    const config: Record<string, unknown> = {
      node: name,
      master: this.agents[0]?.name ?? name,
      anchors: (opts.anchors ?? []).map((a) => `${a.host}:${a.port}`),
      overlay_key: opts.overlayKey ?? OVERLAY_KEY,
      cluster_key: CLUSTER_KEY,
      gossip_port: port,
      gossip_listen: [host],
      storage_base: path.join(dir, 'srv'),
      control_socket: path.join(dir, 'agent.sock'),
      runtime: 'none',
      // Off unless a test gives each agent its own address: they would all want 127.0.0.1:9947.
      metrics_listen: '',
      ...opts.extra,
    };
    const configFile = path.join(dir, 'hepto.json');
    writeFileSync(configFile, JSON.stringify(config, null, 2), { mode: 0o600 });
    const a: AgentHandle = { name, host, port, dir, configFile, config, proc: null, logs: [] };
    this.agents.push(a);
    return a;
  }

  /** Runs the agent as the installer's wrapper does (agent/node-flags.ts), so tests see the CPU and memory a real node spends. */
  start(a: AgentHandle): void {
    const proc = spawn(process.execPath, [...AGENT_NODE_FLAGS, CLI, 'run', '--config', a.configFile, '--log-format', 'json', '--log-level', 'debug'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    a.proc = proc;
    const collect = (chunk: Buffer): void => {
      for (const line of chunk.toString('utf8').split('\n')) if (line) a.logs.push(line);
    };
    proc.stdout?.on('data', collect);
    proc.stderr?.on('data', collect);
    proc.on('exit', () => {
      if (a.proc === proc) a.proc = null;
    });
  }

  async status(a: AgentHandle): Promise<StatusDoc> {
    return (await requestStatus(String(a.config.control_socket), 3000)) as StatusDoc;
  }

  /** Resolves once `a` lists exactly these members in these states. */
  async waitStates(a: AgentHandle, expected: Record<string, string>, timeoutMs = 20000): Promise<StatusDoc> {
    return waitFor(
      `${a.name} to see ${JSON.stringify(expected)}`,
      async () => {
        const s = await this.status(a);
        const ok = Object.entries(expected).every(([n, st]) => s.members.find((m) => m.name === n)?.state === st);
        return ok ? s : undefined;
      },
      timeoutMs,
    );
  }

  async waitAllSee(watchers: AgentHandle[], expected: Record<string, string>, timeoutMs = 20000): Promise<void> {
    await Promise.all(watchers.map((w) => this.waitStates(w, expected, timeoutMs)));
  }

  kill(a: AgentHandle, signal: NodeJS.Signals): Promise<number | null> {
    const proc = a.proc;
    if (!proc) return Promise.resolve(null);
    return new Promise((resolve) => {
      proc.once('exit', (code) => resolve(code));
      proc.kill(signal);
    });
  }

  /** Drops all traffic between two groups of loopback hosts (both directions). */
  partition(groupA: AgentHandle[], groupB: AgentHandle[]): void {
    if (!this.chain) {
      this.chain = `HEPTO_T${process.pid}`.slice(0, 28);
      execFileSync('iptables', ['-N', this.chain]);
      execFileSync('iptables', ['-I', 'INPUT', '-j', this.chain]);
    }
    for (const a of groupA) {
      for (const b of groupB) {
        execFileSync('iptables', ['-A', this.chain, '-s', a.host, '-d', b.host, '-j', 'DROP']);
        execFileSync('iptables', ['-A', this.chain, '-s', b.host, '-d', a.host, '-j', 'DROP']);
      }
    }
  }

  heal(): void {
    if (this.chain) execFileSync('iptables', ['-F', this.chain]);
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.agents.map((a) => this.kill(a, 'SIGKILL')));
    if (this.chain) {
      try {
        execFileSync('iptables', ['-D', 'INPUT', '-j', this.chain]);
        execFileSync('iptables', ['-F', this.chain]);
        execFileSync('iptables', ['-X', this.chain]);
      } catch {
        /* best effort; reported by the next run's chain creation */
      }
      this.chain = null;
    }
    rmSync(this.root, { recursive: true, force: true });
  }

  /** Log lines of all agents, for failure diagnostics. */
  dump(): string {
    return this.agents.map((a) => `--- ${a.name}\n${a.logs.slice(-40).join('\n')}`).join('\n');
  }
}

export function writeJson(file: string, data: unknown): void {
  writeFileSync(file, JSON.stringify(data, null, 2), { mode: 0o600 });
}
