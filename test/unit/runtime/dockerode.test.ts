/**
 * dockerode loaded lean (agent/runtime/dockerode.ts, issue 16): in a fresh
 * Node process (the module cache is per process), loading the agent's
 * Podman client loads neither gRPC, protobuf, ssh2, tar-fs, dockerignore nor
 * debug, the client still talks to a Docker-API socket, and the deferred
 * parts still reach the real code when called (debug's when DEBUG is set).
 */
import assert from 'node:assert/strict';
import { inFreshNode } from '../../helpers/fresh-node';

// Modules loaded from their file: a stand-in sits in the cache under the real file's name, but was never
// loaded from it, so Node never gave it the lookup paths (Module.prototype.load does).
const HEAVY =
  'Object.keys(require.cache).filter((k) => (require.cache[k].paths || []).length > 0 && /node_modules\\/(@grpc|protobufjs|ssh2|tar-fs|tar-stream|bl|@balena\\/dockerignore|debug|supports-color)\\//.test(k))';
/** The environment without DEBUG, which makes the real debug load. */
const NO_DEBUG = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'DEBUG'));

describe('runtime/dockerode: dockerode without its BuildKit, SSH, build-context and debug stacks', () => {
  it('the Podman client loads no gRPC, protobuf, ssh2, tar-fs, dockerignore or debug, and still talks to a Docker-API socket', () => {
    const r = inFreshNode(
      `
      const http = require('http'), os = require('os'), fs = require('fs'), path = require('path');
      const { PodmanClient } = require('./agent/runtime/podman-client');
      const heavy = ${HEAVY};
      const sock = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lean-')), 'api.sock');
      const srv = http.createServer((req, res) => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify({ Version: '4.3.1', ApiVersion: '1.41', Components: [] })); });
      srv.listen(sock, async () => {
        const c = new PodmanClient({ socketPath: sock });
        const v = await c.docker.version();
        srv.close();
        console.log(JSON.stringify({ heavy, version: v.Version }));
      });
    `,
      NO_DEBUG,
    );
    assert.deepEqual(r.heavy, [], 'loaded at require time');
    assert.equal(r.version, '4.3.1');
  });

  it('without the stand-ins dockerode does load them (the test can fail), and a stand-in reaches the real code when called', () => {
    const plain = inFreshNode(`require('dockerode'); console.log(JSON.stringify({ heavy: ${HEAVY} }));`, NO_DEBUG);
    for (const pkg of ['@grpc', 'protobufjs', 'ssh2', 'tar-fs', 'tar-stream', '@balena/dockerignore', 'debug']) {
      assert.ok(
        (plain.heavy as string[]).some((k) => k.includes(`node_modules/${pkg}/`)),
        `plain dockerode loads ${pkg}`,
      );
    }
    const called = inFreshNode(`
      require('./agent/runtime/dockerode');
      const path = require('path');
      const modem = require.resolve('docker-modem', { paths: [path.dirname(require.resolve('dockerode'))] });
      const ssh = require(path.join(path.dirname(modem), 'ssh.js'));
      const agent = ssh({ host: '127.0.0.1' });
      console.log(JSON.stringify({ agent: typeof agent.createConnection, ssh2: ${HEAVY}.some((k) => k.includes('ssh2')) }));
    `);
    assert.deepEqual(called, { agent: 'function', ssh2: true });
  });

  it('an object stand-in (tar-fs) loads the real module at its first property read; debug is the real one when DEBUG is set', () => {
    const tar = inFreshNode(
      `
      require('./agent/runtime/dockerode');
      const tarFs = require(require.resolve('tar-fs', { paths: [require('path').dirname(require.resolve('dockerode'))] }));
      const before = ${HEAVY}.some((k) => k.includes('tar-stream'));
      const pack = typeof tarFs.pack;
      console.log(JSON.stringify({ before, pack, after: ${HEAVY}.some((k) => k.includes('tar-stream')) }));
    `,
      NO_DEBUG,
    );
    assert.deepEqual(tar, { before: false, pack: 'function', after: true });
    const debug = inFreshNode(`require('./agent/runtime/dockerode'); console.log(JSON.stringify({ debug: ${HEAVY}.some((k) => k.includes('/debug/')) }));`, {
      ...NO_DEBUG,
      DEBUG: 'modem',
    });
    assert.deepEqual(debug, { debug: true });
  });
});
