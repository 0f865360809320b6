import { strict as assert } from 'assert';
import { execFile } from 'child_process';
import { promises as fs } from 'fs';
import * as os from 'os';
import * as path from 'path';
import { validateConfig } from '../../../shared/config/validate';
import { baseConfig, CLI, CLUSTER_KEY, FIXTURES, OVERLAY_KEY } from './helpers';

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
  for (const k of [OVERLAY_KEY, CLUSTER_KEY]) {
    assert.ok(!r.stderr.includes(k), 'key on stderr');
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
    for (const args of [['import-inventory'], ['import-inventory', path.join(FIXTURES, 'cluster.ini')], ['import-inventory', path.join(dir, 'none.ini'), '--node', 'a']]) {
      const r = await cli(args);
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, /hepto-agent import-inventory FILE\.ini --node NAME/);
    }
  });

  it('import-inventory: an unknown node lists the inventory nodes (exit 1)', async () => {
    const r = await cli(['import-inventory', path.join(FIXTURES, 'cluster.ini'), '--node', 'pluto']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /mercury, venus, mars/);
  });
});
