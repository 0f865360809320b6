/**
 * Real pulls through PodmanClient from a real registry (Debian's
 * docker-registry on 127.0.0.1), which a registries.conf puts in place of
 * docker.io and ghcr.io. What is pulled is the k3s stand-in, pushed under
 * k3s's real reference: this proves the agent's pull path (progress,
 * failures), not that the image is k3s.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'crypto';
import { HeptoError } from '../../shared/errors';
import { DEFAULT_IMAGES } from '../../shared/config/images';
import { PodmanClient, type PullProgress } from '../../agent/runtime/podman-client';
import { tarArchive } from '../../agent/runtime/tar';
import { MIRRORED_K3S, startMirroredPodman, type MirroredPodman } from '../helpers/registry';
import { STAND_INS } from './harness';

describe('podman: real pulls from a local registry (docker-registry, stand-in images)', function () {
  this.timeout(120_000);
  let m: MirroredPodman;
  let client: PodmanClient;

  before(async () => {
    m = await startMirroredPodman();
    client = new PodmanClient({ socketPath: m.harness.socket });
  });
  after(async () => {
    if (m) await m.close();
  });

  it('the stand-in is published under the default k3s reference', async () => {
    assert.equal(MIRRORED_K3S, DEFAULT_IMAGES.k3s);
    assert.deepEqual(await m.registry.tags('rancher/k3s'), ['v1.33.5-k3s1']);
  });

  it('pulls docker.io/rancher/k3s:v1.33.5-k3s1 through the mirror, reporting progress', async () => {
    await m.forget();
    assert.equal(await client.imageExists(MIRRORED_K3S), false, 'not in the store before the pull');
    const events: PullProgress[] = [];
    const t0 = Date.now();
    await client.pull(MIRRORED_K3S, (p) => events.push(p));
    const took = Date.now() - t0;
    assert.ok(await client.imageExists(MIRRORED_K3S));
    assert.ok(events.length > 0, 'progress events');
    assert.ok(
      events.every((e) => typeof e.status === 'string' && e.status.length > 0),
      JSON.stringify(events),
    );
    // The pulled image is the stand-in we pushed (same config, so the same image id).
    const id = async (ref: string) => (await m.harness.podman('image', 'inspect', '--format', '{{.Id}}', ref)).trim();
    assert.equal(await id(MIRRORED_K3S), await id(STAND_INS.k3s));
    assert.ok(took < 60_000, `pull took ${took} ms`);
  });

  it('pulls an image whose layer is not in the store: the layer is downloaded from the registry', async () => {
    // A fresh one-layer image (random content), built, pushed, then removed locally.
    const local = 'localhost/hepto-registry-test/fresh:1';
    const ref = 'docker.io/hepto-test/fresh:1';
    const blob = randomBytes(512 * 1024);
    await client.build(
      tarArchive([
        { name: 'Dockerfile', data: Buffer.from('FROM scratch\nCOPY blob /blob\n') },
        { name: 'blob', data: blob },
      ]),
      { tag: local },
    );
    try {
      await m.registry.publish(m.harness, local, ref);
    } finally {
      await m.harness.podman('rmi', '-f', local);
    }
    try {
      const events: PullProgress[] = [];
      await client.pull(ref, (p) => events.push(p));
      assert.ok(await client.imageExists(ref));
      const layerEvents = events.filter((e) => e.id && !/already exists/i.test(e.status));
      assert.ok(layerEvents.length > 0, `a layer was fetched: ${JSON.stringify(events)}`);
      assert.ok(
        events.some((e) => /download complete|pull complete/i.test(e.status)),
        JSON.stringify(events),
      );
    } finally {
      await m.harness.podman('rmi', '-f', ref).catch(() => undefined);
    }
  });

  it('a second pull of a present image succeeds (no-op for the caller)', async () => {
    await client.pull(MIRRORED_K3S, () => undefined);
    assert.ok(await client.imageExists(MIRRORED_K3S));
  });

  it('pulls a ghcr.io reference through the same mirror', async () => {
    const ref = 'ghcr.io/hepto-test/standin-k3s:mirrored';
    await m.registry.publish(m.harness, STAND_INS.k3s, ref);
    try {
      await client.pull(ref, () => undefined);
      assert.ok(await client.imageExists(ref));
    } finally {
      await m.harness.podman('rmi', '-f', ref).catch(() => undefined);
    }
  });

  it('a missing tag fails with IMAGE_MISSING naming the image and the registry answer', async () => {
    const ref = 'docker.io/rancher/k3s:v0.0.0-no-such-tag';
    await assert.rejects(
      client.pull(ref, () => undefined),
      (e: unknown) => {
        assert.ok(e instanceof HeptoError, String(e));
        assert.equal(e.code, 'IMAGE_MISSING');
        assert.ok(e.message.includes(ref), e.message);
        assert.match(e.message, /manifest unknown|not found|no such/i);
        assert.ok(e.hint?.includes(ref), e.hint);
        return true;
      },
    );
    assert.equal(await client.imageExists(ref), false);
  });

  it('a missing repository fails the same way', async () => {
    const ref = 'ghcr.io/costela/wesher:v0.2.6';
    await assert.rejects(
      client.pull(ref, () => undefined),
      (e: unknown) => e instanceof HeptoError && e.code === 'IMAGE_MISSING' && e.message.includes(ref),
    );
  });

  it('an unreachable registry fails with IMAGE_MISSING naming the image', async () => {
    const ref = '127.0.0.1:1/nothing/here:v1';
    await assert.rejects(
      client.pull(ref, () => undefined),
      (e: unknown) => {
        assert.ok(e instanceof HeptoError, String(e));
        assert.equal(e.code, 'IMAGE_MISSING');
        assert.ok(e.message.includes(ref), e.message);
        return true;
      },
    );
  });
});
