import * as assert from 'assert';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { fingerprint, loadOrCreateIdentity } from '../../../agent/net/identity';
import { isHeptoError } from '../../../shared/errors';
import { DIST, deadPid, mountTmpfs, runAsNobody, type Tmpfs } from '../shared/fs-fixtures';

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

  describe('state files (issue 14 item 9)', function () {
    this.timeout(20_000);
    let fsys: Tmpfs | undefined;
    afterEach(() => {
      fsys?.cleanup();
      fsys = undefined;
    });

    it('removes the key copies that a write killed midway left next to identity.json, and only those', async () => {
      const dir = path.join(root, 'n');
      const a = await loadOrCreateIdentity(dir, 1);
      const file = path.join(dir, 'identity.json');
      const text = await fs.readFile(file, 'utf8');
      const dead = await deadPid();
      const now = Date.now();
      const leftovers = [`.identity.json.${dead}.${now - 2000}.tmp`, `.identity.json.${dead}.${now - 1000}.tmp`, `.peers.json.${dead}.${now}.tmp`];
      for (const n of leftovers) await fs.writeFile(path.join(dir, n), text, { mode: 0o600 });
      await fs.writeFile(path.join(dir, 'notes.tmp'), 'mine');
      const b = await loadOrCreateIdentity(dir, 2);
      assert.deepStrictEqual(b, a);
      assert.deepStrictEqual((await fs.readdir(dir)).sort(), ['identity.json', 'notes.tmp']);
    });

    it('sweeps before creating, too: a first start that was killed mid-write leaves no key copy', async () => {
      const dir = path.join(root, 'first');
      await fs.mkdir(dir, { recursive: true });
      const dead = await deadPid();
      const stale = path.join(dir, `.identity.json.${dead}.${Date.now() - 1000}.tmp`);
      await fs.writeFile(stale, '{"version":1,"private":"partial', { mode: 0o600 });
      await loadOrCreateIdentity(dir, 1);
      assert.deepStrictEqual(await fs.readdir(dir), ['identity.json']);
    });

    it('a read-only first start says the filesystem is read-only (not ENOENT), naming the file and what to do', async () => {
      fsys = mountTmpfs(256);
      await fs.mkdir(path.join(fsys.dir, 'existing'), { mode: 0o700 });
      fsys.readOnly();
      for (const dir of [path.join(fsys.dir, 'srv', 'node1'), path.join(fsys.dir, 'existing')]) {
        const file = path.join(dir, 'identity.json');
        await assert.rejects(loadOrCreateIdentity(dir, 1), (e: unknown) => {
          assert.ok(isHeptoError(e), String(e));
          assert.strictEqual(e.code, 'STATE_UNWRITABLE');
          assert.ok(e.message.includes(file), e.message);
          assert.match(e.message, /read-only \(EROFS\)/);
          assert.doesNotMatch(e.describe(), /ENOENT/);
          assert.match(e.hint ?? '', /remount that filesystem read-write, or set storage_base/);
          assert.doesNotMatch(e.describe(), /previous version/);
          return true;
        });
      }
    });

    it('a first start without permission says so (EACCES), naming the file and what to do', async () => {
      await fs.chmod(root, 0o755);
      const base = path.join(root, 'srv');
      await fs.mkdir(base, { mode: 0o755 });
      const out = runAsNobody(`
        const { loadOrCreateIdentity } = require(${JSON.stringify(path.join(DIST, 'agent', 'net', 'identity.js'))});
        const res = [];
        const show = (e) => ({ code: e.code, message: e.message, hint: e.hint, text: e.describe ? e.describe() : String(e) });
        (async () => {
          for (const dir of ${JSON.stringify([path.join(base, 'node1'), base])}) {
            try { await loadOrCreateIdentity(dir, 1); res.push(null); } catch (e) { res.push(show(e)); }
          }
          process.stdout.write(JSON.stringify(res));
        })();
      `) as ({ code: string; message: string; hint: string; text: string } | null)[];
      for (const [i, dir] of [path.join(base, 'node1'), base].entries()) {
        const e = out[i];
        assert.ok(e, `first start ${i} failed`);
        assert.strictEqual(e.code, 'STATE_UNWRITABLE');
        assert.ok(e.message.includes(path.join(dir, 'identity.json')), e.message);
        assert.match(e.message, /permission denied \(EACCES\)/);
        assert.match(e.hint, /run the agent as root/);
        assert.doesNotMatch(e.text, /ENOENT|previous version/);
      }
    });
  });
});
