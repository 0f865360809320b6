/**
 * A wesher whose join list nobody answers: like the real one (docs/upstream.md
 * W10, W15), the stand-in keeps retrying and handles no membership event, so
 * it never writes its state file. The agent tells, then recreates it with a
 * fresh join list once the deadline passes.
 */
import assert from 'node:assert/strict';
import fs from 'fs';
import path from 'path';
import { view } from '../unit/runtime/fixtures';
import { waitFor } from './harness';
import { podmanSuite } from './suite';

describe('podman: a wesher that never joins is recreated with a fresh join list', function () {
  this.timeout(120_000);
  const t = podmanSuite();

  it('says so before the deadline, recreates it after, and never for a wesher with nobody to join', async () => {
    const sup = t.supervisor(t.config('pjoin'), { linkCheckMs: 500, joinDeadlineMs: 6_000 });
    // A live member that runs wesher at an address of the test network where nobody answers.
    sup.setCluster(view(['pjoin', 'alive'], ['pgone', 'alive', { node_ips: ['2001:db8:7e57::99'] }]));
    await sup.start();
    await waitFor(async () => (await t.h.inspect('hepto-pjoin-wesher'))?.State.Status === 'running', { what: 'wesher running' });
    const first = (await t.h.inspect('hepto-pjoin-wesher'))!;
    assert.ok(first.Config.Env.includes('WESHER_JOIN=2001:db8:7e57::99'));
    await waitFor(
      () =>
        sup
          .status()
          .problems.some((p) =>
            /hepto-pjoin-wesher has not joined the mesh for \d+ s \(join list 2001:db8:7e57::99\); it is restarted with a fresh list at 6 s/.test(p),
          ),
      {
        what: 'status says wesher has not joined',
      },
    );
    await waitFor(
      async () => {
        const w = await t.h.inspect('hepto-pjoin-wesher');
        return w && w.Id !== first.Id && w.State.Status === 'running';
      },
      { what: 'wesher recreated', timeoutMs: 30_000 },
    );
    assert.ok(
      t.lines.some((l) => /recreating container .*hepto-pjoin-wesher.*had not joined the mesh after \d+ s; restarted with a fresh join list/.test(l)),
      'logged with the reason',
    );
    assert.equal(fs.existsSync(path.join(t.storage, 'pjoin', 'wesher', 'state.json')), false, 'the stand-in, like wesher, wrote no state without a peer');

    // Nobody left to join: the wesher is left alone past the deadline, and nothing is said.
    sup.setCluster(view(['pjoin', 'alive']));
    const now = (await t.h.inspect('hepto-pjoin-wesher'))!;
    await new Promise((r) => setTimeout(r, 8_000));
    assert.equal((await t.h.inspect('hepto-pjoin-wesher'))!.Id, now.Id, 'not recreated');
    assert.ok(!sup.status().problems.some((p) => /has not joined/.test(p)), sup.status().problems.join('\n'));
  });
});
