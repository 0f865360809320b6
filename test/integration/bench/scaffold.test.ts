/**
 * The bench's cluster hosted in child processes (threaded-cluster.ts with
 * `processes`), as the one-agent memory measurement uses it for 1,000 peers:
 * the members, on real loopback sockets in two other processes, join in
 * batches and all see each other alive; closing the cluster ends the
 * processes.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'child_process';
import { TEST } from '../../../agent/gossip/timing';
import { ThreadedCluster } from '../../../bench/lib/threaded-cluster';

/** The pids of this process's children running the bench worker. */
function workerChildren(): number[] {
  const out = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(process.pid)], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => l.includes('cluster-worker.js'))
    .map((l) => Number(l.trim().split(/\s+/)[0]));
}

describe('bench: the cluster hosted in child processes', function () {
  this.timeout(60_000);

  it('members in two child processes join in batches and all see each other alive; close ends the processes', async () => {
    const before = workerChildren().length;
    const c = await ThreadedCluster.create({ n: 9, timing: TEST, subnet: '127.0.7', threads: 2, processes: true });
    try {
      assert.equal(workerChildren().length - before, 2, 'two worker processes');
      assert.equal(await c.startInBatches(4, 20_000), true, 'every batch converged');
      assert.ok(c.allSeeAllAlive());
      assert.equal(c.running().length, 9);
      const { connections } = await c.traffic();
      assert.ok(connections > 0, 'the members hold connections');
    } finally {
      await c.close();
    }
    assert.equal(workerChildren().length, before, 'the worker processes ended');
  });
});
