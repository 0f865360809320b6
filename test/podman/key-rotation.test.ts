/**
 * Key rotation, the runtime half (issue 13), against real Podman with the
 * stand-ins: Supervisor.setKeys with a new overlay key recreates wesher with
 * it; on the master, a new agent token moves the k3s server to it and
 * re-syncs its datastore (PUT /v1-k3s/token, which the stand-in k3s serves
 * over TLS: test/fixtures/standin-k3s-tls.c), so later restarts keep
 * working; on another machine the k3s token file is rewritten in place and
 * the k3s container kept. The stand-ins prove what the agent gives wesher and
 * k3s, not that they work (docs/upstream.md W25, K28, K31-K35).
 */
import assert from 'node:assert/strict';
import { execFile } from 'child_process';
import fs from 'fs';
import path from 'path';
import type { Supervisor } from '../../agent/runtime/supervisor';
import { AGENT_KEY, CLUSTER_KEY, OVERLAY_KEY, view } from '../unit/runtime/fixtures';
import { STAND_INS, waitFor } from './harness';
import { podmanSuite } from './suite';

const NEW_OVERLAY = 'TESTONLYnewOVERLAYkey0123456789a';
const NEW_AGENT = 'TESTONLYnewAGENTkey0123456789abc';
const KEYS = [
  OVERLAY_KEY,
  CLUSTER_KEY,
  AGENT_KEY,
  NEW_OVERLAY,
  NEW_AGENT,
  Buffer.from(NEW_OVERLAY).toString('base64'),
  Buffer.from(OVERLAY_KEY).toString('base64'),
];

describe('podman: key rotation, runtime half (setKeys; real Podman, stand-in wesher and k3s)', function () {
  this.timeout(240_000);
  const t = podmanSuite({ perTest: true });
  const fast = { linkCheckMs: 500, backoff: { baseMs: 300, capMs: 1_500, resetAfterMs: 5_000 } };
  const byHand: string[] = [];

  const running = (s: Supervisor, name: string) => () => s.status().containers.find((c) => c.name === name)?.state === 'running';
  const dataDir = (node: string): string => path.join(t.storage, node, 'k3s');
  const read = (file: string): string => fs.readFileSync(file, 'utf8');
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
  const noKeyLogged = (): void => {
    for (const k of KEYS) assert.ok(!t.lines.join('\n').includes(k), 'no key in the agent log');
  };
  async function noKeyInInspect(names: string[]): Promise<void> {
    for (const name of names) {
      const i = (await t.h.inspect(name)) as unknown as {
        Path: string;
        Args: string[];
        Config: { Cmd: string[]; Env: string[]; Labels: Record<string, string> };
      };
      const shown = JSON.stringify([i.Path, i.Args, i.Config.Cmd, i.Config.Labels]);
      for (const k of KEYS) assert.ok(!shown.includes(k), `a key in podman inspect ${name}`);
    }
  }
  /** Restarts the container `times` times; each start must reach "Starting k3s server" and stay running. */
  async function restartServer(name: string, times: number): Promise<void> {
    for (let i = 0; i < times; i++) {
      const before = ((await logs(name)).match(/Starting k3s server/g) ?? []).length;
      await t.h.podman('restart', '-t', '2', name);
      await waitFor(
        async () => ((await logs(name)).match(/Starting k3s server/g) ?? []).length > before && (await t.h.inspect(name))?.State.Status === 'running',
        {
          what: `${name} restart ${i + 1}`,
          timeoutMs: 20_000,
        },
      );
    }
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await t.h.inspect(name))!.State.Status, 'running');
    assert.doesNotMatch(await logs(name), /newer than datastore/);
  }

  it('(a) a new overlay key recreates wesher with it, promptly; the old container is gone; the key in its config wins over its state file', async () => {
    const cfg = t.config('krwes', { agent_key: AGENT_KEY });
    const s = t.supervisor(cfg, { ...fast, membershipDebounceMs: 60_000 });
    await s.start();
    await waitFor(running(s, 'hepto-krwes-k3s'), { what: 'k3s running', timeoutMs: 60_000 });
    const old = (await t.h.inspect('hepto-krwes-wesher'))!;
    const oldK3s = (await t.h.inspect('hepto-krwes-k3s'))!;
    await s.idle();

    // Watch Podman while the keys change: when the old wesher was last seen running, the new one first.
    let oldLastRunning = Date.now();
    let newFirstRunning: number | null = null;
    let watching = true;
    const docker = t.h.docker();
    const watcher = (async () => {
      while (watching) {
        const i = await docker
          .getContainer('hepto-krwes-wesher')
          .inspect()
          .catch(() => null);
        const now = Date.now();
        if (i?.Id === old.Id && i.State.Running) oldLastRunning = now;
        if (i && i.Id !== old.Id && i.State.Running && newFirstRunning === null) newFirstRunning = now;
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    const t0 = Date.now();
    s.setKeys({ overlay_key: NEW_OVERLAY, agent_key: AGENT_KEY, previous_agent_key: AGENT_KEY });
    const w = await waitFor(
      async () => {
        const i = await t.h.inspect('hepto-krwes-wesher');
        return i && i.Id !== old.Id && i.State.Status === 'running' ? i : null;
      },
      { what: 'a new wesher running', timeoutMs: 30_000 },
    );
    const linkBack = await waitFor(
      () => {
        const c = s.status().containers.find((x) => x.name === 'hepto-krwes-wesher');
        return c?.state === 'running' && c.overlay?.up && (c.overlay.addresses ?? []).length > 0 ? Date.now() : null;
      },
      { what: 'the overlay link back', timeoutMs: 30_000 },
    );
    const k = await waitFor(
      async () => {
        const i = await t.h.inspect('hepto-krwes-k3s');
        return i && i.Id !== oldK3s.Id && i.State.Status === 'running' ? i : null;
      },
      { what: 'k3s running again', timeoutMs: 60_000 },
    );
    watching = false;
    await watcher;
    console.log(
      `      measured (stand-in wesher, not the real one; 20 ms polling): setKeys -> old wesher last seen running ${oldLastRunning - t0} ms; ` +
        `wesher interruption (old last running -> new running) ${(newFirstRunning ?? NaN) - oldLastRunning} ms; ` +
        `old last running -> overlay link back (address, MTU) ${linkBack - oldLastRunning} ms`,
    );

    assert.ok(w.Config.Env!.includes(`WESHER_CLUSTER_KEY=${Buffer.from(NEW_OVERLAY).toString('base64')}`), 'the new key, base64');
    assert.ok(!w.Config.Env!.some((e) => e.includes(Buffer.from(OVERLAY_KEY).toString('base64'))));
    assert.equal(await t.h.inspect(old.Id), null, 'the old wesher container is gone');
    // k3s lives in wesher's network namespace: it went with the old wesher and came back.
    assert.equal(k.HostConfig.NetworkMode, `container:${w.Id}`);

    // The state file: the old wesher saved it (with its key) when it was stopped; the new one was
    // given the new key in its config, which wins over the state (W5, W25), and saves that.
    const state = path.join(t.storage, 'krwes', 'wesher', 'state.json');
    assert.equal(JSON.parse(read(state)).ClusterKey, Buffer.from(OVERLAY_KEY).toString('base64'), 'the old wesher saved its key on SIGTERM');
    await s.stop();
    await t.h.podman('stop', '-t', '15', 'hepto-krwes-wesher');
    assert.equal(JSON.parse(read(state)).ClusterKey, Buffer.from(NEW_OVERLAY).toString('base64'), 'the new wesher ran with the key of its config');
    await noKeyInInspect(['hepto-krwes-wesher', 'hepto-krwes-k3s']);
    noKeyLogged();
  });

  it('(b) a master whose datastore holds the previous agent token moves to the new one and re-syncs its datastore: two later restarts work', async () => {
    const cfg = t.config('krmas', { agent_key: AGENT_KEY });
    const s = t.supervisor(cfg, fast);
    await s.start();
    await waitFor(running(s, 'hepto-krmas-k3s'), { what: 'k3s running', timeoutMs: 60_000 });
    const srv = path.join(dataDir('krmas'), 'server');
    const passwd = path.join(srv, 'cred', 'passwd');
    await waitFor(() => fs.existsSync(path.join(srv, 'token')) && read(passwd).includes(`${AGENT_KEY},node,`), { what: 'the datastore with agent_key' });
    assert.ok(
      fs.existsSync(path.join(srv, 'tls', 'server-ca.key')),
      'the stand-in k3s has its TLS helper (needs libssl-dev where the stand-in images are built)',
    );
    const serverToken = read(path.join(srv, 'token'));
    const k0 = (await t.h.inspect('hepto-krmas-k3s'))!;
    await s.idle();

    s.setKeys({ overlay_key: OVERLAY_KEY, agent_key: NEW_AGENT, previous_agent_key: AGENT_KEY });
    const marker = path.join(t.storage, 'krmas', 'k3s-agent-token-resync.json');
    await waitFor(() => fs.existsSync(marker) || t.lines.some((l) => l.includes('k3s datastore re-synced')), { what: 'the re-sync noted as owed' });
    await waitFor(() => t.lines.some((l) => l.includes('k3s datastore re-synced with the new agent token')), { what: 'the re-sync', timeoutMs: 60_000 });
    assert.ok(!fs.existsSync(marker), 'nothing owed any more');
    const k1 = (await t.h.inspect('hepto-krmas-k3s'))!;
    assert.notEqual(k1.Id, k0.Id, 'the server was recreated with the new agent token file');
    assert.equal(read(path.join(t.storage, 'krmas', 'rancher-k3s', 'hepto-agent-token')), NEW_AGENT);
    assert.ok(read(passwd).startsWith(`${NEW_AGENT},node,node,k3s:agent\n`));
    assert.equal(read(path.join(srv, 'db', 'hepto-standin-passwd')), read(passwd), "the datastore's copy of passwd saved again");
    assert.equal(read(path.join(srv, 'token')), serverToken, 'the server token did not change');
    const ca = read(path.join(srv, 'agent-token'));
    assert.match(ca, new RegExp(`^K10[0-9a-f]{64}::node:${NEW_AGENT}\\n$`));
    assert.match(await logs('hepto-krmas-k3s'), /Received token request/);
    assert.deepEqual(s.status().problems, []);
    await s.stop();

    // Two more restarts of the server: both work (without the re-sync the second would fail, below).
    await restartServer('hepto-krmas-k3s', 2);
    await noKeyInInspect(['hepto-krmas-wesher', 'hepto-krmas-k3s']);
    noKeyLogged();

    // The same move without the re-sync, on the stand-in by hand (K28): the first start works, the second fails.
    try {
      const data = path.join(t.storage, 'krhazard');
      fs.mkdirSync(data, { recursive: true });
      const run = (agentKey: string): string[] => [
        '--network',
        'none',
        '-v',
        `${data}:/var/lib/rancher/k3s`,
        '-e',
        `K3S_TOKEN=${CLUSTER_KEY}`,
        '-e',
        `K3S_AGENT_TOKEN=${agentKey}`,
        STAND_INS.k3s,
        'server',
        '--node-ip',
        '10.1.2.3',
      ];
      for (const [name, key] of [
        ['k-rot0', AGENT_KEY],
        ['k-rot1', NEW_AGENT],
      ]) {
        byHand.push(name);
        await t.h.podman('run', '-d', '--name', name, ...run(key));
        await waitFor(async () => /Starting k3s server/.test(await logs(name)), { what: `${name} started` });
        await podmanAll('rm', '-f', '-v', '-t', '2', name);
      }
      const second = await podmanAll('run', '--rm', ...run(NEW_AGENT));
      assert.equal(second.code, 1);
      assert.match(second.out, /passwd newer than datastore and could cause a cluster outage/);
      console.log(
        '      shown: without the re-sync, the stand-in server given the new agent token starts once, then fails: "…/server/cred/passwd newer than datastore…"',
      );
    } finally {
      for (const name of byHand.splice(0)) await podmanAll('rm', '-f', '-v', '-t', '0', name);
    }
  });

  it('(c) on another machine the k3s token file is rewritten in place and its k3s container is kept', async () => {
    const hash = 'a'.repeat(64);
    const cfg = t.config('krwork', { master: 'krmaster', agent_key: AGENT_KEY, cluster_key: null });
    const s = t.supervisor(cfg, fast);
    s.setCluster(view(['krwork', 'alive'], ['krmaster', 'alive', { role: 'master', k3s_ca: hash }]));
    await s.start();
    await waitFor(running(s, 'hepto-krwork-k3s'), { what: 'worker k3s running', timeoutMs: 60_000 });
    const token = path.join(t.storage, 'krwork', 'rancher-k3s', 'hepto-token');
    assert.equal(read(token), `K10${hash}::node:${AGENT_KEY}`);
    const k0 = (await t.h.inspect('hepto-krwork-k3s'))!;
    const w0 = (await t.h.inspect('hepto-krwork-wesher'))!;
    await s.idle();

    s.setKeys({ overlay_key: OVERLAY_KEY, agent_key: NEW_AGENT, previous_agent_key: AGENT_KEY });
    await waitFor(() => read(token) === `K10${hash}::node:${NEW_AGENT}`, { what: 'the token file rewritten' });
    assert.equal(fs.statSync(token).mode & 0o777, 0o600);
    await s.idle();
    await new Promise((r) => setTimeout(r, 1_500));
    await s.idle();
    const k1 = (await t.h.inspect('hepto-krwork-k3s'))!;
    assert.equal(k1.Id, k0.Id, 'not recreated');
    assert.equal(k1.State.StartedAt, k0.State.StartedAt, 'not restarted');
    assert.equal(k1.State.Status, 'running');
    assert.equal((await t.h.inspect('hepto-krwork-wesher'))!.Id, w0.Id, 'the overlay key did not change: wesher kept');
    assert.ok(t.lines.some((l) => l.includes('token file rewritten in place')));
    await noKeyInInspect(['hepto-krwork-wesher', 'hepto-krwork-k3s']);
    noKeyLogged();
  });
});
