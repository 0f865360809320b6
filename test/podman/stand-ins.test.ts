/**
 * The stand-in images against real Podman: they must behave like wesher
 * v0.2.6 and k3s wherever the agent depends on them (test/fixtures/
 * standin-wesher.c and standin-k3s.sh cite the upstream code), so that tests
 * using them fail where a real node would.
 *
 * Nodes get their own network namespaces: a "holder" container with
 * `--network none` per node, a veth pair created straight into two holders
 * (nothing is added to the host's namespace), and the stand-in joins the
 * holder's namespace with `--network container:`. Inspection is done from the
 * host with `nsenter -n` and iproute2's JSON output. Removing the containers
 * removes the namespaces and every link in them.
 */
import assert from 'node:assert/strict';
import { execFile } from 'child_process';
import crypto from 'crypto';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { overlayIp } from '../../agent/runtime/overlay-ip';
import { run } from '../helpers/podman-cli';
import { PodmanHarness, STAND_INS, waitFor } from './harness';

const REPO = path.resolve(__dirname, '../../..');
const SCRIPT = path.join(REPO, 'test/fixtures/stand-in-images.sh');
/** Base64 of 32 bytes, as the agent passes the overlay key. */
const KEY = Buffer.from('TESTONLYoverlayKEY0123456789abcd', 'utf8').toString('base64');
const SCRATCH = 'localhost/hepto-standin-wesher-scratch:test';
const OVERLAY_NET = '10.0.0.0/8';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command; never rejects on a non-zero exit. */
function exec(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 60_000): Promise<Result> {
  return new Promise((resolve) => {
    execFile(cmd, args, { env, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

function releaseArch(): string {
  const m = os.arch();
  return m === 'x64' ? 'amd64' : m === 'arm64' ? 'arm64' : m === 'arm' ? 'arm' : m;
}

interface IpLink {
  ifindex: number;
  ifname: string;
  mtu: number;
  flags: string[];
}
interface IpAddr {
  family: string;
  local: string;
  prefixlen: number;
}

describe('podman: stand-in images behave like wesher v0.2.6 and k3s', function () {
  this.timeout(120_000);
  let h: PodmanHarness;
  let work: string;
  let binDir: string;
  const started: string[] = [];

  const podman = (...args: string[]) => h.podman(...args);
  // as h.podman: inside the test Podman's network namespace
  const podmanResult = (args: string[], timeoutMs = 60_000) =>
    exec('nsenter', [`--net=/run/netns/${h.netns}`, 'podman', ...h.globalArgs, ...args], h.env, timeoutMs);
  const ns = (pid: number, ...cmd: string[]) => run('nsenter', ['-t', String(pid), '-n', ...cmd], process.env);

  async function pidOf(name: string): Promise<number> {
    const i = await h.inspect(name);
    assert.ok(i && i.State.Pid > 0, `${name} has no pid`);
    return i.State.Pid;
  }

  /** A container that only holds a network namespace for one node. */
  async function holder(name: string): Promise<number> {
    await podman('run', '-d', '--name', name, '--network', 'none', '--entrypoint', '/bin/sleep', STAND_INS.wesher, '3600');
    started.push(name);
    const pid = await pidOf(name);
    await ns(pid, 'ip', 'link', 'set', 'lo', 'up');
    return pid;
  }

  /** eth0 in both namespaces, one veth pair; addresses without DAD, links up. */
  async function connect(a: number, b: number, addrA: string, addrB: string): Promise<void> {
    await run('ip', ['link', 'add', 'eth0', 'netns', String(a), 'type', 'veth', 'peer', 'name', 'eth0', 'netns', String(b)], process.env);
    for (const [pid, addr] of [
      [a, addrA],
      [b, addrB],
    ] as const) {
      await ns(pid, 'ip', 'addr', 'add', addr, 'dev', 'eth0', 'nodad');
      await ns(pid, 'ip', 'link', 'set', 'eth0', 'up');
    }
  }

  async function link(pid: number, dev: string): Promise<IpLink | null> {
    try {
      return (JSON.parse(await ns(pid, 'ip', '-j', 'link', 'show', 'dev', dev)) as IpLink[])[0] ?? null;
    } catch {
      return null;
    }
  }

  async function addrs(pid: number, dev: string): Promise<IpAddr[]> {
    const out = JSON.parse(await ns(pid, 'ip', '-j', 'addr', 'show', 'dev', dev)) as Array<{ addr_info: IpAddr[] }>;
    return out[0]?.addr_info ?? [];
  }

  async function routes(pid: number, dev: string): Promise<Array<{ dst: string; scope?: string }>> {
    return JSON.parse(await ns(pid, 'ip', '-j', 'route', 'show', 'dev', dev));
  }

  interface WesherOpts {
    holder: string;
    hostname: string;
    image?: string;
    state: string;
    env: Record<string, string>;
  }

  async function wesher(name: string, o: WesherOpts): Promise<void> {
    const env = {
      WESHER_CLUSTER_KEY: KEY,
      WESHER_OVERLAY_NET: OVERLAY_NET,
      WESHER_INTERFACE: 'wgoverlay',
      WESHER_NO_ETC_HOSTS: 'true',
      WESHER_LOG_LEVEL: 'info',
      HEPTO_STANDIN_LINK_KIND: 'veth',
      ...o.env,
    };
    fs.mkdirSync(o.state, { recursive: true });
    await podman(
      'run',
      '-d',
      '--name',
      name,
      '--hostname',
      o.hostname,
      '--network',
      `container:${o.holder}`,
      '--cap-add',
      'NET_ADMIN',
      '-v',
      `${o.state}:/var/lib/wesher`,
      ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
      o.image ?? STAND_INS.wesher,
    );
    started.push(name);
  }

  async function logs(name: string): Promise<string> {
    const r = await podmanResult(['logs', name]);
    return r.stdout + r.stderr;
  }

  const waitLog = (name: string, re: RegExp, timeoutMs = 15_000) => waitFor(async () => re.test(await logs(name)), { what: `${name} to log ${re}`, timeoutMs });

  async function exitCode(name: string): Promise<number> {
    const i = await h.inspect(name);
    assert.ok(i, `${name} is gone`);
    assert.equal(i.State.Status, 'exited', `${name} is ${i.State.Status}, not exited`);
    return i.State.ExitCode;
  }

  /** podman stop with a 10 s grace; returns how long it took. */
  async function stop(name: string): Promise<number> {
    const t0 = Date.now();
    await podman('stop', '-t', '10', name);
    return Date.now() - t0;
  }

  before(async () => {
    h = await PodmanHarness.start();
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'hepto-standins-'));
    binDir = path.join(work, 'release');
    await run('bash', [SCRIPT, 'wesher-binary', binDir], process.env);
    // What the agent builds from the release binary: an image holding only it.
    const root = path.join(work, 'scratch');
    fs.mkdirSync(root);
    fs.copyFileSync(path.join(binDir, `wesher-${releaseArch()}`), path.join(root, 'wesher'));
    fs.chmodSync(path.join(root, 'wesher'), 0o755);
    await run('tar', ['-C', root, '-cf', path.join(work, 'scratch.tar'), 'wesher'], process.env);
    await podman('import', '--quiet', '--change', 'ENTRYPOINT ["/wesher"]', path.join(work, 'scratch.tar'), SCRATCH);
  });

  after(async () => {
    if (h) {
      await h.removeAll();
      await podman('rmi', '-f', SCRATCH).catch(() => undefined);
      await h.close();
    }
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  afterEach(async function () {
    if (this.currentTest?.state === 'failed') {
      for (const c of started) console.log(`--- ${c}\n${(await logs(c).catch((e) => String(e))).trim()}`);
    }
    started.length = 0;
    // -v: the k3s image declares VOLUMEs (as rancher/k3s does); leave no anonymous volume in the shared store
    for (let i = 0; i < 2; i++) await podman('rm', '-af', '-v', '-t', '0').catch(() => undefined);
    await h.removeAll();
  });

  describe('wesher stand-in', () => {
    it('is a static binary named and summed like the release, and computes overlay IPs as overlay-ip.ts does', async () => {
      const name = `wesher-${releaseArch()}`;
      const bin = path.join(binDir, name);
      const sums = fs.readFileSync(path.join(binDir, 'wesher.sha256sums'), 'utf8');
      const digest = crypto.createHash('sha256').update(fs.readFileSync(bin)).digest('hex');
      assert.equal(sums, `${digest}  ${name}\n`);
      const ldd = await exec('ldd', [bin]);
      assert.match(ldd.stdout + ldd.stderr, /not a dynamic executable/);

      const overlay = async (host: string, net: string) =>
        (await run(bin, [], { PATH: process.env.PATH, HEPTO_STANDIN_PRINT_OVERLAY: host, WESHER_OVERLAY_NET: net })).trim();
      // vectors computed from wesher's wireguard.go:assignOverlayAddr
      assert.equal(await overlay('test', '10.0.0.0/8'), '10.221.153.165');
      assert.equal(await overlay('test', '10.0.0.0/24'), '10.0.0.165');
      assert.equal(await overlay('test', '2001:db8::/32'), '2001:db8:c575:7277:b806:e994:13dd:99a5');
      for (const host of ['alpha', 'bravo', 'node-7', 'ünï']) {
        for (const net of ['10.0.0.0/8', '10.20.0.0/16', 'fd00:1234::/32', '2001:db8:77::/48']) {
          assert.equal(await overlay(host, net), overlayIp(host, net), `${host} in ${net}`);
        }
      }
    });

    it('reads only WESHER_* variables: refuses a key that is not base64 of 32 bytes, ignores WESHER_MTU', async () => {
      const runScratch = (env: Record<string, string>) =>
        podmanResult(['run', '--rm', '--network', 'none', ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]), SCRATCH]);
      const short = Buffer.alloc(16, 7).toString('base64');
      let r = await runScratch({ WESHER_CLUSTER_KEY: short, WESHER_BIND_ADDR: '127.0.0.1' });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /NOT the real wesher/);
      assert.match(r.stderr, /level=fatal msg="unsupported cluster key length; expected 32, got 16"/);
      assert.ok(!r.stderr.includes(short), 'the key shows in the log');
      r = await runScratch({ WESHER_CLUSTER_KEY: 'not base64 at all!', WESHER_BIND_ADDR: '127.0.0.1' });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /illegal base64 data/);
      r = await runScratch({ WESHER_CLUSTER_KEY: KEY, WESHER_OVERLAY_NET: '10.0.0.0/12', WESHER_BIND_ADDR: '127.0.0.1' });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /net mask must be multiple of 8, got 12/);
      // memberlist binds the address at once: one this namespace lacks is fatal
      r = await runScratch({ WESHER_CLUSTER_KEY: KEY, WESHER_BIND_ADDR: '2001:db8::77' });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /could not create cluster: Failed to start TCP listener on \\"2001:db8::77\\" port 7946: .*Cannot assign requested address/);
      r = await runScratch({ HEPTO_STANDIN_EXIT: '5' });
      assert.equal(r.code, 5);

      // A variable wesher does not declare is ignored without a word.
      await podman(
        'run',
        '-d',
        '--name',
        'w-env',
        '--network',
        'none',
        '-e',
        `WESHER_CLUSTER_KEY=${KEY}`,
        '-e',
        'WESHER_MTU=1300',
        '-e',
        'WESHER_BIND_ADDR=127.0.0.1',
        '-e',
        'WESHER_LOG_LEVEL=info',
        '-e',
        'WESHER_SOMETHING_ELSE=x',
        SCRATCH,
      );
      started.push('w-env');
      await waitLog('w-env', /waiting alone/);
      assert.doesNotMatch(await logs('w-env'), /MTU|SOMETHING/i);
      await stop('w-env');
      assert.equal(await exitCode('w-env'), 0);
    });

    it('without WESHER_BIND_ADDR and no forwardable address (loopback only), exits 1 as memberlist does', async () => {
      const r = await podmanResult(['run', '--rm', '--network', 'none', '-e', `WESHER_CLUSTER_KEY=${KEY}`, SCRATCH]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /No private IP address found, and explicit IP not provided/);
    });

    it('alone: no interface (a pre-made one is left alone); a peer brings it up with the overlay IP and MTU 1420; events reset the MTU; TERM deletes it', async () => {
      const pa = await holder('h-alpha');
      const pb = await holder('h-bravo');
      await connect(pa, pb, '2001:db8:5::1/64', '2001:db8:5::2/64');
      // (d) alpha's namespace already has a wgoverlay (as wireguard-go would make it)
      await ns(pa, 'ip', 'link', 'add', 'wgoverlay', 'mtu', '1300', 'type', 'veth', 'peer', 'name', 'wgpeer');
      const premade = (await link(pa, 'wgoverlay'))!;
      const stateA = path.join(work, 'state-alpha');
      const stateB = path.join(work, 'state-bravo');

      // alpha: the image the agent builds (only the binary); WESHER_MTU must change nothing
      await wesher('w-alpha', {
        holder: 'h-alpha',
        hostname: 'alpha',
        image: SCRATCH,
        state: stateA,
        env: { WESHER_BIND_ADDR: '2001:db8:5::1', WESHER_MTU: '1300' },
      });
      await wesher('w-bravo', { holder: 'h-bravo', hostname: 'bravo', state: stateB, env: { WESHER_BIND_ADDR: '2001:db8:5::2' } });
      await waitLog('w-alpha', /waiting alone/);
      await waitLog('w-bravo', /waiting alone/);
      await new Promise((r) => setTimeout(r, 2_500)); // more than one probe round
      // (a) a node alone has no interface
      assert.equal(await link(pb, 'wgoverlay'), null, 'bravo made an interface while alone');
      // (d) the pre-made one is untouched
      const untouched = (await link(pa, 'wgoverlay'))!;
      assert.equal(untouched.ifindex, premade.ifindex);
      assert.equal(untouched.mtu, 1300);
      assert.ok(!untouched.flags.includes('UP'));
      assert.deepEqual(
        (await addrs(pa, 'wgoverlay')).filter((a) => a.family === 'inet'),
        [],
      );
      // a lone node stops cleanly at once
      assert.ok((await stop('w-bravo')) < 5_000);
      assert.equal(await exitCode('w-bravo'), 0);
      await podman('rm', 'w-bravo');

      // (b) bravo again, joining alpha: both get wgoverlay, overlay IP /32, MTU 1420, up
      await wesher('w-bravo2', {
        holder: 'h-bravo',
        hostname: 'bravo',
        state: stateB,
        env: { WESHER_BIND_ADDR: '2001:db8:5::2', WESHER_JOIN: '2001:db8:5::1' },
      });
      await waitLog('w-alpha', /node bravo joined/);
      await waitLog('w-bravo2', /node alpha joined/);
      const ipA = overlayIp('alpha', OVERLAY_NET);
      const ipB = overlayIp('bravo', OVERLAY_NET);
      for (const [pid, ip, who] of [
        [pa, ipA, 'alpha'],
        [pb, ipB, 'bravo'],
      ] as const) {
        await waitFor(async () => (await addrs(pid, 'wgoverlay')).some((a) => a.local === ip), { what: `${who}'s overlay IP` });
        assert.deepEqual(
          (await addrs(pid, 'wgoverlay')).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`),
          [`${ip}/32`],
          `${who}: wesher assigns the overlay IP with a full mask`,
        );
        const l = (await link(pid, 'wgoverlay'))!;
        assert.equal(l.mtu, 1420, `${who}: MTU`);
        assert.ok(l.flags.includes('UP'), `${who}: up`);
      }
      assert.equal((await link(pa, 'wgoverlay'))!.ifindex, premade.ifindex, 'the pre-made interface was replaced');
      assert.ok(
        (await routes(pa, 'wgoverlay')).some((r) => r.dst === ipB && r.scope === 'link'),
        'route to bravo',
      );
      assert.ok(
        (await routes(pb, 'wgoverlay')).some((r) => r.dst === ipA && r.scope === 'link'),
        'route to alpha',
      );
      const lines = (await logs('w-alpha')).trim().split('\n');
      assert.match(lines[0], /NOT the real wesher/);
      assert.equal(lines.filter((l) => /node bravo joined/.test(l)).length, 1, 'one line per event');

      // state file: 0600, the known nodes, and, as upstream, the cluster key in force (base64; W11, W25)
      const stateFile = path.join(stateA, 'state.json');
      await waitFor(() => fs.existsSync(stateFile), { what: 'alpha state.json' });
      assert.equal(fs.statSync(stateFile).mode & 0o777, 0o600);
      const text = fs.readFileSync(stateFile, 'utf8');
      const state = JSON.parse(text) as { ClusterKey: string; Nodes: Array<{ Name: string; Addr: string }> };
      assert.equal(state.ClusterKey, KEY, "the state holds the cluster key, as wesher's does");
      assert.deepEqual(
        state.Nodes.map((n) => [n.Name, n.Addr]),
        [['bravo', '2001:db8:5::2']],
      );

      // (c) someone sets the MTU; nothing changes it back until a membership event
      await ns(pa, 'ip', 'link', 'set', 'wgoverlay', 'mtu', '1300');
      await new Promise((r) => setTimeout(r, 2_500));
      assert.equal((await link(pa, 'wgoverlay'))!.mtu, 1300, 'the MTU changed without an event');

      // (e) TERM after the join: clean shutdown deletes the interface, saves state, exits 0
      assert.ok((await stop('w-bravo2')) < 5_000);
      assert.equal(await exitCode('w-bravo2'), 0);
      assert.equal(await link(pb, 'wgoverlay'), null, 'bravo left its interface behind');
      const stateBravo = JSON.parse(fs.readFileSync(path.join(stateB, 'state.json'), 'utf8')) as { Nodes: Array<{ Name: string }> };
      assert.deepEqual(
        stateBravo.Nodes.map((n) => n.Name),
        ['alpha'],
      );
      // (c) bravo leaving is an event for alpha: MTU back to 1420
      await waitLog('w-alpha', /node bravo left/);
      await waitFor(async () => (await link(pa, 'wgoverlay'))?.mtu === 1420, { what: 'alpha MTU back to 1420' });

      // and alpha deletes even the interface it did not create
      await stop('w-alpha');
      assert.equal(await exitCode('w-alpha'), 0);
      assert.equal(await link(pa, 'wgoverlay'), null);
    });

    it('while joining nobody: takes others in but handles no event, and TERM kills it at once without touching anything (a link it cannot make: logged, still running)', async () => {
      const pc = await holder('h-charlie');
      const pd = await holder('h-delta');
      await connect(pc, pd, '2001:db8:6::1/64', '2001:db8:6::2/64');
      await ns(pc, 'ip', 'link', 'add', 'wgoverlay', 'mtu', '1300', 'type', 'veth', 'peer', 'name', 'wgpeer');
      await ns(pc, 'ip', 'addr', 'add', '10.9.9.9/32', 'dev', 'wgoverlay');
      const stateC = path.join(work, 'state-charlie');
      fs.mkdirSync(stateC);
      const stateFile = path.join(stateC, 'state.json');
      fs.writeFileSync(stateFile, '{"kept":"as it was"}\n', { mode: 0o644 });
      const before = fs.statSync(stateFile);

      // charlie joins an address where nobody answers (each try costs the timeout)
      await wesher('w-charlie', {
        holder: 'h-charlie',
        hostname: 'charlie',
        state: stateC,
        env: { WESHER_BIND_ADDR: '2001:db8:6::1', WESHER_JOIN: '2001:db8:6::99' },
      });
      // delta joins charlie: charlie answers and lists it, but processes nothing.
      // delta asks for a real WireGuard link, which this kernel cannot make: as
      // wesher, it logs the error and keeps running.
      await wesher('w-delta', {
        holder: 'h-delta',
        hostname: 'delta',
        state: path.join(work, 'state-delta'),
        env: { WESHER_BIND_ADDR: '2001:db8:6::2', WESHER_JOIN: '2001:db8:6::1', HEPTO_STANDIN_LINK_KIND: '' },
      });
      await waitLog('w-delta', /node charlie joined/);
      await waitLog('w-delta', /level=error msg="could not up interface: could not create interface wgoverlay: /);
      assert.equal(await link(pd, 'wgoverlay'), null);
      assert.equal((await h.inspect('w-delta'))!.State.Status, 'running');
      await waitLog('w-charlie', /could not join cluster, retrying in/);
      assert.doesNotMatch(await logs('w-charlie'), /node delta joined/);
      assert.equal((await link(pc, 'wgoverlay'))!.mtu, 1300);

      // (f) Go with no handler installed dies at once; as PID 1 the runtime exits 2
      const took = await stop('w-charlie');
      assert.ok(took < 2_000, `podman stop took ${took} ms: TERM did not kill the joining wesher`);
      assert.equal(await exitCode('w-charlie'), 2);
      const l = (await link(pc, 'wgoverlay'))!;
      assert.ok(l, 'the interface was deleted');
      assert.equal(l.mtu, 1300);
      assert.deepEqual(
        (await addrs(pc, 'wgoverlay')).filter((a) => a.family === 'inet').map((a) => a.local),
        ['10.9.9.9'],
      );
      assert.equal(fs.readFileSync(stateFile, 'utf8'), '{"kept":"as it was"}\n');
      assert.equal(fs.statSync(stateFile).mtimeMs, before.mtimeMs);
      assert.doesNotMatch(await logs('w-charlie'), /terminating/);
    });
  });

  describe('k3s stand-in', () => {
    const k3s = (args: string[], env: Record<string, string> = {}, network = 'none') =>
      podmanResult(['run', '--rm', '--network', network, ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]), STAND_INS.k3s, ...args]);
    const TOKEN = { K3S_TOKEN: 'TESTONLYclusterKEY' };

    it('refuses flags it does not define, as urfave/cli does (--cluster-cidr is server-only)', async () => {
      let r = await k3s(['server', '--node-name', 'n1', '--no-such-flag', 'x'], TOKEN);
      assert.equal(r.code, 1);
      assert.match(r.stdout, /^Incorrect Usage: flag provided but not defined: -no-such-flag$/m);
      assert.match(r.stderr, /level=fatal msg="Error: flag provided but not defined: -no-such-flag"/);
      assert.match(r.stderr, /NOT the real k3s/);
      r = await k3s(['agent', '--server', 'https://[fd00::1]:6443', '--cluster-cidr', '10.42.0.0/16'], TOKEN);
      assert.equal(r.code, 1);
      assert.match(r.stdout, /Incorrect Usage: flag provided but not defined: -cluster-cidr/);
      r = await k3s(['agent', '--server', 'https://[fd00::1]:6443', '--node-name'], TOKEN);
      assert.equal(r.code, 1);
      assert.match(r.stdout, /flag needs an argument: -node-name/);
    });

    it('an agent needs a token and --server', async () => {
      let r = await k3s(['agent', '--server', 'https://[fd00::1]:6443']);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /Error: --token is required/);
      r = await k3s(['agent'], TOKEN);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /Error: --server is required/);
    });

    it('refuses a cluster-cidr of another IP family than the node IP', async () => {
      let r = await k3s(['server', '--node-ip', '2001:db8::1', '--cluster-cidr', '10.42.0.0/16', '--service-cidr', '10.43.0.0/16'], TOKEN);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /cluster-cidr: \[10.42.0.0\/16\] and node-ip: \[2001:db8::1\], must share the same IP version/);
      r = await k3s(['server', '--node-ip', '10.1.2.3', '--cluster-cidr', 'fd00:42::/56', '--service-cidr', 'fd00:43::/112'], TOKEN);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /and node-ip: \[10.1.2.3\], must share the same IP version/);
      // an IPv6 node IP with k3s's defaults (which then follow the node IP) is fine
      await podman(
        'run',
        '-d',
        '--name',
        'k-v6',
        '--network',
        'none',
        '-e',
        `K3S_TOKEN=${TOKEN.K3S_TOKEN}`,
        STAND_INS.k3s,
        'server',
        '--node-ip',
        '2001:db8::1',
      );
      started.push('k-v6');
      await waitLog('k-v6', /Starting k3s server/);
      assert.equal((await h.inspect('k-v6'))!.State.Status, 'running');
      await stop('k-v6');
      assert.equal(await exitCode('k-v6'), 0);
    });

    it('--flannel-iface needs an address on it: at start without --node-ip, when flannel starts with it', async () => {
      const pk = await holder('h-k3s');
      await ns(pk, 'ip', 'link', 'add', 'wgoverlay', 'type', 'veth', 'peer', 'name', 'wgpeer');
      await ns(pk, 'ip', 'link', 'set', 'wgpeer', 'up');
      await ns(pk, 'ip', 'link', 'set', 'wgoverlay', 'up');
      const net = 'container:h-k3s';
      const quick = { ...TOKEN, HEPTO_STANDIN_FLANNEL_DELAY: '1' };

      let r = await k3s(['server', '--node-name', 'n1', '--flannel-iface', 'nothere'], TOKEN, net);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /interface nothere does not have a correct global unicast ip: route ip\+net: no such network interface/);
      r = await k3s(['server', '--node-name', 'n1', '--flannel-iface', 'wgoverlay'], TOKEN, net);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /interface wgoverlay does not have a correct global unicast ip: can't find ip for interface wgoverlay/);
      r = await k3s(['server', '--node-name', 'n1', '--node-ip', '10.221.153.165', '--flannel-iface', 'wgoverlay'], quick, net);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /flannel exited: failed to find the interface: failed to find IPv4 address for interface wgoverlay: No IPv4 address found for given interface/,
      );
      r = await k3s(['agent', '--server', 'https://10.0.0.1:6443', '--node-ip', '10.221.153.165', '--flannel-iface', 'wgoverlay'], quick, net);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /flannel exited: failed to find the interface: failed to find IPv4 address for interface wgoverlay: No IPv4 address found for given interface/,
      );

      // with the overlay address on it, k3s runs (and TERM stops it with 0)
      await ns(pk, 'ip', 'addr', 'add', '10.221.153.165/32', 'dev', 'wgoverlay');
      for (const [name, args] of [
        [
          'k-server',
          [
            'server',
            '--node-name',
            'n1',
            '--node-ip',
            '10.221.153.165',
            '--flannel-iface',
            'wgoverlay',
            '--cluster-cidr',
            '10.42.0.0/16',
            '--service-cidr',
            '10.43.0.0/16',
          ],
        ],
        ['k-noip', ['server', '--node-name', 'n1', '--flannel-iface', 'wgoverlay']],
      ] as const) {
        await podman(
          'run',
          '-d',
          '--name',
          name,
          '--network',
          net,
          '-e',
          `K3S_TOKEN=${TOKEN.K3S_TOKEN}`,
          '-e',
          'HEPTO_STANDIN_FLANNEL_DELAY=1',
          STAND_INS.k3s,
          ...args,
        );
        started.push(name);
        await waitLog(name, /Using interface with name wgoverlay and address 10.221.153.165/);
        assert.equal((await h.inspect(name))!.State.Status, 'running');
        await stop(name);
        assert.equal(await exitCode(name), 0);
      }
    });

    it('a server keeps its token as k3s does, and refuses data made with another token', async () => {
      const data = path.join(work, 'k3s-data');
      fs.mkdirSync(data);
      const server = (token: string | null, name: string) =>
        podman(
          'run',
          '-d',
          '--name',
          name,
          '--network',
          'none',
          '-v',
          `${data}:/var/lib/rancher/k3s`,
          ...(token ? ['-e', `K3S_TOKEN=${token}`] : []),
          STAND_INS.k3s,
          'server',
          '--node-ip',
          '10.1.2.3',
        );
      await server('TESTONLYfirst', 'k-tok1');
      started.push('k-tok1');
      await waitLog('k-tok1', /Starting k3s server/);
      const tokenFile = path.join(data, 'server', 'token');
      const first = fs.readFileSync(tokenFile, 'utf8');
      assert.match(first, /^K10[0-9a-f]{64}::server:TESTONLYfirst\n$/);
      assert.equal(fs.statSync(tokenFile).mode & 0o777, 0o600);
      assert.equal(fs.readlinkSync(path.join(data, 'server', 'node-token')), 'token');
      await stop('k-tok1');

      let r = await podmanResult([
        'run',
        '--rm',
        '--network',
        'none',
        '-v',
        `${data}:/var/lib/rancher/k3s`,
        '-e',
        'K3S_TOKEN=TESTONLYother',
        STAND_INS.k3s,
        'server',
        '--node-ip',
        '10.1.2.3',
      ]);
      assert.equal(r.code, 1);
      assert.match(
        r.stderr,
        /level=fatal msg="Error: starting kubernetes: preparing server: failed to bootstrap cluster data: bootstrap data already found and encrypted with different token"/,
      );
      assert.equal(fs.readFileSync(tokenFile, 'utf8'), first, 'the token file was changed');
      // without a token, the one of the data is used; the same token is accepted, in either form
      for (const [name, token] of [
        ['k-tok2', null],
        ['k-tok3', first.trim()],
      ] as const) {
        await server(token, name);
        started.push(name);
        await waitLog(name, /Starting k3s server/);
        assert.equal((await h.inspect(name))!.State.Status, 'running');
        await stop(name);
        assert.equal(fs.readFileSync(tokenFile, 'utf8'), first);
      }
      // a first server without a token makes one and runs
      const fresh = path.join(work, 'k3s-fresh');
      fs.mkdirSync(fresh);
      await podman(
        'run',
        '-d',
        '--name',
        'k-tok4',
        '--network',
        'none',
        '-v',
        `${fresh}:/var/lib/rancher/k3s`,
        STAND_INS.k3s,
        'server',
        '--node-ip',
        '10.1.2.3',
      );
      started.push('k-tok4');
      await waitLog('k-tok4', /Starting k3s server/);
      assert.match(fs.readFileSync(path.join(fresh, 'server', 'token'), 'utf8'), /^K10[0-9a-f]{64}::server:[0-9a-f]{32}\n$/);
      assert.equal((await h.inspect('k-tok4'))!.State.Status, 'running');
    });
  });

  describe('images', () => {
    it('keep their references and labels, and are rebuilt when a stand-in source changes', async () => {
      const w = JSON.parse(await podman('image', 'inspect', STAND_INS.wesher))[0];
      assert.deepEqual(w.Config.Entrypoint, ['/wesher']);
      assert.equal(w.Config.Labels['io.hepto.stand-in'], 'true');
      const k = JSON.parse(await podman('image', 'inspect', STAND_INS.k3s))[0];
      assert.deepEqual(k.Config.Entrypoint, ['/bin/k3s']);
      assert.deepEqual(k.Config.Cmd, ['agent']);
      assert.ok(k.Config.Labels['io.hepto.stand-in.hash']);
      const r = await podmanResult(['run', '--rm', '--network', 'none', STAND_INS.exits]);
      assert.equal(r.code, 3);
      assert.deepEqual((await run('bash', [SCRIPT, 'list'], process.env)).trim().split('\n'), Object.values(STAND_INS));

      // a scratch store and a copy of the fixtures, so the test store keeps its images
      const copy = path.join(work, 'fixtures');
      fs.mkdirSync(copy);
      for (const f of ['stand-in-images.sh', 'standin-wesher.c', 'standin-k3s.sh', 'standin-k3s-tls.c'])
        fs.copyFileSync(path.join(REPO, 'test/fixtures', f), path.join(copy, f));
      const root = path.join(work, 'store');
      const podmanCmd = ['podman', '--root', path.join(root, 'root'), '--runroot', path.join(root, 'run')].join(' ');
      const build = () => run('bash', [path.join(copy, 'stand-in-images.sh'), 'build'], { ...h.env, PODMAN: podmanCmd }, 300_000);
      const hashOf = async () =>
        (await run('sh', ['-c', `${podmanCmd} image inspect --format '{{ index .Labels "io.hepto.stand-in.hash" }}' ${STAND_INS.k3s}`], h.env)).trim();
      try {
        assert.equal((await build()).match(/imported/g)?.length, 3);
        const first = await hashOf();
        assert.equal((await build()).match(/imported/g), null, 'rebuilt although nothing changed');
        fs.appendFileSync(path.join(copy, 'standin-k3s.sh'), '# changed\n');
        assert.equal((await build()).match(/imported/g)?.length, 3, 'not rebuilt after a change');
        assert.notEqual(await hashOf(), first);
      } finally {
        await run('sh', ['-c', `${podmanCmd} rmi -a -f`], h.env).catch(() => undefined);
        fs.rmSync(root, { recursive: true, force: true });
      }
    });
  });
});
