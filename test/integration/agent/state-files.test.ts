/**
 * A state file the agent cannot save shows in `status` problems (issue 14,
 * item 9), and goes away once a save works again: a real agent whose
 * storage_base is a tmpfs, remounted read-only under it.
 */
import { strict as assert } from 'assert';
import { execFileSync } from 'child_process';
import { AgentCluster, waitFor } from '../../helpers/agent-cluster';
import { mountTmpfs, type Tmpfs } from '../../unit/shared/fs-fixtures';

describe('state files: failed saves in status (real agent, tmpfs)', function () {
  this.timeout(60_000);
  let cluster: AgentCluster;
  let fs: Tmpfs | undefined;
  beforeEach(() => (cluster = new AgentCluster()));
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') console.error(cluster.dump());
    await cluster.cleanup();
    fs?.cleanup();
    fs = undefined;
  });

  it('peers.json on a read-only filesystem: a problem naming the file and the cause, cleared by the next save that works', async () => {
    fs = mountTmpfs(4096);
    const a = cluster.add('alpha', { extra: { storage_base: fs.dir } });
    const b = cluster.add('beta', { anchors: [a] });
    cluster.start(a);
    await cluster.waitStates(a, { alpha: 'alive' });
    fs.readOnly();
    cluster.start(b);
    const problem = await waitFor('a problem about peers.json', async () => (await cluster.status(a)).problems.find((p) => p.includes('peers.json')), 20_000);
    assert.match(problem, /read-only/i, problem);
    assert.ok(a.proc, 'the agent keeps running');
    execFileSync('mount', ['-o', 'remount,rw', fs.dir]);
    await cluster.kill(b, 'SIGTERM'); // a member event: the next save
    await waitFor('the problem to go once a save works', async () => !(await cluster.status(a)).problems.some((p) => p.includes('peers.json')), 20_000);
  });
});
