import assert from 'node:assert/strict';
import fs from 'fs';
import path from 'path';
import { computeDesired } from '../../../agent/runtime/desired';
import type { NodeConfig } from '../../../shared/config/types';
import { CLUSTER_KEY, OVERLAY_KEY, testConfig, view } from './fixtures';

const GOLDEN_DIR = path.resolve(__dirname, '../../../../test/unit/runtime/golden');

function golden(name: string, value: unknown): void {
  const file = path.join(GOLDEN_DIR, `${name}.json`);
  const text = JSON.stringify(value, null, 2) + '\n';
  if (process.env.UPDATE_GOLDEN === '1') fs.writeFileSync(file, text);
  assert.ok(fs.existsSync(file), `golden file ${file} missing; run with UPDATE_GOLDEN=1 once and review it`);
  assert.deepEqual(JSON.parse(text), JSON.parse(fs.readFileSync(file, 'utf8')), `spec differs from golden ${name}.json`);
}

const FACTS = { defaultIface: 'eth0', netavarkVersion: '1.5.0' };

const agentNode = (mode: NodeConfig['network_mode']) => ({
  node: 'worker1',
  master: 'master1',
  network_mode: mode,
  iface: 'eth0',
  ip: ['2001:db8::21/64', '192.0.2.21/24'],
  gw: ['2001:db8::ffff', '192.0.2.254'],
  anchors: ['[2001:db8::1]:7947', 'anchor.example.invalid'],
});

// The cluster as worker1 sees it: the master alive, one more node.
const clusterSeenByWorker = view(
  ['master1', 'alive', { role: 'master', node_ips: ['2001:db8::1'], created_at: 10 }],
  ['worker1', 'alive', { node_ips: ['2001:db8::21'], created_at: 20 }],
  ['worker2', 'alive', { node_ips: ['2001:db8::22', '192.0.2.22'], created_at: 30 }],
  ['gone', 'dead', { node_ips: ['2001:db8::99'], created_at: 40 }],
);

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
      const config = c.master
        ? testConfig({ network_mode: c.mode, iface: 'eth0', ip: ['2001:db8::1/64'], gw: ['2001:db8::ffff'] })
        : testConfig(agentNode(c.mode));
      const d = computeDesired(config, c.master ? view(['master1', 'alive', { created_at: 10 }]) : clusterSeenByWorker, FACTS);
      assert.deepEqual(d.problems, []);
      const [w, k] = d.containers;
      assert.ok(w.spec && k.spec);
      golden(`wesher-${c.name}`, { create: w.spec.create, network: d.networks[0]?.create ?? null });
      golden(`k3s-${c.name}`, { create: k.spec.create });
    });
  }

  it('never puts a key in argv or labels; wesher gets base64 of the overlay key bytes', () => {
    const d = computeDesired(testConfig(agentNode('host')), clusterSeenByWorker, FACTS);
    for (const c of d.containers) {
      const s = c.spec!;
      const visible = JSON.stringify({ cmd: s.create.Cmd, labels: s.create.Labels, host: s.create.HostConfig });
      assert.ok(!visible.includes(OVERLAY_KEY) && !visible.includes(CLUSTER_KEY));
      assert.ok(!visible.includes(Buffer.from(OVERLAY_KEY).toString('base64')));
    }
    const env = d.containers[0].spec!.create.Env!;
    const key = env.find((e) => e.startsWith('WESHER_CLUSTER_KEY='))!.split('=').slice(1).join('=');
    assert.equal(Buffer.from(key, 'base64').length, 32);
    assert.equal(Buffer.from(key, 'base64').toString(), OVERLAY_KEY);
    assert.ok(d.containers[1].spec!.create.Env!.includes(`K3S_TOKEN=${CLUSTER_KEY}`));
  });

  it('agent k3s points at the master overlay IP; IPv6 overlay is bracketed', () => {
    const d = computeDesired(testConfig({ ...agentNode('host'), overlay_net: '2001:db8:ff::/48' }), clusterSeenByWorker, FACTS);
    const cmd = d.containers[1].spec!.create.Cmd!;
    assert.equal(cmd[0], 'agent');
    assert.match(cmd[2], /^https:\/\/\[2001:db8:ff:[0-9a-f:]+\]:6443$/);
  });
});
