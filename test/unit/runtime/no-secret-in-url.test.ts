import { strict as assert } from 'assert';
import * as http from 'http';
import { mkdtempSync, rmSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PodmanClient } from '../../../agent/runtime/podman-client';

/**
 * Podman's API service logs every request line. A secret in the URL of a
 * create call reaches the journal, so the spec must travel in the body only.
 */
describe('podman client keeps secrets out of request URLs', () => {
  let dir: string;
  let server: http.Server;
  const seen: Array<{ url: string; body: string }> = [];

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'hepto-url-'));
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        seen.push({ url: req.url ?? '', body });
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ Id: 'abc123', Warnings: [] }));
      });
    });
    await new Promise<void>((r) => server.listen(path.join(dir, 'podman.sock'), r));
  });
  after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends the name in the query and the env (with the token) only in the JSON body', async () => {
    const secret = 'SecretClusterKeyNeverInUrl012345';
    const client = new PodmanClient({ socketPath: path.join(dir, 'podman.sock') });
    const id = await client.createContainer({ name: 'hepto-n1-k3s', Image: 'localhost/x', Env: [`K3S_TOKEN=${secret}`] });
    assert.equal(id, 'abc123');
    const req = seen.at(-1)!;
    assert.match(req.url, /\/containers\/create\?name=hepto-n1-k3s$/);
    assert.ok(!req.url.includes(secret) && !req.url.includes('Env'), req.url);
    assert.deepEqual(JSON.parse(req.body).Env, [`K3S_TOKEN=${secret}`]);
  });
});
