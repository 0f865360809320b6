/**
 * Issue 13, "only the master holds the k3s server token", against real Podman
 * with the stand-in k3s (test/fixtures/standin-k3s.sh), which keeps k3s's
 * server/cred/passwd, server/agent-token and the datastore's copy of passwd,
 * and whose agent parses and pins its token as k3s does (docs/upstream.md
 * K25-K29). The stand-ins prove what the agent gives k3s, not that k3s works.
 */
import assert from 'node:assert/strict';
import { execFile } from 'child_process';
import { createHash } from 'crypto';
import fs from 'fs';
import path from 'path';
import { Agent } from '../../agent/daemon/agent';
import { NO_AGENT_KEY_PROBLEM } from '../../agent/runtime/desired';
import { K3S_AGENT_TOKEN_FILE } from '../../agent/runtime/specs';
import type { Supervisor } from '../../agent/runtime/supervisor';
import { systemClock } from '../../shared/clock';
import { memoryLogger } from '../helpers/memory-logger';
import { AGENT_KEY, CLUSTER_KEY, OVERLAY_KEY, view } from '../unit/runtime/fixtures';
import { STAND_INS, waitFor } from './harness';
import { podmanSuite } from './suite';
import { freePort } from '../helpers/free-port';

const KEYS = [OVERLAY_KEY, CLUSTER_KEY, AGENT_KEY];

describe('podman: only the master holds the k3s server token (agent_key; real Podman, stand-in k3s)', function () {
  this.timeout(240_000);
  const t = podmanSuite({ perTest: true });
  /**
   * Containers a test runs by hand: each test removes them, with their
   * anonymous volumes (the image's VOLUMEs), in a finally (the suite's own
   * clean-up runs first and would leave the volumes behind).
   */
  const byHand: string[] = [];
  const removeByHand = async (): Promise<void> => {
    for (const name of byHand.splice(0)) await podmanAll('rm', '-f', '-v', '-t', '0', name);
  };
  const fast = { linkCheckMs: 500, backoff: { baseMs: 300, capMs: 1_500, resetAfterMs: 5_000 } };

  const running = (s: Supervisor, name: string) => () => s.status().containers.find((c) => c.name === name)?.state === 'running';
  const dataDir = (node: string): string => path.join(t.storage, node, 'k3s');
  const mode = (file: string): number => fs.statSync(file).mode & 0o777;
  const sha256 = (file: string): string => createHash('sha256').update(fs.readFileSync(file)).digest('hex');
  /** podman in the harness's namespace, with both output streams and the exit code (stand-ins log on stderr). */
  const podmanAll = (...args: string[]): Promise<{ code: number; out: string }> =>
    new Promise((resolve) =>
      execFile(
        'nsenter',
        [`--net=/run/netns/${t.h.netns}`, 'podman', ...t.h.globalArgs, ...args],
        { env: t.h.env, timeout: 120_000, maxBuffer: 16 << 20 },
        (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, out: `${stdout}${stderr}` }),
      ),
    );
  const logs = async (name: string): Promise<string> => (await podmanAll('logs', name)).out;

  /** No key, nor a token holding one, in what `podman inspect` shows of any container. */
  async function noKeyInInspect(names: string[]): Promise<void> {
    for (const name of names) {
      const i = (await t.h.inspect(name)) as unknown as {
        Path: string;
        Args: string[];
        Config: { Cmd: string[]; Env: string[]; Labels: Record<string, string>; Entrypoint: unknown };
      };
      assert.ok(i, `${name} exists`);
      const shown = JSON.stringify([i.Path, i.Args, i.Config.Cmd, i.Config.Entrypoint, i.Config.Env, i.Config.Labels]);
      for (const k of KEYS) assert.ok(!shown.includes(k), `a key in podman inspect ${name}`);
    }
  }

  it('a master with agent_key publishes its k3s CA hash (k3s_ca); a non-master given that view pins it in K10<hash>::node:<agent_key>', async () => {
    // The master: the real Agent (gossip on loopback) over the real Supervisor, so k3s_ca goes through agent.ts into the record.
    const cfg = t.config('patmaster', {
      agent_key: AGENT_KEY,
      gossip_port: await freePort(),
      gossip_listen: ['127.0.0.1'],
      control_socket: path.join(t.storage, 'patmaster.sock'),
    });
    const s = t.supervisor(cfg, fast);
    const mem = memoryLogger('debug', 'plain');
    const agent = new Agent({ config: cfg, clock: systemClock, logger: mem.logger, runtime: s, notifier: { ready() {}, status() {}, stopping() {} } });
    let hash: string;
    try {
      await agent.start();
      await waitFor(running(s, 'hepto-patmaster-k3s'), { what: 'master k3s running', timeoutMs: 60_000 });
      const ca = path.join(dataDir('patmaster'), 'server', 'tls', 'server-ca.crt');
      await waitFor(() => fs.existsSync(ca), { what: 'the server CA' });
      hash = sha256(ca);
      await waitFor(() => s.status().k3sCa === hash, { what: 'k3sCa in the runtime status', timeoutMs: 20_000 });
      const self = await waitFor(() => agent.gossip.membership.view().find((m) => m.name === 'patmaster' && m.record.k3s_ca === hash), {
        what: "k3s_ca in the master's own record",
      });
      assert.equal(self.record.role, 'master');

      // The server got the agent token through a 0600 file, and holds it as the node password (K25, K27).
      const k = (await t.h.inspect('hepto-patmaster-k3s'))!;
      const c = k.Config.Cmd!;
      assert.equal(c[0], 'server');
      assert.equal(c[c.indexOf('--agent-token-file') + 1], K3S_AGENT_TOKEN_FILE);
      const file = path.join(t.storage, 'patmaster', 'rancher-k3s', 'hepto-agent-token');
      assert.equal(fs.readFileSync(file, 'utf8'), AGENT_KEY);
      assert.equal(mode(file), 0o600);
      const agentToken = path.join(dataDir('patmaster'), 'server', 'agent-token');
      assert.equal(fs.readFileSync(agentToken, 'utf8'), `K10${hash}::node:${AGENT_KEY}\n`);
      assert.equal(mode(agentToken), 0o600);
      assert.ok(!fs.lstatSync(agentToken).isSymbolicLink());
      assert.ok(fs.readFileSync(path.join(dataDir('patmaster'), 'server', 'cred', 'passwd'), 'utf8').includes(`${AGENT_KEY},node,node,k3s:agent\n`));
      assert.deepEqual(s.status().problems, [], 'no problem: the master has agent_key on a new datastore');
      await noKeyInInspect(['hepto-patmaster-wesher', 'hepto-patmaster-k3s']);
      for (const k of KEYS) assert.ok(!mem.lines.join('\n').includes(k) && !t.lines.join('\n').includes(k), 'no key in the logs');
    } finally {
      await agent.stop();
    }
    // Made with the agent token, the datastore stays in sync: restarts keep working (unlike K28's case below).
    for (let i = 0; i < 2; i++) {
      await t.h.podman('restart', '-t', '2', 'hepto-patmaster-k3s');
      await waitFor(
        async () => /Starting k3s server/.test(await logs('hepto-patmaster-k3s')) && (await t.h.inspect('hepto-patmaster-k3s'))?.State.Status === 'running',
        { what: `restart ${i + 1}` },
      );
    }
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await t.h.inspect('hepto-patmaster-k3s'))!.State.Status, 'running');
    assert.doesNotMatch(await logs('hepto-patmaster-k3s'), /newer than datastore/);
    await t.h.removeAll(); // both nodes use the host network of the harness: one at a time

    // The non-master: agent_key only. Until the master's record has k3s_ca, its k3s waits, saying why.
    const wcfg = t.config('patworker', { master: 'patmaster', agent_key: AGENT_KEY, cluster_key: null });
    const w = t.supervisor(wcfg, fast);
    w.setCluster(view(['patworker', 'alive'], ['patmaster', 'alive', { role: 'master' }]));
    await w.start();
    await waitFor(running(w, 'hepto-patworker-wesher'), { what: 'worker wesher running', timeoutMs: 40_000 });
    const waiting = await waitFor(() => w.status().containers.find((x) => x.role === 'k3s' && x.state === 'waiting' && x.last_error), {
      what: 'k3s waiting for k3s_ca',
    });
    assert.ok(
      waiting.last_error!.startsWith('k3s on patworker is waiting for the master "patmaster" to publish its k3s CA hash in gossip; '),
      waiting.last_error!,
    );
    assert.equal(await t.h.inspect('hepto-patworker-k3s'), null);

    w.setCluster(view(['patworker', 'alive'], ['patmaster', 'alive', { role: 'master', k3s_ca: hash }]));
    await waitFor(running(w, 'hepto-patworker-k3s'), { what: 'worker k3s running', timeoutMs: 40_000 });
    const token = path.join(t.storage, 'patworker', 'rancher-k3s', 'hepto-token');
    assert.equal(fs.readFileSync(token, 'utf8'), `K10${hash}::node:${AGENT_KEY}`);
    assert.equal(mode(token), 0o600);
    const k = (await t.h.inspect('hepto-patworker-k3s'))!;
    assert.equal(k.Config.Cmd![0], 'agent');
    assert.ok(!k.Config.Cmd!.includes('--agent-token-file'));
    // The stand-in agent parsed the token as k3s does and pins that hash (K26, K29).
    const pin = path.join(dataDir('patworker'), 'agent', 'hepto-standin-ca-hash');
    await waitFor(() => fs.existsSync(pin), { what: 'the pinned hash' });
    assert.equal(fs.readFileSync(pin, 'utf8'), `${hash}\n`);
    assert.doesNotMatch(await logs('hepto-patworker-k3s'), /Failed to validate connection/);
    assert.deepEqual(w.status().problems, []);
    assert.ok(!fs.existsSync(path.join(t.storage, 'patworker', 'rancher-k3s', 'hepto-agent-token')));
    await noKeyInInspect(['hepto-patworker-wesher', 'hepto-patworker-k3s']);
    for (const key of KEYS) assert.ok(!t.lines.join('\n').includes(key), 'no key in the logs');
  });

  it('a master whose datastore exists without an agent token does not get the flag, keeps running, and says why (K28)', async () => {
    const cfg = t.config('pathaz');
    const s1 = t.supervisor(cfg, fast);
    await s1.start();
    await waitFor(running(s1, 'hepto-pathaz-k3s'), { what: 'master k3s running', timeoutMs: 60_000 });
    const srv = path.join(dataDir('pathaz'), 'server');
    // k3s writes server/token first, then agent-token (K27): wait for both.
    await waitFor(() => fs.existsSync(path.join(srv, 'token')) && fs.lstatSync(path.join(srv, 'agent-token'), { throwIfNoEntry: false }), {
      what: 'the server token files',
    });
    assert.equal(fs.readlinkSync(path.join(srv, 'agent-token')), 'token', 'no agent token: a link to the server token (K27)');
    assert.deepEqual(s1.status().problems, [NO_AGENT_KEY_PROBLEM]);
    const k0 = (await t.h.inspect('hepto-pathaz-k3s'))!;
    await s1.stop();

    // agent_key added later: the running server is kept as it is, and status says why and what then.
    const s2 = t.supervisor({ ...cfg, agent_key: AGENT_KEY }, fast);
    await s2.start();
    const problem = await waitFor(() => s2.status().problems.find((p) => p.startsWith('agent_key is set, but the k3s datastore in ')), {
      what: 'the datastore problem',
    });
    assert.ok(problem.includes(dataDir('pathaz')), problem);
    assert.match(problem, /newer than datastore and could cause a cluster outage" \(docs\/upstream\.md K28\)/);
    assert.match(problem, /the other machines still need cluster_key/);
    assert.match(problem, /run hepto-agent rotate-keys on the machine with the admin key/);
    for (const k of KEYS) assert.ok(!problem.includes(k));
    await s2.idle();
    await new Promise((r) => setTimeout(r, 1_500));
    await s2.idle();
    const k1 = (await t.h.inspect('hepto-pathaz-k3s'))!;
    assert.equal(k1.Id, k0.Id, 'not recreated');
    assert.equal(k1.State.Status, 'running');
    assert.ok(!k1.Config.Cmd!.includes('--agent-token-file'));
    assert.ok(!fs.existsSync(path.join(t.storage, 'pathaz', 'rancher-k3s', 'hepto-agent-token')), 'no agent token file written');
    assert.ok(!s2.status().problems.includes(NO_AGENT_KEY_PROBLEM));
    await noKeyInInspect(['hepto-pathaz-wesher', 'hepto-pathaz-k3s']);
    await s2.stop();

    // What the agent avoids, shown on the stand-in (K28): given an agent token on this datastore, the server
    // starts once, then fails at its next start.
    try {
      await t.h.podman('rm', '-f', '-t', '2', 'hepto-pathaz-k3s');
      const server = [
        'run',
        '--network',
        'none',
        '-v',
        `${dataDir('pathaz')}:/var/lib/rancher/k3s`,
        '-e',
        `K3S_TOKEN=${CLUSTER_KEY}`,
        '-e',
        `K3S_AGENT_TOKEN=${AGENT_KEY}`,
        STAND_INS.k3s,
        'server',
        '--node-ip',
        '10.1.2.3',
      ];
      const [run, ...rest] = server;
      byHand.push('k-hazard1');
      await t.h.podman(run, '-d', '--name', 'k-hazard1', ...rest);
      await waitFor(async () => /Starting k3s server/.test(await logs('k-hazard1')), { what: 'the first start with an agent token' });
      assert.equal((await t.h.inspect('k-hazard1'))!.State.Status, 'running');
      await podmanAll('rm', '-f', '-v', '-t', '2', 'k-hazard1');
      const second = await podmanAll(run, '--rm', ...rest);
      assert.equal(second.code, 1);
      assert.match(
        second.out,
        /level=fatal msg="\/var\/lib\/rancher\/k3s\/server\/cred\/passwd newer than datastore and could cause a cluster outage\. Remove the file\(s\) from disk and restart to be recreated from datastore\."/,
      );
    } finally {
      await removeByHand();
    }
  });

  it('the stand-in k3s agent reads its token as k3s does: a bad CA hash length is refused and retried; bare tokens pin nothing', async () => {
    try {
      const data = path.join(t.storage, 'tokparse');
      const agentRun = (name: string, token: string): Promise<string> => (
        byHand.push(name),
        t.h.podman(
          'run',
          '-d',
          '--name',
          name,
          '--network',
          'none',
          '-v',
          `${data}-${name}:/var/lib/rancher/k3s`,
          '-e',
          `K3S_TOKEN=${token}`,
          STAND_INS.k3s,
          'agent',
          '--server',
          'https://10.0.0.1:6443',
          '--node-ip',
          '10.1.2.3',
        )
      );
      for (const name of ['k-badhash', 'k-bare', 'k-user']) fs.mkdirSync(`${data}-${name}`, { recursive: true });

      await agentRun('k-badhash', `K10${'e'.repeat(63)}::node:${AGENT_KEY}`);
      await waitFor(
        async () =>
          (
            (await logs('k-badhash')).match(
              /level=error msg="Failed to validate connection to cluster at https:\/\/10\.0\.0\.1:6443: invalid token CA hash length"/g,
            ) ?? []
          ).length >= 2,
        {
          what: 'the token error, retried',
          timeoutMs: 20_000,
        },
      );
      assert.equal((await t.h.inspect('k-badhash'))!.State.Status, 'running', 'k3s retries forever; it does not exit');
      assert.ok(!fs.existsSync(path.join(`${data}-k-badhash`, 'agent', 'hepto-standin-ca-hash')));

      await agentRun('k-bare', AGENT_KEY);
      await waitFor(async () => /token does not include a CA hash/.test(await logs('k-bare')), { what: 'the warning for a bare token' });
      assert.equal(fs.readFileSync(path.join(`${data}-k-bare`, 'agent', 'hepto-standin-ca-hash'), 'utf8'), '\n');

      // Any user name: k3s sends "node" whatever the token says (K26).
      const hash = 'f'.repeat(64);
      await agentRun('k-user', `K10${hash}::server:${AGENT_KEY}`);
      await waitFor(async () => /pinning the server CA hash f{64} \(user node\)/.test(await logs('k-user')), { what: 'the pin' });
      assert.equal(fs.readFileSync(path.join(`${data}-k-user`, 'agent', 'hepto-standin-ca-hash'), 'utf8'), `${hash}\n`);
    } finally {
      await removeByHand();
    }
  });
});
