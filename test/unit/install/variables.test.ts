/**
 * The installer's HEPTO_* variables: each one install.sh turns into a config
 * field is known to its typo check and documented (docs/install.md, README),
 * and its config merge (MERGE_JS, cut out of install.sh and run with this
 * Node) sets the field, keeps it when the variable is unset, leaves the file's
 * bytes alone when nothing changes, and names what would change without
 * showing a key. The whole installer runs in test/system/installer.test.ts.
 */
import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';

const ROOT = path.resolve(__dirname, '../../../..');
const INSTALL = readFileSync(path.join(ROOT, 'install.sh'), 'utf8');

function mergeJs(): string {
  const m = /^MERGE_JS='\n([\s\S]*?)\n'$/m.exec(INSTALL);
  assert.ok(m, 'MERGE_JS not found in install.sh');
  return m[1];
}

/** HEPTO_X -> field, as MERGE_JS maps them (`set("field", "HEPTO_X"...)`). */
function mappedVars(): Map<string, string> {
  const out = new Map<string, string>();
  for (const m of mergeJs().matchAll(/set\("([a-z0-9_]+)", "(HEPTO_[A-Z0-9_]+)"/g)) out.set(m[2], m[1]);
  return out;
}

function knownVars(): string[] {
  const m = /^KNOWN_VARS="([^"]*)"/m.exec(INSTALL);
  assert.ok(m, 'KNOWN_VARS not found in install.sh');
  return m[1].split(/\s+/).filter(Boolean);
}

interface Merged {
  code: number;
  stderr: string;
  text: string;
  conf: Record<string, unknown>;
  changes: string[];
}

/** Runs MERGE_JS on `existing` (null: no config yet) with `vars` as the only HEPTO_* environment. */
function merge(dir: string, existing: string | null, vars: Record<string, string>): Merged {
  const file = path.join(dir, 'hepto.json');
  const out = path.join(dir, 'new.json');
  const changes = path.join(dir, 'changes');
  rmSync(file, { force: true });
  rmSync(out, { force: true });
  rmSync(changes, { force: true });
  if (existing !== null) writeFileSync(file, existing);
  const r = spawnSync(process.execPath, ['-e', mergeJs(), file, out, changes], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, HOST_NAME: 'box', ...vars },
  });
  const text = existsSync(out) ? readFileSync(out, 'utf8') : '';
  return {
    code: r.status ?? -1,
    stderr: r.stderr,
    text,
    conf: text ? (JSON.parse(text) as Record<string, unknown>) : {},
    changes: existsSync(changes) ? readFileSync(changes, 'utf8').split('\n').filter(Boolean) : [],
  };
}

const SHA = 'ab'.repeat(32);
const MIRROR = 'http://mirror.example/wesher/v0.2.6';

describe('install/variables', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'hepto-vars-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('HEPTO_WESHER_DOWNLOAD and HEPTO_WESHER_SHA256 map to wesher_download and wesher_sha256', () => {
    const vars = mappedVars();
    assert.equal(vars.get('HEPTO_WESHER_DOWNLOAD'), 'wesher_download');
    assert.equal(vars.get('HEPTO_WESHER_SHA256'), 'wesher_sha256');
  });

  it('every variable the merge reads is known to the typo check, in the header, in docs/install.md and in the README', () => {
    const known = knownVars();
    const header = INSTALL.split('\n')
      .filter((l) => l.startsWith('#'))
      .join('\n');
    const docs = readFileSync(path.join(ROOT, 'docs/install.md'), 'utf8');
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    for (const v of mappedVars().keys()) {
      assert.ok(known.includes(v), `${v} is not in KNOWN_VARS (it would be warned about as unknown)`);
      assert.ok(header.includes(v), `${v} is not in install.sh's header`);
      assert.match(docs, new RegExp(`^\\|[^\\n]*\`${v}\``, 'm'), `${v} is not in docs/install.md's table`);
      assert.ok(readme.includes(`\`${v}\``), `${v} is not in the README's list`);
    }
  });

  it('sets the fields on a fresh config and names them for a dry run', () => {
    const r = merge(dir, null, { HEPTO_NODE: 'n1', HEPTO_WESHER_DOWNLOAD: MIRROR, HEPTO_WESHER_SHA256: SHA });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.conf.wesher_download, MIRROR);
    assert.equal(r.conf.wesher_sha256, SHA);
    assert.ok(r.changes.includes(`wesher_download = "${MIRROR}"`), r.changes.join('\n'));
    assert.ok(r.changes.includes(`wesher_sha256 = "${SHA}"`), r.changes.join('\n'));
  });

  it('unset or empty keeps the current value; the same value again leaves the bytes alone and names nothing', () => {
    const first = merge(dir, null, { HEPTO_NODE: 'n1', HEPTO_WESHER_DOWNLOAD: MIRROR, HEPTO_WESHER_SHA256: SHA });
    // As written by hand: another layout than the merge's own, which must survive a no-op.
    const existing = JSON.stringify(first.conf) + '\n';
    const unset = merge(dir, existing, {});
    assert.equal(unset.text, existing);
    assert.deepEqual(unset.changes, []);
    const empty = merge(dir, existing, { HEPTO_WESHER_DOWNLOAD: '', HEPTO_WESHER_SHA256: '' });
    assert.equal(empty.text, existing);
    const same = merge(dir, existing, { HEPTO_WESHER_DOWNLOAD: MIRROR, HEPTO_WESHER_SHA256: SHA });
    assert.equal(same.text, existing);
    assert.deepEqual(same.changes, []);
  });

  it('a new value replaces only that field', () => {
    const existing = JSON.stringify({ node: 'n1', master: 'n1', wesher_download: MIRROR, wesher_sha256: SHA }, null, 2) + '\n';
    const r = merge(dir, existing, { HEPTO_WESHER_SHA256: 'cd'.repeat(32) });
    assert.deepEqual(r.conf, { node: 'n1', master: 'n1', wesher_download: MIRROR, wesher_sha256: 'cd'.repeat(32) });
    assert.deepEqual(r.changes, [`wesher_sha256 = "${'cd'.repeat(32)}"`]);
  });

  it('HEPTO_AGENT_KEY and HEPTO_INVITE map to agent_key and invite', () => {
    const vars = mappedVars();
    assert.equal(vars.get('HEPTO_AGENT_KEY'), 'agent_key');
    assert.equal(vars.get('HEPTO_INVITE'), 'invite');
  });

  describe('an invitation (HEPTO_INVITE)', () => {
    const TOKEN = 'hepto1.' + 'b'.repeat(40) + '.' + 's'.repeat(20) + '.' + 'k'.repeat(43);

    it('a fresh config holds node, the network fields and invite: no master, anchors, key or admin_pub (enrolment brings them)', () => {
      const r = merge(dir, null, { HEPTO_NODE: 'n2', HEPTO_GOSSIP_PORT: '7952', HEPTO_INVITE: TOKEN, HEPTO_WESHER_DOWNLOAD: MIRROR, HEPTO_WESHER_SHA256: SHA });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.conf, { node: 'n2', invite: TOKEN, gossip_port: 7952, wesher_download: MIRROR, wesher_sha256: SHA });
    });

    it('a dry run names invite but never shows the invitation', () => {
      const r = merge(dir, null, { HEPTO_NODE: 'n2', HEPTO_INVITE: TOKEN });
      assert.ok(r.changes.includes('invite (an invitation: not shown)'), r.changes.join('\n'));
      assert.ok(!r.changes.join('\n').includes(TOKEN));
      assert.ok(!r.changes.join('\n').includes('k'.repeat(43)));
    });

    it('a re-run on a config still waiting to enrol adds no master, and changes nothing', () => {
      const existing = JSON.stringify({ node: 'n2', invite: TOKEN }, null, 2) + '\n';
      const r = merge(dir, existing, {});
      assert.equal(r.text, existing);
      assert.deepEqual(r.changes, []);
    });

    it('joining with the keys after all drops the invitation; the master defaults as before', () => {
      const existing = JSON.stringify({ node: 'n2', invite: TOKEN }, null, 2) + '\n';
      const r = merge(dir, existing, {
        HEPTO_OVERLAY_KEY: 'O'.repeat(32),
        HEPTO_AGENT_KEY: 'A'.repeat(32),
        HEPTO_ANCHORS: '[2001:db8::1]:7947',
        HEPTO_MASTER: 'n1',
      });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(r.conf, { node: 'n2', master: 'n1', anchors: ['[2001:db8::1]:7947'], overlay_key: 'O'.repeat(32), agent_key: 'A'.repeat(32) });
      assert.ok(r.changes.includes('agent_key (a key: not shown)'), r.changes.join('\n'));
    });
  });

  it('a dry run names a changed key field but never shows the key', () => {
    const key = 'K'.repeat(32);
    const r = merge(dir, null, { HEPTO_NODE: 'n1', HEPTO_OVERLAY_KEY: key, HEPTO_CLUSTER_KEY: 'C'.repeat(32) });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.changes.includes('overlay_key (a key: not shown)'), r.changes.join('\n'));
    assert.ok(r.changes.includes('cluster_key (a key: not shown)'), r.changes.join('\n'));
    assert.ok(!r.changes.join('\n').includes(key));
    assert.ok(!r.changes.join('\n').includes('C'.repeat(32)));
  });
});
