import assert from 'node:assert/strict';
import fs from 'fs';
import path from 'path';
import { planNetwork } from '../../../agent/runtime/network';
import { overlayIp } from '../../../agent/runtime/overlay-ip';
import { K3S_TOKEN_FILE, k3sDataDir, k3sSpec, nodeDir, wesherSpec, type ContainerSpec } from '../../../agent/runtime/specs';
import type { HeptoConfig, NodeConfig } from '../../../shared/config/types';
import { CLUSTER_KEY, OVERLAY_KEY, testConfig } from './fixtures';

const GOLDEN_DIR = path.resolve(__dirname, '../../../../test/unit/runtime/golden');

function golden(name: string, value: unknown): void {
  const file = path.join(GOLDEN_DIR, `${name}.json`);
  const text = JSON.stringify(value, null, 2) + '\n';
  if (process.env.UPDATE_GOLDEN === '1') fs.writeFileSync(file, text);
  assert.ok(fs.existsSync(file), `golden file ${file} missing; run with UPDATE_GOLDEN=1 once and review it`);
  assert.deepEqual(JSON.parse(text), JSON.parse(fs.readFileSync(file, 'utf8')), `spec differs from golden ${name}.json`);
}

const FACTS = { defaultIface: 'eth0', netavarkVersion: '1.5.0' };

const agentNode = (mode: NodeConfig['network_mode']): Partial<HeptoConfig> => ({
  node: 'worker1',
  master: 'master1',
  network_mode: mode,
  iface: 'eth0',
  ip: ['2001:db8::21/64', '192.0.2.21/24'],
  gw: ['2001:db8::ffff', '192.0.2.254'],
  anchors: ['[2001:db8::1]:7947', 'anchor.example.invalid'],
});

const masterNode = (mode: NodeConfig['network_mode']): Partial<HeptoConfig> => ({
  network_mode: mode,
  iface: 'eth0',
  ip: ['2001:db8::1/64'],
  gw: ['2001:db8::ffff'],
});

function topNode(c: HeptoConfig): NodeConfig {
  return { node: c.node, iface: c.iface, ip: c.ip, gw: c.gw, network_mode: c.network_mode };
}

/**
 * Both specs of the config's top-level node, built directly (desired.ts
 * decides join lists and bind addresses; its own tests cover that), so a
 * golden changes only when a spec does.
 */
function specsOf(config: HeptoConfig, join: string[], bindAddr: string | null): { w: ContainerSpec; k: ContainerSpec; network: unknown } {
  const node = topNode(config);
  const net = planNetwork(node, config.mtu, FACTS);
  const w = wesherSpec({ config, node, net, join, bindAddr });
  const k = k3sSpec({ config, node, overlayIp: overlayIp(node.node, config.overlay_net), masterOverlayIp: overlayIp(config.master, config.overlay_net) });
  return { w, k, network: net.network?.create ?? null };
}

const master = (mode: NodeConfig['network_mode'], over: Partial<HeptoConfig> = {}) => specsOf(testConfig({ ...masterNode(mode), ...over }), [], '2001:db8::1');
const agent = (mode: NodeConfig['network_mode'], over: Partial<HeptoConfig> = {}) =>
  specsOf(testConfig({ ...agentNode(mode), ...over }), ['2001:db8::1', '2001:db8::22'], '2001:db8::21');

const env = (s: ContainerSpec): string[] => s.create.Env ?? [];
const binds = (s: ContainerSpec): string[] => s.create.HostConfig?.Binds ?? [];

describe('runtime/specs (golden)', () => {
  const cases: Array<{ name: string; mode: NodeConfig['network_mode']; master: boolean }> = [
    { name: 'master-host', mode: 'host', master: true },
    { name: 'master-macvlan', mode: 'macvlan', master: true },
    { name: 'agent-host', mode: 'host', master: false },
    { name: 'agent-macvlan', mode: 'macvlan', master: false },
    { name: 'agent-ipvlan', mode: 'ipvlan', master: false },
  ];
  for (const c of cases) {
    it(`wesher and k3s, ${c.name}`, () => {
      const { w, k, network } = c.master ? master(c.mode) : agent(c.mode);
      golden(`wesher-${c.name}`, { create: w.create, network });
      golden(`k3s-${c.name}`, { create: k.create });
    });
  }
});

describe('runtime/specs', () => {
  it('never puts a key in argv or labels; wesher gets base64 of the overlay key bytes', () => {
    const { w, k } = agent('host');
    for (const s of [w, k]) {
      const visible = JSON.stringify({ cmd: s.create.Cmd, labels: s.create.Labels, host: s.create.HostConfig });
      assert.ok(!visible.includes(OVERLAY_KEY) && !visible.includes(CLUSTER_KEY));
      assert.ok(!visible.includes(Buffer.from(OVERLAY_KEY).toString('base64')));
    }
    const key = env(w)
      .find((e) => e.startsWith('WESHER_CLUSTER_KEY='))!
      .split('=')
      .slice(1)
      .join('=');
    assert.equal(Buffer.from(key, 'base64').length, 32);
    assert.equal(Buffer.from(key, 'base64').toString(), OVERLAY_KEY);
    // k3s reads its token from a 0600 file in its bound /etc/rancher/k3s, not from an env that podman inspect shows.
    assert.ok(!JSON.stringify(k.create).includes(CLUSTER_KEY), 'no token anywhere in the k3s create options');
    assert.deepEqual(k.create.Cmd!.slice(-2), ['--token-file', K3S_TOKEN_FILE]);
    assert.deepEqual(k.files, [{ path: '/srv/worker1/rancher-k3s/hepto-token', content: CLUSTER_KEY, live: true }]);
    const rekeyed = agent('host', { cluster_key: 'TESTONLYanotherKEY0123456789abcd' }).k;
    assert.notEqual(rekeyed.hash, k.hash, 'a new token recreates k3s');
    assert.equal(JSON.stringify(rekeyed.create.Labels).includes('TESTONLYanother'), false);
  });

  it('wesher gets only variables wesher v0.2.6 reads: no WESHER_MTU (it has no MTU option)', () => {
    const known = ['CLUSTER_KEY', 'JOIN', 'OVERLAY_NET', 'INTERFACE', 'BIND_ADDR', 'NO_ETC_HOSTS', 'LOG_LEVEL'].map((v) => `WESHER_${v}`);
    for (const { w } of [master('host'), agent('macvlan'), agent('host', { mtu: 9000 })]) {
      assert.ok(!env(w).some((e) => e.startsWith('WESHER_MTU')), env(w).join(' '));
      for (const e of env(w)) assert.ok(known.includes(e.split('=')[0]), `unknown wesher variable in ${e.split('=')[0]}`);
    }
  });

  it('WESHER_BIND_ADDR is exactly bindAddr, and absent when it is null whatever the node ip', () => {
    const config = testConfig(agentNode('host'));
    const node = topNode(config);
    const net = planNetwork(node, config.mtu, FACTS);
    const bound = wesherSpec({ config, node, net, join: [], bindAddr: '192.0.2.21' });
    assert.deepEqual(
      env(bound).filter((e) => e.startsWith('WESHER_BIND_ADDR=')),
      ['WESHER_BIND_ADDR=192.0.2.21'],
    );
    const free = wesherSpec({ config, node, net, join: [], bindAddr: null });
    assert.ok(!env(free).some((e) => e.startsWith('WESHER_BIND_ADDR')));
    assert.notEqual(bound.hash, free.hash);
  });

  it('the k3s server gets the pod and service ranges; agents do not (server-only flags)', () => {
    const over = { cluster_cidr: '172.30.0.0/16', service_cidr: '172.31.0.0/16' };
    const cmd = master('host', over).k.create.Cmd!;
    assert.equal(cmd[0], 'server');
    assert.equal(cmd[cmd.indexOf('--cluster-cidr') + 1], '172.30.0.0/16');
    assert.equal(cmd[cmd.indexOf('--service-cidr') + 1], '172.31.0.0/16');
    const agentCmd = agent('host', over).k.create.Cmd!;
    assert.equal(agentCmd[0], 'agent');
    for (const flag of ['--cluster-cidr', '--service-cidr']) assert.ok(!agentCmd.includes(flag), `${flag} given to k3s agent`);
    assert.ok(!agentCmd.includes('172.30.0.0/16') && !agentCmd.includes('172.31.0.0/16'));
  });

  it('changing a range changes the server spec hash (so the server is recreated)', () => {
    assert.notEqual(master('host').k.hash, master('host', { service_cidr: '172.31.0.0/16' }).k.hash);
  });

  it('binds every VOLUME of the rancher/k3s image to its own directory under the node dir', () => {
    // The VOLUMEs the rancher/k3s image declares: any left unbound becomes an anonymous volume.
    const imageVolumes = ['/var/lib/kubelet', '/var/lib/rancher/k3s', '/var/lib/cni', '/var/log'];
    for (const { k } of [master('host'), agent('macvlan')]) {
      const node = k.node;
      const byTarget = new Map(binds(k).map((b) => [b.split(':')[1], b.split(':')[0]]));
      for (const v of imageVolumes) {
        const source = byTarget.get(v);
        assert.ok(source, `image VOLUME ${v} is not bound`);
        assert.ok(source.startsWith(nodeDir(testConfig(), node) + '/'), source);
        assert.ok(k.dirs.includes(source), `${source} is not created before the container`);
      }
      assert.equal(new Set(byTarget.values()).size, byTarget.size, 'two binds share a host directory');
      assert.deepEqual(k.dirs, [...byTarget.values()]);
    }
    const { k } = master('host');
    assert.equal(new Map(binds(k).map((b) => [b.split(':')[1], b.split(':')[0]])).get('/var/lib/kubelet'), '/srv/master1/kubelet');
    assert.ok(binds(k).includes('/srv/master1/cni:/var/lib/cni:Z'));
    assert.ok(binds(k).includes('/srv/master1/k3s-log:/var/log:Z'));
  });

  it('k3sDataDir is the host side of /var/lib/rancher/k3s', () => {
    const config = testConfig();
    assert.ok(binds(master('host').k).includes(`${k3sDataDir(config, 'master1')}:/var/lib/rancher/k3s:Z`));
  });

  it('agent k3s points at the master overlay IP; IPv6 overlay is bracketed', () => {
    const cmd = agent('host', { overlay_net: '2001:db8:ff::/48' }).k.create.Cmd!;
    assert.equal(cmd[0], 'agent');
    assert.match(cmd[2], /^https:\/\/\[2001:db8:ff:[0-9a-f:]+\]:6443$/);
  });
});
