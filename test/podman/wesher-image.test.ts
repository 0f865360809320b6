/**
 * The wesher image builder against a real Podman: a tiny static binary
 * (gcc -static, standing in for the wesher release binary, which cannot be
 * downloaded here) is built into an image through the compat /build
 * endpoint and run. Proves the image holds only /wesher and runs it as the
 * entrypoint; proves nothing about wesher itself.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'child_process';
import fs from 'fs';
import http from 'http';
import type { AddressInfo } from 'net';
import os from 'os';
import path from 'path';
import { HeptoError } from '../../shared/errors';
import { memoryLogger } from '../helpers/memory-logger';
import { PodmanClient } from '../../agent/runtime/podman-client';
import { tarArchive } from '../../agent/runtime/tar';
import { buildWesherImage, ensureWesherImage, sha256Hex, WESHER_SHA_LABEL } from '../../agent/runtime/wesher-image';
import { PodmanHarness } from './harness';

const REF = 'localhost/hepto/wesher:podman-test';
const REF_ENSURE = 'localhost/hepto/wesher:podman-test-ensure';
const REF_BAD = 'localhost/hepto/wesher:podman-test-bad';

const HELLO_C = `#include <stdio.h>
int main(int argc, char **argv) {
  printf("hepto test binary standing in for wesher (not wesher); args:");
  for (int i = 1; i < argc; i++) printf(" %s", argv[i]);
  printf("\\n");
  return 0;
}
`;

/** Files (not directories) in the image's layers, via `podman save` (docker-archive). */
async function imageFiles(h: PodmanHarness, ref: string, dir: string): Promise<Array<{ name: string; mode: string }>> {
  const archive = path.join(dir, 'img.tar');
  const out = path.join(dir, 'img');
  fs.rmSync(out, { recursive: true, force: true });
  fs.mkdirSync(out);
  await h.podman('save', '--format', 'docker-archive', '-o', archive, ref);
  execFileSync('tar', ['-xf', archive, '-C', out]);
  const manifest = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')) as Array<{ Layers: string[] }>;
  const files: Array<{ name: string; mode: string }> = [];
  for (const layer of manifest[0].Layers) {
    const listing = execFileSync('tar', ['-tvf', path.join(out, layer)], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean);
    for (const l of listing) {
      const mode = l.split(/\s+/)[0];
      const name = l.split(/\s+/).slice(5).join(' ');
      if (!mode.startsWith('d')) files.push({ name: name.replace(/^\.?\//, ''), mode });
    }
  }
  fs.rmSync(archive, { force: true });
  return files;
}

describe('podman: wesher image build (real Podman, static test binary)', function () {
  this.timeout(120_000);
  let h: PodmanHarness;
  let client: PodmanClient;
  let tmp: string;
  let binary: Buffer;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'hepto-wesher-image-'));
    fs.writeFileSync(path.join(tmp, 'hello.c'), HELLO_C);
    try {
      execFileSync('gcc', ['-static', '-Os', '-o', path.join(tmp, 'hello'), path.join(tmp, 'hello.c')], { stdio: 'pipe' });
    } catch (e) {
      throw new Error(`gcc -static failed (apt-get install -y gcc libc6-dev; test/run.sh does this): ${String((e as { stderr?: Buffer }).stderr ?? e)}`);
    }
    binary = fs.readFileSync(path.join(tmp, 'hello'));
    h = await PodmanHarness.start();
    client = new PodmanClient({ socketPath: h.socket });
    for (const r of [REF, REF_ENSURE, REF_BAD]) await h.podman('rmi', '-f', r).catch(() => undefined);
  });
  after(async () => {
    if (h) {
      for (const r of [REF, REF_ENSURE, REF_BAD]) await h.podman('rmi', '-f', r).catch(() => undefined);
      await h.close();
    }
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('builds an image holding only /wesher (0755) as entrypoint, labelled with its sha256, and runs it', async () => {
    const lines: string[] = [];
    const { sha256 } = await buildWesherImage(client, REF, binary, (l) => lines.push(l));
    assert.equal(sha256, sha256Hex(binary));
    assert.ok(lines.length > 0, 'build output reported');
    assert.ok(
      lines.some((l) => /COPY wesher \/wesher/.test(l)),
      lines.join('\n'),
    );

    const img = JSON.parse(await h.podman('image', 'inspect', REF))[0] as {
      Config: { Entrypoint: string[]; Cmd?: string[] | null; Labels: Record<string, string> };
    };
    assert.deepEqual(img.Config.Entrypoint, ['/wesher']);
    assert.ok(!img.Config.Cmd || img.Config.Cmd.length === 0, `no CMD: ${JSON.stringify(img.Config.Cmd)}`);
    assert.equal(img.Config.Labels[WESHER_SHA_LABEL], sha256);
    assert.equal((await client.imageLabels(REF))?.[WESHER_SHA_LABEL], sha256);

    const files = await imageFiles(h, REF, tmp);
    assert.deepEqual(
      files.map((f) => f.name),
      ['wesher'],
      JSON.stringify(files),
    );
    assert.match(files[0].mode, /^-rwxr-xr-x$/);

    const out = await h.podman('run', '--rm', '--network', 'none', REF, '--cluster-port', '7946');
    assert.equal(out.trim(), 'hepto test binary standing in for wesher (not wesher); args: --cluster-port 7946');
  });

  it('rebuilding the same binary under the same tag succeeds', async () => {
    await buildWesherImage(client, REF, binary);
    assert.ok(await client.imageExists(REF));
  });

  it('a build error in the stream rejects with IMAGE_BUILD_FAILED naming the image', async () => {
    const ctx = tarArchive([{ name: 'Dockerfile', data: Buffer.from('FROM scratch\nCOPY not-in-the-context /x\n') }]);
    const lines: string[] = [];
    await assert.rejects(
      client.build(ctx, { tag: REF_BAD }, (l) => lines.push(l)),
      (e: unknown) => {
        assert.ok(e instanceof HeptoError, String(e));
        assert.equal(e.code, 'IMAGE_BUILD_FAILED');
        assert.ok(e.message.includes(REF_BAD), e.message);
        assert.match(e.message, /not-in-the-context/);
        return true;
      },
    );
    assert.equal(await client.imageExists(REF_BAD), false);
  });

  it('a build context that is not a tar rejects with IMAGE_BUILD_FAILED', async () => {
    await assert.rejects(
      client.build(Buffer.from('this is not a tar archive'), { tag: REF_BAD }),
      (e: unknown) => e instanceof HeptoError && e.code === 'IMAGE_BUILD_FAILED' && e.message.includes(REF_BAD) && /could not be built: \S/.test(e.message),
    );
  });

  it('ensureWesherImage: downloads from a release server, verifies, builds once, then keeps the image', async () => {
    const sha = sha256Hex(binary);
    const served: string[] = [];
    const server = http.createServer((req, res) => {
      served.push(req.url ?? '');
      if (req.url === '/rel/wesher.sha256sums') res.end(`${sha}  wesher-amd64\n${'0'.repeat(64)}  wesher-arm64\n`);
      else if (req.url === '/rel/wesher-amd64') res.end(binary);
      else {
        res.statusCode = 404;
        res.end();
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/rel`;
      const { logger, lines } = memoryLogger('debug', 'plain');
      const first = await ensureWesherImage({ client, ref: REF_ENSURE, arch: 'amd64', baseUrl, pinnedSha256: null, logger, timeoutMs: 30_000 });
      assert.deepEqual(first, { built: true, sha256: sha });
      assert.deepEqual(served, ['/rel/wesher.sha256sums', '/rel/wesher-amd64']);
      assert.ok(
        lines.some((l) => l.includes('wesher image built')),
        lines.join('\n'),
      );
      const out = await h.podman('run', '--rm', '--network', 'none', REF_ENSURE);
      assert.match(out, /standing in for wesher/);

      const again = await ensureWesherImage({ client, ref: REF_ENSURE, arch: 'amd64', baseUrl, pinnedSha256: sha, timeoutMs: 30_000 });
      assert.deepEqual(again, { built: false, sha256: sha });
      assert.equal(served.length, 2, 'nothing downloaded for an image that is there and matches the pin');

      // A pin the image does not carry: rebuilt, and here refused (the server's binary does not match it).
      await assert.rejects(
        ensureWesherImage({ client, ref: REF_ENSURE, arch: 'amd64', baseUrl, pinnedSha256: 'f'.repeat(64), timeoutMs: 30_000 }),
        (e: unknown) => e instanceof HeptoError && e.code === 'WESHER_CHECKSUM_MISMATCH' && e.message.includes(`${baseUrl}/wesher.sha256sums`),
      );
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
