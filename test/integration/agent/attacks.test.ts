/**
 * Attacks by a member that holds the overlay key (issue 14), against real
 * agent processes on loopback. The attacker is this test process, speaking
 * the real protocol with a WsTransport under its own identity.
 */
import { strict as assert } from 'assert';
import * as net from 'net';
import { AgentCluster, waitFor, type AgentHandle } from '../../helpers/agent-cluster';
import { memberAttacker } from '../../helpers/member-attacker';
import { member } from '../../helpers/admin-cli';
import { encodeMessage, type Update } from '../../../agent/gossip/messages';
import { generateIdentity } from '../../../agent/net/identity';
import { signRecord } from '../../../agent/gossip/records';

describe('attacks by a member holding the key (real agents on loopback)', function () {
  this.timeout(120_000);
  let cluster: AgentCluster;
  beforeEach(() => (cluster = new AgentCluster()));
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') console.error(cluster.dump());
    await cluster.cleanup();
  });

  it('attack 1: unsigned dead claims about a healthy member, blaming another, every 100 ms for 20 s: it stays alive, and the real sender is named', async () => {
    const h1 = cluster.add('h1');
    const h2 = cluster.add('h2', { anchors: [h1] });
    const h3 = cluster.add('h3', { anchors: [h1] });
    for (const a of [h1, h2, h3]) cluster.start(a);
    await cluster.waitAllSee([h1, h2, h3], { h1: 'alive', h2: 'alive', h3: 'alive' }, 30_000);
    const m = await memberAttacker('mallory', '127.0.0.77');
    const samples: Record<string, { alive: number; total: number }> = { h1: { alive: 0, total: 0 }, h3: { alive: 0, total: 0 } };
    let running = true;
    const sampling = (async () => {
      while (running) {
        for (const w of [h1, h3]) {
          const doc = await cluster.status(w).catch(() => undefined);
          if (!doc) continue;
          samples[w.name]!.total++;
          if (member(doc, 'h2')?.state === 'alive') samples[w.name]!.alive++;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const end = Date.now() + 20_000;
    let sent = 0;
    try {
      while (Date.now() < end) {
        const inc = member(await cluster.status(h1), 'h2')?.incarnation ?? 0;
        const u: Update[] = [];
        for (let i = inc; i < inc + 400; i++) u.push({ k: 'd', n: 'h2', i, f: 'h3' });
        for (const target of [h1, h3]) {
          await m.send({ addresses: [`${target.host}:${target.port}`] }, encodeMessage({ t: 'g', u })).then(
            () => sent++,
            () => undefined,
          );
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      running = false;
      await sampling;
      await m.stop();
    }
    assert.ok(sent > 100, `only ${sent} attack messages went out`);
    for (const [w, s] of Object.entries(samples)) {
      const ratio = s.alive / Math.max(1, s.total);
      console.log(`      attack 1: ${w} saw h2 alive in ${s.alive} of ${s.total} samples (${(100 * ratio).toFixed(1)}%)`);
      assert.ok(s.total >= 50, `${w}: only ${s.total} samples`);
      assert.ok(ratio >= 0.99, `${w} saw the healthy h2 alive in only ${(100 * ratio).toFixed(1)}% of samples`);
    }
    // The one who sent the claims is named, by name; h3, whom the claims named, is not blamed.
    for (const w of [h1, h3] as AgentHandle[]) {
      const p = await waitFor(
        `${w.name} to name mallory`,
        async () => (await cluster.status(w)).problems.find((x) => x.startsWith('member "mallory" keeps saying')),
        10_000,
      );
      assert.match(p, /remove it \(hepto-agent remove\)/);
      assert.ok(!(await cluster.status(w)).problems.some((x) => x.includes('"h3" keeps saying')), 'h3 is blamed');
    }
    assert.ok(!h1.logs.some((l) => /member dead.*"member":"h2"/.test(l)), 'h1 logged h2 dead');
  });

  it('attack 6: a record with a bad signature drops the connection that carried it, and shows in status', async () => {
    const h1 = cluster.add('h1');
    cluster.start(h1);
    await cluster.waitStates(h1, { h1: 'alive' });
    const dropped: string[] = [];
    const m = await memberAttacker('mallory', '127.0.0.79', (p) => dropped.push(p));
    try {
      const id = generateIdentity(Date.now());
      const rec = {
        name: 'forged',
        role: 'node' as const,
        addresses: ['127.0.0.80:7947'],
        node_ips: [],
        overlay_ip: null,
        facts: { cores: 1, memory_mb: 1, os: 'x', agent_version: '0' },
        containers: {},
        id_pub: id.idPub,
        created_at: 1,
      };
      const signed = signRecord(rec, 1, id.secretKey);
      const forged = { ...signed, incarnation: 2 }; // signed for 1
      await m.send({ addresses: [`${h1.host}:${h1.port}`] }, encodeMessage({ t: 'g', u: [{ k: 'a', r: forged }] }));
      await waitFor('h1 to drop the connection', () => dropped.includes('h1'), 10_000);
      const p = await waitFor('the refusal in status', async () => (await cluster.status(h1)).problems.find((x) => x.includes('bad signature')), 10_000);
      assert.match(p, /127\.0\.0\.79.*"mallory".*the record of "forged" with a bad signature/);
      assert.ok(!(await cluster.status(h1)).members.some((x) => x.name === 'forged'));
    } finally {
      await m.stop();
    }
  });

  it('attack 4: a ping-req for an unknown target makes no agent dial the address it names', async () => {
    const h1 = cluster.add('h1');
    cluster.start(h1);
    await cluster.waitStates(h1, { h1: 'alive' });
    // A third party's port, counting connections.
    let connections = 0;
    const victim = net.createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => victim.listen(0, '127.0.0.88', () => r()));
    const port = (victim.address() as net.AddressInfo).port;
    const m = await memberAttacker('mallory', '127.0.0.78');
    try {
      for (let i = 0; i < 50; i++) {
        await m.send({ addresses: [`${h1.host}:${h1.port}`] }, encodeMessage({ t: 'r', s: i + 1, n: `ghost${i}`, a: [`127.0.0.88:${port}`] }));
        await new Promise((r) => setTimeout(r, 20));
      }
      await new Promise((r) => setTimeout(r, 1500));
      assert.equal(connections, 0, `the agent dialed the address only the ping-reqs named, ${connections} times`);
      assert.ok(h1.proc, 'the agent still runs');
    } finally {
      await m.stop();
      victim.close();
    }
  });
});
