/**
 * The supervisor against a real Podman with busybox stand-ins (which prove
 * the agent drives Podman correctly, not that wesher or k3s work).
 */
import assert from 'node:assert/strict';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { systemClock } from '../../shared/clock';
import type { HeptoConfig } from '../../shared/config/types';
import { memoryLogger } from '../helpers/memory-logger';
import { Supervisor } from '../../agent/runtime/supervisor';
import { NO_AGENT_KEY_PROBLEM } from '../../agent/runtime/desired';
import { CLUSTER_KEY, OVERLAY_KEY, testConfig, view } from '../unit/runtime/fixtures';
import { PodmanHarness, STAND_INS, waitFor } from './harness';

describe('podman: supervisor (real Podman, stand-in images)', function () {
  this.timeout(120_000);
  let h: PodmanHarness;
  let storage: string;
  const sups: Supervisor[] = [];
  let logs: string[] = [];

  before(async () => {
    h = await PodmanHarness.start();
  });
  after(async () => {
    if (h) await h.close();
  });
  beforeEach(async () => {
    await h.startService(); // a test that stopped it may have failed before restarting it
    storage = fs.mkdtempSync(path.join(os.tmpdir(), 'hepto-storage-'));
  });
  afterEach(async function () {
    for (const s of sups.splice(0)) await s.stop();
    if (this.currentTest?.state === 'failed') console.log(logs.slice(-40).join('\n'));
    await h.removeAll();
    fs.rmSync(storage, { recursive: true, force: true });
  });

  function config(node: string, over: Partial<HeptoConfig> = {}): HeptoConfig {
    return testConfig({
      node,
      master: node,
      // The test Podman's namespace address: wesher binds there, as on a machine's own address.
      ip: [`${h.hostAddress}/64`],
      gw: [],
      storage_base: storage,
      podman_socket: h.socket,
      images: { wesher: STAND_INS.wesher, k3s: STAND_INS.k3s },
      ...over,
    });
  }

  function supervisor(cfg: HeptoConfig, extra: Partial<ConstructorParameters<typeof Supervisor>[0]> = {}): Supervisor {
    const mem = memoryLogger('debug', 'plain');
    logs = mem.lines;
    const s = new Supervisor({
      config: cfg,
      clock: systemClock,
      logger: mem.logger,
      cronSchedule: '',
      backoff: { baseMs: 300, capMs: 1_500, resetAfterMs: 5_000 },
      ...extra,
    });
    s.setCluster(view([cfg.node, 'alive']));
    sups.push(s);
    return s;
  }

  const running = (s: Supervisor, name: string) => () => s.status().containers.find((c) => c.name === name)?.state === 'running';

  async function bothRunning(s: Supervisor, node: string): Promise<void> {
    await waitFor(running(s, `hepto-${node}-wesher`), { what: `${node} wesher running` });
    await waitFor(running(s, `hepto-${node}-k3s`), { what: `${node} k3s running` });
  }

  it('first start: creates wesher and k3s as specified, restart policy off, no key in argv, state dirs made', async () => {
    const s = supervisor(config('pfirst'));
    await s.start();
    await bothRunning(s, 'pfirst');
    const w = (await h.inspect('hepto-pfirst-wesher'))!;
    const k = (await h.inspect('hepto-pfirst-k3s'))!;
    assert.equal(w.Config.Hostname, 'pfirst');
    assert.equal(w.Config.Labels['io.hepto.node'], 'pfirst');
    assert.equal(w.Config.Labels['io.hepto.role'], 'wesher');
    assert.match(w.Config.Labels['io.hepto.spec-hash'], /^[0-9a-f]{32}$/);
    assert.ok(w.Config.Env.includes(`WESHER_CLUSTER_KEY=${Buffer.from(OVERLAY_KEY).toString('base64')}`));
    // The k3s token reaches k3s as a 0600 file (--token-file), never through argv, labels or the env podman inspect shows.
    assert.ok(!JSON.stringify([k.Config.Cmd, k.Config.Labels, k.Config.Env, w.Config.Labels]).includes(CLUSTER_KEY));
    const tokenFile = path.join(storage, 'pfirst', 'rancher-k3s', 'hepto-token');
    assert.equal(fs.readFileSync(tokenFile, 'utf8'), CLUSTER_KEY);
    assert.equal(fs.statSync(tokenFile).mode & 0o777, 0o600);
    assert.ok(k.Config.Cmd?.includes('--token-file'));
    assert.deepEqual(k.Config.Cmd?.slice(0, 1), ['server']);
    assert.equal((w.HostConfig.RestartPolicy as { Name: string }).Name, 'no');
    assert.equal((w.Config as unknown as { StopTimeout: number }).StopTimeout, 15, 'wesher gets time to leave the mesh and delete its interface');
    assert.equal((k.HostConfig.RestartPolicy as { Name: string }).Name, 'no');
    assert.match(String(k.HostConfig.NetworkMode), /^container:/);
    assert.ok(fs.existsSync(path.join(storage, 'pfirst', 'wesher')));
    assert.ok(fs.existsSync(path.join(storage, 'pfirst', 'rancher-node')));
    const st = s.status();
    assert.equal(st.podman, 'connected');
    assert.deepEqual(st.health, { pfirst: { wesher: 'running', k3s: 'running' } });
    // The one problem: a master without agent_key (the others would need the server token; issue 13).
    assert.deepEqual(st.problems, [NO_AGENT_KEY_PROBLEM]);
    assert.ok(!logs.join('\n').includes(OVERLAY_KEY) && !logs.join('\n').includes(CLUSTER_KEY), 'no key in the logs');
  });

  it('a crash (kill -9 of the main process from the host) and a podman kill: running again', async () => {
    const s = supervisor(config('pcrash'));
    await s.start();
    await bothRunning(s, 'pcrash');
    const before = (await h.inspect('hepto-pcrash-k3s'))!;
    process.kill(before.State.Pid, 'SIGKILL');
    await waitFor(
      async () => {
        const i = await h.inspect('hepto-pcrash-k3s');
        return i && i.State.Status === 'running' && i.State.StartedAt !== before.State.StartedAt && i.Id === before.Id;
      },
      { what: 'k3s restarted after kill -9' },
    );
    await waitFor(() => s.status().containers.find((c) => c.role === 'k3s')?.restarts === 1, { what: 'restart counted' });

    const w = (await h.inspect('hepto-pcrash-wesher'))!;
    await h.podman('kill', 'hepto-pcrash-wesher');
    await waitFor(
      async () => {
        const i = await h.inspect('hepto-pcrash-wesher');
        return i && i.State.Status === 'running' && i.State.StartedAt !== w.State.StartedAt;
      },
      { what: 'wesher running again after podman kill' },
    );
    await bothRunning(s, 'pcrash');
  });

  it('event stream and exit watches outlive the request idle timeout (streams are not cut)', async () => {
    const s = supervisor(config('pidle'), { requestTimeoutMs: 2_000 });
    await s.start();
    await bothRunning(s, 'pidle');
    // Stay idle for several request timeouts: this wait is what is under test.
    await new Promise((r) => setTimeout(r, 4_500));
    assert.equal(s.status().podman, 'connected');
    const w = (await h.inspect('hepto-pidle-wesher'))!;
    process.kill(w.State.Pid, 'SIGKILL');
    await waitFor(() => logs.some((l) => /reconciled reason="event exit" actions="start hepto-pidle-wesher"/.test(l)), {
      what: 'restart through the exit watch',
    });
    assert.ok(!logs.some((l) => /event stream ended/.test(l)), 'the event stream was not cut');
  });

  it('a container that exits at once: backoff, then crashloop in status with its exit code and last lines', async () => {
    const s = supervisor(config('ploop', { images: { wesher: STAND_INS.wesher, k3s: STAND_INS.exits } }));
    await s.start();
    const st = await waitFor(
      () => {
        const c = s.status().containers.find((x) => x.role === 'k3s');
        return c && c.state === 'crashloop' && c.last_log && c.last_log.length > 0 ? c : null;
      },
      { what: 'k3s in crashloop' },
    );
    assert.equal(st.last_exit_code, 3);
    assert.ok(
      st.last_log!.some((l) => /exiting at once with code 3/.test(l)),
      st.last_log!.join('\n'),
    );
    assert.ok(
      s.status().problems.some((p) => /hepto-ploop-k3s keeps failing \(exit code 3\)/.test(p)),
      s.status().problems.join('\n'),
    );
    // Backoff, not a hot loop: over 2.5 s with waits of 0.3, 0.6, 1.2, 1.5 s it restarts only a few times.
    const r0 = s.status().containers.find((x) => x.role === 'k3s')!.restarts;
    await new Promise((r) => setTimeout(r, 2_500));
    const r1 = s.status().containers.find((x) => x.role === 'k3s')!.restarts;
    assert.ok(r1 - r0 <= 4, `restarted ${r1 - r0} times in 2.5 s`);
    assert.ok(s.status().containers.find((x) => x.role === 'wesher')!.state === 'running');
  });

  it('a config change recreates only that container; an agent restart adopts (same IDs)', async () => {
    const cfg = config('pchange');
    const s1 = supervisor(cfg);
    await s1.start();
    await bothRunning(s1, 'pchange');
    const w0 = (await h.inspect('hepto-pchange-wesher'))!.Id;
    const k0 = (await h.inspect('hepto-pchange-k3s'))!.Id;
    await s1.stop();
    assert.equal((await h.inspect('hepto-pchange-k3s'))!.State.Status, 'running', 'stop() leaves workloads running');

    // Agent restart, same config: adopted, nothing recreated or duplicated.
    const s2 = supervisor(cfg);
    await s2.start();
    await bothRunning(s2, 'pchange');
    await s2.idle();
    assert.equal((await h.inspect('hepto-pchange-wesher'))!.Id, w0);
    assert.equal((await h.inspect('hepto-pchange-k3s'))!.Id, k0);
    const names = (await h.podman('ps', '-a', '--format', '{{.Names}}')).split('\n').filter((n) => n.includes('pchange'));
    assert.equal(names.length, 2);
    await s2.stop();

    // The service range only reaches the k3s server: k3s is recreated, wesher keeps its ID.
    const s3 = supervisor({ ...cfg, service_cidr: '172.30.0.0/16' });
    await s3.start();
    await waitFor(
      async () => {
        const k = await h.inspect('hepto-pchange-k3s');
        return k && k.Id !== k0 && k.State.Status === 'running';
      },
      { what: 'k3s recreated' },
    );
    assert.equal((await h.inspect('hepto-pchange-wesher'))!.Id, w0, 'wesher untouched');
    // The image's VOLUMEs are all bound, and removal takes anonymous volumes along: none piles up.
    assert.equal((await h.podman('volume', 'ls', '-q')).trim(), '', 'no anonymous volume left by the recreate');
  });

  it("a cluster_key the server's datastore cannot open: the running server is kept, status says how to rotate", async () => {
    const cfg = config('ptoken');
    const s1 = supervisor(cfg);
    await s1.start();
    await bothRunning(s1, 'ptoken');
    const token = path.join(storage, 'ptoken', 'k3s', 'server', 'token');
    // The stand-in server writes its token file as k3s does (K10<ca hash>::server:<token>).
    await waitFor(() => fs.existsSync(token), { what: 'the server token file' });
    assert.match(fs.readFileSync(token, 'utf8'), /^K10[0-9a-f]+::server:/);
    const k0 = (await h.inspect('hepto-ptoken-k3s'))!.Id;
    await s1.stop();

    const changed = 'TESTONLYchangedKEY0123456789abcd';
    const s2 = supervisor({ ...cfg, cluster_key: changed });
    await s2.start();
    const problem = await waitFor(() => s2.status().problems.find((p) => /cluster_key changed/.test(p)), { what: 'the token problem' });
    assert.match(problem, /k3s token rotate/);
    assert.ok(!problem.includes(changed) && !problem.includes(cfg.cluster_key!), 'no key in the problem');
    await s2.idle();
    await new Promise((r) => setTimeout(r, 1000));
    const k = (await h.inspect('hepto-ptoken-k3s'))!;
    assert.equal(k.Id, k0, 'not recreated with a token its data cannot open');
    assert.equal(k.State.Status, 'running');

    // Without the agent's check, the stand-in server refuses the datastore as k3s does.
    await s2.stop();
    const out = await h
      .podman('run', '--rm', '-e', `K3S_TOKEN=${changed}`, '-v', `${path.join(storage, 'ptoken', 'k3s')}:/var/lib/rancher/k3s`, STAND_INS.k3s, 'server')
      .catch((e: Error) => e.message);
    assert.match(out, /bootstrap data already found and encrypted with different token/);
  });

  it('Podman service stopped and restarted: reports unreachable naming the socket, then reconnects and reconciles', async () => {
    const s = supervisor(config('psvc'));
    await s.start();
    await bothRunning(s, 'psvc');
    await h.stopService();
    await waitFor(() => s.status().podman === 'unreachable', { what: 'unreachable reported' });
    assert.ok(
      s.status().problems.some((p) => p.includes(h.socket) && /unreachable/.test(p)),
      s.status().problems.join('\n'),
    );
    // While Podman's API is down, the k3s container dies (CLI works without the service).
    await h.podman('kill', 'hepto-psvc-k3s');
    await h.startService();
    await waitFor(() => s.status().podman === 'connected', { what: 'reconnected', timeoutMs: 40_000 });
    await waitFor(async () => (await h.inspect('hepto-psvc-k3s'))?.State.Status === 'running', { what: 'k3s restarted after reconnect' });
    assert.ok(logs.some((l) => /reconnected to Podman/.test(l)));
  });

  it('Podman unreachable at start: start() resolves, status says why', async () => {
    const s = supervisor(config('pnone', { podman_socket: path.join(storage, 'nothing.sock') }));
    await s.start();
    const st = s.status();
    assert.equal(st.podman, 'unreachable');
    assert.ok(st.problems[0].includes(path.join(storage, 'nothing.sock')), st.problems[0]);
    assert.match(st.problems[0], /podman\.socket|system service/);
  });

  it('a missing image: status names the image and why, nothing crashes, wesher still runs', async () => {
    const missing = 'localhost/hepto-test-missing:none';
    const s = supervisor(config('pmiss', { images: { wesher: STAND_INS.wesher, k3s: missing } }));
    await s.start();
    const p = await waitFor(() => s.status().problems.find((x) => x.includes(missing) && /could not be pulled/.test(x)), {
      what: 'missing image problem',
      timeoutMs: 60_000,
    });
    assert.match(p, /connection refused|pinging container registry/, p);
    await waitFor(running(s, 'hepto-pmiss-wesher'), { what: 'wesher running' });
    assert.equal(s.status().containers.find((c) => c.role === 'k3s')!.state, 'missing');
    assert.ok(logs.some((l) => /pulling image/.test(l) && l.includes(missing)));
  });

  it('ulimits above what the host allows: RLIMIT_DENIED in status with the fix, no crash', async () => {
    const s = supervisor(config('prlim', { ulimits: { nofile: { soft: 10_000_000, hard: 10_000_000 } } }));
    await s.start();
    const p = await waitFor(() => s.status().problems.find((x) => /resource limits/.test(x)), { what: 'rlimit problem' });
    assert.match(p, /hepto-prlim-wesher.*Podman could not apply the container's resource limits.*"ulimits"/);
    assert.equal(s.status().podman, 'connected');
  });

  it('ipvlan on this netavark (< 1.5): refused with the reason, nothing created', async () => {
    const s = supervisor(config('pipv', { network_mode: 'ipvlan', iface: 'lo', ip: ['192.0.2.61/24'] }));
    await s.start();
    await s.idle();
    const p = await waitFor(() => s.status().problems.find((x) => /ipvlan needs netavark >= 1\.5\.0, this machine has/.test(x)), { what: 'ipvlan refusal' });
    assert.match(p, /node pipv: network_mode/);
    assert.ok(s.status().containers.every((c) => c.state === 'waiting'));
    assert.equal(await h.inspect('hepto-pipv-wesher'), null);
  });

  it('an agent k3s waits for the master; starts once the master is seen alive', async () => {
    const s = supervisor(config('pwait', { master: 'pmaster' }));
    await s.start();
    await waitFor(running(s, 'hepto-pwait-wesher'), { what: 'wesher running' });
    const k = s.status().containers.find((c) => c.role === 'k3s')!;
    assert.equal(k.state, 'waiting');
    assert.match(k.last_error!, /pmaster/);
    s.setCluster(view(['pwait', 'alive'], ['pmaster', 'alive']));
    await waitFor(running(s, 'hepto-pwait-k3s'), { what: 'k3s started once the master is known' });
    const i = (await h.inspect('hepto-pwait-k3s'))!;
    assert.equal(i.Config.Cmd![0], 'agent');
  });

  it('containers of a node no longer configured are removed', async () => {
    const cfg = config('pmain', { nodes: [{ node: 'pextra', iface: null, ip: [], gw: [], network_mode: 'host' }] });
    // Two host-mode nodes conflict; give the extra one its own stand-in run by a first supervisor that hosts it alone.
    const s1 = supervisor(config('pextra', { master: 'pmain' }));
    s1.setCluster(view(['pextra', 'alive'], ['pmain', 'alive']));
    await s1.start();
    await bothRunning(s1, 'pextra');
    await s1.stop();
    const s2 = supervisor({ ...cfg, nodes: [] });
    await s2.start();
    await bothRunning(s2, 'pmain');
    await waitFor(async () => (await h.inspect('hepto-pextra-wesher')) === null && (await h.inspect('hepto-pextra-k3s')) === null, {
      what: 'stale containers removed',
    });
  });
});
