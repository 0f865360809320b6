/**
 * The gossip benchmark: N real members (GossipNode + Membership + WsTransport,
 * LAN timing, real encryption) in this one process on loopback, spread over
 * one worker thread per core (lib/threaded-cluster.ts), every member joining
 * through member 0 only, measured on fresh clusters the way memberlist was
 * (shared/reference/memberlist-bench.md).
 *
 * One run = one fresh cluster:
 *   join      start member 0, then all others at once → time until all see all alive
 *   memory    RSS delta / N after convergence (in-process, like memberlist's figure)
 *   rest      bytes sent per member per second over a quiet window
 *   crash     one member stops with no leave (its sockets close, as for SIGKILL)
 *             → time until the first and until all others see it dead
 *   silent    another member goes silent with its connections left open
 *             (hung machine, lossy uplink) → first / all see it dead
 *   leave     a third member leaves then stops → time until all see it left
 * False deaths: any member other than those two declared dead by anyone.
 */
import * as fs from 'fs';
import * as os from 'os';
import type { GossipTiming } from '../agent/gossip/timing';
import { gcFunction } from './lib/gc';
import { ThreadedCluster, type ThreadedMember } from './lib/threaded-cluster';

export interface GossipRunOptions {
  n: number;
  run: number;
  timing: GossipTiming;
  /** Quiet window for the traffic figure, after `settleMs`. */
  restMs: number;
  settleMs: number;
  /** Give up on one phase after this long (the figure is then missing and the run says why). */
  phaseTimeoutMs: number;
  subnet: string;
  sameHost?: boolean;
  /** Worker threads hosting the members (one per core by default). */
  threads: number;
  progress: (line: string) => void;
}

export interface GossipRunResult {
  impl: 'hepto';
  n: number;
  run: number;
  joinMs: number | null;
  /** Share of (observer, member) pairs seen alive when the join phase ended (1 when converged). */
  joinCompleteness: number | null;
  crashFirstMs: number | null;
  crashAllMs: number | null;
  silentFirstMs: number | null;
  silentAllMs: number | null;
  leaveAllMs: number | null;
  /** Right after the join: the probe round-robin is still reaching members for the first time (a handshake per new pair). */
  bytesPerSecPerMember: number | null;
  /** At rest once (nearly) every pair holds a connection: what membership costs from then on. */
  bytesPerSecMeshed: number | null;
  /** Time after the first window until 95% of pairs were connected (or the cap), ms. */
  meshWaitMs: number | null;
  memPerMemberKiB: number | null;
  heapPerMemberKiB: number | null;
  /** Authenticated connections at rest (pairs: each counted once), and this process's open file descriptors. */
  connections: number | null;
  /** At rest, per gossip message type (p ping, k ack, r ping-req, g gossip, h sync hash, d digest, y sync reply): messages and payload bytes per second per member. */
  restByType: Record<string, { msgsPerSec: number; bytesPerSec: number }>;
  openFds: number | null;
  falseDeaths: number;
  falseSuspicions: number;
  /** How starved the process was while joining: CPU seconds it used, worst worker's event-loop delay p99 and max (ms), machine load. */
  joinCpuSeconds: number | null;
  loopDelayP99Ms: number | null;
  loopDelayMaxMs: number | null;
  loadavg1: number;
  /** Members that saw the leaver dead rather than left. */
  leaveSeenDead: number;
  warnings: Record<string, number>;
  errors: string[];
}

const gc = gcFunction();

/** RSS of the whole process after a GC in every thread. */
async function rssKiB(c: ThreadedCluster): Promise<number> {
  await c.workerHeap();
  gc();
  return process.memoryUsage().rss / 1024;
}

/** Live JavaScript heap plus memory outside it (Buffers, ArrayBuffers) of every thread, after a GC. */
async function heapKiB(c: ThreadedCluster): Promise<number> {
  const workers = await c.workerHeap();
  gc();
  const m = process.memoryUsage();
  return (m.heapUsed + m.external + workers) / 1024;
}

function openFds(): number | null {
  try {
    return fs.readdirSync('/proc/self/fd').length;
  } catch {
    return null;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function pickMember(c: ThreadedCluster, exclude: Set<ThreadedMember>): ThreadedMember {
  const candidates = c.members.filter((m) => m.index !== 0 && !exclude.has(m));
  return candidates[Math.floor(Math.random() * candidates.length)];
}

function firstAndAll(seen: Map<number, number>, since: number): { first: number | null; all: number | null } {
  const times = [...seen.values()].map((t) => t - since);
  if (times.length === 0) return { first: null, all: null };
  return { first: Math.min(...times), all: Math.max(...times) };
}

export async function runGossipCluster(o: GossipRunOptions): Promise<GossipRunResult> {
  const res: GossipRunResult = {
    impl: 'hepto',
    n: o.n,
    run: o.run,
    joinMs: null,
    joinCompleteness: null,
    crashFirstMs: null,
    crashAllMs: null,
    silentFirstMs: null,
    silentAllMs: null,
    leaveAllMs: null,
    bytesPerSecPerMember: null,
    bytesPerSecMeshed: null,
    meshWaitMs: null,
    memPerMemberKiB: null,
    heapPerMemberKiB: null,
    connections: null,
    restByType: {},
    openFds: null,
    falseDeaths: 0,
    falseSuspicions: 0,
    joinCpuSeconds: null,
    loopDelayP99Ms: null,
    loopDelayMaxMs: null,
    loadavg1: os.loadavg()[0],
    leaveSeenDead: 0,
    warnings: {},
    errors: [],
  };
  let rssBefore = 0;
  let heapBefore = 0;
  const c = await ThreadedCluster.create({ n: o.n, timing: o.timing, subnet: o.subnet, sameHost: o.sameHost, threads: o.threads }, async (cl) => {
    rssBefore = await rssKiB(cl);
    heapBefore = await heapKiB(cl);
  });
  /** Who failed on purpose, and when: deaths of anyone else, or earlier, are false. */
  const failedAt = new Map<string, number>();
  let leaver: ThreadedMember | undefined;
  try {
    await c.loopDelay(true);
    const cpu0 = process.cpuUsage();
    const joinStart = await c.startAll();
    const converged = await c.waitFor(() => c.allSeeAllAlive(), o.phaseTimeoutMs);
    const cpu = process.cpuUsage(cpu0);
    const loop = (await c.loopDelay(false)) ?? { p99Ms: NaN, maxMs: NaN };
    res.joinCpuSeconds = (cpu.user + cpu.system) / 1e6;
    res.loopDelayP99Ms = loop.p99Ms;
    res.loopDelayMaxMs = loop.maxMs;
    res.joinCompleteness = c.view.completeness(c.running());
    if (!converged) {
      res.errors.push(
        `no convergence within ${o.phaseTimeoutMs} ms: ${(res.joinCompleteness * 100).toFixed(0)}% of views complete (CPU ${res.joinCpuSeconds.toFixed(1)} s, event-loop delay p99 ${res.loopDelayP99Ms.toFixed(0)} ms)`,
      );
      return res;
    }
    // When the last pair came alive, as stamped by the member's own thread (not when this thread heard of it).
    res.joinMs = c.view.settledAt(c.running()) - joinStart;
    o.progress(
      `  converged in ${res.joinMs.toFixed(0)} ms (CPU ${res.joinCpuSeconds.toFixed(1)} s, event-loop delay p99 ${res.loopDelayP99Ms.toFixed(0)} ms, load ${res.loadavg1.toFixed(1)})`,
    );

    await sleep(o.settleMs);
    res.memPerMemberKiB = ((await rssKiB(c)) - rssBefore) / o.n;
    res.heapPerMemberKiB = ((await heapKiB(c)) - heapBefore) / o.n;
    const before = (await c.traffic()).bytesSent;
    const restStart = c.now();
    await c.tallyTypes(true);
    await sleep(o.restMs);
    const after = await c.traffic();
    const restSecs = (c.now() - restStart) / 1000;
    for (const [type, v] of await c.tallyTypes(false)) {
      res.restByType[type] = { msgsPerSec: v.count / restSecs / o.n, bytesPerSec: v.bytes / restSecs / o.n };
    }
    res.bytesPerSecPerMember = (after.bytesSent - before) / ((c.now() - restStart) / 1000) / o.n;
    res.connections = after.connections / 2;
    res.openFds = openFds();
    const byType = Object.entries(res.restByType)
      .sort((a, b) => b[1].bytesPerSec - a[1].bytesPerSec)
      .map(([t, v]) => `${t} ${v.bytesPerSec.toFixed(0)}`)
      .join(' ');
    o.progress(
      `  at rest: ${res.bytesPerSecPerMember.toFixed(0)} B/s per member (payload by type, B/s: ${byType}), ${res.connections} connections, ${res.openFds} fds`,
    );
    if (!c.allSeeAllAlive()) res.errors.push('the view was not complete after the rest window');

    // Each pair's first contact costs one handshake (~0.8 KB), and without a bound on connections the
    // probe round-robin takes about N probe periods to reach everyone: measure again once the mesh is
    // (nearly) complete, or, with bounded connections (gossip/active-view.ts), once the number of
    // connections has held still for 5 s.
    const pairs = (o.n * (o.n - 1)) / 2;
    const meshStart = c.now();
    const meshDeadline = meshStart + 1.5 * o.n * o.timing.probeInterval + 10_000;
    let still = { count: -1, since: c.now() };
    for (;;) {
      const open = (await c.traffic()).connections / 2;
      if (open >= 0.95 * pairs || c.now() >= meshDeadline) break;
      if (Math.abs(open - still.count) > Math.max(2, 0.01 * still.count)) still = { count: open, since: c.now() };
      else if (c.now() - still.since >= 5000) break;
      await sleep(500);
    }
    res.meshWaitMs = c.now() - meshStart;
    const before2 = (await c.traffic()).bytesSent;
    const rest2 = c.now();
    await sleep(o.restMs);
    const after2 = await c.traffic();
    res.bytesPerSecMeshed = (after2.bytesSent - before2) / ((c.now() - rest2) / 1000) / o.n;
    o.progress(
      `  at rest with ${((after2.connections / 2 / pairs) * 100).toFixed(0)}% of pairs connected (${(res.meshWaitMs / 1000).toFixed(0)} s later): ${res.bytesPerSecMeshed.toFixed(0)} B/s per member`,
    );

    const victim = pickMember(c, new Set());
    let t = c.now();
    failedAt.set(victim.name, t);
    await c.crash(victim);
    if (await c.waitFor(() => c.allSee(victim, 'dead'), o.phaseTimeoutMs)) {
      const fa = firstAndAll(c.view.firstSeen(victim.name, 'dead', t), t);
      res.crashFirstMs = fa.first;
      res.crashAllMs = fa.all;
      o.progress(`  crash seen dead: first ${fa.first?.toFixed(0)} ms, all ${fa.all?.toFixed(0)} ms`);
    } else res.errors.push(`crash of ${victim.name} not seen dead by all within ${o.phaseTimeoutMs} ms`);

    const silent = pickMember(c, new Set([victim]));
    t = c.now();
    failedAt.set(silent.name, t);
    await c.blackhole(silent);
    if (await c.waitFor(() => c.allSee(silent, 'dead'), o.phaseTimeoutMs)) {
      const fa = firstAndAll(c.view.firstSeen(silent.name, 'dead', t), t);
      res.silentFirstMs = fa.first;
      res.silentAllMs = fa.all;
      o.progress(`  silent member seen dead: first ${fa.first?.toFixed(0)} ms, all ${fa.all?.toFixed(0)} ms`);
    } else res.errors.push(`silent ${silent.name} not seen dead by all within ${o.phaseTimeoutMs} ms`);
    await c.crash(silent);

    leaver = pickMember(c, new Set([victim, silent]));
    t = c.now();
    failedAt.set(leaver.name, t);
    const leaving = c.leave(leaver);
    if (await c.waitFor(() => c.allSee(leaver!, 'left'), o.phaseTimeoutMs)) {
      res.leaveAllMs = firstAndAll(c.view.firstSeen(leaver.name, 'left', t), t).all;
      o.progress(`  leave seen by all in ${res.leaveAllMs?.toFixed(0)} ms`);
    } else res.errors.push(`leave of ${leaver.name} not seen by all within ${o.phaseTimeoutMs} ms`);
    await leaving;
  } catch (e) {
    res.errors.push(`bench failed: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    await c.close();
    for (const e of c.view.events) {
      const observer = c.members[e.observer];
      const observerGoneAt = failedAt.get(observer.name) ?? Infinity;
      if (e.t >= observerGoneAt) continue; // a failed member's own view after it failed does not count
      const legit = failedAt.get(e.name);
      if (e.type === 'dead' && (legit === undefined || e.t < legit)) res.falseDeaths++;
      if (e.type === 'dead' && leaver && e.name === leaver.name && legit !== undefined && e.t >= legit) res.leaveSeenDead++;
      if (e.type === 'suspect' && (legit === undefined || e.t < legit)) res.falseSuspicions++;
    }
    res.warnings = Object.fromEntries(c.warnings);
  }
  return res;
}
