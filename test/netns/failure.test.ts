/**
 * A host's agent killed (SIGKILL: dead everywhere) or stopped (SIGTERM: left
 * everywhere), each agent on its own host, gossiping over IPv6.
 */
import { strict as assert } from 'assert';
import { everyone, timed, useNetns } from './cluster';

describe('netns: a host goes away', function () {
  this.timeout(60000);
  const env = useNetns(4);

  async function boot() {
    const { topo, cluster } = env;
    const [h1, h2, h3, h4] = topo.hosts;
    const agents = [
      cluster.on(h1, 'alpha'),
      cluster.on(h2, 'beta', { anchors: [h1] }),
      cluster.on(h3, 'gamma', { anchors: [h1] }),
      cluster.on(h4, 'delta', { anchors: [h1, h2] }),
    ];
    await cluster.boot(agents);
    return agents;
  }

  it("SIGKILL of a host's agent: every other host declares it dead", async () => {
    const { cluster } = env;
    const agents = await boot();
    await timed('4 hosts converge', () => cluster.waitAllSee(agents, everyone(agents, 'alive'), 30000));
    const [victim, ...rest] = [agents[2], agents[0], agents[1], agents[3]];
    await cluster.kill(victim, 'SIGKILL');
    await timed('SIGKILL seen dead everywhere', () => cluster.waitAllSee(rest, { ...everyone(rest, 'alive'), [victim.name]: 'dead' }, 30000));
    for (const a of rest) {
      const s = await cluster.statusCli(a);
      assert.equal(s.members.find((m) => m.name === victim.name)?.state, 'dead', `${a.name}: ${JSON.stringify(s.members)}`);
    }
  });

  it('SIGTERM: the agent exits 0 and every other host lists it as left (not dead)', async () => {
    const { cluster } = env;
    const agents = await boot();
    await cluster.waitAllSee(agents, everyone(agents, 'alive'), 30000);
    const victim = agents[3];
    const rest = agents.slice(0, 3);
    const code = await timed('SIGTERM to exit', () => cluster.kill(victim, 'SIGTERM'));
    assert.equal(code, 0, 'a clean stop exits 0');
    await timed('left seen everywhere', () => cluster.waitAllSee(rest, { ...everyone(rest, 'alive'), [victim.name]: 'left' }, 10000));
    for (const a of rest) {
      const s = await cluster.statusCli(a);
      assert.equal(s.members.find((m) => m.name === victim.name)?.state, 'left', `${a.name}: ${JSON.stringify(s.members)}`);
    }
  });
});
