import assert from 'node:assert/strict';
import { backoffDelay, DEFAULT_BACKOFF } from '../../../agent/runtime/backoff';
import { computeDesired, type DesiredState } from '../../../agent/runtime/desired';
import { overlayAddress } from '../../../agent/runtime/desired';
import { DEFAULT_WESHER_IMAGE } from '../../../shared/config/images';
import {
  emptyHistory,
  JOIN_DEADLINE_MS,
  planReconcile,
  type Action,
  type History,
  type Observed,
  type ObservedContainer,
} from '../../../agent/runtime/planner';
import type { LinkState } from '../../../agent/runtime/overlay-link';
import { runningAsDesired, testConfig, view } from './fixtures';

const NOW = 1_700_000_000_000;
const OPTS = { policy: DEFAULT_BACKOFF, random: () => 0.5 };
const FACTS = { defaultIface: 'eth0', netavarkVersion: '1.4.0' };
const W = 'hepto-master1-wesher';
const K = 'hepto-master1-k3s';

function desired(over = {}): DesiredState {
  return computeDesired(testConfig(over), view(['master1', 'alive']), FACTS);
}

function obs(d: DesiredState, name: string, over: Partial<ObservedContainer> = {}): ObservedContainer {
  return runningAsDesired(d, name, NOW, over);
}

/** The link as the agent wants it: present, up, at mtu - 80, with the overlay address. */
function readyLink(d: DesiredState, node = 'master1'): LinkState {
  const l = d.links.find((x) => x.node === node)!;
  return { exists: true, up: true, mtu: l.mtu, addresses: [l.address] };
}

/** Podman's view; every running wesher's link is as wanted and it has had a membership event, unless `links` says otherwise. */
function observed(
  containers: ObservedContainer[],
  images = ['example.invalid/wesher:pinned', 'example.invalid/k3s:pinned'],
  links?: Record<string, LinkState>,
): Observed {
  const running = containers.filter((c) => c.role === 'wesher' && c.state === 'running' && c.node);
  const ds = new Map(running.map((c) => [c.node!, c]));
  return {
    containers,
    networks: [],
    images,
    links: links ?? Object.fromEntries([...ds.keys()].map((n) => [n, { exists: true, up: true, mtu: 1320, addresses: [overlayAddress(overlayIpOf(n))] }])),
    wesherStateAt: Object.fromEntries([...ds.values()].map((c) => [c.node!, (c.startedAt ?? NOW) + 1])),
  };
}

function overlayIpOf(node: string): string {
  return computeDesired(testConfig({ node }), view([node, 'alive']), FACTS).overlayIps[node]!;
}

const brief = (actions: Action[]): string[] =>
  actions.map((a) => `${a.type} ${'name' in a ? a.name : 'image' in a ? a.image : typeof a.network === 'string' ? a.network : a.network.name}`);

describe('runtime/planner', () => {
  const d = desired();

  const table: Array<{ name: string; observed: () => Observed; history?: () => History; now?: number; want: string[] }> = [
    { name: 'nothing there: creates wesher; k3s waits for it', observed: () => observed([]), want: [`create ${W}`, `wait ${K}`] },
    { name: 'all running with matching hashes: nothing to do (adopts after an agent restart)', observed: () => observed([obs(d, W), obs(d, K)]), want: [] },
    {
      name: 'missing images: pulls each before creating',
      observed: () => observed([], []),
      want: ['pull example.invalid/wesher:pinned', `create ${W}`, `wait ${K}`],
    },
    {
      name: 'failed pull in backoff: neither pulls nor creates; k3s waits for wesher',
      observed: () => observed([], []),
      history: () => ({ containers: {}, images: { 'example.invalid/wesher:pinned': { failures: 1, nextPullAt: NOW + 5_000, lastError: 'x' } } }),
      want: [`wait ${K}`],
    },
    {
      name: 'k3s died once: started at once',
      observed: () => observed([obs(d, W), obs(d, K, { state: 'exited', finishedAt: NOW - 10, exitCode: 137 })]),
      want: [`start ${K}`],
    },
    {
      name: 'k3s spec changed: only k3s recreated',
      observed: () => observed([obs(d, W), obs(d, K, { hash: 'old' })]),
      want: [`recreate ${K}`],
    },
    {
      name: 'wesher spec changed: k3s removed first, wesher recreated, k3s created again',
      observed: () => observed([obs(d, W, { hash: 'old' }), obs(d, K)]),
      want: [`remove ${K}`, `recreate ${W}`, `wait ${K}`],
    },
    {
      name: 'stale containers of a node no longer configured: removed, k3s first',
      observed: () =>
        observed([
          obs(d, W),
          obs(d, K),
          { ...obs(d, W), id: 'o1', name: 'hepto-old-wesher', node: 'old' },
          { ...obs(d, K), id: 'o2', name: 'hepto-old-k3s', node: 'old' },
        ]),
      want: ['remove hepto-old-k3s', 'remove hepto-old-wesher'],
    },
    {
      name: "a removed node's network goes after its containers; networks hepto did not make, or still wanted, stay",
      observed: () => ({
        ...observed([obs(d, W), obs(d, K), { ...obs(d, W), id: 'o1', name: 'hepto-old-wesher', node: 'old' }]),
        managedNetworks: ['hepto-old'],
        networks: ['hepto-old', 'podman', 'someone-elses'],
      }),
      want: ['remove hepto-old-wesher', 'remove-network hepto-old'],
    },
    {
      name: 'a container with our name that hepto did not create is left alone',
      observed: () => observed([{ ...obs(d, W), node: null, role: null, hash: null }]),
      want: [],
    },
    {
      name: 'wesher died with a changed join list: recreated with the current one',
      observed: () => observed([obs(d, W, { state: 'exited', finishedAt: NOW - 5, join: '192.0.2.99' }), obs(d, K)]),
      want: [`remove ${K}`, `recreate ${W}`, `wait ${K}`],
    },
  ];
  for (const row of table) {
    it(row.name, () => {
      const actions = planReconcile(d, row.observed(), row.history?.() ?? emptyHistory(), row.now ?? NOW, OPTS);
      assert.deepEqual(brief(actions), row.want);
    });
  }

  it('the default wesher image, missing: built from the release (no image to pull exists); an own image is pulled', () => {
    const img = { wesher: DEFAULT_WESHER_IMAGE, k3s: 'example.invalid/k3s:pinned' };
    const db = desired({ images: img, wesher_download: 'https://mirror.example.invalid/wesher', wesher_sha256: 'a'.repeat(64) });
    const acts = planReconcile(db, observed([], ['example.invalid/k3s:pinned']), emptyHistory(), NOW, OPTS);
    assert.deepEqual(brief(acts), [`build-wesher ${DEFAULT_WESHER_IMAGE}`, `create ${W}`, `wait ${K}`]);
    assert.deepEqual(acts[0], { type: 'build-wesher', image: DEFAULT_WESHER_IMAGE, baseUrl: 'https://mirror.example.invalid/wesher', sha256: 'a'.repeat(64) });
    // A failed build backs off like a failed pull.
    const h: History = { ...emptyHistory(), images: { [DEFAULT_WESHER_IMAGE]: { failures: 1, nextPullAt: NOW + 5_000, lastError: 'x' } } };
    assert.deepEqual(brief(planReconcile(db, observed([], ['example.invalid/k3s:pinned']), h, NOW, OPTS)), [`wait ${K}`]);
    assert.deepEqual(brief(planReconcile(d, observed([], ['example.invalid/k3s:pinned']), emptyHistory(), NOW, OPTS)), [
      'pull example.invalid/wesher:pinned',
      `create ${W}`,
      `wait ${K}`,
    ]);
  });

  it('macvlan: creates the node network before the containers', () => {
    const dm = desired({ network_mode: 'macvlan', iface: 'eth0' });
    assert.deepEqual(brief(planReconcile(dm, observed([]), emptyHistory(), NOW, OPTS)), [`create-network hepto-master1`, `create ${W}`, `wait ${K}`]);
    assert.deepEqual(brief(planReconcile(dm, { ...observed([]), networks: ['hepto-master1'] }, emptyHistory(), NOW, OPTS)), [`create ${W}`, `wait ${K}`]);
  });

  for (const mode of ['host', 'macvlan'] as const) {
    it(`${mode}: a restarted wesher takes the running k3s along, once its link is back (flannel does not recover it)`, () => {
      const dm = desired(mode === 'macvlan' ? { network_mode: 'macvlan', iface: 'eth0' } : {});
      const k = obs(dm, K, { startedAt: NOW - 60_000 });
      const died = { ...observed([obs(dm, W, { state: 'exited', startedAt: NOW - 120_000, finishedAt: NOW - 5 }), k]), networks: ['hepto-master1'] };
      assert.deepEqual(brief(planReconcile(dm, died, emptyHistory(), NOW, OPTS)), [`start ${W}`], 'wesher first');
      const back = obs(dm, W, { startedAt: NOW + 10 });
      const noLink = { ...observed([back, k], undefined, { master1: { exists: false, mtu: null, up: false, addresses: [] } }), networks: ['hepto-master1'] };
      assert.deepEqual(
        brief(planReconcile(dm, noLink, emptyHistory(), NOW + 20, OPTS)),
        [`ensure-link ${W}`, `wait ${K}`],
        'k3s keeps running until the link is back',
      );
      const linked = { ...observed([back, k]), networks: ['hepto-master1'] };
      assert.deepEqual(brief(planReconcile(dm, linked, emptyHistory(), NOW + 30, OPTS)), [`restart ${K}`]);
      // Restarted: k3s started after wesher, nothing more.
      assert.deepEqual(
        brief(planReconcile(dm, { ...observed([back, obs(dm, K, { startedAt: NOW + 40 })]), networks: ['hepto-master1'] }, emptyHistory(), NOW + 50, OPTS)),
        [],
      );
    });
  }

  it('a lone master: the agent makes the link wesher would only make at its first peer, then k3s starts', () => {
    const absent: LinkState = { exists: false, mtu: null, up: false, addresses: [] };
    const w = obs(d, W);
    const first = planReconcile(d, observed([w], undefined, { master1: absent }), emptyHistory(), NOW, OPTS);
    assert.deepEqual(brief(first), [`ensure-link ${W}`, `wait ${K}`]);
    const ensure = first[0] as Extract<Action, { type: 'ensure-link' }>;
    assert.equal(ensure.pid, 4242, "in wesher's namespace");
    assert.deepEqual(ensure.link, d.links[0]);
    assert.equal(ensure.link.mtu, 1400 - 80, 'mtu - 80');
    assert.equal(ensure.link.ifname, 'wgoverlay');
    assert.equal(ensure.link.address, `${d.overlayIps.master1}/32`);
    const wait = first[1] as Extract<Action, { type: 'wait' }>;
    assert.match(wait.reason, /wgoverlay .* to carry 10\.\d+\.\d+\.\d+\/32 at MTU 1320/);
    // wesher reset the MTU to its own 1420, or the address is missing: set again.
    for (const have of [
      { ...readyLink(d), mtu: 1420 },
      { ...readyLink(d), addresses: [] },
      { ...readyLink(d), up: false },
    ]) {
      assert.deepEqual(brief(planReconcile(d, observed([w], undefined, { master1: have }), emptyHistory(), NOW, OPTS)), [`ensure-link ${W}`, `wait ${K}`]);
    }
    // Not read yet (no pid, or the read failed): k3s waits, nothing is attempted blind.
    assert.deepEqual(brief(planReconcile(d, observed([w], undefined, {}), emptyHistory(), NOW, OPTS)), [`wait ${K}`]);
    assert.deepEqual(brief(planReconcile(d, observed([w], undefined, { master1: readyLink(d) }), emptyHistory(), NOW, OPTS)), [`create ${K}`]);
  });

  it('a failing link set-up backs off, and k3s keeps waiting', () => {
    const h: History = { ...emptyHistory(), links: { master1: { failures: 1, nextAt: NOW + 1000, lastError: 'cannot set up wgoverlay: no WireGuard' } } };
    const o = observed([obs(d, W)], undefined, { master1: { exists: false, mtu: null, up: false, addresses: [] } });
    const acts = planReconcile(d, o, h, NOW, OPTS);
    assert.deepEqual(brief(acts), [`wait ${K}`]);
    assert.match((acts[0] as Extract<Action, { type: 'wait' }>).reason, /no WireGuard/);
    assert.deepEqual(brief(planReconcile(d, o, h, NOW + 1000, OPTS)), [`ensure-link ${W}`, `wait ${K}`]);
  });

  it('a wesher that has not joined within the deadline, while there are weshers to join, is recreated with a fresh list', () => {
    const dj = computeDesired(testConfig(), view(['master1', 'alive'], ['w2', 'alive', { node_ips: ['2001:db8::2'] }]), FACTS);
    assert.deepEqual(dj.containers.find((c) => c.name === W)!.spec!.join, ['2001:db8::2']);
    const started = NOW - JOIN_DEADLINE_MS;
    const stuck = (stateAt: number | null, startedAt = started): Observed => ({
      ...observed([obs(dj, W, { startedAt }), obs(dj, K, { startedAt })]),
      wesherStateAt: { master1: stateAt },
    });
    assert.deepEqual(brief(planReconcile(dj, stuck(null), emptyHistory(), NOW, OPTS)), [`remove ${K}`, `recreate ${W}`, `wait ${K}`]);
    assert.deepEqual(
      brief(planReconcile(dj, stuck(started - 1), emptyHistory(), NOW, OPTS)),
      [`remove ${K}`, `recreate ${W}`, `wait ${K}`],
      'a state file from before this start does not count',
    );
    assert.deepEqual(brief(planReconcile(dj, stuck(started + 5), emptyHistory(), NOW, OPTS)), [], 'joined: a membership event since it started');
    const soon = planReconcile(dj, stuck(null, NOW - JOIN_DEADLINE_MS / 2), emptyHistory(), NOW, OPTS);
    assert.deepEqual(brief(soon), [`wait ${W}`], 'before the deadline: only said');
    assert.match(
      (soon[0] as Extract<Action, { type: 'wait' }>).reason,
      /has not joined the mesh for 60 s .*2001:db8::2.* restarted with a fresh list at 120 s/,
    );
    // Nobody to join (a lone master): never restarted for it.
    assert.deepEqual(
      brief(
        planReconcile(
          d,
          { ...observed([obs(d, W, { startedAt: started }), obs(d, K, { startedAt: started })]), wesherStateAt: { master1: null } },
          emptyHistory(),
          NOW,
          OPTS,
        ),
      ),
      [],
    );
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
      h.containers[K] = {
        restarts: i,
        failures: death.failures,
        lastDeath: death.key,
        nextStartAt: death.nextStartAt,
        lastExitCode: 3,
        lastError: null,
        lastLog: [],
      };
      if (i === 0) {
        assert.equal(a.type, 'start', 'the first death restarts at once');
        t += 100;
      } else {
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
