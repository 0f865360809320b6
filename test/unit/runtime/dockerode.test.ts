/**
 * dockerode loaded lean (agent/runtime/dockerode.ts, issue 16): in a fresh
 * Node process (the module cache is per process), loading the agent's
 * Podman client loads neither gRPC, protobuf nor ssh2, the client still
 * talks to a Docker-API socket, and the deferred parts still reach the real
 * code when called.
 */
import assert from 'node:assert/strict';
import { inFreshNode } from '../../helpers/fresh-node';

const HEAVY = 'Object.keys(require.cache).filter((k) => /node_modules\\/(@grpc|protobufjs|ssh2)\\//.test(k))';

describe('runtime/dockerode: dockerode without its BuildKit and SSH stacks', () => {
  it('the Podman client loads no gRPC, protobuf or ssh2, and still talks to a Docker-API socket', () => {
    const r = inFreshNode(`
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
    `);
    assert.deepEqual(r.heavy, [], 'loaded at require time');
    assert.equal(r.version, '4.3.1');
  });

  it('without the stand-ins dockerode does load them (the test can fail), and a stand-in reaches the real code when called', () => {
    const plain = inFreshNode(`require('dockerode'); console.log(JSON.stringify({ heavy: ${HEAVY}.length }));`);
    assert.ok((plain.heavy as number) > 0, 'plain dockerode loads gRPC, protobuf and ssh2');
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
});
