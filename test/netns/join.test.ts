/**
 * Joining and rejoining across hosts: a dead first anchor, an anchor machine
 * that crashes after the join, and a restart with every anchor gone.
 * "Down" or "crashed" machines are blackholed (TCP to them vanishes, no RST),
 * which is how a powered-off machine looks from across the internet.
 */
import { strict as assert } from 'assert';
import { readFileSync } from 'fs';
import * as path from 'path';
import { waitFor } from '../helpers/agent-cluster';
import { everyone, timed, useNetns, type HostAgent } from './cluster';

function persistedPeers(a: HostAgent): string[] {
  try {
    const data = JSON.parse(readFileSync(path.join(a.dir, 'srv', a.name, 'peers.json'), 'utf8')) as { peers: Array<{ name: string }> };
    return data.peers.map((p) => p.name);
  } catch {
    return [];
  }
}

describe('netns: joining and rejoining across hosts', function () {
  this.timeout(90000);
  const env = useNetns(5);

  it('the first anchor is down at join time: the second one works', async () => {
    const { topo, cluster } = env;
    const [h1, h2, h3, h4] = topo.hosts;
    topo.blackhole(h1); // anchor 1's machine is off: dials to it can only time out
    // Every host gets the same anchor list, as an operator would write it: beta finds itself in it.
    const beta = cluster.on(h2, 'beta', { anchors: [h1, h2] });
    const gamma = cluster.on(h3, 'gamma', { anchors: [h1, h2] });
    const delta = cluster.on(h4, 'delta', { anchors: [h1, h2] });
    const agents = [beta, gamma, delta];
    await cluster.boot(agents);
    await timed('join with the first anchor down', () => cluster.waitAllSee(agents, everyone(agents, 'alive'), 30000));
    for (const a of agents) {
      const s = await cluster.statusCli(a);
      assert.deepEqual(s.members.map((m) => m.name).sort(), ['beta', 'delta', 'gamma'], `${a.name} lists exactly the live members`);
      assert.ok(s.members.every((m) => m.state === 'alive'));
      const b = s.members.find((m) => m.name === 'beta')!;
      assert.ok(b.addresses.includes(h2.gossip), `beta advertises its IPv6 gossip address: ${JSON.stringify(b.addresses)}`);
    }
  });

  it('an anchor that comes up after its joiners found each other is still reached: one cluster, no island', async () => {
    const { topo, cluster } = env;
    const [h1, h2, h3, h4] = topo.hosts;
    // beta's only anchor (alpha) is not up yet; delta joins through beta: an island of two.
    const beta = cluster.on(h2, 'beta', { anchors: [h1] });
    const delta = cluster.on(h4, 'delta', { anchors: [h2] });
    await cluster.boot([beta, delta]);
    await cluster.waitAllSee([beta, delta], { beta: 'alive', delta: 'alive' }, 30000);
    // Then the anchor comes up, and gamma joins it.
    const alpha = cluster.on(h1, 'alpha');
    const gamma = cluster.on(h3, 'gamma', { anchors: [h1] });
    await cluster.boot([alpha, gamma]);
    const agents = [alpha, beta, gamma, delta];
    await timed('the island merges with the late anchor', () => cluster.waitAllSee(agents, everyone(agents, 'alive'), 40000));
  });

  it('the anchor machine crashes after the join: the others carry on, and a new host joins via the second anchor', async () => {
    const { topo, cluster } = env;
    const [h1, h2, h3, h4, h5] = topo.hosts;
    const alpha = cluster.on(h1, 'alpha');
    const beta = cluster.on(h2, 'beta', { anchors: [h1] });
    const gamma = cluster.on(h3, 'gamma', { anchors: [h1, h2] });
    const delta = cluster.on(h4, 'delta', { anchors: [h1, h2] });
    const first = [alpha, beta, gamma, delta];
    await cluster.boot(first);
    await cluster.waitAllSee(first, everyone(first, 'alive'), 30000);

    topo.blackhole(h1);
    await cluster.kill(alpha, 'SIGKILL');
    const rest = [beta, gamma, delta];
    await timed('anchor crash seen dead by all', () => cluster.waitAllSee(rest, { ...everyone(rest, 'alive'), alpha: 'dead' }, 30000));

    const eps = cluster.on(h5, 'epsilon', { anchors: [h1, h2] });
    cluster.start(eps);
    const live = [...rest, eps];
    await timed('new join via the second anchor', () => cluster.waitAllSee(live, everyone(live, 'alive'), 30000));
    for (const a of live) {
      const s = await cluster.statusCli(a);
      const alphaState = s.members.find((m) => m.name === 'alpha')?.state;
      assert.ok(alphaState === undefined || alphaState === 'dead', `${a.name} must not see the crashed anchor ${alphaState}`);
      for (const b of live) assert.equal(s.members.find((m) => m.name === b.name)?.state, 'alive', `${a.name} sees ${b.name} alive`);
    }
  });

  it('a host restarted while every anchor is gone rejoins through its persisted peers', async () => {
    const { topo, cluster } = env;
    const [h1, h2, h3] = topo.hosts;
    const alpha = cluster.on(h1, 'alpha');
    const beta = cluster.on(h2, 'beta', { anchors: [h1] });
    const gamma = cluster.on(h3, 'gamma', { anchors: [h1] });
    const agents = [alpha, beta, gamma];
    await cluster.boot(agents);
    await cluster.waitAllSee(agents, everyone(agents, 'alive'), 30000);
    await waitFor('gamma to persist beta as a known peer', () => persistedPeers(gamma).includes('beta'), 15000);

    await cluster.kill(gamma, 'SIGKILL');
    topo.blackhole(h1); // the only anchor's machine is gone for good
    await cluster.kill(alpha, 'SIGKILL');
    await cluster.waitStates(beta, { alpha: 'dead', gamma: 'dead' }, 30000);

    cluster.start(gamma); // its config still names only alpha
    await timed('rejoin through persisted peers', () => cluster.waitAllSee([beta, gamma], { beta: 'alive', gamma: 'alive' }, 30000));
    assert.equal(gamma.pids.length, 2, 'gamma was restarted');
    const s = await cluster.statusCli(gamma);
    assert.notEqual(s.members.find((m) => m.name === 'alpha')?.state, 'alive', 'the gone anchor is not alive');
  });
});
