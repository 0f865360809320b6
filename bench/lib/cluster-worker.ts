/**
 * One worker of a ThreadedCluster (threaded-cluster.ts), a thread or a child
 * process: hosts a share of the bench members in a BenchCluster of its own,
 * runs the commands the main thread sends, and streams every member event back
 * with a timestamp taken when it happened (performance.timeOrigin + now(), the
 * same clock in every thread and, to the millisecond, every process), batched
 * once per turn of the event loop.
 */
import { monitorEventLoopDelay } from 'perf_hooks';
import { parentPort, workerData } from 'worker_threads';
import { gcFunction } from './gc';
import { BenchCluster, type ClusterOptions, type LoggedEvent } from './cluster';
import { WORKER_INIT_ENV, type WorkerInit, type WorkerReply, type WorkerRequest } from './threaded-cluster';

interface Port {
  postMessage(m: WorkerReply): void;
  on(event: 'message', f: (req: WorkerRequest) => void): void;
}
/** A child process (fork) talks over its IPC channel, and gets its init in WORKER_INIT_ENV; it ends with its parent. */
function processPort(): Port | null {
  const send = process.send?.bind(process);
  if (!send) return null;
  process.once('disconnect', () => process.exit(0));
  return { postMessage: (m) => send(m), on: (_event, f) => process.on('message', f) };
}
const port: Port | null = parentPort ?? processPort();
if (!port) throw new Error('cluster-worker.ts runs as a worker thread or a forked child only');
const init = (parentPort ? workerData : JSON.parse(process.env[WORKER_INIT_ENV] ?? 'null')) as WorkerInit;
const gc = gcFunction();

let pending: LoggedEvent[] = [];
const flush = (): void => {
  const events = pending;
  pending = [];
  port.postMessage({ events } satisfies WorkerReply);
};
const onEvent = (e: LoggedEvent): void => {
  if (pending.length === 0) setImmediate(flush);
  pending.push(e);
};

let cluster: BenchCluster | undefined;
const loop = monitorEventLoopDelay({ resolution: 10 });

function hosted(): BenchCluster {
  if (!cluster) throw new Error('bench worker: no members created yet');
  return cluster;
}

async function perform(req: WorkerRequest): Promise<unknown> {
  switch (req.op) {
    case 'warmup': {
      // A 3-member join on addresses of its own, so the measured members do not pay for compiling the code paths.
      const warm = await BenchCluster.create({ ...init.cluster, n: 3, subnet: req.subnet, sameHost: false });
      try {
        if (!(await warm.startInBatches(2, 10_000))) throw new Error('the warm-up cluster of 3 did not converge in 10 s');
      } finally {
        await warm.close();
      }
      return null;
    }
    case 'create': {
      const opts: ClusterOptions = { ...init.cluster, indices: req.indices, anchor: req.anchor, onEvent };
      cluster = await BenchCluster.create(opts);
      return cluster.members.map((m) => ({ index: m.index, name: m.name, address: m.address }));
    }
    case 'start':
      await hosted().startMembers(req.indices);
      return null;
    case 'crash':
      await hosted().crash(hosted().member(req.index));
      return null;
    case 'leave':
      await hosted().leave(hosted().member(req.index));
      return null;
    case 'blackhole':
      hosted().member(req.index).fault.blackhole();
      return null;
    case 'traffic':
      return hosted().traffic();
    case 'tally':
      return [...hosted().tallyTypes(req.on)];
    case 'heap': {
      gc();
      const m = process.memoryUsage();
      return m.heapUsed + m.external;
    }
    case 'loop': {
      if (req.on) {
        loop.reset();
        loop.enable();
        return null;
      }
      loop.disable();
      return { p99Ms: loop.percentile(99) / 1e6, maxMs: loop.max / 1e6 };
    }
    case 'close': {
      if (cluster) await cluster.close();
      return Object.fromEntries(cluster?.warnings ?? []);
    }
  }
}

port.on('message', (req: WorkerRequest) => {
  perform(req).then(
    (value) => {
      if (pending.length > 0) flush(); // events before the answer that follows them
      port.postMessage({ id: req.id, value } satisfies WorkerReply);
    },
    (e: unknown) => port.postMessage({ id: req.id, error: e instanceof Error ? e.message : String(e) } satisfies WorkerReply),
  );
});
