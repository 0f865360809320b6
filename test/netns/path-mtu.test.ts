/**
 * Path MTU between every pair (issue 15), with real agents and real
 * don't-fragment pings: three hosts behind a router namespace whose link to
 * venus has MTU 1280 (the others 1500). One run lets the router's ICMP
 * "packet too big" through; the other drops it in the router (a PMTU black
 * hole), so the agents must search sizes down. In both, every agent's
 * `status --json` shows, from the members' records, about 1280 for the
 * pairs with venus and 1500 for mars-earth, and the 1400-byte cluster `mtu`
 * problem names each pair with venus, once.
 *
 * The schedule is shortened with HEPTO_PATH_MTU_INTERVAL_MS (the first
 * measurement comes within a second of a peer being seen).
 */
import { strict as assert } from 'assert';
import { NetnsTopology } from '../helpers/netns';
import { waitFor } from '../helpers/agent-cluster';
import { NetnsCluster, type HostAgent } from './cluster';
import type { StatusDoc } from '../../shared/status';

interface MeshPath {
  from: string;
  to: string;
  up: boolean | null;
  rtt_ms: number | null;
  mtu: number | null;
}

function meshOf(s: StatusDoc): MeshPath[] {
  const mesh = (s as unknown as { mesh?: { paths: MeshPath[] } }).mesh;
  assert.ok(mesh, 'status --json has a mesh');
  return mesh.paths;
}

interface Measured {
  mtu: number | null;
  how: string;
  ms: number;
  probes: number;
  bytes: number;
}

/** The measurement lines an agent logged: peer → what it found, how, in how long, with how many probes. */
function measuredFull(a: HostAgent): Map<string, Measured> {
  const out = new Map<string, Measured>();
  for (const line of a.logs) {
    if (!line.includes('"path MTU measured"')) continue;
    const j = JSON.parse(line) as { peer: string } & Measured;
    out.set(j.peer, { mtu: j.mtu, how: j.how, ms: j.ms, probes: j.probes, bytes: j.bytes });
  }
  return out;
}

function measured(a: HostAgent): Map<string, { mtu: number | null; how: string }> {
  return new Map([...measuredFull(a)].map(([k, v]) => [k, { mtu: v.mtu, how: v.how }]));
}

const EXPECTED: Record<string, number> = {
  'venus-mars': 1280,
  'venus-earth': 1280,
  'mars-venus': 1280,
  'earth-venus': 1280,
  'mars-earth': 1500,
  'earth-mars': 1500,
};

for (const mode of ['packet too big', 'black hole'] as const) {
  describe(`path MTU between every pair (netns, routed, ${mode})`, function () {
    this.timeout(90_000);
    let topo: NetnsTopology;
    let cluster: NetnsCluster;

    before(() => {
      topo = NetnsTopology.createRouted(3, { linkMtu: { 1: 1280 } });
      if (mode === 'black hole') topo.dropTooBig();
      cluster = new NetnsCluster(topo, 'debug');
    });
    after(async function () {
      if (this.currentTest?.state === 'failed' || this.test?.parent?.tests.some((t) => t.state === 'failed')) console.error(cluster?.dump());
      await cluster?.cleanup();
      topo?.destroy();
      assert.deepEqual(topo.leftovers(), []);
    });

    it('every agent reports about 1280 for the pairs with venus, 1500 for the other, and the cluster mtu problem names each slow pair once', async () => {
      const [h1, h2, h3] = topo.hosts;
      const env = { HEPTO_PATH_MTU_INTERVAL_MS: '10000' };
      const mars = cluster.on(h2, 'mars', { env });
      const venus = cluster.on(h1, 'venus', { anchors: [h2], env });
      const earth = cluster.on(h3, 'earth', { anchors: [h2], env });
      const agents = [mars, venus, earth];
      const t0 = Date.now();
      await cluster.boot(agents);

      const complete = (s: StatusDoc): boolean => {
        const paths = meshOf(s);
        return Object.entries(EXPECTED).every(([pair, mtu]) => {
          const [from, to] = pair.split('-');
          const p = paths.find((x) => x.from === from && x.to === to);
          return p !== undefined && p.mtu !== null && Math.abs(p.mtu - mtu) <= 8;
        });
      };
      const docs = await Promise.all(
        agents.map((a) =>
          waitFor(
            `${a.name} to see every pair's path MTU`,
            async () => {
              const s = await cluster.statusCli(a);
              return complete(s) ? s : undefined;
            },
            60_000,
            250,
          ),
        ),
      );
      const seconds = (Date.now() - t0) / 1000;
      const far = measuredFull(mars).get('venus');
      console.log(
        `      [netns] ${mode}: mars measured 1280 to venus in ${far?.ms} ms (${far?.probes} probes, ${far?.bytes} bytes); every agent sees every pair's path MTU ${seconds.toFixed(1)} s after boot`,
      );

      for (const s of docs) {
        const paths = meshOf(s);
        for (const [pair, mtu] of Object.entries(EXPECTED)) {
          const [from, to] = pair.split('-');
          const p = paths.find((x) => x.from === from && x.to === to) as MeshPath;
          // Measured exactly here: the model network has no loss.
          assert.equal(p.mtu, mtu, `${s.node} sees ${pair} at ${p.mtu}`);
          assert.equal(p.up, true, `${s.node} sees ${pair} up`);
        }
        const mtuProblems = s.problems.filter((p) => p.startsWith('path MTU between'));
        assert.deepEqual(
          mtuProblems,
          [
            'path MTU between earth and venus is 1280 bytes, below the cluster mtu 1400: set "mtu" to 1280 or less in every machine\'s config (wesher\'s interface then gets 1280 - 80 = 1200 bytes), or raise the MTU of the links between them',
            'path MTU between mars and venus is 1280 bytes, below the cluster mtu 1400: set "mtu" to 1280 or less in every machine\'s config (wesher\'s interface then gets 1280 - 80 = 1200 bytes), or raise the MTU of the links between them',
          ],
          `${s.node}'s problems`,
        );
      }

      // How each side found it: venus's own link is 1280 (its first probe fits); the far sides
      // heard "too big" from the router, or had to search past the black hole.
      for (const a of [mars, earth]) {
        const m = measured(a);
        assert.deepEqual(m.get('venus'), { mtu: 1280, how: mode === 'packet too big' ? 'too-big' : 'search' }, `${a.name} → venus`);
      }
      assert.deepEqual(measured(venus).get('mars'), { mtu: 1280, how: 'first' });
      assert.deepEqual(measured(mars).get('earth'), { mtu: 1500, how: 'first' });
      if (mode === 'black hole') assert.ok(topo.routerDropped() > 0, 'the router really dropped its "too big" answers');
      else assert.equal(topo.routerDropped(), 0);
    });
  });
}
