/**
 * The metrics endpoint of an agent running in this process (issue 15): GET
 * and HEAD /metrics, 404 elsewhere, 405 for other methods; a port already
 * taken leaves the agent running with a status problem naming
 * metrics_listen; "" serves nothing; stop() closes the port.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { Agent } from '../../../agent/daemon/agent';
import type { GossipMessage } from '../../../agent/gossip/messages';
import { freePort, request } from './http';
import { inProcessAgent, soloConfig } from '../../helpers/in-process-agent';

describe('metrics: the endpoint of an agent', function () {
  this.timeout(30_000);
  let dir = '';
  const agents: Agent[] = [];
  const blockers: net.Server[] = [];

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'hepto-metrics-'));
  });
  afterEach(async () => {
    for (const a of agents.splice(0)) await a.stop({ leave: false }).catch(() => undefined);
    for (const b of blockers.splice(0)) await new Promise((r) => b.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  async function boot(metrics_listen: string): Promise<{ agent: Agent; lines: string[] }> {
    const booted = inProcessAgent(await soloConfig(dir, { metrics_listen }));
    agents.push(booted.agent);
    await booted.agent.start();
    return booted;
  }

  it('serves GET and HEAD /metrics, 404 elsewhere, 405 for other methods, and closes the port on stop', async () => {
    const listen = `127.0.0.1:${await freePort()}`;
    const { agent } = await boot(listen);
    const get = await request(`http://${listen}/metrics`);
    assert.equal(get.status, 200);
    assert.match(get.body, /^hepto_members\{state="alive"\} 1$/m);
    assert.match(get.body, /^hepto_agent_info\{node="solo",version="[^"]+"\} 1$/m);
    const head = await request(`http://${listen}/metrics`, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    for (const p of ['/', '/metrics/x', '/debug', '/metricsx']) assert.equal((await request(`http://${listen}${p}`)).status, 404, p);
    assert.equal((await request(`http://${listen}/metrics`, 'POST')).status, 405);
    assert.ok(!agent.status().problems.some((p) => p.includes('metrics_listen')));
    await agent.stop({ leave: false });
    await assert.rejects(request(`http://${listen}/metrics`, 'GET', 2000), /ECONNREFUSED/, 'stopped with the agent');
  });

  it('a port already taken: the agent runs on, logs it, and status names metrics_listen with what to do', async () => {
    const port = await freePort();
    const blocker = net.createServer();
    blockers.push(blocker);
    await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', r));
    const listen = `127.0.0.1:${port}`;
    const { agent, lines } = await boot(listen);
    const problems = agent.status().problems;
    const p = problems.find((x) => x.includes('metrics_listen'));
    assert.ok(p, JSON.stringify(problems));
    assert.ok(p.includes(`"${listen}"`) && p.includes('another program already uses that port') && p.includes('set it to "" to turn metrics off'), p);
    assert.ok(
      lines.some((l) => l.startsWith('error agent.metrics: cannot serve metrics') && l.includes('EADDRINUSE')),
      lines.join('\n'),
    );
    assert.equal(agent.status().members.find((m) => m.name === 'solo')?.state, 'alive', 'the agent runs');
  });

  it('errors caught in the gossip core: counted in the metrics, logged once, and a burst is a status problem', async () => {
    const listen = `127.0.0.1:${await freePort()}`;
    const { agent, lines } = await boot(listen);
    const peer = { name: 'beta', idPub: 'x', remote: '127.0.0.2:4000' };
    // A message the validator would never let through (gossip/validate.ts): it stands for a bug in a rule.
    for (let i = 0; i < 10; i++) agent.gossip.membership.receive(peer, { t: 'g', u: 5 } as unknown as GossipMessage, Date.now());
    const body = (await request(`http://${listen}/metrics`)).body;
    assert.match(body, /^hepto_internal_errors_total\{component="gossip",kind="step"\} 10$/m);
    const logged = lines.filter((l) => l.includes('agent.internal: internal error'));
    assert.equal(logged.length, 1, logged.join('\n'));
    assert.match(logged[0] as string, /kind=step .*error="updates is not iterable"/);
    const p = agent.status().problems.find((x) => x.startsWith('internal error "step" in the gossip core happened 10 times within a minute'));
    assert.ok(p, JSON.stringify(agent.status().problems));
  });

  it('"" serves nothing and shows no problem', async () => {
    const { agent, lines } = await boot('');
    assert.ok(!agent.status().problems.some((p) => p.includes('metrics')));
    assert.ok(!lines.some((l) => l.includes('metrics endpoint')));
  });
});
