import { strict as assert } from 'assert';
import * as net from 'net';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ControlServer } from '../../../agent/control/server';
import { requestStatus } from '../../../agent/control/client';
import { HeptoError } from '../../../shared/errors';
import { memoryLogger } from '../../helpers/memory-logger';

function raw(sock: string, data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(sock, () => s.write(data));
    let buf = '';
    s.on('data', (c) => (buf += c));
    s.on('end', () => resolve(buf));
    s.on('error', reject);
  });
}

describe('control socket', () => {
  let dir: string;
  let sock: string;
  let server: ControlServer | null;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'hepto-ctl-'));
    sock = path.join(dir, 'run', 'agent.sock');
    server = null;
  });
  afterEach(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves status, is mode 0600, and is removed on stop', async () => {
    server = new ControlServer(sock, { status: () => ({ node: 'a' }) }, memoryLogger().logger);
    await server.start();
    assert.equal(statSync(sock).mode & 0o777, 0o600);
    assert.equal(statSync(path.dirname(sock)).mode & 0o777, 0o700);
    assert.deepEqual(await requestStatus(sock), { node: 'a' });
    await server.stop();
    server = null;
    await assert.rejects(requestStatus(sock), (e: unknown) => e instanceof HeptoError && e.code === 'AGENT_NOT_RUNNING');
  });

  it('answers malformed, unknown and oversized requests with an error and keeps serving', async () => {
    server = new ControlServer(sock, { status: () => 42 }, memoryLogger().logger);
    await server.start();
    assert.match(await raw(sock, 'not json\n'), /malformed request/);
    assert.match(await raw(sock, '{"cmd":"reboot"}\n'), /unknown command/);
    assert.match(await raw(sock, 'x'.repeat(10000)), /too large/);
    assert.equal(await requestStatus(sock), 42);
  });

  it('replaces a stale socket file but refuses to start beside a live agent', async () => {
    const first = new ControlServer(sock, { status: () => 1 }, memoryLogger().logger);
    await first.start();
    const second = new ControlServer(sock, { status: () => 2 }, memoryLogger().logger);
    await assert.rejects(second.start(), /already running/);
    await first.stop();
    writeFileSync(sock, ''); // a leftover file, nobody listening
    server = new ControlServer(sock, { status: () => 3 }, memoryLogger().logger);
    await server.start();
    assert.equal(await requestStatus(sock), 3);
  });
});
