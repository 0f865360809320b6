/**
 * The default wesher image, as a new user gets it: no image is published, so
 * the supervisor downloads `wesher-<arch>` and `wesher.sha256sums` from
 * `wesher_download` (here a local HTTP server serving the static stand-in
 * built by stand-in-images.sh wesher-binary), checks the binary and builds
 * `localhost/hepto/wesher:v0.2.6` through the Podman API. A bad download is a
 * problem naming the URL, retried with backoff; nothing else stops.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'child_process';
import { createHash } from 'crypto';
import fs from 'fs';
import http from 'http';
import type { AddressInfo } from 'net';
import os from 'os';
import path from 'path';
import { DEFAULT_WESHER_IMAGE } from '../../shared/config/images';
import { releaseArch, WESHER_SHA_LABEL } from '../../agent/runtime/wesher-image';
import { view } from '../unit/runtime/fixtures';
import { PodmanHarness, STAND_INS, waitFor } from './harness';
import { podmanSuite } from './suite';

const SCRIPT = path.resolve(__dirname, '../../../test/fixtures/stand-in-images.sh');

describe('podman: the default wesher image is built from the release binary', function () {
  this.timeout(180_000);
  const t = podmanSuite({
    harness: async () => {
      const h = await PodmanHarness.start();
      await h.podman('rmi', '-f', DEFAULT_WESHER_IMAGE).catch(() => undefined);
      return h;
    },
    closeHarness: async (h) => {
      await h.podman('rmi', '-f', DEFAULT_WESHER_IMAGE).catch(() => undefined);
      await h.close();
    },
  });
  let dir: string;
  let server: http.Server;
  let base: string;
  let binary: Buffer;
  /** What the server answers for the binary: the real bytes, or corrupted ones. */
  let corrupt = true;
  const requests: string[] = [];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hepto-wesher-release-'));
    execFileSync('bash', [SCRIPT, 'wesher-binary', dir], { stdio: 'ignore' });
    binary = fs.readFileSync(path.join(dir, `wesher-${releaseArch()}`));
    server = http.createServer((req, res) => {
      requests.push(req.url ?? '');
      const file = path.join(dir, path.basename(req.url ?? ''));
      if (!fs.existsSync(file)) {
        res.writeHead(404).end();
        return;
      }
      const body = fs.readFileSync(file);
      if (corrupt && file.endsWith(`wesher-${releaseArch()}`)) body[body.length - 1] ^= 0xff;
      res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v0.2.6`;
  });
  after(async () => {
    if (server) await new Promise((r) => server.close(r));
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a checksum mismatch is a problem naming the URL and retried; once the binary is right, the image is built and wesher runs', async () => {
    const sha = createHash('sha256').update(binary).digest('hex');
    const cfg = t.config('pbuild', {
      images: { wesher: DEFAULT_WESHER_IMAGE, k3s: STAND_INS.k3s },
      wesher_download: base,
      // A plain-http mirror needs the hash pinned (config validation says so).
      wesher_sha256: sha,
    });
    const sup = t.supervisor(cfg, { backoff: { baseMs: 500, capMs: 2_000, resetAfterMs: 5_000 } });
    sup.setCluster(view(['pbuild', 'alive']));
    await sup.start();
    const problem = await waitFor(() => sup.status().problems.find((p) => p.includes(`${base}/wesher-${releaseArch()}`)), { what: 'a problem naming the URL' });
    assert.match(problem, /sha256|checksum/i);
    assert.equal(sup.status().containers.find((c) => c.role === 'wesher')!.state === 'running', false);
    await waitFor(() => requests.filter((u) => u.endsWith(`wesher-${releaseArch()}`)).length >= 2, { what: 'a retry' });

    corrupt = false;
    await waitFor(() => sup.status().containers.every((c) => c.state === 'running'), { what: 'wesher and k3s running on the built image', timeoutMs: 60_000 });
    const img = JSON.parse(await t.h.podman('image', 'inspect', DEFAULT_WESHER_IMAGE))[0];
    assert.equal(img.Labels?.[WESHER_SHA_LABEL] ?? img.Config?.Labels?.[WESHER_SHA_LABEL], sha);
    assert.deepEqual(img.Config.Entrypoint, ['/wesher']);
    assert.equal((await t.h.inspect('hepto-pbuild-wesher'))!.Config.Labels['io.hepto.role'], 'wesher');
    assert.ok(!sup.status().problems.some((p) => p.includes(base)), sup.status().problems.join('\n'));
    assert.ok(
      t.lines.some((l) => /wesher download progress/.test(l)),
      'download progress in the log',
    );
    assert.ok(t.lines.some((l) => /wesher image built/.test(l)));
  });
});
