import { strict as assert } from 'assert';
import { execFile } from 'child_process';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { validateConfig } from '../../../shared/config/validate';
import { AGENT_KEY, baseConfig, CLI, CLUSTER_KEY, FIXTURES, OVERLAY_KEY } from './helpers';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, ...env }, timeout: 20000 }, (err, stdout, stderr) => {
      const code = child.exitCode;
      if (code === null) reject(err ?? new Error('no exit code'));
      else resolve({ code, stdout, stderr });
    });
  });
}

function noKeys(r: Run): void {
  for (const k of [OVERLAY_KEY, CLUSTER_KEY, AGENT_KEY]) {
    assert.ok(!r.stderr.includes(k), 'key on stderr');
    assert.ok(!r.stdout.includes(k), 'key on stdout');
  }
}

describe('config CLI (spawns dist/agent/cli.js)', () => {
  let dir: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'hepto-cli-'));
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });
  async function write(name: string, value: unknown, mode = 0o600): Promise<string> {
    const p = path.join(dir, name);
    await fs.writeFile(p, typeof value === 'string' ? value : JSON.stringify(value));
    await fs.chmod(p, mode);
    return p;
  }

  it('config validate: exit 0 and a summary line for a valid config', async () => {
    const p = await write('ok.json', { ...baseConfig(), anchors: ['192.0.2.1', '[2001:db8::1]:7947'] });
    const r = await cli(['config', 'validate', '--config', p]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), `config OK: ${p} (node venus, master mercury, 2 anchors, runtime podman)`);
    assert.equal(r.stderr, '');
    assert.ok(!r.stdout.includes(OVERLAY_KEY));
  });

  it('config validate: reads HEPTO_CONFIG and prints the mode warning', async () => {
    const p = await write('open.json', baseConfig(), 0o644);
    const r = await cli(['config', 'validate'], { HEPTO_CONFIG: p });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^config OK: /);
    assert.ok(r.stderr.includes(`run chmod 600 ${p}`));
  });

  it('config validate: exit 1 with every problem on its own line, no key', async () => {
    const p = await write('bad.json', { ...baseConfig(), master: 'Mercury', mtu: 100, cluster_key: OVERLAY_KEY, overlay_net: '10.0.0.0/12', colour: 'blue' });
    const r = await cli(['config', 'validate', '--config', p]);
    assert.equal(r.code, 1);
    const lines = r.stderr.trim().split('\n');
    assert.match(lines[0], /^hepto-agent: config .* has 5 problems/);
    for (const f of ['colour', 'master', 'mtu', 'cluster_key', 'overlay_net']) {
      assert.equal(lines.filter((l) => l.startsWith(`${f}: `)).length, 1, `${f} in\n${r.stderr}`);
    }
    noKeys(r);
    assert.equal(r.stdout, '');
  });

  it('config validate: names agent_key (the same as cluster_key; a master without cluster_key), never a key', async () => {
    const p = await write('agent.json', { ...baseConfig(), node: 'mercury', cluster_key: undefined, agent_key: OVERLAY_KEY });
    const r = await cli(['config', 'validate', '--config', p]);
    assert.equal(r.code, 1);
    const lines = r.stderr.trim().split('\n');
    assert.match(lines[0], /has 2 problems/);
    assert.ok(
      lines.some((l) => l.startsWith('agent_key: is the same as overlay_key')),
      r.stderr,
    );
    assert.ok(
      lines.some((l) => l.startsWith('cluster_key: required on the machine that hosts the master node "mercury"')),
      r.stderr,
    );
    noKeys(r);
    const good = await write('agent-ok.json', { ...baseConfig(), cluster_key: undefined, agent_key: AGENT_KEY });
    const ok = await cli(['config', 'validate', '--config', good]);
    assert.equal(ok.code, 0, ok.stderr);
    noKeys(ok);
  });

  it('config validate: exit 1 for a missing file, naming it', async () => {
    const p = path.join(dir, 'missing.json');
    const r = await cli(['config', 'validate', '--config', p]);
    assert.equal(r.code, 1);
    assert.ok(r.stderr.includes(p) && r.stderr.includes('import-inventory'));
  });

  it('keygen: one fresh 32-character key per run', async () => {
    const [a, b] = await Promise.all([cli(['keygen']), cli(['keygen'])]);
    for (const r of [a, b]) {
      assert.equal(r.code, 0);
      assert.match(r.stdout, /^[A-Za-z0-9]{32}\n$/);
    }
    assert.notEqual(a.stdout, b.stdout);
  });

  it('import-inventory: prints a config that validates and loads', async () => {
    const r = await cli(['import-inventory', path.join(FIXTURES, 'cluster.ini'), '--node', 'venus']);
    assert.equal(r.code, 0, r.stderr);
    const raw = JSON.parse(r.stdout);
    assert.ok(r.stdout.includes('\n  "node": "venus"'), '2-space indent');
    const { config, problems } = validateConfig(raw);
    assert.deepEqual(problems, []);
    assert.equal(config?.iface, 'wlan0');
    const p = await write('imported.json', r.stdout);
    const v = await cli(['config', 'validate', '--config', p]);
    assert.equal(v.code, 0, v.stderr);
  });

  it("import-inventory: the seed's placeholders are refused, field by field, keys unprinted", async () => {
    const r = await cli(['import-inventory', path.join(FIXTURES, 'seed-002-inventory.ini'), '--node', 'nodename']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^overlay_key: must be exactly 32 characters, got 9/m);
    assert.match(r.stderr, /^anchors\[1\]: /m);
    assert.ok(!r.stderr.includes('SECRETKEY'));
  });

  it('import-inventory: usage errors say what to type (exit 2)', async () => {
    for (const args of [
      ['import-inventory'],
      ['import-inventory', path.join(FIXTURES, 'cluster.ini')],
      ['import-inventory', path.join(dir, 'none.ini'), '--node', 'a'],
    ]) {
      const r = await cli(args);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, /hepto-agent import-inventory FILE\.ini --node NAME/);
    }
  });

  it('admin init: a 0600 key in a new 0700 directory; the public half on the last line, admin_pub named on the line before; no private key printed', async () => {
    const file = path.join(dir, 'admin', 'etc-hepto', 'admin.key');
    const r = await cli(['admin', 'init', '--admin-key', file]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[lines.length - 1], /^ed25519:[A-Za-z0-9+/]{43}=$/);
    assert.match(lines[lines.length - 2], /every machine's config .*"admin_pub"/);
    assert.ok(lines[0].includes(file), lines[0]);
    assert.equal((await fs.stat(file)).mode & 0o777, 0o600);
    assert.equal((await fs.stat(path.dirname(file))).mode & 0o777, 0o700);
    const stored = JSON.parse(await fs.readFile(file, 'utf8')) as { public: string; private: string };
    assert.equal(stored.public, lines[lines.length - 1]);
    const seed = Buffer.from(stored.private, 'base64').subarray(0, 32);
    for (const secret of [stored.private, stored.private.slice(0, 20), seed.toString('base64').slice(0, 20), seed.toString('hex').slice(0, 20)]) {
      assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret), 'private key in the output');
    }

    // That last line is what admin_pub takes.
    const p = await write('with-admin.json', { ...baseConfig(), admin_pub: lines[lines.length - 1] });
    const v = await cli(['config', 'validate', '--config', p]);
    assert.equal(v.code, 0, v.stderr);

    // admin pub prints the same line, and only it.
    const pub = await cli(['admin', 'pub', '--admin-key', file]);
    assert.equal(pub.code, 0, pub.stderr);
    assert.equal(pub.stdout, lines[lines.length - 1] + '\n');
    assert.equal(pub.stderr, '');

    // A second init refuses, in one line saying how to see the public half, and keeps the key.
    const before = await fs.readFile(file, 'utf8');
    const again = await cli(['admin', 'init', '--admin-key', file]);
    assert.equal(again.code, 1);
    assert.equal(again.stdout, '');
    assert.equal(again.stderr.trim().split('\n').length, 1, again.stderr);
    assert.match(again.stderr, /already exists at .*; not overwritten/);
    assert.ok(again.stderr.includes(`hepto-agent admin pub --admin-key ${file}`), again.stderr);
    assert.equal(await fs.readFile(file, 'utf8'), before);
    for (const out of [pub.stdout, again.stderr]) assert.ok(!out.includes(stored.private.slice(0, 20)));
  });

  it('admin pub: a missing key is one line saying to run admin init (exit 1); a readable key is warned about', async () => {
    const missing = path.join(dir, 'no-such.key');
    const r = await cli(['admin', 'pub', '--admin-key', missing]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.ok(r.stderr.includes(`no admin key at ${missing}`) && r.stderr.includes('hepto-agent admin init'), r.stderr);
    const file = path.join(dir, 'open.key');
    assert.equal((await cli(['admin', 'init', '--admin-key', file])).code, 0);
    await fs.chmod(file, 0o644);
    const w = await cli(['admin', 'pub', '--admin-key', file]);
    assert.equal(w.code, 0);
    assert.match(w.stdout, /^ed25519:\S+\n$/);
    assert.match(w.stderr, /^warning: admin key .* is readable by other users \(mode 0644\); run chmod 600 /);
  });

  it('admin: usage errors exit 2 (extra argument, empty --admin-key, no subcommand); --help lists both and --admin-key', async () => {
    for (const args of [['admin', 'init', 'extra', '--admin-key', path.join(dir, 'x.key')], ['admin', 'pub', '--admin-key', ''], ['admin']]) {
      const r = await cli(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
    await assert.rejects(fs.stat(path.join(dir, 'x.key')), 'nothing written on a usage error');
    const h = await cli(['--help']);
    for (const w of ['admin init [--admin-key PATH]', 'admin pub [--admin-key PATH]', '--admin-key PATH']) assert.ok(h.stdout.includes(w), w);
    assert.match(h.stdout, /import-inventory FILE\.ini --node NAME +turn a hepto Ansible inventory into this node's JSON config/);
    assert.doesNotMatch(h.stdout, /seed/i, "the seeds are our sources, not the users' vocabulary");
  });

  it('config validate: a bad admin_pub is one line naming the field and where to copy it from, without the value', async () => {
    const secret = Buffer.alloc(64, 5).toString('base64');
    const p = await write('bad-admin.json', { ...baseConfig(), admin_pub: secret });
    const r = await cli(['config', 'validate', '--config', p]);
    assert.equal(r.code, 1);
    const line = r.stderr.split('\n').find((l) => l.startsWith('admin_pub: '));
    assert.ok(line, r.stderr);
    assert.match(line, /must start with "ed25519:"; copy it from the last line of "hepto-agent admin init" or from "hepto-agent admin pub"/);
    assert.ok(!r.stderr.includes(secret.slice(0, 16)));
  });

  it('import-inventory: an unknown node lists the inventory nodes (exit 1)', async () => {
    const r = await cli(['import-inventory', path.join(FIXTURES, 'cluster.ini'), '--node', 'pluto']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /mercury, venus, mars/);
  });
});
