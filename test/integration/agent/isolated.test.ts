/**
 * One problem, one sentence (issue 17): an agent whose anchors do not answer
 * gets one status problem for that cause, naming the anchor and what to do,
 * and none once it is no longer alone.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Agent, NO_ADMIN_KEY_PROBLEM } from '../../../agent/daemon/agent';
import { TEST } from '../../../agent/gossip/timing';
import { waitFor } from '../../helpers/agent-cluster';
import { inProcessAgent, soloConfig } from '../../helpers/in-process-agent';
import { freePort } from '../../helpers/free-port';

describe('agent: an isolated node', function () {
  this.timeout(30_000);
  let dir = '';
  const agents: Agent[] = [];

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'hepto-isolated-'));
  });
  afterEach(async () => {
    for (const a of agents.splice(0)) await a.stop({ leave: false }).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  async function boot(node: string, port: number, anchors: string[]): Promise<Agent> {
    const config = await soloConfig(path.join(dir, node), { node, master: 'a0', gossip_port: port, anchors });
    const { agent } = inProcessAgent(config, TEST);
    agents.push(agent);
    await agent.start();
    return agent;
  }

  it('anchors down: one problem naming the anchor and what to do; none once the anchor is up', async () => {
    const anchorPort = await freePort();
    const anchor = `127.0.0.1:${anchorPort}`;
    const joiner = await boot('j', await freePort(), [anchor]);
    const isolated = (): string[] => joiner.status().problems.filter((p) => p !== NO_ADMIN_KEY_PROBLEM);
    const [problem] = await waitFor('the isolation problem', () => (isolated().length > 0 ? isolated() : undefined), 10_000, 50);
    assert.deepEqual(isolated(), [problem], 'one problem for one cause');
    assert.match(
      problem as string,
      new RegExp(`^cannot reach any anchor or known peer \\(${anchor.replace(/\./g, '\\.')}\\) after \\d+ attempts: .*\\(hepto-agent doctor\\)`),
    );
    // Later rounds still give that one sentence, not a second one.
    await waitFor('a later round', () => /after ([3-9]|\d\d+) attempts/.test(isolated()[0] ?? ''), 10_000, 50);
    assert.equal(isolated().length, 1, JSON.stringify(isolated()));
    // The anchor comes up: the joiner is no longer alone, and the problem goes.
    await boot('a0', anchorPort, []);
    await waitFor('the joiner joined', () => joiner.status().members.some((m) => m.name === 'a0' && m.state === 'alive'), 10_000, 50);
    await waitFor('the problem gone', () => isolated().length === 0, 10_000, 50);
  });
});
