/**
 * A wesher whose join list nobody answers: like the real one (docs/upstream.md
 * W10, W15), the stand-in keeps retrying and handles no membership event, so
 * it never writes its state file. The agent tells, then recreates it with a
 * fresh join list once the deadline passes.
 */
import assert from 'node:assert/strict';
import fs from 'fs';
import os from 'os';
import path from 'path';
import { systemClock } from '../../shared/clock';
import { memoryLogger } from '../../shared/log';
import { Supervisor } from '../../agent/runtime/supervisor';
import { testConfig, view } from '../unit/runtime/fixtures';
import { PodmanHarness, STAND_INS, waitFor } from './harness';

describe('podman: a wesher that never joins is recreated with a fresh join list', function () {
  this.timeout(120_000);
  let h: PodmanHarness;
  let storage: string;
  let sup: Supervisor | null = null;
  let lines: string[] = [];

  before(async () => {
    h = await PodmanHarness.start();
    storage = fs.mkdtempSync(path.join(os.tmpdir(), 'hepto-join-'));
  });
  after(async () => {
    await sup?.stop();
    if (h) await h.close();
    if (storage) fs.rmSync(storage, { recursive: true, force: true });
  });
  afterEach(function () {
    if (this.currentTest?.state === 'failed') console.log(lines.slice(-40).join('\n'));
  });

  it('says so before the deadline, recreates it after, and never for a wesher with nobody to join', async () => {
    const mem = memoryLogger('debug', 'plain');
    lines = mem.lines;
    const cfg = testConfig({
      node: 'pjoin',
      master: 'pjoin',
      ip: [`${h.hostAddress}/64`],
      gw: [],
      storage_base: storage,
      podman_socket: h.socket,
      images: { wesher: STAND_INS.wesher, k3s: STAND_INS.k3s },
    });
    sup = new Supervisor({ config: cfg, clock: systemClock, logger: mem.logger, cronSchedule: '', linkCheckMs: 500, joinDeadlineMs: 6_000 });
    // A live member that runs wesher at an address of the test network where nobody answers.
    sup.setCluster(view(['pjoin', 'alive'], ['pgone', 'alive', { node_ips: ['2001:db8:7e57::99'] }]));
    await sup.start();
    await waitFor(async () => (await h.inspect('hepto-pjoin-wesher'))?.State.Status === 'running', { what: 'wesher running' });
    const first = (await h.inspect('hepto-pjoin-wesher'))!;
    assert.ok(first.Config.Env.includes('WESHER_JOIN=2001:db8:7e57::99'));
    await waitFor(() => sup!.status().problems.some((p) => /hepto-pjoin-wesher has not joined the mesh for \d+ s \(join list 2001:db8:7e57::99\); it is restarted with a fresh list at 6 s/.test(p)), {
      what: 'status says wesher has not joined',
    });
    await waitFor(async () => {
      const w = await h.inspect('hepto-pjoin-wesher');
      return w && w.Id !== first.Id && w.State.Status === 'running';
    }, { what: 'wesher recreated', timeoutMs: 30_000 });
    assert.ok(lines.some((l) => /recreating container .*hepto-pjoin-wesher.*had not joined the mesh after \d+ s; restarted with a fresh join list/.test(l)), 'logged with the reason');
    assert.equal(fs.existsSync(path.join(storage, 'pjoin', 'wesher', 'state.json')), false, 'the stand-in, like wesher, wrote no state without a peer');

    // Nobody left to join: the wesher is left alone past the deadline, and nothing is said.
    sup.setCluster(view(['pjoin', 'alive']));
    const now = (await h.inspect('hepto-pjoin-wesher'))!;
    await new Promise((r) => setTimeout(r, 8_000));
    assert.equal((await h.inspect('hepto-pjoin-wesher'))!.Id, now.Id, 'not recreated');
    assert.ok(!sup.status().problems.some((p) => /has not joined/.test(p)), sup.status().problems.join('\n'));
  });
});
