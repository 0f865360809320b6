/**
 * The master deletes removed nodes from Kubernetes: `kubectl delete node NAME
 * --ignore-not-found` inside its running k3s server container, through
 * Podman's exec API (docs/upstream.md K19-K24). The stand-in k3s has the
 * image's /bin/kubectl link; for a delete it appends "delete node NAME" to a
 * log in the bound data dir, which the test reads on the host. Like kubectl,
 * it is refused while the server's apiserver is not up, and in an agent
 * container, which has no kubeconfig.
 */
import assert from 'node:assert/strict';
import fs from 'fs';
import path from 'path';
import { CLUSTER_KEY_JOIN_PROBLEM, NO_AGENT_KEY_PROBLEM, type ClusterView } from '../../agent/runtime/desired';
import { PodmanClient } from '../../agent/runtime/podman-client';
import { isHeptoError } from '../../shared/errors';
import type { Supervisor } from '../../agent/runtime/supervisor';
import { view } from '../unit/runtime/fixtures';
import { STAND_INS, waitFor } from './harness';
import { podmanSuite } from './suite';

/** Where the stand-in kubectl records deletions: <node>/k3s is bound on /var/lib/rancher/k3s. */
const READY = '/run/hepto-standin-k3s/apiserver-ready';

describe('podman: the master deletes removed nodes from Kubernetes (real Podman exec, stand-in kubectl)', function () {
  this.timeout(180_000);
  const t = podmanSuite({ perTest: true });

  const kubectlLog = (node: string): string => path.join(t.storage, node, 'k3s', 'server', 'hepto-standin-kubectl.log');
  const deletions = (node: string): string[] => {
    try {
      return fs
        .readFileSync(kubectlLog(node), 'utf8')
        .split('\n')
        .filter((l) => l.length > 0);
    } catch {
      return [];
    }
  };
  const running = (s: Supervisor, name: string) => () => s.status().containers.find((c) => c.name === name)?.state === 'running';
  const removedView = (self: string, removed: string[], ...others: string[]): ClusterView => ({
    ...view([self, 'alive'], ...others.map((o) => [o, 'alive'] as [string, 'alive'])),
    removed,
  });
  const fast = { linkCheckMs: 500, backoff: { baseMs: 300, capMs: 1_500, resetAfterMs: 5_000 } };

  it('deletes a removed node once, even after further views; a re-admitted then removed name again', async () => {
    const s = t.supervisor(t.config('prmaster'), fast);
    s.setCluster(removedView('prmaster', ['ghost']));
    await s.start();
    await waitFor(running(s, 'hepto-prmaster-k3s'), { what: 'master k3s running', timeoutMs: 40_000 });
    await waitFor(() => deletions('prmaster').length > 0, { what: 'delete node ghost in the stand-in log', timeoutMs: 30_000 });
    assert.deepEqual(deletions('prmaster'), ['delete node ghost']);
    await waitFor(() => t.lines.some((l) => /deleted removed node from Kubernetes/.test(l) && /node=ghost/.test(l)), { what: 'the info line' });
    assert.ok(
      t.lines.some((l) => /deleted removed node from Kubernetes/.test(l) && /node \\"ghost\\" deleted/.test(l)),
      'kubectl output logged',
    );
    assert.deepEqual(s.status().problems, [NO_AGENT_KEY_PROBLEM], 'no problem once deleted (but the one of a master without agent_key)');
    const m = (await t.h.inspect('hepto-prmaster-k3s'))! as unknown as { ExecIDs?: string[] | null };
    assert.ok((m.ExecIDs ?? []).length >= 1, 'Podman lists the exec sessions it ran (what the non-master test below checks is empty)');

    // Further views, the same removal among them: nothing more is deleted.
    for (let i = 0; i < 3; i++) {
      s.setCluster(removedView('prmaster', ['ghost']));
      await new Promise((r) => setTimeout(r, 400));
      await s.idle();
    }
    assert.deepEqual(deletions('prmaster'), ['delete node ghost'], 'exactly once');
    // A removed name that is one of this agent's own nodes is never deleted.
    s.setCluster(removedView('prmaster', ['ghost', 'prmaster']));
    await new Promise((r) => setTimeout(r, 1_000));
    await s.idle();
    assert.deepEqual(deletions('prmaster'), ['delete node ghost']);

    // Re-admitted (no longer in removed), then removed again: deleted again.
    s.setCluster(removedView('prmaster', []));
    await new Promise((r) => setTimeout(r, 800));
    await s.idle();
    s.setCluster(removedView('prmaster', ['ghost']));
    await waitFor(() => deletions('prmaster').length === 2, { what: 'the second delete of ghost', timeoutMs: 20_000 });
    assert.deepEqual(deletions('prmaster'), ['delete node ghost', 'delete node ghost']);
  });

  it("the API not up: a problem naming the node and kubectl's error, retried with backoff until it works", async () => {
    const s = t.supervisor(t.config('prdown'), fast);
    s.setCluster(removedView('prdown', []));
    await s.start();
    await waitFor(running(s, 'hepto-prdown-k3s'), { what: 'master k3s running', timeoutMs: 40_000 });
    // Once its "apiserver" is up, it goes down again, as a restarting k3s server's would.
    await waitFor(() => t.h.podman('exec', 'hepto-prdown-k3s', 'sh', '-c', `test -e ${READY}`).then(() => true), { what: 'the stand-in apiserver up' });
    await t.h.podman('exec', 'hepto-prdown-k3s', 'sh', '-c', `rm -f ${READY}`);
    s.setCluster(removedView('prdown', ['ghost2']));
    const problem = await waitFor(() => s.status().problems.find((p) => p.startsWith('cannot delete removed node ghost2 from Kubernetes: ')), {
      what: 'the problem',
      timeoutMs: 20_000,
    });
    assert.match(
      problem,
      /kubectl exited with code 1: The connection to the server 127\.0\.0\.1:6443 was refused - did you specify the right host or port\?; retrying$/,
    );
    const tries0 = t.lines.filter((l) => /cannot delete removed node from Kubernetes; retrying/.test(l)).length;
    await new Promise((r) => setTimeout(r, 2_500));
    const tries1 = t.lines.filter((l) => /cannot delete removed node from Kubernetes; retrying/.test(l)).length;
    assert.ok(tries1 > tries0, 'retried');
    assert.ok(tries1 - tries0 <= 6, `backoff, not a hot loop: ${tries1 - tries0} tries in 2.5 s`);
    assert.deepEqual(deletions('prdown'), []);

    await t.h.podman('exec', 'hepto-prdown-k3s', 'sh', '-c', `: > ${READY}`);
    await waitFor(() => deletions('prdown').length === 1, { what: 'deleted once the API is up', timeoutMs: 20_000 });
    await waitFor(() => !s.status().problems.some((p) => p.includes('ghost2')), { what: 'the problem gone' });
    assert.deepEqual(deletions('prdown'), ['delete node ghost2']);
  });

  it('PodmanClient.exec: exit code and both streams; a timeout, a stopped and a missing container are HeptoErrors', async () => {
    const client = new PodmanClient({ socketPath: t.h.socket });
    const id = (await t.h.podman('run', '-d', '--name', 'hepto-prexec', '--network', 'none', '-e', 'HEPTO_STANDIN_EXIT=', STAND_INS.exits)).trim();
    const r = await client.exec(id, 'hepto-prexec', ['sh', '-c', 'echo out; echo err >&2; exit 3'], 10_000);
    assert.equal(r.exitCode, 3);
    assert.deepEqual(r.output.split('\n').sort(), ['err', 'out']);
    assert.deepEqual(await client.exec(id, 'hepto-prexec', ['true'], 10_000), { exitCode: 0, output: '' });
    const t0 = Date.now();
    await assert.rejects(client.exec(id, 'hepto-prexec', ['sleep', '30'], 700), (e: unknown) => {
      assert.ok(isHeptoError(e));
      assert.match(e.message, /^sleep in container hepto-prexec did not finish within 1 s$/);
      return true;
    });
    assert.ok(Date.now() - t0 < 5_000, 'the timeout is kept');
    await t.h.podman('stop', '-t', '0', 'hepto-prexec');
    await assert.rejects(client.exec(id, 'hepto-prexec', ['true'], 10_000), /cannot run true in container hepto-prexec: the container is not running/);
    await t.h.podman('rm', '-f', 'hepto-prexec');
    await assert.rejects(client.exec(id, 'hepto-prexec', ['true'], 10_000), /cannot run true in container hepto-prexec: the container does not exist/);
  });

  it('an agent that does not host the master never execs; its k3s agent container could not anyway', async () => {
    const s = t.supervisor(t.config('prworker', { master: 'prboss' }), fast);
    s.setCluster(removedView('prworker', ['ghost'], 'prboss'));
    await s.start();
    await waitFor(running(s, 'hepto-prworker-k3s'), { what: 'agent k3s running', timeoutMs: 40_000 });
    for (let i = 0; i < 3; i++) {
      s.setCluster(removedView('prworker', ['ghost', `g${i}`], 'prboss'));
      await new Promise((r) => setTimeout(r, 500));
      await s.idle();
    }
    assert.ok(!t.lines.some((l) => /removed node/.test(l)), t.lines.filter((l) => /removed node/.test(l)).join('\n'));
    const k = (await t.h.inspect('hepto-prworker-k3s'))! as unknown as { ExecIDs?: string[] | null };
    assert.deepEqual(k.ExecIDs ?? [], [], 'no exec session in the k3s container');
    assert.deepEqual(s.status().problems, [CLUSTER_KEY_JOIN_PROBLEM], 'none but the one of a non-master joining k3s with cluster_key');
    // What the agent relies on in not trying: an agent container has no kubeconfig, so kubectl fails there.
    const out = await t.h.podman('exec', 'hepto-prworker-k3s', 'kubectl', 'delete', 'node', 'ghost', '--ignore-not-found').catch((e: Error) => e.message);
    assert.match(out, /The connection to the server localhost:8080 was refused/);
    assert.deepEqual(deletions('prworker'), []);
  });
});
