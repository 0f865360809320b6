/**
 * `hepto-agent kubeconfig` against the behavioural k3s stand-in on real
 * Podman (issue 15): the stand-in server writes its admin kubeconfig as k3s
 * does (docs/upstream.md K36-K38: /etc/rancher/k3s/k3s.yaml, mode 0600,
 * server https://127.0.0.1:6443 for an IPv4 service range), which the spec's
 * bind puts at <storage_base>/<node>/rancher-k3s/k3s.yaml. The real CLI,
 * spawned as an operator would run it, prints it on the master's machine;
 * elsewhere it prints one line naming the master and exits non-zero.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import fs from 'fs';
import path from 'path';
import { k3sKubeconfigFile } from '../../agent/runtime/specs';
import { view } from '../unit/runtime/fixtures';
import { AGENT_KEY, CLI, CLUSTER_KEY, OVERLAY_KEY } from '../unit/config/helpers';
import { STAND_INS, waitFor } from './harness';
import { podmanSuite } from './suite';

describe('podman: hepto-agent kubeconfig reads what the (stand-in) k3s server writes', function () {
  this.timeout(120_000);
  const t = podmanSuite();

  const cli = (config: Record<string, unknown>): { code: number | null; stdout: string; stderr: string } => {
    const file = path.join(t.storage, `${String(config.node)}.json`);
    fs.writeFileSync(file, JSON.stringify(config), { mode: 0o600 });
    const r = spawnSync(process.execPath, [CLI, 'kubeconfig', '--config', file], { encoding: 'utf8', timeout: 20_000 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  it('on the master: the kubeconfig, server https://127.0.0.1:6443 (reachable there), the file still 0600; elsewhere one line naming the master', async () => {
    const cfg = t.config('kcmaster', { agent_key: AGENT_KEY });
    const s = t.supervisor(cfg, { linkCheckMs: 500 });
    s.setCluster(view(['kcmaster', 'alive']));
    await s.start();
    const file = k3sKubeconfigFile(cfg, 'kcmaster');
    assert.equal(file, path.join(t.storage, 'kcmaster', 'rancher-k3s', 'k3s.yaml'));
    await waitFor(() => fs.existsSync(file), { what: `the stand-in server's ${file}`, timeoutMs: 40_000 });
    assert.equal(fs.statSync(file).mode & 0o777, 0o600, 'written 0600, as k3s does');
    const onDisk = fs.readFileSync(file, 'utf8');
    assert.match(onDisk, /^ {4}server: https:\/\/127\.0\.0\.1:6443$/m, "the stand-in's server line, as k3s writes it for an IPv4 service range");

    const master = {
      node: 'kcmaster',
      master: 'kcmaster',
      overlay_key: OVERLAY_KEY,
      cluster_key: CLUSTER_KEY,
      agent_key: AGENT_KEY,
      storage_base: t.storage,
      network_mode: 'host',
    };
    const r = cli(master);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.equal(r.stdout, onDisk, 'the kubeconfig as written (its server already the right one)');
    assert.match(r.stdout, /^kind: Config$/m);
    assert.match(r.stdout, /^ {4}server: https:\/\/127\.0\.0\.1:6443$/m);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600, 'still 0600 after the command');
    assert.deepEqual(
      fs.readdirSync(path.dirname(file)).filter((f) => /yaml/.test(f)),
      ['k3s.yaml'],
      'no copy made',
    );

    // That address works from this "machine" (the harness's network namespace, shared with
    // wesher in host mode, and so with k3s): the stand-in server's TLS listener answers there.
    await waitFor(
      () => spawnSync('nsenter', [`--net=/run/netns/${t.h.netns}`, 'bash', '-c', 'exec 3<>/dev/tcp/127.0.0.1/6443'], { timeout: 5_000 }).status === 0,
      { what: "a TCP connection to 127.0.0.1:6443 in the master machine's network namespace", timeoutMs: 15_000 },
    );

    const w = cli({ node: 'kcworker', master: 'kcmaster', overlay_key: OVERLAY_KEY, agent_key: AGENT_KEY, storage_base: t.storage });
    assert.equal(w.code, 1);
    assert.equal(w.stdout, '');
    assert.equal(
      w.stderr,
      'hepto-agent: the kubeconfig is on the master\'s machine: run "hepto-agent kubeconfig" on the machine that hosts node kcmaster (this one hosts kcworker)\n',
    );
  });

  it('the stand-in takes --write-kubeconfig and --write-kubeconfig-mode as k3s does (K36), the server line by service family (K37)', async () => {
    const name = 'hepto-kcflags';
    const runServer = async (...flags: string[]): Promise<void> => {
      await t.h.podman('rm', '-f', '-v', name).catch(() => undefined);
      await t.h.podman(
        'run',
        '-d',
        '--name',
        name,
        '--network',
        'none',
        '-e',
        `K3S_TOKEN=${CLUSTER_KEY}`,
        STAND_INS.k3s,
        'server',
        '--node-ip',
        '2001:db8::1',
        ...flags,
      );
    };
    const sh = (cmd: string): Promise<string> => t.h.podman('exec', name, 'sh', '-c', cmd).then((o) => o.trim());
    try {
      await runServer();
      await waitFor(() => sh('test -f /etc/rancher/k3s/k3s.yaml').then(() => true), { what: 'the default kubeconfig' });
      assert.equal(await sh('stat -c %a /etc/rancher/k3s/k3s.yaml'), '600');
      assert.match(
        await sh('cat /etc/rancher/k3s/k3s.yaml'),
        /^ {4}server: https:\/\/\[::1\]:6443$/m,
        'an IPv6 service range (the default for an IPv6 node IP): [::1]',
      );
      await runServer('--write-kubeconfig', '/var/lib/rancher/k3s/admin.yaml', '--write-kubeconfig-mode', '0640');
      await waitFor(() => sh('test -f /var/lib/rancher/k3s/admin.yaml').then(() => true), { what: 'the kubeconfig at --write-kubeconfig' });
      assert.equal(await sh('stat -c %a /var/lib/rancher/k3s/admin.yaml'), '640');
      assert.equal(await sh('readlink /etc/rancher/k3s/k3s.yaml'), '/var/lib/rancher/k3s/admin.yaml', 'k3s.yaml a symlink to it');
    } finally {
      await t.h.podman('rm', '-f', '-v', '-t', '0', name).catch(() => undefined);
    }
  });
});
