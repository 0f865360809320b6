import * as assert from 'assert';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { fingerprint, loadOrCreateIdentity } from '../../../agent/net/identity';
import { isHeptoError } from '../../../shared/errors';

describe('net/identity', () => {
  let root: string;
  beforeEach(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'hepto-identity-'));
  });
  afterEach(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  it('creates identity.json 0600 in a 0700 directory and reloads it identical', async () => {
    const dir = path.join(root, 'srv', 'node1');
    const a = await loadOrCreateIdentity(dir, 1234);
    assert.strictEqual(a.publicKey.length, 32);
    assert.strictEqual(a.secretKey.length, 64);
    assert.strictEqual(a.idPub, Buffer.from(a.publicKey).toString('base64'));
    assert.strictEqual(a.createdAt, 1234);
    const file = path.join(dir, 'identity.json');
    assert.strictEqual((await fs.stat(file)).mode & 0o777, 0o600);
    assert.strictEqual((await fs.stat(dir)).mode & 0o777, 0o700);
    const b = await loadOrCreateIdentity(dir, 9999);
    assert.deepStrictEqual(b, a, 'same identity, same creation time');
    assert.deepStrictEqual(await fs.readdir(dir), ['identity.json'], 'no temp files left');
  });

  it('tightens a reloaded identity file that was left readable by others', async () => {
    const dir = path.join(root, 'n');
    const a = await loadOrCreateIdentity(dir, 1);
    const file = path.join(dir, 'identity.json');
    await fs.chmod(file, 0o644);
    const b = await loadOrCreateIdentity(dir, 2);
    assert.strictEqual(b.idPub, a.idPub);
    assert.strictEqual((await fs.stat(file)).mode & 0o777, 0o600);
  });

  it('gives different nodes different identities', async () => {
    const a = await loadOrCreateIdentity(path.join(root, 'a'), 1);
    const b = await loadOrCreateIdentity(path.join(root, 'b'), 1);
    assert.notStrictEqual(a.idPub, b.idPub);
    assert.notStrictEqual(fingerprint(a.idPub), fingerprint(b.idPub));
  });

  for (const [what, mutate] of [
    ['not JSON', () => '{oops'],
    ['a truncated key', (t: string) => t.replace(/"private": "([^"]{20})[^"]*"/, '"private": "$1"')],
    ['a public key that does not match', (t: string) => t.replace(/"public": "[^"]*"/, `"public": "${Buffer.alloc(32, 1).toString('base64')}"`)],
    ['a missing created_at', (t: string) => t.replace(/"created_at": \d+/, '"created_at": "yesterday"')],
  ] as const) {
    it(`refuses a corrupt identity file (${what}) with an error naming the file, and keeps it`, async () => {
      const dir = path.join(root, 'n');
      await loadOrCreateIdentity(dir, 1);
      const file = path.join(dir, 'identity.json');
      const good = await fs.readFile(file, 'utf8');
      const secret = (JSON.parse(good) as { private: string }).private;
      const bad = mutate(good);
      await fs.writeFile(file, bad);
      await assert.rejects(loadOrCreateIdentity(dir, 2), (e: unknown) => {
        assert.ok(isHeptoError(e), 'HeptoError');
        assert.ok(e.message.includes(file), e.message);
        assert.match(e.message, /corrupt/);
        assert.ok(!e.describe().includes(secret.slice(0, 16)), 'no key in the error');
        return true;
      });
      assert.strictEqual(await fs.readFile(file, 'utf8'), bad, 'the file is left alone');
    });
  }

  it('fingerprint is short and reveals nothing of the key text', () => {
    const fp = fingerprint('AAAA');
    assert.match(fp, /^[0-9a-f]{12}$/);
  });
});
