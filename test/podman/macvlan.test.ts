/**
 * network_mode macvlan against real Podman/netavark: the agent creates the
 * node's network on a host interface (a veth pair made for the test, carrying
 * only 192.0.2.0/24 documentation addresses) and wesher gets the node's
 * address; k3s shares wesher's namespace and follows it when wesher restarts.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'child_process';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { systemClock } from '../../shared/clock';
import { memoryLogger } from '../helpers/memory-logger';
import { overlayIp, Supervisor } from '../../agent/runtime/supervisor';
import { testConfig, view } from '../unit/runtime/fixtures';
import { PodmanHarness, STAND_INS, waitFor } from './harness';

const PARENT = 'hpt-mv0';
const PEER = 'hpt-mv1';

describe('podman: macvlan network mode (real netavark)', function () {
  this.timeout(120_000);
  let h: PodmanHarness;
  let storage: string;
  let sup: Supervisor | null = null;
  let lines: string[] = [];

  before(async () => {
    h = await PodmanHarness.start();
  });
  before(() => {
    try {
      execFileSync('ip', ['-n', h.netns, 'link', 'del', PARENT], { stdio: 'ignore' });
    } catch {
      // not there: fine
    }
    execFileSync('ip', ['-n', h.netns, 'link', 'add', PARENT, 'type', 'veth', 'peer', 'name', PEER]);
    execFileSync('ip', ['-n', h.netns, 'link', 'set', PARENT, 'up']);
    execFileSync('ip', ['-n', h.netns, 'link', 'set', PEER, 'up']);
    storage = fs.mkdtempSync(path.join(os.tmpdir(), 'hepto-macvlan-'));
  });
  after(async () => {
    await sup?.stop();
    if (h) await h.close();
    try {
      execFileSync('ip', ['-n', h.netns, 'link', 'del', PARENT], { stdio: 'ignore' });
    } catch {
      // already gone
    }
    if (storage) fs.rmSync(storage, { recursive: true, force: true });
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(lines.slice(-30).join('\n'));
  });

  it('creates hepto-<node> on iface with the node address, gateway and MTU; k3s follows a restarted wesher', async () => {
    const mem = memoryLogger('debug', 'plain');
    lines = mem.lines;
    const cfg = testConfig({
      node: 'pmac',
      master: 'pmac',
      network_mode: 'macvlan',
      iface: PARENT,
      ip: ['192.0.2.51/24'],
      gw: ['192.0.2.254'],
      mtu: 1400,
      storage_base: storage,
      podman_socket: h.socket,
      images: { wesher: STAND_INS.wesher, k3s: STAND_INS.k3s },
    });
    sup = new Supervisor({ config: cfg, clock: systemClock, logger: mem.logger, cronSchedule: '' });
    sup.setCluster(view(['pmac', 'alive']));
    await sup.start();
    await waitFor(() => sup!.status().containers.every((c) => c.state === 'running'), { what: 'both running on macvlan' });

    const net = JSON.parse(await h.podman('network', 'inspect', 'hepto-pmac'))[0];
    assert.equal(net.driver, 'macvlan');
    assert.equal(net.network_interface, PARENT);
    assert.equal(net.subnets[0].subnet, '192.0.2.0/24');
    assert.equal(net.subnets[0].gateway, '192.0.2.254');
    assert.equal(String(net.options?.mtu), '1400');

    const addr = async () => h.podman('exec', 'hepto-pmac-k3s', 'ip', '-4', 'addr');
    assert.match(await addr(), /inet 192\.0\.2\.51\/24/);
    // The overlay link is made in wesher's own namespace (the macvlan one), not on the host.
    const overlay = `inet ${overlayIp('pmac', cfg.overlay_net)}/32`;
    assert.ok((await addr()).includes(overlay), 'wgoverlay with the overlay IP in the node namespace');
    await assert.rejects(h.ip('link', 'show', 'wgoverlay'), 'not in the host namespace');
    const k0 = (await h.inspect('hepto-pmac-k3s'))!;
    const w0 = (await h.inspect('hepto-pmac-wesher'))!;
    process.kill(w0.State.Pid, 'SIGKILL');
    await waitFor(
      async () => {
        const k = await h.inspect('hepto-pmac-k3s');
        return k && k.State.Status === 'running' && k.State.StartedAt !== k0.State.StartedAt;
      },
      { what: 'k3s restarted along with wesher' },
    );
    await waitFor(async () => /inet 192\.0\.2\.51\/24/.test(await addr()), { what: 'k3s sees the node address again' });
    await waitFor(async () => (await addr()).includes(overlay), { what: 'the overlay link made again in the new namespace' });
    assert.equal((await h.inspect('hepto-pmac-k3s'))!.Id, k0.Id, 'restarted, not recreated');
  });

  it('a node no longer configured: its containers go, then its network', async () => {
    await sup?.stop();
    const mem = memoryLogger('debug', 'plain');
    lines = mem.lines;
    const other = testConfig({
      node: 'pother',
      master: 'pother',
      ip: [`${h.hostAddress}/64`],
      gw: [],
      storage_base: storage,
      podman_socket: h.socket,
      images: { wesher: STAND_INS.wesher, k3s: STAND_INS.k3s },
    });
    sup = new Supervisor({ config: other, clock: systemClock, logger: mem.logger, cronSchedule: '' });
    sup.setCluster(view(['pother', 'alive']));
    await sup.start();
    await waitFor(async () => !(await h.inspect('hepto-pmac-wesher')) && !(await h.inspect('hepto-pmac-k3s')), { what: 'pmac containers removed' });
    await waitFor(async () => !(await h.podman('network', 'ls', '--format', '{{.Name}}')).split('\n').includes('hepto-pmac'), {
      what: 'hepto-pmac network removed',
    });
    assert.ok(lines.some((l) => /removing network .*hepto-pmac/.test(l)));
  });
});
