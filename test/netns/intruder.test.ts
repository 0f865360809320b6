/**
 * A host with the wrong overlay key tries to join through the anchors: it is
 * refused, never listed by anyone, learns no member, and the anchors say so.
 */
import { strict as assert } from 'assert';
import { waitFor } from '../helpers/agent-cluster';
import { everyone, useNetns } from './cluster';

const WRONG_KEY = 'Wr0ngOverlayKey0123456789abcdefX';

describe('netns: an intruder with the wrong key', function () {
  this.timeout(60000);
  const env = useNetns(4);

  it('is never listed anywhere and never learns a member; the anchors report the refusals', async () => {
    const { topo, cluster } = env;
    const [h1, h2, h3, h4] = topo.hosts;
    const agents = [cluster.on(h1, 'alpha'), cluster.on(h2, 'beta', { anchors: [h1] }), cluster.on(h3, 'gamma', { anchors: [h1, h2] })];
    await cluster.boot(agents);
    await cluster.waitAllSee(agents, everyone(agents, 'alive'), 30000);

    const mallory = cluster.on(h4, 'mallory', { anchors: [h1, h2], overlayKey: WRONG_KEY });
    cluster.start(mallory);
    // Condition, not a sleep: both anchors have refused the intruder, and it kept retrying.
    const refusals = (p: string[]): number => {
      const hit = p.find((x) => x.includes(h4.v6));
      const m = hit ? /refused (\d+) connection/.exec(hit) : null;
      return m ? Number(m[1]) : hit ? 1 : 0;
    };
    await waitFor(
      'both anchors to report refusing the intruder, repeatedly',
      async () => {
        const [sa, sb] = await Promise.all([cluster.status(agents[0]), cluster.status(agents[1])]);
        return refusals(sa.problems) >= 2 && refusals(sb.problems) >= 1;
      },
      40000,
    );

    for (const a of agents) {
      const s = await cluster.statusCli(a);
      assert.ok(!s.members.some((m) => m.name === 'mallory'), `${a.name} must not list the intruder: ${JSON.stringify(s.members.map((m) => m.name))}`);
      assert.ok(
        s.members.every((m) => m.state === 'alive'),
        `${a.name}: the cluster is undisturbed`,
      );
    }
    const si = await cluster.statusCli(mallory);
    assert.deepEqual(
      si.members.map((m) => m.name),
      ['mallory'],
      'the intruder lists only itself',
    );
    for (const a of [...agents, mallory]) {
      for (const l of a.logs) assert.ok(!l.includes(WRONG_KEY) && !l.includes(String(agents[0].config.overlay_key)), `no key in ${a.name}'s logs`);
    }
  });
});
