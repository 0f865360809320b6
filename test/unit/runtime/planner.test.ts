import assert from 'node:assert/strict';
import { backoffDelay, DEFAULT_BACKOFF } from '../../../agent/runtime/backoff';
import { computeDesired, type DesiredState } from '../../../agent/runtime/desired';
import { emptyHistory, planReconcile, type Action, type History, type Observed, type ObservedContainer } from '../../../agent/runtime/planner';
import { testConfig, view } from './fixtures';

const NOW = 1_700_000_000_000;
const OPTS = { policy: DEFAULT_BACKOFF, random: () => 0.5 };
const FACTS = { defaultIface: 'eth0', netavarkVersion: '1.4.0' };
const W = 'hepto-master1-wesher';
const K = 'hepto-master1-k3s';

function desired(over = {}): DesiredState {
  return computeDesired(testConfig(over), view(['master1', 'alive']), FACTS);
}

function obs(d: DesiredState, name: string, over: Partial<ObservedContainer> = {}): ObservedContainer {
  const c = d.containers.find((x) => x.name === name)!;
  return {
    id: `id-${name}`,
    name,
    node: c.node,
    role: c.role,
    state: 'running',
    hash: c.spec!.hash,
    join: c.spec!.join.join(','),
    startedAt: NOW - 3_600_000,
    finishedAt: null,
    exitCode: null,
    ...over,
  };
}

function observed(containers: ObservedContainer[], images = ['example.invalid/wesher:pinned', 'example.invalid/k3s:pinned']): Observed {
  return { containers, networks: [], images };
}

const brief = (actions: Action[]): string[] => actions.map((a) => `${a.type} ${'name' in a ? a.name : 'image' in a ? a.image : a.network.name}`);

describe('runtime/planner', () => {
  const d = desired();

  const table: Array<{ name: string; observed: () => Observed; history?: () => History; now?: number; want: string[] }> = [
    { name: 'nothing there: creates wesher then k3s', observed: () => observed([]), want: [`create ${W}`, `create ${K}`] },
    { name: 'all running with matching hashes: nothing to do (adopts after an agent restart)', observed: () => observed([obs(d, W), obs(d, K)]), want: [] },
    { name: 'missing images: pulls each before creating', observed: () => observed([], []), want: ['pull example.invalid/wesher:pinned', `create ${W}`, 'pull example.invalid/k3s:pinned', `create ${K}`] },
    {
      name: 'failed pull in backoff: neither pulls nor creates; k3s waits for wesher',
      observed: () => observed([], []),
      history: () => ({ containers: {}, images: { 'example.invalid/wesher:pinned': { failures: 1, nextPullAt: NOW + 5_000, lastError: 'x' } } }),
      want: ['pull example.invalid/k3s:pinned'].slice(0, 0),
    },
    { name: 'k3s died once: started at once', observed: () => observed([obs(d, W), obs(d, K, { state: 'exited', finishedAt: NOW - 10, exitCode: 137 })]), want: [`start ${K}`] },
    {
      name: 'k3s spec changed: only k3s recreated',
      observed: () => observed([obs(d, W), obs(d, K, { hash: 'old' })]),
      want: [`recreate ${K}`],
    },
    {
      name: 'wesher spec changed: k3s removed first, wesher recreated, k3s created again',
      observed: () => observed([obs(d, W, { hash: 'old' }), obs(d, K)]),
      want: [`remove ${K}`, `recreate ${W}`, `create ${K}`],
    },
    {
      name: 'stale containers of a node no longer configured: removed, k3s first',
      observed: () =>
        observed([obs(d, W), obs(d, K), { ...obs(d, W), id: 'o1', name: 'hepto-old-wesher', node: 'old' }, { ...obs(d, K), id: 'o2', name: 'hepto-old-k3s', node: 'old' }]),
      want: ['remove hepto-old-k3s', 'remove hepto-old-wesher'],
    },
    {
      name: 'a container with our name that hepto did not create is left alone',
      observed: () => observed([{ ...obs(d, W), node: null, role: null, hash: null }]),
      want: [],
    },
    {
      name: 'wesher died with a changed join list: recreated with the current one',
      observed: () => observed([obs(d, W, { state: 'exited', finishedAt: NOW - 5, join: '192.0.2.99' }), obs(d, K)]),
      want: [`remove ${K}`, `recreate ${W}`, `create ${K}`],
    },
  ];
  for (const row of table) {
    it(row.name, () => {
      const actions = planReconcile(d, row.observed(), row.history?.() ?? emptyHistory(), row.now ?? NOW, OPTS);
      assert.deepEqual(brief(actions), row.want);
    });
  }

  it('macvlan: creates the node network before the containers', () => {
    const dm = desired({ network_mode: 'macvlan', iface: 'eth0' });
    assert.deepEqual(brief(planReconcile(dm, observed([]), emptyHistory(), NOW, OPTS)), [`create-network hepto-master1`, `create ${W}`, `create ${K}`]);
    assert.deepEqual(brief(planReconcile(dm, { ...observed([]), networks: ['hepto-master1'] }, emptyHistory(), NOW, OPTS)), [`create ${W}`, `create ${K}`]);
  });

  it('macvlan: a restarted wesher takes the running k3s along (new namespace); host mode does not', () => {
    const dm = desired({ network_mode: 'macvlan', iface: 'eth0' });
    const o = { ...observed([obs(dm, W, { state: 'exited', finishedAt: NOW - 5 }), obs(dm, K)]), networks: ['hepto-master1'] };
    assert.deepEqual(brief(planReconcile(dm, o, emptyHistory(), NOW, OPTS)), [`start ${W}`, `restart ${K}`]);
    assert.deepEqual(brief(planReconcile(d, observed([obs(d, W, { state: 'exited', finishedAt: NOW - 5 }), obs(d, K)]), emptyHistory(), NOW, OPTS)), [`start ${W}`]);
  });

  it('a waiting k3s is neither created nor removed', () => {
    const dw = computeDesired(testConfig({ node: 'w1', master: 'm1' }), view(['w1', 'alive']), FACTS);
    const w1 = 'hepto-w1-wesher';
    const running = { ...obs(dw, w1), id: 'k', name: 'hepto-w1-k3s', role: 'k3s' as const, hash: 'from-before-restart' };
    assert.deepEqual(brief(planReconcile(dw, observed([obs(dw, w1), running]), emptyHistory(), NOW, OPTS)), []);
    assert.deepEqual(brief(planReconcile(dw, observed([obs(dw, w1)]), emptyHistory(), NOW, OPTS)), []);
  });

  it('repeated quick deaths: backoff grows (capped, jittered), crashloop log fetched, reset after a long uptime', () => {
    const h = emptyHistory();
    let t = NOW;
    const waits: number[] = [];
    for (let i = 0; i < 9; i++) {
      const o = obs(d, K, { id: 'k', state: 'exited', startedAt: t - 500, finishedAt: t - 1, exitCode: 3 });
      const [a] = planReconcile(d, observed([obs(d, W), o]), h, t, OPTS);
      const death = a.type === 'start' || a.type === 'backoff' ? a.death! : null;
      assert.ok(death, `death ${i} noted`);
      assert.equal(death.failures, i + 1);
      assert.equal(death.exitCode, 3);
      h.containers[K] = { restarts: i, failures: death.failures, lastDeath: death.key, nextStartAt: death.nextStartAt, lastExitCode: 3, lastError: null, lastLog: [] };
      if (i === 0) {
        assert.equal(a.type, 'start', 'the first death restarts at once');
        t += 100;
      }
      else {
        assert.equal(a.type, 'backoff');
        if (a.type === 'backoff') assert.equal(a.fetchLog, true);
        waits.push(death.nextStartAt - t);
        // Same death seen again before the deadline: still backing off, nothing new noted.
        const again = planReconcile(d, observed([obs(d, W), o]), h, t + 1, OPTS);
        assert.deepEqual(brief(again), [`backoff ${K}`]);
        assert.equal((again[0] as { death: unknown }).death, null);
        // At the deadline: started.
        assert.deepEqual(brief(planReconcile(d, observed([obs(d, W), o]), h, death.nextStartAt, OPTS)), [`start ${K}`]);
        t = death.nextStartAt + 100;
      }
    }
    assert.deepEqual(waits.slice(0, 4), [1000, 2000, 4000, 8000]);
    assert.equal(waits[waits.length - 1], 60_000, 'capped');
    // Up for longer than resetAfter before dying: counts as a first death again.
    const long = obs(d, K, { id: 'k', state: 'exited', startedAt: t - 120_000, finishedAt: t - 1, exitCode: 1 });
    const [a] = planReconcile(d, observed([obs(d, W), long]), h, t, OPTS);
    assert.equal(a.type, 'start');
  });

  it('a process seen exited before Podman recorded its finish time and exit code is not counted yet', () => {
    const h = emptyHistory();
    const early = observed([obs(d, W), obs(d, K, { id: 'k', state: 'exited', startedAt: NOW - 500, finishedAt: null, exitCode: 0 })]);
    assert.deepEqual(brief(planReconcile(d, early, h, NOW, OPTS)), [], 'wait for the settled state');
    const settled = observed([obs(d, W), obs(d, K, { id: 'k', state: 'exited', startedAt: NOW - 500, finishedAt: NOW - 1, exitCode: 3 })]);
    const actions = planReconcile(d, settled, h, NOW + 50, OPTS);
    assert.deepEqual(brief(actions), [`start ${K}`]);
    const start = actions[0] as Extract<Action, { type: 'start' }>;
    assert.equal(start.death?.exitCode, 3, 'the real exit code');
    assert.equal(start.death?.failures, 1, 'one death, not two');
    // A container that never started has no finish time either, and is started.
    const never = observed([obs(d, W), obs(d, K, { id: 'k2', state: 'created', startedAt: null, finishedAt: null })]);
    assert.deepEqual(brief(planReconcile(d, never, emptyHistory(), NOW, OPTS)), [`start ${K}`]);
  });

  it('backoff jitter stays within bounds', () => {
    for (const r of [0, 0.25, 0.999]) {
      const v = backoffDelay(3, DEFAULT_BACKOFF, r);
      assert.ok(v >= 1600 && v <= 2400, String(v));
    }
    assert.equal(backoffDelay(1, DEFAULT_BACKOFF, 0.9), 0);
  });
});
