import { strict as assert } from 'assert';
import { mkdtempSync, rmSync, statSync, writeFileSync, readdirSync } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { PeerStore } from '../../../agent/daemon/peer-store';
import { memoryLogger } from '../../helpers/memory-logger';

describe('peer store', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'hepto-peers-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('round-trips peers and incarnation in a 0600 file', async () => {
    const store = new PeerStore(dir, memoryLogger().logger);
    assert.deepEqual(await store.load(), { version: 1, incarnation: 0, peers: [] });
    const state = { version: 1 as const, incarnation: 17, peers: [{ name: 'b', addresses: ['[2001:db8::2]:7947'], id_pub: 'QUJD' }] };
    await store.save(state);
    assert.equal(statSync(store.file).mode & 0o777, 0o600);
    assert.deepEqual(await store.load(), state);
  });

  it('sets a corrupt file aside and says so, instead of failing to start', async () => {
    const { logger, lines } = memoryLogger();
    const store = new PeerStore(dir, logger);
    writeFileSync(store.file, '{ not json');
    assert.deepEqual((await store.load()).peers, []);
    assert.ok(readdirSync(dir).some((f) => f.startsWith('peers.json.corrupt-')));
    assert.ok(lines.some((l) => l.includes('corrupt')));
  });

  it('drops malformed entries but keeps the good ones', async () => {
    const store = new PeerStore(dir, memoryLogger().logger);
    writeFileSync(store.file, JSON.stringify({ version: 1, incarnation: 3, peers: [{ name: 'ok', addresses: ['h:1'], id_pub: 'x' }, { name: 5 }, null] }));
    assert.deepEqual(
      (await store.load()).peers.map((p) => p.name),
      ['ok'],
    );
  });
});
