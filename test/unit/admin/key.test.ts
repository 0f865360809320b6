import { strict as assert } from 'assert';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import {
  ADMIN_KEY_KIND,
  adminSign,
  adminVerify,
  createAdminKey,
  DEFAULT_ADMIN_KEY_FILE,
  generateAdminKey,
  loadAdminKey,
  parseAdminKey,
} from '../../../agent/admin/key';
import { generateIdentity, serializeIdentity } from '../../../agent/net/identity';
import { formatPublicKey, parsePublicKey, PUBLIC_KEY_PREFIX } from '../../../shared/public-key';
import { isHeptoError } from '../../../shared/errors';

/** The private key's base64 text as stored, and its seed's: neither may appear anywhere. */
function secretsOf(fileText: string): string[] {
  const priv = (JSON.parse(fileText) as { private: string }).private;
  const seed = Buffer.from(priv, 'base64').subarray(0, 32);
  return [priv, priv.slice(0, 24), seed.toString('base64'), seed.toString('hex'), seed.toString('base64url')];
}

function noSecret(text: string, secrets: string[]): void {
  for (const s of secrets) assert.ok(!text.includes(s), `private key material in: ${text}`);
}

async function rejectsWith(p: Promise<unknown>, re: RegExp, secrets: string[] = []): Promise<string> {
  let line = '';
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isHeptoError(e), String(e));
    line = e.describe();
    assert.match(line, re);
    assert.equal(line.split('\n').length, 1, line);
    noSecret(line, secrets);
    return true;
  });
  return line;
}

describe('public key text form (admin_pub)', () => {
  it('round-trips 32 bytes through "ed25519:<base64>"', () => {
    for (let i = 0; i < 50; i++) {
      const key = generateAdminKey(0);
      assert.match(key.pub, /^ed25519:[A-Za-z0-9+/]{43}=$/);
      assert.equal(key.pub.length, 52);
      const back = parsePublicKey(key.pub);
      assert.ok(back.ok);
      assert.deepEqual(Buffer.from(back.key), Buffer.from(key.publicKey));
      assert.equal(formatPublicKey(back.key), key.pub);
    }
  });

  it('refuses anything else, saying why without repeating the value', () => {
    const body = Buffer.alloc(32, 0xfb).toString('base64');
    const cases: Array<[string, RegExp]> = [
      [body, /must start with "ed25519:"/],
      ['Ed25519:' + body, /in lowercase/],
      [PUBLIC_KEY_PREFIX, /nothing after/],
      [PUBLIC_KEY_PREFIX + body.replace(/\+/g, '-'), /not base64/],
      [PUBLIC_KEY_PREFIX + body + '\n', /not base64/],
      [PUBLIC_KEY_PREFIX + body.slice(0, -1), /not base64/],
      [PUBLIC_KEY_PREFIX + Buffer.alloc(33).toString('base64'), /holds 33 bytes/],
      [PUBLIC_KEY_PREFIX + body.slice(0, 42) + 'B=', /canonical/],
    ];
    for (const [text, re] of cases) {
      const r = parsePublicKey(text);
      assert.ok(!r.ok, text);
      assert.match(r.why, re, text);
      assert.ok(!r.why.includes(body.slice(0, 10)), r.why);
    }
    assert.throws(() => formatPublicKey(new Uint8Array(31)), RangeError);
  });
});

describe('admin key file', () => {
  let dir: string;
  beforeEach(async () => (dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hepto-admin-'))));
  afterEach(async () => fs.rm(dir, { recursive: true, force: true }));

  it('defaults to /etc/hepto/admin.key', () => {
    assert.equal(DEFAULT_ADMIN_KEY_FILE, '/etc/hepto/admin.key');
  });

  it('is created 0600 in a new 0700 directory, atomically (no temp file left), and loads back', async () => {
    const file = path.join(dir, 'etc', 'hepto', 'admin.key');
    const key = await createAdminKey(file, 1234);
    assert.equal((await fs.stat(file)).mode & 0o777, 0o600);
    assert.equal((await fs.stat(path.dirname(file))).mode & 0o777, 0o700);
    assert.deepEqual(await fs.readdir(path.dirname(file)), ['admin.key']);
    const text = await fs.readFile(file, 'utf8');
    const raw = JSON.parse(text) as Record<string, unknown>;
    assert.deepEqual(Object.keys(raw).sort(), ['created_at', 'kind', 'private', 'public', 'version']);
    assert.equal(raw.kind, ADMIN_KEY_KIND);
    assert.equal(raw.public, key.pub);
    assert.equal(raw.created_at, 1234);
    const { key: loaded, warnings } = await loadAdminKey(file);
    assert.deepEqual(warnings, []);
    assert.equal(loaded.pub, key.pub);
    assert.deepEqual(Buffer.from(loaded.secretKey), Buffer.from(key.secretKey));
  });

  it('keeps an existing directory as it is', async () => {
    await fs.chmod(dir, 0o755);
    await createAdminKey(path.join(dir, 'admin.key'), 0);
    assert.equal((await fs.stat(dir)).mode & 0o777, 0o755);
  });

  it('refuses to overwrite an existing key (or anything at that path), and leaves it alone', async () => {
    const file = path.join(dir, 'admin.key');
    const first = await createAdminKey(file, 1);
    const before = await fs.readFile(file, 'utf8');
    const line = await rejectsWith(createAdminKey(file, 2), /already exists at .*admin\.key; not overwritten/, secretsOf(before));
    assert.ok(line.includes(`hepto-agent admin pub --admin-key ${file}`), line);
    assert.equal(await fs.readFile(file, 'utf8'), before);
    assert.equal((await loadAdminKey(file)).key.pub, first.pub);
    // A directory, a dangling symlink: refused the same way, nothing written through them.
    await fs.mkdir(path.join(dir, 'd'));
    await rejectsWith(createAdminKey(path.join(dir, 'd'), 3), /already exists/);
    await fs.symlink(path.join(dir, 'nowhere'), path.join(dir, 'link'));
    await rejectsWith(createAdminKey(path.join(dir, 'link'), 3), /already exists/);
    await assert.rejects(fs.stat(path.join(dir, 'nowhere')));
    assert.deepEqual((await fs.readdir(dir)).sort(), ['admin.key', 'd', 'link']);
  });

  it("of two racing creations, exactly one wins and the file is the winner's", async () => {
    for (let round = 0; round < 5; round++) {
      const file = path.join(dir, `race${round}.key`);
      const results = await Promise.allSettled([createAdminKey(file, 1), createAdminKey(file, 2), createAdminKey(file, 3)]);
      const won = results.filter((r): r is PromiseFulfilledResult<Awaited<ReturnType<typeof createAdminKey>>> => r.status === 'fulfilled');
      assert.equal(won.length, 1, JSON.stringify(results.map((r) => r.status)));
      assert.equal((await loadAdminKey(file)).key.pub, won[0].value.pub);
    }
    assert.ok(
      (await fs.readdir(dir)).every((f) => !f.startsWith('.')),
      'no staging file left',
    );
  });

  it('says in one line why it cannot create the key where asked', async () => {
    await fs.writeFile(path.join(dir, 'plain'), 'x');
    await rejectsWith(
      createAdminKey(path.join(dir, 'plain', 'admin.key'), 0),
      /cannot create the admin key .*plain\/admin\.key: a part of its directory path is a file/,
    );
  });

  it('says how to make one when there is none', async () => {
    const file = path.join(dir, 'none.key');
    const line = await rejectsWith(loadAdminKey(file), /no admin key at .*none\.key/);
    assert.ok(line.includes(`hepto-agent admin init --admin-key ${file}`), line);
  });

  it('warns, without failing, when the key is readable by others', async () => {
    const file = path.join(dir, 'admin.key');
    const key = await createAdminKey(file, 0);
    await fs.chmod(file, 0o644);
    const { key: loaded, warnings } = await loadAdminKey(file);
    assert.equal(loaded.pub, key.pub);
    assert.deepEqual(warnings, [`admin key ${file} is readable by other users (mode 0644); run chmod 600 ${file}`]);
  });

  const damage: Array<[string, (o: Record<string, unknown>) => unknown, RegExp]> = [
    ['not JSON', () => '{"version": 1, "private": "', /not valid JSON/],
    ['a list', () => [1], /not a hepto admin key|not a JSON object/],
    ['another version', (o) => ({ ...o, version: 2 }), /unsupported version 2/],
    ['a public key of another form', (o) => ({ ...o, public: String(o.public).slice(PUBLIC_KEY_PREFIX.length) }), /field "public" must start with/],
    ['a truncated private key', (o) => ({ ...o, private: String(o.private).slice(0, 40) }), /field "private"/],
    ['a private key that is not base64', (o) => ({ ...o, private: '!' + String(o.private).slice(1) }), /field "private" is not base64/],
    ['a public key of another pair', (o) => ({ ...o, public: generateAdminKey(0).pub }), /does not match/],
    ['no created_at', (o) => ({ ...o, created_at: 'yesterday' }), /created_at/],
  ];
  for (const [what, mutate, re] of damage) {
    it(`refuses a damaged file (${what}) in one line, without its content`, async () => {
      const file = path.join(dir, 'admin.key');
      await createAdminKey(file, 0);
      const good = await fs.readFile(file, 'utf8');
      const bad = mutate(JSON.parse(good) as Record<string, unknown>);
      await fs.writeFile(file, typeof bad === 'string' ? bad : JSON.stringify(bad));
      const line = await rejectsWith(loadAdminKey(file), re, secretsOf(good));
      assert.ok(line.includes(file), line);
    });
  }

  it('refuses a node identity file given as the admin key', () => {
    const text = serializeIdentity(generateIdentity(0));
    assert.throws(
      () => parseAdminKey('/srv/venus/identity.json', text),
      (e: unknown) =>
        isHeptoError(e) && /not a hepto admin key \(it looks like a node identity file\)/.test(e.message) && !e.describe().includes(JSON.parse(text).private),
    );
  });
});

describe('admin signatures (invitations, admissions, removals, rotations)', () => {
  const key = generateAdminKey(0);
  const body = { node: 'venus', identity: 'ed25519:' + Buffer.alloc(32, 1).toString('base64'), expires: 5 };

  it('verify against admin_pub what the admin key signed, for that purpose only', () => {
    const sig = adminSign(key, 'admission', body);
    assert.ok(adminVerify(key.pub, 'admission', body, sig));
    assert.ok(adminVerify(key.pub, 'admission', { expires: 5, identity: body.identity, node: 'venus' }, sig), 'key order does not matter');
    assert.ok(!adminVerify(key.pub, 'removal', body, sig), 'another purpose');
    assert.ok(!adminVerify(key.pub, 'admission', { ...body, node: 'mars' }, sig), 'another body');
    assert.ok(!adminVerify(generateAdminKey(0).pub, 'admission', body, sig), 'another key');
    assert.ok(!adminVerify('ed25519:nope', 'admission', body, sig), 'a malformed admin_pub');
    assert.ok(!adminVerify(key.pub, 'admission', body, 'not base64!'), 'a malformed signature');
  });
});
