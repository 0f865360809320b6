import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import { AgentCluster, CLI } from '../../helpers/agent-cluster';

function cli(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 15000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('hepto-agent CLI', function () {
  this.timeout(30000);
  let cluster: AgentCluster;
  beforeEach(() => (cluster = new AgentCluster()));
  afterEach(async () => cluster.cleanup());

  it('--help lists every command of the contract and exits 0', () => {
    const r = cli(['--help']);
    assert.equal(r.code, 0);
    for (const c of ['run', 'status', 'config validate', 'keygen', 'import-inventory', 'doctor']) assert.ok(r.out.includes(c), c);
  });

  it('--version prints the package version', () => {
    const r = cli(['--version']);
    assert.equal(r.code, 0);
    assert.match(r.out.trim(), /^\d+\.\d+\.\d+/);
  });

  it('an unknown command or flag is a usage error (exit 2) with one line', () => {
    assert.equal(cli(['frobnicate']).code, 2);
    const r = cli(['status', '--bogus']);
    assert.equal(r.code, 2);
    assert.equal(r.err.trim().split('\n').length, 1);
  });

  it('status with no agent running says so in one line and exits 3', () => {
    const a = cluster.add('lonely');
    const r = cli(['status', '--config', a.configFile]);
    assert.equal(r.code, 3);
    assert.equal(r.err.trim().split('\n').length, 1);
    assert.match(r.err, /not running/);
  });

  it('status shows a table, and --json the contract fields', async () => {
    const a = cluster.add('solo');
    cluster.start(a);
    await cluster.waitStates(a, { solo: 'alive' });
    const t = cli(['status', '--config', a.configFile]);
    assert.equal(t.code, 0);
    assert.match(t.out, /MEMBER\s+STATE\s+ROLE/);
    assert.match(t.out, /solo \(this\)\s+alive\s+master/);
    const j = cli(['status', '--json', '--config', a.configFile]);
    const doc = JSON.parse(j.out);
    assert.equal(doc.node, 'solo');
    assert.ok(doc.version);
    assert.deepEqual(
      Object.keys(doc.members[0])
        .filter((k) => ['name', 'state', 'role', 'addresses', 'overlay_ip', 'last_seen', 'containers'].includes(k))
        .sort(),
      ['addresses', 'containers', 'last_seen', 'name', 'overlay_ip', 'role', 'state'],
    );
    assert.ok(Array.isArray(doc.containers) && Array.isArray(doc.problems));
    assert.ok(!j.out.includes('Tst0verlayKey') && !j.out.includes('Tst1clusterKey'), 'no key in status');
  });

  it('run refuses an invalid config with every problem and no key, exit 1', () => {
    const a = cluster.add('bad', { extra: { mtu: 99, overlay_key: 'shortSECRET', bogus: 1 } });
    const r = cli(['run', '--config', a.configFile]);
    assert.equal(r.code, 1);
    assert.match(r.err, /mtu/);
    assert.match(r.err, /overlay_key/);
    assert.match(r.err, /bogus/);
    assert.ok(!r.err.includes('shortSECRET'));
  });
});
