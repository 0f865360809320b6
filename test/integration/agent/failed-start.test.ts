/**
 * Agent.stop() after a failed start() (issue 17): `hepto-agent run` calls
 * stop() when start() throws, and start() may have stopped anywhere before
 * every field was set. stop() must resolve, release what start() took, and
 * leave the state files alone.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { Agent } from '../../../agent/daemon/agent';
import { NoRuntime } from '../../../agent/daemon/runtime-seam';
import { systemClock } from '../../../shared/clock';
import type { HeptoConfig } from '../../../shared/config/types';
import { memoryLogger } from '../../helpers/memory-logger';
import { freePort } from '../../helpers/free-port';
import { soloConfig } from '../../helpers/in-process-agent';

describe('agent: stop() after a failed start()', function () {
  this.timeout(30_000);
  let dir = '';
  const blockers: net.Server[] = [];

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'hepto-failed-start-'));
  });
  afterEach(async () => {
    for (const b of blockers.splice(0)) await new Promise((r) => b.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  function agentFor(cfg: HeptoConfig): { agent: Agent; notes: string[] } {
    const notes: string[] = [];
    const notifier = { ready: () => notes.push('ready'), status: () => undefined, stopping: () => notes.push('stopping') };
    return { agent: new Agent({ config: cfg, clock: systemClock, logger: memoryLogger('debug', 'plain').logger, runtime: new NoRuntime(), notifier }), notes };
  }

  it('storage dir unusable (start fails before the mesh exists): stop() resolves', async () => {
    // A file where the storage directory should be: the identity cannot be created.
    writeFileSync(path.join(dir, 'srv'), 'not a directory');
    const { agent, notes } = agentFor(await soloConfig(dir));
    await assert.rejects(agent.start());
    await agent.stop({ leave: false });
    await agent.stop({ leave: false });
    assert.ok(!notes.includes('ready'), 'never reported ready');
    assert.ok(!existsSync(path.join(dir, 'agent.sock')), 'the control socket was never opened');
  });

  it('gossip port already taken (start fails after the control socket): stop() resolves, frees the socket, writes no peers file', async () => {
    const port = await freePort();
    const blocker = net.createServer();
    blockers.push(blocker);
    await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', r));
    const cfg = await soloConfig(dir, { gossip_port: port });
    const { agent, notes } = agentFor(cfg);
    await assert.rejects(agent.start());
    await agent.stop({ leave: false });
    assert.ok(!notes.includes('ready'), 'never reported ready');
    assert.ok(!existsSync(path.join(dir, 'agent.sock')), 'the control socket is released');
    assert.ok(!existsSync(path.join(dir, 'srv', 'solo', 'peers.json')), 'no peers file from a node that never gossiped');
    // What the failed agent held is free again: the same config starts once the port is.
    await new Promise((r) => blocker.close(r));
    blockers.splice(0);
    const again = agentFor(cfg);
    await again.agent.start();
    assert.deepEqual(again.notes, ['ready']);
    await again.agent.stop({ leave: false });
  });

  it('another agent holds the control socket: stop() leaves that agent and its state files alone', async () => {
    mkdirSync(path.join(dir, 'srv'), { recursive: true });
    const cfg = await soloConfig(dir);
    const first = agentFor(cfg);
    await first.agent.start();
    const second = agentFor({ ...cfg, gossip_port: await freePort() });
    await assert.rejects(second.agent.start(), /already running/);
    const peersFile = path.join(dir, 'srv', 'solo', 'peers.json');
    const before = existsSync(peersFile) ? readFileSync(peersFile, 'utf8') : null;
    await second.agent.stop({ leave: false });
    assert.equal(existsSync(peersFile) ? readFileSync(peersFile, 'utf8') : null, before, "the first agent's peers file is not overwritten");
    assert.ok(existsSync(path.join(dir, 'agent.sock')), "the first agent's control socket stays");
    assert.equal(first.agent.status().node, 'solo');
    await first.agent.stop({ leave: false });
  });
});
