import assert from 'node:assert/strict';
import { computeDesired } from '../../../agent/runtime/desired';
import { emptyHistory, type ObservedContainer } from '../../../agent/runtime/planner';
import { buildSupervisorStatus } from '../../../agent/runtime/runtime-status';
import { AGENT_KEY, testConfig, view } from './fixtures';

const NOW = 1_700_000_000_000;
// With agent_key: a master without one has a problem in status (the others would need the server token).
const d = computeDesired(testConfig({ agent_key: AGENT_KEY }), view(['master1', 'alive']), { defaultIface: null, netavarkVersion: null });
const o = (name: string, over: Partial<ObservedContainer> = {}): ObservedContainer => ({
  id: name,
  name,
  node: 'master1',
  role: name.endsWith('k3s') ? 'k3s' : 'wesher',
  state: 'running',
  hash: 'h',
  join: '',
  startedAt: NOW - 1000,
  finishedAt: null,
  exitCode: null,
  ...over,
});

describe('runtime/status', () => {
  it('running containers give running health and no problems', () => {
    const s = buildSupervisorStatus({
      desired: d,
      observed: [o('hepto-master1-wesher'), o('hepto-master1-k3s')],
      history: emptyHistory(),
      podman: 'connected',
      podmanProblem: null,
      now: NOW,
    });
    assert.deepEqual(s.health, { master1: { wesher: 'running', k3s: 'running' } });
    assert.deepEqual(s.problems, []);
    assert.equal(s.containers[0].name, 'hepto-master1-wesher');
  });
  it('crashloop shows exit code, log lines and a problem with what to do; missing and unreachable are reported', () => {
    const h = emptyHistory();
    h.containers['hepto-master1-k3s'] = {
      restarts: 4,
      failures: 5,
      lastDeath: 'x',
      nextStartAt: NOW + 8000,
      lastExitCode: 3,
      lastError: null,
      lastLog: ['boom'],
    };
    const s = buildSupervisorStatus({
      desired: d,
      observed: [o('hepto-master1-k3s', { state: 'exited', exitCode: 3 })],
      history: h,
      podman: 'unreachable',
      podmanProblem: 'Podman API unreachable at /s (ENOENT)',
      now: NOW,
    });
    const k = s.containers.find((c) => c.role === 'k3s')!;
    assert.deepEqual([k.state, k.restarts, k.last_exit_code, k.last_log], ['crashloop', 4, 3, ['boom']]);
    assert.equal(s.containers.find((c) => c.role === 'wesher')!.state, 'missing');
    assert.equal(s.problems[0], 'Podman API unreachable at /s (ENOENT)');
    assert.ok(s.problems.some((p) => /hepto-master1-k3s keeps failing \(exit code 3\), 5 times in a row; next try in 8 s/.test(p)));
    assert.equal(s.podman, 'unreachable');
  });
  it('a foreign container with our name is reported, not touched', () => {
    const s = buildSupervisorStatus({
      desired: d,
      observed: [o('hepto-master1-wesher', { node: null })],
      history: emptyHistory(),
      podman: 'connected',
      podmanProblem: null,
      now: NOW,
    });
    assert.ok(s.problems.some((p) => /hepto did not create.*podman rm -f hepto-master1-wesher/.test(p)));
  });
});
