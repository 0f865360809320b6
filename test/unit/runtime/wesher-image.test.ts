/**
 * The wesher release download and image build context, against a real HTTP
 * server on 127.0.0.1 serving a fake binary and sums file (no internet here).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'child_process';
import { createHash } from 'crypto';
import fs from 'fs';
import http from 'http';
import type { AddressInfo } from 'net';
import os from 'os';
import path from 'path';
import { HeptoError } from '../../../shared/errors';
import { httpGet } from '../../../agent/runtime/download';
import { tarArchive } from '../../../agent/runtime/tar';
import { fetchWesherRelease, parseSha256Sums, releaseArch, WESHER_SHA_LABEL, wesherBuildContext, wesherDockerfile } from '../../../agent/runtime/wesher-image';

const BINARY = Buffer.concat([Buffer.from('\x7fELF fake wesher for tests, not the real one\n'), Buffer.alloc(70_000, 7)]);
const SHA = createHash('sha256').update(BINARY).digest('hex');
const OTHER = 'ab'.repeat(32);

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

describe('runtime: wesher release download (local HTTP server)', function () {
  this.timeout(5_000);
  let server: http.Server;
  let base: string;
  let routes: Record<string, Handler> = {};
  const hits: string[] = [];

  const send =
    (body: string | Buffer, opts: { chunked?: boolean } = {}): Handler =>
    (_req, res) => {
      if (opts.chunked) {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        const b = Buffer.from(body);
        res.write(b.subarray(0, b.length >> 1));
        res.end(b.subarray(b.length >> 1));
      } else {
        res.writeHead(200, { 'content-length': Buffer.byteLength(body) });
        res.end(body);
      }
    };
  const sums = (lines: string[]): Handler => send(lines.join('\n') + '\n');
  const release = (sumsLines: string[] = [`${OTHER}  wesher-arm64`, `${SHA}  wesher-amd64`, `${OTHER}  wesher-arm`]): void => {
    routes['/rel/wesher.sha256sums'] = sums(sumsLines);
    routes['/rel/wesher-amd64'] = send(BINARY);
  };

  before(async () => {
    server = http.createServer((req, res) => {
      hits.push(req.url ?? '');
      const h = routes[req.url ?? ''];
      if (h) h(req, res);
      else {
        res.writeHead(404, { 'content-length': 9 });
        res.end('not found');
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  beforeEach(() => {
    routes = {};
    hits.length = 0;
  });
  afterEach(() => server.closeAllConnections());

  async function rejects(p: Promise<unknown>, code: string): Promise<HeptoError> {
    try {
      await p;
    } catch (e) {
      assert.ok(e instanceof HeptoError, `expected a HeptoError, got ${String(e)}`);
      assert.equal(e.code, code, e.message);
      assert.ok(e.hint && e.hint.length > 0, 'has a hint');
      return e;
    }
    assert.fail(`expected ${code}`);
  }

  it('good path: downloads sums then binary, verifies, reports progress', async () => {
    release();
    const progress: Array<[number, number | null]> = [];
    const r = await fetchWesherRelease({ baseUrl: `${base}/rel/`, arch: 'amd64', pinnedSha256: null, onProgress: (b, t) => progress.push([b, t]) });
    assert.equal(r.sha256, SHA);
    assert.ok(r.binary.equals(BINARY));
    assert.equal(r.url, `${base}/rel/wesher-amd64`);
    assert.deepEqual(hits, ['/rel/wesher.sha256sums', '/rel/wesher-amd64']);
    assert.ok(progress.length >= 1);
    assert.deepEqual(progress[progress.length - 1], [BINARY.length, BINARY.length]);
  });

  it('accepts binary-mode (*name) and path-prefixed sums lines, and a matching pin', async () => {
    release([`${SHA} *./dist/wesher-amd64`]);
    const r = await fetchWesherRelease({ baseUrl: `${base}/rel`, arch: 'amd64', pinnedSha256: SHA.toUpperCase() });
    assert.equal(r.sha256, SHA);
  });

  it('follows redirects (absolute and relative), as GitHub release downloads need', async () => {
    release();
    routes['/gh/wesher.sha256sums'] = (_q, res) => {
      res.writeHead(302, { location: `${base}/hop/sums` });
      res.end();
    };
    routes['/hop/sums'] = (_q, res) => {
      res.writeHead(301, { location: '/rel/wesher.sha256sums' });
      res.end();
    };
    routes['/gh/wesher-amd64'] = (_q, res) => {
      res.writeHead(307, { location: '../rel/wesher-amd64' });
      res.end();
    };
    const r = await fetchWesherRelease({ baseUrl: `${base}/gh`, arch: 'amd64', pinnedSha256: null });
    assert.equal(r.sha256, SHA);
    assert.deepEqual(hits, ['/gh/wesher.sha256sums', '/hop/sums', '/rel/wesher.sha256sums', '/gh/wesher-amd64', '/rel/wesher-amd64']);
  });

  it('a redirect loop fails naming the URL', async () => {
    routes['/loop/wesher.sha256sums'] = (_q, res) => {
      res.writeHead(302, { location: '/loop/wesher.sha256sums' });
      res.end();
    };
    const e = await rejects(fetchWesherRelease({ baseUrl: `${base}/loop`, arch: 'amd64', pinnedSha256: null }), 'WESHER_DOWNLOAD_FAILED');
    assert.match(e.message, new RegExp(`${base}/loop/wesher.sha256sums.*redirects`));
  });

  it('checksum mismatch: names the binary URL, the sums URL and both hashes', async () => {
    release([`${OTHER}  wesher-amd64`]);
    const e = await rejects(fetchWesherRelease({ baseUrl: `${base}/rel`, arch: 'amd64', pinnedSha256: null }), 'WESHER_CHECKSUM_MISMATCH');
    assert.ok(e.message.includes(`${base}/rel/wesher-amd64`), e.message);
    assert.ok(e.message.includes(`${base}/rel/wesher.sha256sums`), e.message);
    assert.ok(e.message.includes(SHA) && e.message.includes(OTHER), e.message);
    assert.match(e.hint!, /wesher_download/);
    assert.match(e.hint!, /images\.wesher/);
  });

  it('sums file without a line for this arch (no pin): refused before the binary is fetched', async () => {
    release([`${SHA}  wesher-arm64`]);
    const e = await rejects(fetchWesherRelease({ baseUrl: `${base}/rel`, arch: 'amd64', pinnedSha256: null }), 'WESHER_CHECKSUM_MISMATCH');
    assert.ok(e.message.includes(`${base}/rel/wesher.sha256sums has no line for wesher-amd64`), e.message);
    assert.deepEqual(hits, ['/rel/wesher.sha256sums']);
  });

  it('sums file listing two different hashes for the file: refused', async () => {
    release([`${SHA}  wesher-amd64`, `${OTHER}  wesher-amd64`]);
    const e = await rejects(fetchWesherRelease({ baseUrl: `${base}/rel`, arch: 'amd64', pinnedSha256: null }), 'WESHER_CHECKSUM_MISMATCH');
    assert.match(e.message, /two different/);
  });

  it('a pin alone is enough when the sums file has no line for the binary', async () => {
    release([`${OTHER}  wesher-arm64`]);
    const r = await fetchWesherRelease({ baseUrl: `${base}/rel`, arch: 'amd64', pinnedSha256: SHA });
    assert.equal(r.sha256, SHA);
  });

  it('pinned hash mismatch: the binary differs from the pin', async () => {
    release([`${OTHER}  wesher-arm`]);
    const e = await rejects(fetchWesherRelease({ baseUrl: `${base}/rel`, arch: 'amd64', pinnedSha256: OTHER }), 'WESHER_CHECKSUM_MISMATCH');
    assert.ok(e.message.includes(`${base}/rel/wesher-amd64 has sha256 ${SHA}`), e.message);
    assert.ok(e.message.includes(`pinned hash (wesher_sha256) says ${OTHER}`), e.message);
  });

  it('pin and sums file disagree: refused naming both sources, before the binary is fetched', async () => {
    release();
    const e = await rejects(fetchWesherRelease({ baseUrl: `${base}/rel`, arch: 'amd64', pinnedSha256: OTHER }), 'WESHER_CHECKSUM_MISMATCH');
    assert.ok(e.message.includes(`${base}/rel/wesher.sha256sums lists sha256 ${SHA}`), e.message);
    assert.ok(e.message.includes(`pinned hash (wesher_sha256) is ${OTHER}`), e.message);
    assert.deepEqual(hits, ['/rel/wesher.sha256sums']);
  });

  it('a malformed pin is a config error', async () => {
    release();
    await rejects(fetchWesherRelease({ baseUrl: `${base}/rel`, arch: 'amd64', pinnedSha256: 'abc' }), 'CONFIG_INVALID');
    assert.deepEqual(hits, []);
  });

  it('404 on the sums file or the binary: names the URL and the status', async () => {
    let e = await rejects(fetchWesherRelease({ baseUrl: `${base}/nothing`, arch: 'amd64', pinnedSha256: null }), 'WESHER_DOWNLOAD_FAILED');
    assert.ok(e.message.includes(`${base}/nothing/wesher.sha256sums`), e.message);
    assert.match(e.message, /HTTP 404/);
    assert.match(e.hint!, /wesher_download/);
    release();
    delete routes['/rel/wesher-amd64'];
    e = await rejects(fetchWesherRelease({ baseUrl: `${base}/rel`, arch: 'amd64', pinnedSha256: null }), 'WESHER_DOWNLOAD_FAILED');
    assert.ok(e.message.includes(`${base}/rel/wesher-amd64`), e.message);
    assert.match(e.message, /HTTP 404/);
  });

  it('oversize binary: refused from Content-Length, and while streaming without one', async () => {
    release();
    let e = await rejects(fetchWesherRelease({ baseUrl: `${base}/rel`, arch: 'amd64', pinnedSha256: null, maxBytes: 1000 }), 'WESHER_DOWNLOAD_FAILED');
    assert.ok(e.message.includes(`${base}/rel/wesher-amd64`), e.message);
    assert.match(e.message, /1000-byte limit/);
    routes['/rel/wesher-amd64'] = send(BINARY, { chunked: true });
    e = await rejects(fetchWesherRelease({ baseUrl: `${base}/rel`, arch: 'amd64', pinnedSha256: null, maxBytes: 1000 }), 'WESHER_DOWNLOAD_FAILED');
    assert.match(e.message, /1000-byte limit/);
  });

  it('oversize sums file (over 64 KiB): refused', async () => {
    routes['/big/wesher.sha256sums'] = send(Buffer.alloc(65 * 1024, 0x41), { chunked: true });
    const e = await rejects(fetchWesherRelease({ baseUrl: `${base}/big`, arch: 'amd64', pinnedSha256: null }), 'WESHER_DOWNLOAD_FAILED');
    assert.ok(e.message.includes(`${base}/big/wesher.sha256sums`), e.message);
    assert.match(e.message, /65536-byte limit/);
  });

  it('timeout: a server that stalls mid-body fails within the total timeout, naming the URL', async () => {
    release();
    routes['/rel/wesher-amd64'] = (_q, res) => {
      res.writeHead(200, { 'content-length': BINARY.length });
      res.write(BINARY.subarray(0, 100)); // then nothing
    };
    const t0 = Date.now();
    const e = await rejects(fetchWesherRelease({ baseUrl: `${base}/rel`, arch: 'amd64', pinnedSha256: null, timeoutMs: 300 }), 'WESHER_DOWNLOAD_FAILED');
    const took = Date.now() - t0;
    assert.ok(took >= 250 && took < 2_000, `took ${took} ms`);
    assert.ok(e.message.includes(`${base}/rel/wesher-amd64`), e.message);
    assert.match(e.message, /not finished within 300 ms/);
  });

  it('timeout: a server that never answers the sums request', async () => {
    routes['/hang/wesher.sha256sums'] = () => undefined;
    const e = await rejects(fetchWesherRelease({ baseUrl: `${base}/hang`, arch: 'amd64', pinnedSha256: null, timeoutMs: 200 }), 'WESHER_DOWNLOAD_FAILED');
    assert.ok(e.message.includes(`${base}/hang/wesher.sha256sums`), e.message);
  });

  it('connection refused: names the URL', async () => {
    const s = http.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    const e = await rejects(fetchWesherRelease({ baseUrl: `http://127.0.0.1:${port}/x`, arch: 'amd64', pinnedSha256: null }), 'WESHER_DOWNLOAD_FAILED');
    assert.ok(e.message.includes(`http://127.0.0.1:${port}/x/wesher.sha256sums`), e.message);
    assert.match(e.message, /ECONNREFUSED/);
  });

  it('a body cut short of its Content-Length is an error, not a short binary', async () => {
    release();
    routes['/rel/wesher-amd64'] = (req, res) => {
      res.writeHead(200, { 'content-length': BINARY.length });
      res.write(BINARY.subarray(0, 100), () => req.socket.destroy());
    };
    const e = await rejects(fetchWesherRelease({ baseUrl: `${base}/rel`, arch: 'amd64', pinnedSha256: null }), 'WESHER_DOWNLOAD_FAILED');
    assert.ok(e.message.includes(`${base}/rel/wesher-amd64`), e.message);
  });

  it('an injected getter is used instead of HTTP', async () => {
    const asked: string[] = [];
    const r = await fetchWesherRelease({
      baseUrl: 'https://mirror.invalid/w',
      arch: 'arm64',
      pinnedSha256: null,
      fetch: async (url) => {
        asked.push(url);
        return url.endsWith('sums') ? Buffer.from(`${SHA}  wesher-arm64\n`) : BINARY;
      },
    });
    assert.equal(r.sha256, SHA);
    assert.deepEqual(asked, ['https://mirror.invalid/w/wesher.sha256sums', 'https://mirror.invalid/w/wesher-arm64']);
  });

  it('httpGet refuses schemes other than http and https', async () => {
    await assert.rejects(httpGet('file:///etc/passwd', { maxBytes: 10, deadline: Date.now() + 1000 }), /unsupported scheme file:/);
  });
});

describe('runtime: wesher image pieces', () => {
  it('releaseArch maps Node architectures to release names and names an unsupported one', () => {
    assert.equal(releaseArch('x64'), 'amd64');
    assert.equal(releaseArch('arm64'), 'arm64');
    assert.equal(releaseArch('arm'), 'arm');
    assert.match(releaseArch(), /^(amd64|arm64|arm)$/);
    assert.throws(
      () => releaseArch('riscv64'),
      (e: unknown) => e instanceof HeptoError && e.code === 'WESHER_DOWNLOAD_FAILED' && /riscv64/.test(e.message) && /images\.wesher/.test(e.hint ?? ''),
    );
  });

  it('parseSha256Sums reads sha256sum output and ignores other lines', () => {
    const m = parseSha256Sums(`# comment\n${SHA}  wesher-amd64\r\n${OTHER.toUpperCase()} *wesher-arm\n\nnot a line\n`);
    assert.equal(m.get('wesher-amd64'), SHA);
    assert.equal(m.get('wesher-arm'), OTHER);
    assert.equal(m.size, 2);
  });

  it('the Dockerfile: FROM scratch, the binary as /wesher and entrypoint, the sha label', () => {
    assert.equal(wesherDockerfile(SHA), `FROM scratch\nCOPY wesher /wesher\nLABEL ${WESHER_SHA_LABEL}="${SHA}"\nENTRYPOINT ["/wesher"]\n`);
    assert.throws(() => wesherDockerfile('x"; RUN evil'), /not a sha256/);
  });

  it('the build context is a tar that GNU tar reads: Dockerfile 0644 and wesher 0755, contents intact', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hepto-tar-'));
    try {
      const file = path.join(dir, 'ctx.tar');
      fs.writeFileSync(file, wesherBuildContext(BINARY));
      const listing = execFileSync('tar', ['-tvf', file], { encoding: 'utf8' }).trim().split('\n');
      assert.equal(listing.length, 2);
      assert.match(listing[0], /^-rw-r--r-- root\/root\s+\d+ .* Dockerfile$/);
      assert.match(listing[1], new RegExp(`^-rwxr-xr-x root/root\\s+${BINARY.length} .* wesher$`));
      execFileSync('tar', ['-xf', file, '-C', dir]);
      assert.ok(fs.readFileSync(path.join(dir, 'wesher')).equals(BINARY));
      assert.equal(fs.readFileSync(path.join(dir, 'Dockerfile'), 'utf8'), wesherDockerfile(SHA));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('tarArchive: 512-byte blocks, end marker, exact-multiple files unpadded, long names refused', () => {
    const t = tarArchive([{ name: 'a', data: Buffer.alloc(512, 1) }]);
    assert.equal(t.length, 512 + 512 + 1024);
    assert.equal(tarArchive([]).length, 1024);
    assert.throws(() => tarArchive([{ name: 'x'.repeat(101), data: Buffer.alloc(0) }]), /1 to 100 bytes/);
  });
});
