/**
 * `hepto-agent kubeconfig` (issue 15) on a fake k3s.yaml where the k3s
 * server's /etc/rancher/k3s lands on the host (docs/upstream.md K36-K38):
 * which node's file, the server address by network mode and service range,
 * the one line elsewhere, and the file left as it is (0600, never chmod-ed).
 */
import { strict as assert } from 'assert';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { kubeconfigServer, printKubeconfig, withServer } from '../../../agent/commands/kubeconfig';
import { k3sKubeconfigFile, k3sSpec, K3S_KUBECONFIG } from '../../../agent/runtime/specs';
import type { HeptoConfig } from '../../../shared/config/types';
import { testConfig } from './fixtures';

/** What k3s writes (clientcmd's layout; K37), with dummy data. */
const K3S_YAML = [
  'apiVersion: v1',
  'clusters:',
  '- cluster:',
  '    certificate-authority-data: Q0E=',
  '    server: https://127.0.0.1:6443',
  '  name: default',
  'contexts:',
  '- context:',
  '    cluster: default',
  '    user: default',
  '  name: default',
  'current-context: default',
  'kind: Config',
  'preferences: {}',
  'users:',
  '- name: default',
  '  user:',
  '    client-certificate-data: Q0VSVA==',
  '    client-key-data: S0VZ',
  '',
].join('\n');

describe('hepto-agent kubeconfig', () => {
  let storage = '';
  beforeEach(() => (storage = fs.mkdtempSync(path.join(os.tmpdir(), 'hepto-kc-'))));
  afterEach(() => fs.rmSync(storage, { recursive: true, force: true }));

  const run = async (config: HeptoConfig): Promise<{ code: number; out: string[]; err: string[] }> => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await printKubeconfig(config, { stdout: (t) => out.push(t), stderr: (l) => err.push(l) });
    return { code, out, err };
  };
  const place = (config: HeptoConfig, node: string, text = K3S_YAML, mode = 0o600): string => {
    const file = k3sKubeconfigFile(config, node);
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    fs.writeFileSync(file, text, { mode });
    fs.chmodSync(file, mode);
    return file;
  };

  it("reads the file the k3s spec's /etc/rancher/k3s bind puts at <storage_base>/<node>/rancher-k3s/k3s.yaml", () => {
    const config = testConfig({ storage_base: storage });
    assert.equal(k3sKubeconfigFile(config, 'master1'), path.join(storage, 'master1', 'rancher-k3s', 'k3s.yaml'));
    const spec = k3sSpec({ config, node: config, overlayIp: '10.1.2.3', masterOverlayIp: null });
    assert.ok(spec.create.HostConfig?.Binds?.includes(`${path.join(storage, 'master1', 'rancher-k3s')}:${path.dirname(K3S_KUBECONFIG)}:Z`));
    const cmd = spec.create.Cmd as string[];
    assert.ok(
      !cmd.some((a) => a.startsWith('--write-kubeconfig') || a === '-o' || a === '--bind-address'),
      "k3s's defaults hold: path, mode 0600, loopback server (K36, K37)",
    );
  });

  it('on the master (host mode): prints the kubeconfig, server on the loopback of the service range; the file stays 0600', async () => {
    const config = testConfig({ storage_base: storage, network_mode: 'host', service_cidr: '172.29.0.0/16' });
    const file = place(config, 'master1');
    const r = await run(config);
    assert.equal(r.code, 0);
    assert.deepEqual(r.err, []);
    assert.equal(r.out.join('\n') + '\n', K3S_YAML);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  });

  it('an IPv6 service range: [::1] (what k3s writes then; K37); another URL in the file is set to it', async () => {
    const config = testConfig({ storage_base: storage, service_cidr: 'fd42:4865:7074:7000::/112' });
    place(config, 'master1', K3S_YAML.replace('https://127.0.0.1:6443', 'https://10.9.9.9:6443'));
    const r = await run(config);
    assert.equal(r.code, 0);
    assert.match(r.out[0], /^ {4}server: https:\/\/\[::1\]:6443$/m);
    assert.doesNotMatch(r.out[0], /10\.9\.9\.9/);
    assert.equal(kubeconfigServer({ service_cidr: '172.29.0.0/16,fd00::/112' }), 'https://127.0.0.1:6443', 'dual stack: the first range');
  });

  it('the master as another hosted node (nodes[]): its own node directory', async () => {
    const config = testConfig({
      storage_base: storage,
      node: 'front',
      master: 'back',
      nodes: [{ node: 'back', iface: null, ip: [], gw: [], network_mode: 'host' }],
    });
    place(config, 'back');
    const r = await run(config);
    assert.equal(r.code, 0, r.err.join('\n'));
    assert.match(r.out[0], /server: https:\/\/127\.0\.0\.1:6443/);
  });

  it('not the master: one line naming the master, exit 1, nothing on stdout', async () => {
    const config = testConfig({ storage_base: storage, node: 'venus', master: 'mercury' });
    const r = await run(config);
    assert.equal(r.code, 1);
    assert.deepEqual(r.out, []);
    assert.equal(r.err.length, 1);
    assert.equal(
      r.err[0],
      'hepto-agent: the kubeconfig is on the master\'s machine: run "hepto-agent kubeconfig" on the machine that hosts node mercury (this one hosts venus)',
    );
  });

  it('macvlan/ipvlan: one line on why no address works from this machine, and what does', async () => {
    for (const mode of ['macvlan', 'ipvlan'] as const) {
      const config = testConfig({ storage_base: storage, network_mode: mode });
      place(config, 'master1');
      const r = await run(config);
      assert.equal(r.code, 1);
      assert.deepEqual(r.out, [], 'no secret printed that would not work here');
      assert.equal(r.err.length, 1);
      assert.match(
        r.err[0],
        new RegExp(`node master1 uses network_mode ${mode}: this machine cannot reach its own k3s .*podman exec -it hepto-master1-k3s kubectl get nodes$`),
      );
    }
  });

  it('no file yet, no server line: one line each; a wider mode is reported, never changed', async () => {
    const config = testConfig({ storage_base: storage });
    let r = await run(config);
    assert.equal(r.code, 1);
    assert.match(r.err[0], /no kubeconfig at .*rancher-k3s\/k3s\.yaml yet: the k3s server of node master1 writes it when it starts/);
    const file = place(config, 'master1', 'apiVersion: v1\n');
    r = await run(config);
    assert.equal(r.code, 1);
    assert.match(r.err[0], /has no server line/);
    place(config, 'master1', K3S_YAML, 0o644);
    r = await run(config);
    assert.equal(r.code, 0);
    assert.match(r.err[0], /warning: .*k3s\.yaml is mode 0644, readable by others than root \(k3s writes it 0600\): chmod 600 /);
    assert.equal(fs.statSync(file).mode & 0o777, 0o644, 'left as it is');
  });

  it('withServer: every server line, indentation kept; null when none', () => {
    assert.equal(withServer('a:\n    server: https://x:1\n  server:   y  \n', 'https://z'), 'a:\n    server: https://z\n  server:   https://z\n');
    assert.equal(withServer('kind: Config\n', 'https://z'), null);
  });
});
