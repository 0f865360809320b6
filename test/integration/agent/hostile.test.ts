/**
 * Hostile and confused input against a running agent: whatever arrives, it
 * stays up, keeps its honest peers, and says what happened in `status`.
 */
import { strict as assert } from 'assert';
import * as net from 'net';
import { rmSync } from 'fs';
import * as path from 'path';
import WebSocket from 'ws';
import { AgentCluster, waitFor, type AgentHandle } from '../../helpers/agent-cluster';

function rawSocket(a: AgentHandle, from: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: a.host, port: a.port, localAddress: from });
    s.once('connect', () => resolve(s));
    s.once('error', reject);
  });
}

describe('agent under hostile input (real processes on loopback)', function () {
  this.timeout(60000);
  let cluster: AgentCluster;
  beforeEach(() => (cluster = new AgentCluster()));
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') console.error(cluster.dump());
    await cluster.cleanup();
  });

  it('garbage, an oversized frame and an idle-socket flood leave the agent up with its peers', async () => {
    const a = cluster.add('alpha');
    const b = cluster.add('beta', { anchors: [a] });
    cluster.start(a);
    cluster.start(b);
    await cluster.waitAllSee([a, b], { alpha: 'alive', beta: 'alive' });
    const attacker = '127.0.0.66';
    const opened: net.Socket[] = [];
    try {
      // 1. raw garbage bytes, and a plain HTTP request
      const g = await rawSocket(a, attacker);
      g.write(Buffer.from('\x00\xff garbage that is not HTTP \r\n\r\n'));
      const h = await rawSocket(a, attacker);
      h.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      opened.push(g, h);
      // 2. a WebSocket frame far over the limit, before any handshake
      const ws = new WebSocket(`ws://${a.host}:${a.port}/`, { localAddress: attacker });
      const closed = new Promise<void>((resolve) => ws.on('close', () => resolve()));
      ws.on('error', () => undefined);
      ws.on('open', () => ws.send(Buffer.alloc(2 * 1024 * 1024, 7)));
      await closed;
      // 3. a flood of idle sockets from one source
      for (let i = 0; i < 40; i++) opened.push(await rawSocket(a, attacker).catch(() => new net.Socket()));
      // the honest peer is still alive from both sides, and the agent says who was refused
      await new Promise((r) => setTimeout(r, 1500));
      const s = await cluster.waitStates(a, { alpha: 'alive', beta: 'alive' });
      await cluster.waitStates(b, { alpha: 'alive', beta: 'alive' });
      assert.ok(a.proc, 'the agent is still running');
      await waitFor('a problem naming the attacker', async () => (await cluster.status(a)).problems.some((p) => p.includes(attacker)), 10000);
      assert.ok(s.members.length === 2);
    } finally {
      opened.forEach((s) => s.destroy());
    }
  });

  it('a second machine claiming a live node name with another identity is refused and named in problems', async () => {
    const a = cluster.add('alpha');
    const b = cluster.add('beta', { anchors: [a] });
    cluster.start(a);
    cluster.start(b);
    await cluster.waitAllSee([a, b], { alpha: 'alive', beta: 'alive' });
    const before = (await cluster.status(a)).members.find((m) => m.name === 'beta')!;
    // Same name, fresh storage (so a new identity), another address.
    const impostor = cluster.add('beta-2', { anchors: [a], extra: { node: 'beta' } });
    rmSync(path.join(impostor.dir, 'srv'), { recursive: true, force: true });
    cluster.start(impostor);
    await waitFor('the conflict under problems', async () => (await cluster.status(a)).problems.find((p) => p.includes('"beta"') && /rename/.test(p)), 15000);
    const after = (await cluster.status(a)).members.find((m) => m.name === 'beta')!;
    assert.equal(after.state, 'alive');
    assert.deepEqual(after.addresses, before.addresses, 'the record of the first machine is kept');
  });
});
