import assert from 'node:assert/strict';
import { checkServerToken, checkServerTokenFile, serverTokenPath, tokenPassword } from '../../../agent/runtime/k3s-token';
import { k3sDataDir } from '../../../agent/runtime/specs';
import { testConfig } from './fixtures';

const KEY = 'TESTONLYclusterKEY0123456789abcd';
const OLD = 'TESTONLYoldClusterKEY0123456789a';
const CA_HASH = 'a'.repeat(64);
const WHERE = { dataDir: '/srv/master1/k3s', node: 'master1' };

/** What k3s writes to server/token when started with `token`. */
const fileFor = (token: string): string => `K10${CA_HASH}::server:${token}\n`;

function problemOf(text: string | null, key: string): string {
  const r = checkServerToken(text, key, WHERE);
  assert.equal(r.ok, false);
  return (r as { problem: string }).problem;
}

describe('runtime/k3s-token', () => {
  it('no token file yet (or an empty one): ok, the server creates the datastore', () => {
    assert.deepEqual(checkServerToken(null, KEY, WHERE), { ok: true });
    assert.deepEqual(checkServerToken('\n', KEY, WHERE), { ok: true });
  });

  it('the datastore was created with this cluster_key: ok', () => {
    assert.deepEqual(checkServerToken(fileFor(KEY), KEY, WHERE), { ok: true });
  });

  it('a cluster_key in full K10 form whose password part matches: ok', () => {
    assert.deepEqual(checkServerToken(fileFor(KEY), `K10${CA_HASH}::server:${KEY}`, WHERE), { ok: true });
    assert.deepEqual(checkServerToken(fileFor(KEY), `K10${'b'.repeat(64)}::server:${KEY}`, WHERE), { ok: true });
  });

  it('a bare token file (no K10 prefix) is compared whole', () => {
    assert.deepEqual(checkServerToken(`${KEY}\n`, KEY, WHERE), { ok: true });
    assert.equal(checkServerToken(`${OLD}\n`, KEY, WHERE).ok, false);
  });

  it('another token: a problem naming cluster_key, the data dir, the container and both ways out', () => {
    const p = problemOf(fileFor(OLD), KEY);
    assert.equal(
      p,
      'cluster_key changed, but the k3s datastore in /srv/master1/k3s was created with another token: the server would not open it; ' +
        'put the old cluster_key back, or first rotate it inside the running server (podman exec -it hepto-master1-k3s k3s token rotate, with the old token as --token and the new one as --new-token), then set the new one',
    );
  });

  it('never puts either token, nor the CA hash, in the problem', () => {
    for (const [file, key] of [
      [fileFor(OLD), KEY],
      [fileFor(KEY), OLD],
      [fileFor(KEY), `K10${CA_HASH}::server:${OLD}`],
      [fileFor(KEY.slice(0, 31)), KEY],
    ]) {
      const p = problemOf(file, key);
      for (const secret of [KEY, OLD, KEY.slice(0, 31), CA_HASH]) assert.ok(!p.includes(secret), `secret in: ${p}`);
    }
  });

  it('a prefix or extension of the key is another key', () => {
    problemOf(fileFor(KEY.slice(0, 31)), KEY);
    problemOf(fileFor(KEY + 'x'), KEY);
  });

  it('tokenPassword: the part after "<user>:" in the K10 form, else the trimmed text', () => {
    assert.equal(tokenPassword(`K10${CA_HASH}::server:${KEY}\n`), KEY);
    assert.equal(tokenPassword(`K10${CA_HASH}::node:pw:with:colons`), 'pw:with:colons');
    assert.equal(tokenPassword(` ${KEY} `), KEY);
  });

  it('reads server/token under the k3s data dir the spec binds', async () => {
    const config = testConfig();
    const dir = k3sDataDir(config, 'master1');
    assert.equal(serverTokenPath(dir), '/srv/master1/k3s/server/token');
    const asked: string[] = [];
    const read = async (file: string): Promise<string> => {
      asked.push(file);
      return fileFor(OLD);
    };
    const r = await checkServerTokenFile(dir, 'master1', KEY, read);
    assert.deepEqual(asked, ['/srv/master1/k3s/server/token']);
    assert.equal(r.ok, false);
  });

  it('a missing file or data dir is a new datastore; another read error is a problem naming the file, not the key', async () => {
    const failing = (code: string) => async (): Promise<string> => {
      throw Object.assign(new Error(`${code}: boom`), { code });
    };
    assert.deepEqual(await checkServerTokenFile('/d', 'n', KEY, failing('ENOENT')), { ok: true });
    assert.deepEqual(await checkServerTokenFile('/d', 'n', KEY, failing('ENOTDIR')), { ok: true });
    const r = await checkServerTokenFile('/d', 'n', KEY, failing('EACCES'));
    assert.equal(r.ok, false);
    const p = (r as { problem: string }).problem;
    assert.match(p, /^cannot read \/d\/server\/token \(EACCES\)/);
    assert.ok(!p.includes(KEY));
  });
});
