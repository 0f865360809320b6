/**
 * Real agents on the hosts of a NetnsTopology: the loopback AgentCluster
 * (config, status, waits, kill, cleanup), with each agent started inside its
 * host's namespace, gossiping over that host's IPv6 address on port 7947.
 * Control sockets and storage stay in the cluster's temp dir on the shared
 * filesystem, so status is asked from the root namespace.
 */
import { spawn, execFile } from 'child_process';
import { AgentCluster, CLI, waitFor, type AgentHandle } from '../helpers/agent-cluster';
import { GOSSIP_PORT, NetnsTopology, type NetnsHost } from '../helpers/netns';
import type { StatusDoc } from '../../shared/status';
import { AGENT_NODE_FLAGS } from '../../agent/node-flags';

export interface HostAgent extends AgentHandle {
  on: NetnsHost;
  /** Extra environment for the agent process (e.g. libfaketime). */
  env: Record<string, string>;
  /** Pids of every start, oldest first. */
  pids: number[];
}

export interface AddOptions {
  /** Anchor hosts (their `[v6]:7947`) or literal anchor strings. */
  anchors?: Array<NetnsHost | string>;
  overlayKey?: string;
  extra?: Record<string, unknown>;
  env?: Record<string, string>;
}

export class NetnsCluster extends AgentCluster {
  constructor(
    readonly topo: NetnsTopology,
    private readonly logLevel: 'debug' | 'info' = 'debug',
  ) {
    super();
  }

  /** Configures an agent on `host` (not started). The gossip listen address is left at its default (all). */
  on(host: NetnsHost, name: string, opts: AddOptions = {}): HostAgent {
    const anchors = (opts.anchors ?? []).map((a) => (typeof a === 'string' ? a : a.gossip));
    const base = this.add(name, {
      host: host.v6,
      overlayKey: opts.overlayKey,
      extra: { anchors, gossip_port: GOSSIP_PORT, gossip_listen: ['::'], ...opts.extra },
    });
    const a = Object.assign(base, { on: host, env: opts.env ?? {}, pids: [] as number[] });
    a.port = GOSSIP_PORT;
    return a;
  }

  override start(a: AgentHandle): void {
    const h = a as HostAgent;
    if (!h.on) throw new Error(`${a.name} was not added with on(): it has no host namespace`);
    const proc = spawn(
      'ip',
      [
        'netns',
        'exec',
        h.on.ns,
        process.execPath,
        ...AGENT_NODE_FLAGS,
        CLI,
        'run',
        '--config',
        a.configFile,
        '--log-format',
        'json',
        '--log-level',
        this.logLevel,
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, ...h.env },
      },
    );
    a.proc = proc;
    if (proc.pid) h.pids.push(proc.pid);
    const collect = (chunk: Buffer): void => {
      for (const line of chunk.toString('utf8').split('\n')) if (line) a.logs.push(line);
    };
    proc.stdout?.on('data', collect);
    proc.stderr?.on('data', collect);
    proc.on('exit', (code, signal) => {
      a.logs.push(`[harness] exited code=${code} signal=${signal}`);
      if (a.proc === proc) a.proc = null;
    });
  }

  /** Starts `a` and resolves once it says it has started (listening for gossip); fails fast if it exits. */
  async startReady(a: HostAgent, timeoutMs = 20000): Promise<void> {
    this.start(a);
    await waitFor(
      `${a.name} to start`,
      () => {
        if (a.logs.some((l) => l.includes('"agent started"'))) return true;
        if (!a.proc) throw new Error(`${a.name} exited during start-up:\n${a.logs.slice(-10).join('\n')}`);
        return false;
      },
      timeoutMs,
    );
  }

  /**
   * The usual way a cluster comes up: the first agent (the anchor) is up
   * before the others start, together. (Joiners started before their only
   * anchor is a separate scenario.)
   */
  async boot(agents: HostAgent[]): Promise<void> {
    const [first, ...rest] = agents;
    await this.startReady(first);
    rest.forEach((a) => this.start(a));
  }

  /** `hepto-agent status --json --config F`, the real command, run from the root namespace. */
  statusCli(a: AgentHandle): Promise<StatusDoc> {
    return new Promise((resolve, reject) => {
      execFile(process.execPath, [CLI, 'status', '--json', '--config', a.configFile], { timeout: 15000 }, (err, stdout, stderr) => {
        if (err) return reject(new Error(`status --json for ${a.name} failed: ${stderr.trim() || err.message}`));
        try {
          resolve(JSON.parse(stdout) as StatusDoc);
        } catch {
          reject(new Error(`status --json for ${a.name} printed no JSON: ${stdout.slice(0, 200)}`));
        }
      });
    });
  }

  /** Member name → state, as agent `a` sees it. */
  async states(a: AgentHandle): Promise<Record<string, string>> {
    const s = await this.status(a);
    return Object.fromEntries(s.members.map((m) => [m.name, m.state]));
  }

  /** Agents currently running. */
  running(): HostAgent[] {
    return this.agents.filter((a) => a.proc) as HostAgent[];
  }
}

/** { name: state } for every agent given. */
export function everyone(agents: AgentHandle[], state: string): Record<string, string> {
  return Object.fromEntries(agents.map((a) => [a.name, state]));
}

/** What a suite's hooks maintain: one topology for the suite, a fresh cluster per test. */
export interface NetnsEnv {
  topo: NetnsTopology;
  cluster: NetnsCluster;
}

/**
 * Registers the mocha hooks of a multi-host suite: the topology is built once
 * (before) and destroyed at the end (after, even on failure); each test gets
 * fresh agents, which are killed, with their fault rules cleared, after it.
 * A failed test prints the tail of every agent's log.
 */
export function useNetns(
  hosts: number,
  opts: {
    logLevel?: 'debug' | 'info';
    /** After the topology is up (e.g. a Podman per host). */
    setup?: (env: NetnsEnv) => Promise<void>;
    /** After each test, once its agents are gone. */
    afterAgents?: () => Promise<void>;
    /** Before the topology is destroyed, even when setup failed half way. */
    teardown?: () => Promise<void>;
  } = {},
): NetnsEnv {
  const env = {} as NetnsEnv;
  before(async function () {
    env.topo = NetnsTopology.create(hosts);
    await opts.setup?.(env);
  });
  beforeEach(function () {
    env.cluster = new NetnsCluster(env.topo, opts.logLevel ?? 'debug');
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      console.error(env.cluster.dump());
      for (const a of env.cluster.running()) {
        const s = await env.cluster.status(a).catch((e: Error) => e.message);
        console.error(
          `status of ${a.name}: ${typeof s === 'string' ? s : JSON.stringify({ members: s.members.map((m) => `${m.name}:${m.state}`), problems: s.problems })}`,
        );
      }
    }
    await env.cluster?.cleanup();
    await opts.afterAgents?.();
    env.topo?.clearRules();
  });
  after(async function () {
    try {
      await opts.teardown?.();
    } finally {
      env.topo?.destroy();
    }
  });
  return env;
}

/** One non-alive sighting during an observation window. */
export interface Sighting {
  atMs: number;
  watcher: string;
  member: string;
  state: string;
}

/**
 * Polls every watcher's status every `everyMs` for `durationMs` (a deliberate
 * observation window, not a wait) and returns every member seen in a state
 * other than alive, plus status requests that failed.
 */
export async function observe(
  cluster: NetnsCluster,
  watchers: AgentHandle[],
  durationMs: number,
  everyMs = 500,
): Promise<{ sightings: Sighting[]; errors: string[]; polls: number }> {
  const start = Date.now();
  const sightings: Sighting[] = [];
  const errors: string[] = [];
  let polls = 0;
  while (Date.now() - start < durationMs) {
    const tick = Date.now();
    await Promise.all(
      watchers.map(async (w) => {
        try {
          const s = await cluster.status(w);
          for (const m of s.members) if (m.state !== 'alive') sightings.push({ atMs: tick - start, watcher: w.name, member: m.name, state: m.state });
        } catch (e) {
          errors.push(`${w.name} at ${tick - start} ms: ${(e as Error).message}`);
        }
      }),
    );
    polls++;
    await new Promise((r) => setTimeout(r, Math.max(0, everyMs - (Date.now() - tick))));
  }
  return { sightings, errors, polls };
}

/** Runs `fn`, prints how long it took under `label`, returns its value. */
export async function timed<T>(label: string, fn: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  const v = await fn();
  console.log(`      [netns] ${label}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return v;
}
