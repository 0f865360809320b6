import assert from 'node:assert/strict';
import { DEFAULT_BACKOFF } from '../../../agent/runtime/backoff';
import {
  deleteNodeArgv,
  emptyRemovalState,
  forgetRemovals,
  hostsMaster,
  noteDeleted,
  noteRemovalFailed,
  planRemovals,
  removalTargets,
  summarizeOutput,
  type RemovalState,
} from '../../../agent/runtime/node-removal';
import type { ClusterView } from '../../../agent/runtime/desired';
import { testConfig, view } from './fixtures';

const master = testConfig({ node: 'master1', master: 'master1' });
const worker = testConfig({ node: 'worker1', master: 'master1' });
/** One machine hosting the master and a second node. */
const twoNodes = testConfig({
  node: 'master1',
  master: 'master1',
  nodes: [{ node: 'extra1', iface: null, ip: ['2001:db8::2/64'], gw: [], network_mode: 'host' }],
});

function removed(...names: string[]): ClusterView {
  return { ...view(['master1', 'alive']), removed: names };
}

function plan(cfg = master, v: ClusterView = removed('ghost'), state: RemovalState = emptyRemovalState(), now = 10_000, masterK3sRunning = true) {
  return planRemovals({ config: cfg, view: v, state, now, masterK3sRunning });
}

describe('runtime/node-removal', () => {
  it('the command is kubectl delete node NAME --ignore-not-found, through the image link /bin/kubectl', () => {
    assert.deepEqual(deleteNodeArgv('ghost'), ['/bin/kubectl', 'delete', 'node', 'ghost', '--ignore-not-found']);
  });

  it('only the agent hosting the master acts (also as one of its extra nodes)', () => {
    assert.equal(hostsMaster(master), true);
    assert.equal(hostsMaster(worker), false);
    assert.equal(
      hostsMaster(testConfig({ node: 'a1', master: 'extra1', nodes: [{ node: 'extra1', iface: null, ip: [], gw: [], network_mode: 'host' }] })),
      true,
    );
    assert.deepEqual(plan(worker).due, []);
    assert.deepEqual(removalTargets(worker, removed('ghost')), { names: [], problems: [] });
  });

  it('a master with k3s running deletes every removed name now, sorted, each once', () => {
    assert.deepEqual(plan(master, removed('zeta', 'ghost', 'ghost')).due, ['ghost', 'zeta']);
    assert.deepEqual(plan(master, { members: [] }).due, [], 'no removed field: nothing');
  });

  it("never one of this agent's own nodes", () => {
    assert.deepEqual(plan(twoNodes, removed('master1', 'extra1', 'ghost')).due, ['ghost']);
  });

  it('not while the master k3s is not running (nothing to exec into), and no problem for that', () => {
    const p = plan(master, removed('ghost'), emptyRemovalState(), 10_000, false);
    assert.deepEqual(p.due, []);
    assert.deepEqual(p.problems, []);
  });

  it('a name that is not a node name is never passed to kubectl (a leading "-" would be a flag)', () => {
    const p = plan(master, removed('--all', 'Ghost', 'ok-name'));
    assert.deepEqual(p.due, ['ok-name']);
    assert.equal(p.problems.length, 2);
    assert.match(
      p.problems.find((x) => x.includes('"--all"'))!,
      /not deleted from Kubernetes: it is not a node name \(it must not start or end with "-"\)/,
    );
  });

  it('deleted once per agent run: not due again after further views', () => {
    const s = emptyRemovalState();
    noteDeleted(s, 'ghost');
    assert.deepEqual(plan(master, removed('ghost'), s).due, []);
    assert.deepEqual(plan(master, removed('ghost', 'other'), s).due, ['other']);
  });

  it('a failure backs off as a container restart would, and status says which node and why', () => {
    const s = emptyRemovalState();
    const a1 = noteRemovalFailed(
      s,
      'ghost',
      'kubectl exited with code 1: The connection to the server 127.0.0.1:6443 was refused',
      10_000,
      DEFAULT_BACKOFF,
      0.5,
    );
    assert.equal(a1.failures, 1);
    assert.equal(a1.nextAt, 11_000, 'at least baseMs');
    let p = plan(master, removed('ghost'), s, 10_500);
    assert.deepEqual(p.due, []);
    assert.equal(p.nextAt, 11_000);
    assert.deepEqual(p.problems, [
      'cannot delete removed node ghost from Kubernetes: kubectl exited with code 1: The connection to the server 127.0.0.1:6443 was refused; retrying',
    ]);
    p = plan(master, removed('ghost'), s, 11_000);
    assert.deepEqual(p.due, ['ghost'], 'due again once the wait is over');
    assert.equal(p.nextAt, null);
    const a3 = [2, 3].map(() => noteRemovalFailed(s, 'ghost', 'again', 11_000, DEFAULT_BACKOFF, 0.5)).pop()!;
    assert.equal(a3.failures, 3);
    assert.equal(a3.nextAt, 11_000 + 2_000, 'doubling: base × 2 at the third failure');
    for (let i = 0; i < 20; i++) noteRemovalFailed(s, 'ghost', 'again', 0, DEFAULT_BACKOFF, 0.5);
    assert.equal(s.failing.ghost.nextAt, DEFAULT_BACKOFF.capMs, 'capped');
    noteDeleted(s, 'ghost');
    assert.deepEqual(plan(master, removed('ghost'), s).problems, [], 'the problem goes once it is deleted');
  });

  it('a name re-admitted (no longer removed) is forgotten, so a later removal deletes it again', () => {
    const s = emptyRemovalState();
    noteDeleted(s, 'ghost');
    noteRemovalFailed(s, 'other', 'refused', 0, DEFAULT_BACKOFF, 0.5);
    const p = plan(master, removed(), s);
    assert.deepEqual(p.forget, ['ghost', 'other']);
    assert.deepEqual(p.problems, [], 'no problem about a re-admitted node');
    forgetRemovals(s, p.forget);
    assert.deepEqual(plan(master, removed(), s).forget, []);
    assert.deepEqual(plan(master, removed('ghost'), s).due, ['ghost']);
  });

  it('an agent that does not host the master does nothing, and keeps nothing', () => {
    const s = emptyRemovalState();
    noteDeleted(s, 'ghost');
    const p = plan(worker, removed('ghost'), s);
    assert.deepEqual(p.due, []);
    assert.deepEqual(p.forget, ['ghost']);
  });

  it("kubectl's output becomes one short line", () => {
    assert.equal(summarizeOutput('node "ghost" deleted\n'), 'node "ghost" deleted');
    assert.equal(summarizeOutput('E0101 a\n\nThe connection to the server x was refused\n'), 'E0101 a; The connection to the server x was refused');
    assert.equal(summarizeOutput('x'.repeat(400)).length, 300);
  });
});
