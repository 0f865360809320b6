/**
 * Real agent processes on 127.0.0.x, talking over the real WebSocket
 * transport, with the LAN timing real deployments use.
 */
import { strict as assert } from 'assert';
import { readFileSync, statSync } from 'fs';
import * as path from 'path';
import { AgentCluster, waitFor, type AgentHandle } from '../../helpers/agent-cluster';

function all(names: AgentHandle[], state: string): Record<string, string> {
  return Object.fromEntries(names.map((a) => [a.name, state]));
}

/** The names in an agent's peers.json; none while it has not saved one. */
function persistedPeers(a: AgentHandle): string[] {
  try {
    return (JSON.parse(readFileSync(path.join(a.dir, 'srv', a.name, 'peers.json'), 'utf8')) as { peers: { name: string }[] }).peers.map((p) => p.name);
  } catch {
    return [];
  }
}

describe('agent mesh (real processes on loopback)', function () {
  this.timeout(60000);
  let cluster: AgentCluster;

  beforeEach(() => {
    cluster = new AgentCluster();
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') console.error(cluster.dump());
    await cluster.cleanup();
  });

  function boot(n: number): AgentHandle[] {
    const anchor = cluster.add('alpha');
    const rest = Array.from({ length: n - 1 }, (_, i) => cluster.add(`node${i + 1}`, { anchors: [anchor] }));
    const agents = [anchor, ...rest];
    agents.forEach((a) => cluster.start(a));
    return agents;
  }

  it('converges: every agent sees every other alive, with records and a 0600 identity', async () => {
    const agents = boot(4);
    await cluster.waitAllSee(agents, all(agents, 'alive'));
    const s = await cluster.status(agents[2]);
    const alpha = s.members.find((m) => m.name === 'alpha')!;
    assert.equal(alpha.role, 'master');
    assert.deepEqual(alpha.addresses, [`${agents[0].host}:${agents[0].port}`]);
    assert.ok(alpha.facts.cores > 0 && alpha.facts.memory_mb > 0 && alpha.facts.agent_version);
    const idFile = path.join(agents[0].dir, 'srv', 'alpha', 'identity.json');
    assert.equal(statSync(idFile).mode & 0o777, 0o600);
    assert.equal(statSync(String(agents[0].config.control_socket)).mode & 0o777, 0o600);
  });

  it('SIGKILL: every other member declares the killed agent dead', async () => {
    const agents = boot(4);
    await cluster.waitAllSee(agents, all(agents, 'alive'));
    await cluster.kill(agents[3], 'SIGKILL');
    await cluster.waitAllSee(agents.slice(0, 3), { [agents[3].name]: 'dead' }, 20000);
  });

  it('SIGTERM: the agent announces left before it exits, and exits 0', async () => {
    const agents = boot(3);
    await cluster.waitAllSee(agents, all(agents, 'alive'));
    const code = await cluster.kill(agents[2], 'SIGTERM');
    assert.equal(code, 0);
    await cluster.waitAllSee(agents.slice(0, 2), { [agents[2].name]: 'left' }, 5000);
    assert.ok(agents[2].logs.some((l) => l.includes('agent stopped')));
  });

  it('an intruder with another overlay key is never listed and shows under problems', async () => {
    const agents = boot(2);
    await cluster.waitAllSee(agents, all(agents, 'alive'));
    const intruder = cluster.add('mallory', { anchors: [agents[0]], overlayKey: 'Wr0ngOverlayKey0123456789abcdefX' });
    cluster.start(intruder);
    // The anchor has refused the intruder's handshake (and says so) before anything is checked.
    const anchorStatus = await waitFor('the anchor to list the intruder under problems', async () => {
      const st = await cluster.status(agents[0]);
      return st.problems.some((p) => p.includes(intruder.host)) ? st : undefined;
    });
    for (const a of agents) {
      const st = await cluster.status(a);
      assert.ok(!st.members.some((m) => m.name === 'mallory'), `${a.name} must not list the intruder`);
    }
    const si = await cluster.status(intruder);
    assert.deepEqual(
      si.members.map((m) => m.name),
      ['mallory'],
      'the intruder learns no member',
    );
    assert.deepEqual(
      anchorStatus.members.map((m) => [m.name, m.state]),
      agents.map((a) => [a.name, 'alive']),
      'the cluster is undisturbed: its own members, all alive',
    );
    for (const a of [...agents, intruder]) for (const l of a.logs) assert.ok(!l.includes('Wr0ngOverlayKey') && !l.includes('Tst0verlayKey'), 'no key in logs');
  });

  it('restart with every anchor down: the agent rejoins through its persisted peers', async () => {
    const agents = boot(3);
    await cluster.waitAllSee(agents, all(agents, 'alive'));
    // The agent that restarts rejoins through the peer its peers.json names (saved within 2 s of a change).
    await waitFor(`${agents[2].name} to persist ${agents[1].name}`, () => persistedPeers(agents[2]).includes(agents[1].name), 10000);
    await cluster.kill(agents[2], 'SIGKILL');
    await cluster.kill(agents[0], 'SIGKILL'); // the only anchor
    await cluster.waitStates(agents[1], { [agents[0].name]: 'dead', [agents[2].name]: 'dead' });
    cluster.start(agents[2]);
    await cluster.waitAllSee([agents[1], agents[2]], { [agents[1].name]: 'alive', [agents[2].name]: 'alive' }, 20000);
  });

  it('a split heals by itself: each side sees the other dead, then all alive again with no restart', async () => {
    const agents = boot(4);
    await cluster.waitAllSee(agents, all(agents, 'alive'));
    const left = agents.slice(0, 2);
    const right = agents.slice(2);
    const pids = agents.map((a) => a.proc?.pid);
    cluster.partition(left, right);
    await cluster.waitAllSee(left, all(right, 'dead'), 30000);
    await cluster.waitAllSee(right, all(left, 'dead'), 30000);
    cluster.heal();
    await cluster.waitAllSee(agents, all(agents, 'alive'), 30000);
    assert.deepEqual(
      agents.map((a) => a.proc?.pid),
      pids,
      'no agent restarted',
    );
  });
});
