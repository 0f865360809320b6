/**
 * Two hosts whose agents supervise real containers (busybox stand-ins that
 * only prove the agent drives Podman, not that wesher or k3s work): each
 * member's container health crosses the network in its gossiped record and
 * shows in the other host's status.
 *
 * Each host has its own Podman (host-podman.ts), whose service runs in the
 * host's namespace. Beta's k3s image is the stand-in that exits at once with
 * code 3, so the two hosts' health differs: alpha running/running, beta's k3s
 * in crashloop.
 */
import { strict as assert } from 'assert';
import { waitFor } from '../helpers/agent-cluster';
import { execFileSync } from 'child_process';
import { mkdtempSync, rmSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { STAND_INS } from '../podman/harness';
import { HostPodman } from './host-podman';
import type { MemberStatus, StatusDoc } from '../../shared/status';
import { everyone, timed, useNetns, type NetnsCluster } from './cluster';

const ULIMITS = { nofile: { soft: 1024, hard: 1024 }, nproc: { soft: 1024, hard: 1024 } };

function member(s: StatusDoc, name: string): MemberStatus | undefined {
  return s.members.find((m) => m.name === name);
}

function health(m: MemberStatus | undefined): { wesher?: string; k3s?: string } {
  return (m?.containers ?? {}) as { wesher?: string; k3s?: string };
}

describe('netns + podman: container health is visible across hosts', function () {
  this.timeout(120000);
  const pods: HostPodman[] = [];
  let workDir = '';
  const env = useNetns(2, {
    setup: async (e) => {
      workDir = mkdtempSync(path.join(os.tmpdir(), 'hepto-netns-podman-'));
      for (const h of e.topo.hosts) pods.push(await HostPodman.start(h, path.join(workDir, `host-${h.index}`)));
    },
    afterAgents: async () => {
      for (const p of pods) await p.removeContainers();
    },
    teardown: async () => {
      for (const p of pods.splice(0)) await p.close();
      if (workDir) rmSync(workDir, { recursive: true, force: true });
    },
  });

  function podmanAgent(cluster: NetnsCluster, i: number, name: string, k3sImage: string, anchors: typeof env.topo.hosts) {
    return cluster.on(env.topo.hosts[i], name, {
      anchors,
      extra: { runtime: 'podman', podman_socket: pods[i].socket, images: { wesher: STAND_INS.wesher, k3s: k3sImage }, ulimits: ULIMITS },
    });
  }

  it("alpha's healthy containers and beta's crashing k3s are each seen from the other host", async () => {
    const { topo, cluster } = env;
    const alpha = podmanAgent(cluster, 0, 'alpha', STAND_INS.k3s, []);
    const beta = podmanAgent(cluster, 1, 'beta', STAND_INS.exits, [topo.hosts[0]]);
    await cluster.boot([alpha, beta]);
    await cluster.waitAllSee([alpha, beta], everyone([alpha, beta], 'alive'), 30000);

    // Beta, from its own host, sees alpha's wesher and k3s running.
    await timed("alpha's health seen from beta's host", () =>
      waitFor(
        'beta to see alpha wesher and k3s running',
        async () => {
          const h = health(member(await cluster.status(beta), 'alpha'));
          return h.wesher === 'running' && h.k3s === 'running';
        },
        60000,
      ),
    );
    // Alpha, from its host, sees beta's wesher running and its k3s in crashloop (the stand-in exits with 3),
    // exactly as beta reports its own container at the same moment.
    const seen = await timed("beta's crashlooping k3s seen from alpha's host", () =>
      waitFor(
        'alpha to see beta wesher running and k3s in crashloop, as beta itself does',
        async () => {
          const [sa, sb] = await Promise.all([cluster.status(alpha), cluster.status(beta)]);
          const h = health(member(sa, 'beta'));
          const own = sb.containers.find((c) => c.name === 'hepto-beta-k3s');
          return h.wesher === 'running' && h.k3s === 'crashloop' && own?.state === 'crashloop' ? { remote: h, own } : undefined;
        },
        60000,
      ),
    );
    console.log(
      `      [netns] alpha sees beta's containers as ${JSON.stringify(seen.remote)}; beta's own k3s: ${seen.own.state}, exit code ${seen.own.last_exit_code}, ${seen.own.restarts} restarts`,
    );
    assert.equal(seen.own.last_exit_code, 3, 'beta knows why: the stand-in exited with code 3');
    const sb = await cluster.statusCli(beta);
    assert.equal(sb.containers.find((c) => c.name === 'hepto-beta-wesher')?.state, 'running');
    assert.deepEqual(health(member(sb, 'alpha')), { wesher: 'running', k3s: 'running' }, 'beta still sees alpha healthy');
    const inspected = await pods[1].inspect('hepto-beta-k3s');
    assert.ok(inspected, "beta's Podman has beta's k3s container");
    assert.equal(inspected.State.ExitCode, 3, 'the stand-in really exited with 3');
    assert.equal(await pods[0].inspect('hepto-beta-k3s'), null, "alpha's Podman never ran beta's containers");
    const sa = await cluster.statusCli(alpha);
    assert.deepEqual(
      sa.containers
        .filter((c) => c.node === 'alpha')
        .map((c) => `${c.role}:${c.state}`)
        .sort(),
      ['k3s:running', 'wesher:running'],
      'alpha supervises only its own containers, both running',
    );
    assert.ok(!sa.containers.some((c) => c.node === 'beta'), "alpha never manages beta's containers");
    // wesher's "host" network is its host's own namespace (its Podman service runs there).
    const w = await pods[0].inspect('hepto-alpha-wesher');
    assert.ok(w && w.State.Pid > 0, 'alpha wesher has a process');
    assert.equal(
      execFileSync('ip', ['netns', 'identify', String(w.State.Pid)], { encoding: 'utf8' }).trim(),
      topo.hosts[0].ns,
      "alpha's wesher runs in alpha's host network namespace",
    );
  });
});
