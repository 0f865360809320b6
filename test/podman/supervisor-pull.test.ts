/**
 * The supervisor's pull path against a real registry (Debian's
 * docker-registry, mirrored for docker.io and ghcr.io through
 * registries.conf), as a new machine gets k3s: the default k3s reference is
 * pulled, with progress in the log; an operator's own wesher image that the
 * registry does not have is a problem naming it, and nothing else stops.
 */
import assert from 'node:assert/strict';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { systemClock } from '../../shared/clock';
import { memoryLogger } from '../../shared/log';
import { Supervisor } from '../../agent/runtime/supervisor';
import { MIRRORED_K3S, startMirroredPodman, type MirroredPodman } from '../helpers/registry';
import { testConfig, view } from '../unit/runtime/fixtures';
import { STAND_INS, waitFor } from './harness';

describe('podman: the supervisor pulls through a real registry', function () {
  this.timeout(180_000);
  let m: MirroredPodman;
  let storage: string;
  let sup: Supervisor | null = null;
  let lines: string[] = [];

  before(async () => {
    m = await startMirroredPodman();
    storage = fs.mkdtempSync(path.join(os.tmpdir(), 'hepto-pull-'));
  });
  after(async () => {
    await sup?.stop();
    if (m) await m.close();
    if (storage) fs.rmSync(storage, { recursive: true, force: true });
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') console.log(lines.slice(-40).join('\n'));
    await sup?.stop();
    sup = null;
    await m.harness.removeAll();
  });

  const config = (node: string, wesher: string) =>
    testConfig({ node, master: node, ip: [`${m.harness.hostAddress}/64`], gw: [], storage_base: storage, podman_socket: m.harness.socket, images: { wesher, k3s: MIRRORED_K3S } });

  it('the default k3s reference is pulled from the registry, progress logged, and runs', async () => {
    const mem = memoryLogger('debug', 'plain');
    lines = mem.lines;
    assert.equal((await m.harness.podman('image', 'exists', MIRRORED_K3S).then(() => 'present', () => 'absent')), 'absent', 'not in the store before');
    sup = new Supervisor({ config: config('ppull', STAND_INS.wesher), clock: systemClock, logger: mem.logger, cronSchedule: '' });
    sup.setCluster(view(['ppull', 'alive']));
    await sup.start();
    await waitFor(() => sup!.status().containers.every((c) => c.state === 'running'), { what: 'wesher and pulled k3s running', timeoutMs: 60_000 });
    assert.ok(lines.some((l) => /pulling image image=docker\.io\/rancher\/k3s:v1\.33\.5-k3s1/.test(l)));
    assert.ok(lines.some((l) => /pull progress image=docker\.io\/rancher\/k3s/.test(l)), 'progress in the log');
    assert.ok(lines.some((l) => /image pulled image=docker\.io\/rancher\/k3s/.test(l)));
    assert.ok((await m.registry.tags('rancher/k3s')).includes('v1.33.5-k3s1'));
  });

  it("an operator's wesher image the registry lacks: a problem naming it, retried, k3s waits", async () => {
    const mem = memoryLogger('debug', 'plain');
    lines = mem.lines;
    const own = 'ghcr.io/someone/wesher:mine';
    sup = new Supervisor({ config: config('pown', own), clock: systemClock, logger: mem.logger, cronSchedule: '', backoff: { baseMs: 300, capMs: 1_000, resetAfterMs: 5_000 } });
    sup.setCluster(view(['pown', 'alive']));
    await sup.start();
    const problem = await waitFor(() => sup!.status().problems.find((p) => p.includes(own) && /could not be pulled/.test(p)), { what: 'a problem naming the image' });
    assert.match(problem, /check the reference in config images/);
    await waitFor(() => lines.filter((l) => l.includes(`pulling image image=${own}`)).length >= 2, { what: 'the pull retried' });
    const k3s = sup.status().containers.find((c) => c.role === 'k3s')!;
    assert.equal(k3s.state, 'waiting');
  });
});
