/**
 * RSS of ONE real agent process that joins an in-process cluster of N bench
 * members, so it holds N peers: the figure the "at most 60 MB with 100 peers"
 * target is about. The agent is a supervising one (runtime podman), so it
 * loads dockerode and runs its supervisor; its Podman socket does not exist, so
 * the supervisor retries and no container runs. It starts with the node flags
 * the installer's wrapper gives it. The process, its temp dir and the cluster
 * are always cleaned up.
 */
import { spawn, spawnSync, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { requestStatus } from '../../agent/control/client';
import type { GossipTiming } from '../../agent/gossip/timing';
import { AGENT_NODE_FLAGS } from '../../agent/node-flags';
import { BENCH_OVERLAY_KEY, BenchCluster, freePort } from './cluster';
import { ThreadedCluster } from './threaded-cluster';

export interface AgentRssResult {
  peers: number;
  /** ms from spawn until the agent listed every peer alive and every peer listed it alive. */
  joinMs: number | null;
  /** Largest VmRSS seen during the window at rest (MiB). */
  rssMiB: number | null;
  /** Peak RSS over the whole life of the process, start-up included (MiB). */
  hwmMiB: number | null;
  /** From /proc/PID/smaps_rollup at the end: anonymous memory (heap, stacks) vs file-backed pages (the node binary's code, shared with other node processes). */
  anonMiB: number | null;
  fileMiB: number | null;
  nodeArgs: string[];
  /** The node binary that ran the agent, and its version. */
  node: { path: string; version: string | null };
  /** CPU time (user + system) from spawn until joined, and per second over the rest window (ms). */
  cpuJoinMs: number | null;
  cpuRestMsPerS: number | null;
  /** 'podman' (dockerode loaded, supervisor retrying) or 'none' (gossip only). */
  runtime: 'podman' | 'none';
  error?: string;
}

const CLI = path.resolve(__dirname, '../../agent/cli.js');
const NAME = 'rss-probe';

function procStatus(pid: number): { rss: number; hwm: number } | null {
  try {
    const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
    return { rss: kib('VmRSS') / 1024, hwm: kib('VmHWM') / 1024 };
  } catch {
    return null;
  }
}

/** CPU time (user + system) of a process so far, in ms; null once it is gone. */
function cpuMs(pid: number): number | null {
  try {
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and 13th.
    const after = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ').pop()!.split(' ');
    return ((Number(after[11]) + Number(after[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return null;
  }
}
/** USER_HZ: 100 on every Linux that node supports. */
const CLOCK_TICKS = 100;

function smapsRollup(pid: number): { anon: number; file: number } | null {
  try {
    const text = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    const kib = (field: string): number => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
    const rss = kib('Rss');
    const anon = kib('Anonymous');
    return { anon: anon / 1024, file: (rss - anon) / 1024 };
  } catch {
    return null;
  }
}

function nodeVersion(bin: string): string | null {
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  return r.status === 0 ? r.stdout.trim() : null;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(t);
}

export interface AgentRssOptions {
  peers: number;
  timing: GossipTiming;
  restMs: number;
  timeoutMs: number;
  /** Node flags for the agent process; default: the installer's (AGENT_NODE_FLAGS). */
  nodeArgs?: string[];
  /** Default 'podman': a supervising agent, as the memory target asks. */
  runtime?: 'podman' | 'none';
  /** The node binary for the agent (default: the one running the bench), e.g. Debian 12's. */
  nodeBin?: string;
  /**
   * Host the peers in this many child processes instead of this one: one
   * process's descriptor limit (20,000 here) cannot hold 1,000 members with a
   * few dozen connections each.
   */
  scaffoldProcesses?: number;
  progress: (l: string) => void;
}

export async function measureAgentRss(o: AgentRssOptions): Promise<AgentRssResult> {
  const nodeArgs = o.nodeArgs ?? [...AGENT_NODE_FLAGS];
  const runtime = o.runtime ?? 'podman';
  const nodeBin = o.nodeBin ?? process.execPath;
  const res: AgentRssResult = {
    peers: o.peers,
    joinMs: null,
    rssMiB: null,
    hwmMiB: null,
    anonMiB: null,
    fileMiB: null,
    nodeArgs,
    node: { path: nodeBin, version: nodeVersion(nodeBin) },
    cpuJoinMs: null,
    cpuRestMsPerS: null,
    runtime,
  };
  if (res.node.version === null) {
    res.error = `${nodeBin} does not run (\`${nodeBin} --version\` failed): give --agent-node a node binary, and LD_LIBRARY_PATH if it needs its own libraries`;
    return res;
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hepto-bench-agent-'));
  // The N peers are scaffolding, not what is measured: they join in batches, so
  // that one process can host them on a busy machine. The agent process under
  // test is the real, unmodified agent.
  const cluster = o.scaffoldProcesses
    ? await ThreadedCluster.create({ n: o.peers, timing: o.timing, subnet: '127.0.3', threads: o.scaffoldProcesses, processes: true })
    : await BenchCluster.create({ n: o.peers, timing: o.timing, subnet: '127.0.3' });
  let child: ChildProcess | null = null;
  const stderr: string[] = [];
  try {
    if (!(await cluster.startInBatches(10, o.timeoutMs))) throw new Error(`the ${o.peers} in-process peers (scaffolding) did not converge`);
    const host = '127.0.99.1'; // past the peers' addresses (127.0.3.x on, 250 a /24)
    const port = await freePort(host);
    const socket = path.join(dir, 'agent.sock');
    const config = {
      node: NAME,
      master: cluster.members[0].name,
      anchors: [cluster.members[0].address],
      overlay_key: BENCH_OVERLAY_KEY,
      cluster_key: 'BenchClusterKey0123456789abcdefX',
      gossip_port: port,
      gossip_listen: [host],
      storage_base: path.join(dir, 'srv'),
      control_socket: socket,
      runtime,
      ...(runtime === 'podman' ? { podman_socket: path.join(dir, 'no-podman.sock') } : {}),
      metrics_listen: '',
      log_level: 'warn',
    };
    const file = path.join(dir, 'hepto.json');
    fs.writeFileSync(file, JSON.stringify(config, null, 2), { mode: 0o600 });
    const started = Date.now();
    child = spawn(nodeBin, [...nodeArgs, CLI, 'run', '--config', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr?.on('data', (c: Buffer) => {
      stderr.push(...c.toString('utf8').split('\n').filter(Boolean));
      if (stderr.length > 50) stderr.splice(0, stderr.length - 50);
    });
    const seenByAll = (): boolean => cluster.members.every((m) => cluster.view.states[m.index].get(NAME) === 'alive');
    const deadline = Date.now() + o.timeoutMs;
    let sees = false;
    while (Date.now() < deadline && child.exitCode === null) {
      if (!sees) {
        const status = (await requestStatus(socket, 2000).catch(() => null)) as { members?: Array<{ name: string; state: string }> } | null;
        sees = !!status?.members && status.members.filter((m) => m.name !== NAME && m.state === 'alive').length >= o.peers;
      }
      if (sees && seenByAll()) break;
      await sleep(200);
    }
    if (child.exitCode !== null) throw new Error(`the agent exited with code ${child.exitCode}: ${stderr.slice(-3).join(' | ')}`);
    if (!(sees && seenByAll())) throw new Error(`the agent and its ${o.peers} peers did not see each other alive within ${o.timeoutMs} ms`);
    res.joinMs = Date.now() - started;
    res.cpuJoinMs = cpuMs(child.pid!);
    o.progress(`  agent process joined ${o.peers} peers in ${res.joinMs} ms; sampling RSS for ${o.restMs} ms`);
    const restStart = { at: Date.now(), cpu: cpuMs(child.pid!) };
    const end = Date.now() + o.restMs;
    let max = 0;
    while (Date.now() < end) {
      const s = procStatus(child.pid!);
      if (s) max = Math.max(max, s.rss);
      await sleep(500);
    }
    const restCpu = cpuMs(child.pid!);
    if (restCpu !== null && restStart.cpu !== null) res.cpuRestMsPerS = ((restCpu - restStart.cpu) * 1000) / (Date.now() - restStart.at);
    const last = procStatus(child.pid!);
    res.rssMiB = max || null;
    res.hwmMiB = last?.hwm ?? null;
    const sm = smapsRollup(child.pid!);
    res.anonMiB = sm?.anon ?? null;
    res.fileMiB = sm?.file ?? null;
  } catch (e) {
    res.error = e instanceof Error ? e.message : String(e);
  } finally {
    if (child) await stopChild(child);
    await cluster.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return res;
}
