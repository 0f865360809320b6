/**
 * The benchmark's cluster spread over worker threads, one per core by
 * default. Each agent of a real cluster has a machine, and so a CPU, of its
 * own; one JavaScript thread hosting all N members makes every handshake of a
 * join storm wait for the others, which no real cluster does, while the Go
 * memberlist reference schedules its members over every core. Members are
 * dealt out round-robin (member i on worker i mod threads); each worker hosts
 * them in a BenchCluster (cluster.ts) and streams their events here, stamped
 * when they happened on a clock every thread shares, so the figures do not
 * include the trip between threads. This thread only keeps the view and
 * sends commands.
 *
 * With `processes`, the workers are child processes instead (same script,
 * over the IPC channel): each has a descriptor limit of its own, which a
 * thousand members, a few dozen connections each, need (agent-process.ts).
 */
import { fork } from 'child_process';
import * as path from 'path';
import { performance } from 'perf_hooks';
import { Worker } from 'worker_threads';
import type { MemberState } from '../../shared/member';
import type { ClusterOptions, LoggedEvent } from './cluster';
import { ClusterView } from './view';

export interface WorkerInit {
  cluster: Pick<ClusterOptions, 'n' | 'timing' | 'subnet' | 'sameHost'>;
}

export type WorkerRequest = { id: number } & (
  | { op: 'warmup'; subnet: string }
  | { op: 'create'; indices: number[]; anchor?: string }
  | { op: 'start'; indices: number[] }
  | { op: 'crash' | 'leave' | 'blackhole'; index: number }
  | { op: 'traffic' | 'heap' | 'close' }
  | { op: 'tally' | 'loop'; on: boolean }
);

export interface WorkerReply {
  id?: number;
  value?: unknown;
  error?: string;
  events?: LoggedEvent[];
}

type Op = WorkerRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

export interface ThreadedMember {
  index: number;
  name: string;
  address: string;
  worker: number;
  started: boolean;
  stopped: boolean;
  /** Silent: hears and says nothing, connections left open (fault-switch.ts). */
  silent: boolean;
}

export interface ThreadedOptions extends Pick<ClusterOptions, 'n' | 'timing' | 'subnet' | 'sameHost'> {
  threads: number;
  /** Child processes instead of worker threads. */
  processes?: boolean;
}

const WORKER = path.join(__dirname, 'cluster-worker.js');
/** The environment variable that carries a forked worker's WorkerInit (JSON). */
export const WORKER_INIT_ENV = 'HEPTO_BENCH_WORKER_INIT';

/** A worker as this thread sees it, thread or process. */
interface WorkerHandle {
  postMessage(m: WorkerRequest): void;
  terminate(): Promise<unknown>;
}

export class ThreadedCluster {
  readonly members: ThreadedMember[] = [];
  readonly view = new ClusterView();
  readonly warnings = new Map<string, number>();
  private readonly workers: WorkerHandle[] = [];
  private readonly calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  /** Absolute time (performance.timeOrigin + now) of this cluster's time zero. */
  private readonly t0 = performance.timeOrigin + performance.now();
  private closed = false;

  /**
   * Spawns the workers, warms each up, calls `beforeMembers` (the baseline
   * of the memory figures: threads and code, no members), then creates every
   * member (not started); member 0 first, as the others join through it.
   */
  static async create(o: ThreadedOptions, beforeMembers?: (c: ThreadedCluster) => Promise<void>): Promise<ThreadedCluster> {
    const threads = Math.max(1, Math.min(o.threads, o.n));
    const c = new ThreadedCluster();
    const init: WorkerInit = { cluster: { n: o.n, timing: o.timing, subnet: o.subnet, sameHost: o.sameHost } };
    for (let w = 0; w < threads; w++) c.workers.push(o.processes ? c.forkWorker(w, init) : c.spawn(w, init));
    const share = (w: number): number[] => Array.from({ length: o.n }, (_, i) => i).filter((i) => i % threads === w);
    const created: { index: number; name: string; address: string }[][] = [];
    try {
      // Each worker is a fresh V8: compile the code paths once (as the in-process bench always did) before measuring.
      await Promise.all(c.workers.map((_, w) => c.call(w, { op: 'warmup', subnet: `127.2.${w}` })));
      if (beforeMembers) await beforeMembers(c);
      created[0] = (await c.call(0, { op: 'create', indices: share(0) })) as (typeof created)[0];
      const anchor = created[0][0].address;
      for (let w = 1; w < threads; w++) created[w] = (await c.call(w, { op: 'create', indices: share(w), anchor })) as (typeof created)[0];
    } catch (e) {
      await c.close();
      throw e;
    }
    created.forEach((list, w) => {
      for (const m of list) c.members[m.index] = { ...m, worker: w, started: false, stopped: false, silent: false };
    });
    for (const m of c.members) c.view.addObserver(m.index);
    return c;
  }

  private forkWorker(w: number, init: WorkerInit): WorkerHandle {
    const child = fork(WORKER, [], { env: { ...process.env, [WORKER_INIT_ENV]: JSON.stringify(init) }, serialization: 'advanced', execArgv: [] });
    child.on('message', (r: WorkerReply) => this.onReply(r));
    child.on('error', (e) => this.failAll(new Error(`bench worker process ${w}: ${e.message}`)));
    child.on('exit', (code, signal) => {
      if (!this.closed) this.failAll(new Error(`bench worker process ${w} exited (${signal ?? `code ${code}`})`));
    });
    return {
      postMessage: (m) => child.send(m),
      terminate: () =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.disconnect();
        }),
    };
  }

  private spawn(w: number, init: WorkerInit): Worker {
    const worker = new Worker(WORKER, { workerData: init });
    worker.on('message', (r: WorkerReply) => this.onReply(r));
    worker.on('error', (e) => this.failAll(new Error(`bench worker ${w}: ${e.message}`)));
    worker.on('exit', (code) => {
      if (code !== 0) this.failAll(new Error(`bench worker ${w} exited with code ${code}`));
    });
    return worker;
  }

  private onReply(r: WorkerReply): void {
    if (r.events) {
      for (const e of r.events) this.view.record({ ...e, t: e.t - this.t0 }, this.members[e.observer]?.name ?? '', true);
      this.view.wake();
    }
    if (r.id === undefined) return;
    const call = this.calls.get(r.id);
    if (!call) return;
    this.calls.delete(r.id);
    if (r.error !== undefined) call.reject(new Error(r.error));
    else call.resolve(r.value);
  }

  private failAll(e: Error): void {
    for (const call of this.calls.values()) call.reject(e);
    this.calls.clear();
  }

  private call(w: number, op: Op): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      this.workers[w].postMessage({ ...op, id });
    });
  }

  private all(op: Op): Promise<unknown[]> {
    return Promise.all(this.workers.map((_, w) => this.call(w, op)));
  }

  /** ms since the cluster was created, on the clock of the events. */
  now(): number {
    return performance.timeOrigin + performance.now() - this.t0;
  }

  /** Starts member 0 (the anchor), then every other member at once, each joining through member 0 only. Returns when the others were started. */
  async startAll(): Promise<number> {
    this.members[0].started = true;
    await this.call(0, { op: 'start', indices: [0] });
    const t = this.now();
    for (const m of this.members.slice(1)) m.started = true;
    await Promise.all(
      this.workers.map((_, w) => this.call(w, { op: 'start', indices: this.members.filter((m) => m.index !== 0 && m.worker === w).map((m) => m.index) })),
    );
    return t;
  }

  /**
   * Starts member 0, then the others `batch` at a time, each batch once all
   * running members see each other alive: a gentle join for scaffolding
   * (agent-process.ts), as BenchCluster.startInBatches. False if a batch did
   * not converge within timeoutMs.
   */
  async startInBatches(batch: number, timeoutMs: number): Promise<boolean> {
    const groups = [this.members.slice(0, 1)];
    for (let i = 1; i < this.members.length; i += batch) groups.push(this.members.slice(i, i + batch));
    for (const next of groups) {
      for (const m of next) m.started = true;
      await Promise.all(
        this.workers.map((_, w) => {
          const indices = next.filter((m) => m.worker === w).map((m) => m.index);
          return indices.length > 0 ? this.call(w, { op: 'start', indices }) : null;
        }),
      );
      if (!(await this.waitFor(() => this.allSeeAllAlive(), timeoutMs))) return false;
    }
    return true;
  }

  /** Members started and still running (not crashed, silent or gone). */
  running(): ThreadedMember[] {
    return this.members.filter((m) => m.started && !m.stopped && !m.silent);
  }

  allSeeAllAlive(): boolean {
    return this.view.allSeeAllAlive(this.running());
  }

  allSee(who: ThreadedMember, state: MemberState): boolean {
    return this.view.allSee(this.running(), who, state);
  }

  waitFor(cond: () => boolean, timeoutMs: number): Promise<boolean> {
    return this.view.waitFor(cond, timeoutMs);
  }

  /** Crash without leave: the member's transport closes its sockets, as the kernel does for a killed process. */
  async crash(m: ThreadedMember): Promise<void> {
    m.stopped = true;
    await this.call(m.worker, { op: 'crash', index: m.index });
  }

  /** Leave then stop, as SIGTERM does. */
  async leave(m: ThreadedMember): Promise<void> {
    m.stopped = true;
    await this.call(m.worker, { op: 'leave', index: m.index });
  }

  /** The member goes silent with its connections left open. */
  async blackhole(m: ThreadedMember): Promise<void> {
    m.silent = true;
    await this.call(m.worker, { op: 'blackhole', index: m.index });
  }

  /** Bytes sent by every member's transport, and open authenticated connections (each counted at both ends). */
  async traffic(): Promise<{ bytesSent: number; connections: number }> {
    const parts = (await this.all({ op: 'traffic' })) as { bytesSent: number; connections: number }[];
    return parts.reduce((a, b) => ({ bytesSent: a.bytesSent + b.bytesSent, connections: a.connections + b.connections }), { bytesSent: 0, connections: 0 });
  }

  /** Starts (or stops, with false) tallying sent payloads per message type; returns the tally so far. */
  async tallyTypes(on: boolean): Promise<Map<string, { count: number; bytes: number }>> {
    const sum = new Map<string, { count: number; bytes: number }>();
    for (const part of (await this.all({ op: 'tally', on })) as [string, { count: number; bytes: number }][][]) {
      for (const [k, v] of part) {
        const t = sum.get(k) ?? { count: 0, bytes: 0 };
        t.count += v.count;
        t.bytes += v.bytes;
        sum.set(k, t);
      }
    }
    return sum;
  }

  /** Live heap plus external memory of every worker, after a GC in each (bytes). */
  async workerHeap(): Promise<number> {
    return ((await this.all({ op: 'heap' })) as number[]).reduce((a, b) => a + b, 0);
  }

  /** Starts measuring event-loop delay in every worker, or stops and returns the worst p99 and max (ms). */
  async loopDelay(on: boolean): Promise<{ p99Ms: number; maxMs: number } | null> {
    const parts = (await this.all({ op: 'loop', on })) as ({ p99Ms: number; maxMs: number } | null)[];
    if (on) return null;
    return { p99Ms: Math.max(...parts.map((p) => p?.p99Ms ?? 0)), maxMs: Math.max(...parts.map((p) => p?.maxMs ?? 0)) };
  }

  /** Stops every member without leave and ends the workers (idempotent). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const parts = await Promise.allSettled(this.workers.map((_, w) => this.call(w, { op: 'close' })));
    for (const p of parts) {
      if (p.status !== 'fulfilled') continue;
      for (const [k, v] of Object.entries(p.value as Record<string, number>)) this.warnings.set(k, (this.warnings.get(k) ?? 0) + v);
    }
    for (const m of this.members) m.stopped = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
