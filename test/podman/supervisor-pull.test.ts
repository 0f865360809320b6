/**
 * The supervisor's pull path against a real registry (Debian's
 * docker-registry, mirrored for docker.io and ghcr.io through
 * registries.conf), as a new machine gets k3s: the default k3s reference is
 * pulled, with progress in the log; an operator's own wesher image that the
 * registry does not have is a problem naming it, and nothing else stops,
 * until the image is loaded by hand.
 */
import assert from 'node:assert/strict';
import { MIRRORED_K3S, startMirroredPodman, type MirroredPodman } from '../helpers/registry';
import { view } from '../unit/runtime/fixtures';
import { STAND_INS, waitFor } from './harness';
import { podmanSuite } from './suite';

describe('podman: the supervisor pulls through a real registry', function () {
  this.timeout(180_000);
  let m: MirroredPodman;
  const t = podmanSuite({
    harness: async () => (m = await startMirroredPodman()).harness,
    closeHarness: () => m.close(),
    perTest: true,
  });
  const config = (node: string, wesher: string) => t.config(node, { images: { wesher, k3s: MIRRORED_K3S } });

  it('the default k3s reference is pulled from the registry, progress logged, and runs', async () => {
    assert.equal(
      await m.harness.podman('image', 'exists', MIRRORED_K3S).then(
        () => 'present',
        () => 'absent',
      ),
      'absent',
      'not in the store before',
    );
    const sup = t.supervisor(config('ppull', STAND_INS.wesher));
    sup.setCluster(view(['ppull', 'alive']));
    await sup.start();
    await waitFor(() => sup.status().containers.every((c) => c.state === 'running'), { what: 'wesher and pulled k3s running', timeoutMs: 60_000 });
    assert.ok(t.lines.some((l) => /pulling image image=docker\.io\/rancher\/k3s:v1\.33\.5-k3s1/.test(l)));
    assert.ok(
      t.lines.some((l) => /pull progress image=docker\.io\/rancher\/k3s/.test(l)),
      'progress in the log',
    );
    assert.ok(t.lines.some((l) => /image pulled image=docker\.io\/rancher\/k3s/.test(l)));
    assert.ok((await m.registry.tags('rancher/k3s')).includes('v1.33.5-k3s1'));
  });

  it("an operator's wesher image the registry lacks: a problem naming it, retried, k3s waits", async () => {
    const own = 'ghcr.io/someone/wesher:mine';
    const sup = t.supervisor(config('pown', own), { backoff: { baseMs: 300, capMs: 1_000, resetAfterMs: 5_000 } });
    sup.setCluster(view(['pown', 'alive']));
    await sup.start();
    const problem = await waitFor(() => sup.status().problems.find((p) => p.includes(own) && /could not be pulled/.test(p)), {
      what: 'a problem naming the image',
    });
    assert.match(problem, /check the reference in config images/);
    await waitFor(() => t.lines.filter((l) => l.includes(`pulling image image=${own}`)).length >= 2, { what: 'the pull retried' });
    const k3s = sup.status().containers.find((c) => c.role === 'k3s')!;
    assert.equal(k3s.state, 'waiting');

    // The operator loads it by hand, as the hint says: wesher runs, and the problem goes with the failure it reported.
    await m.harness.podman('tag', STAND_INS.wesher, own);
    try {
      await waitFor(() => sup.status().containers.find((c) => c.role === 'wesher')?.state === 'running', { what: 'wesher running from the loaded image' });
      await waitFor(() => !sup.status().problems.some((p) => p.includes(own)), { what: 'the pull problem gone once the image is there' });
    } finally {
      await m.harness.podman('rmi', own).catch(() => undefined);
    }
  });
});
