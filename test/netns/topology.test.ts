/**
 * The multi-host harness itself: hosts reach each other over IPv6 and IPv4,
 * partitions and blackholes really cut traffic, rules are cleared, and
 * destroy() leaves no namespace behind (nor does a crashed run, next time).
 */
import { strict as assert } from 'assert';
import { execFile, execFileSync } from 'child_process';
import { NetnsTopology, cleanupStaleNetns, type NetnsHost } from '../helpers/netns';

/** Tries a TCP connection from `from` to `to`:port inside the namespaces; resolves 'ok', 'refused' or 'timeout'. */
function dial(from: NetnsHost, host: string, port: number, timeoutMs = 800): Promise<string> {
  const script =
    `const s=require('net').connect({host:${JSON.stringify(host)},port:${port}});` +
    `const t=setTimeout(()=>{console.log('timeout');process.exit(0)},${timeoutMs});` +
    `s.on('connect',()=>{console.log('ok');process.exit(0)});` +
    `s.on('error',(e)=>{console.log(e.code==='ECONNREFUSED'?'refused':e.code);process.exit(0)});`;
  return new Promise((resolve, reject) => {
    execFile('ip', ['netns', 'exec', from.ns, process.execPath, '-e', script], { timeout: 10000 }, (err, stdout) =>
      err ? reject(err) : resolve(stdout.trim()),
    );
  });
}

describe('netns harness (multi-host topology)', function () {
  this.timeout(60000);
  let topo: NetnsTopology;

  before(() => {
    topo = NetnsTopology.create(3);
  });
  after(() => {
    topo?.destroy();
  });
  afterEach(() => topo.clearRules());

  it('gives every host its own IPv6 and IPv4 address, usable at once, and a closed port answers refused', async () => {
    const [a, b, c] = topo.hosts;
    assert.notEqual(a.v6, b.v6);
    assert.match(a.v6, /^2001:db8:[0-9a-f]+::1$/);
    assert.equal(c.v4, '192.0.2.3');
    const addrs = topo.exec(b, 'ip', ['-o', 'addr', 'show', 'dev', 'eth0']);
    assert.ok(addrs.includes(`${b.v6}/64`) && !addrs.includes('tentative'), addrs);
    assert.equal(await dial(a, b.v6, 7947), 'refused');
    assert.equal(await dial(c, a.v4, 7947), 'refused');
  });

  it('partition drops traffic both ways between the groups only; clearRules heals it', async () => {
    const [a, b, c] = topo.hosts;
    topo.partition([a], [b]);
    const seen = await Promise.all([dial(a, b.v6, 7947), dial(b, a.v6, 7947), dial(b, a.v4, 7947), dial(c, a.v6, 7947)]);
    assert.deepEqual(seen, ['timeout', 'timeout', 'timeout', 'refused']);
    topo.clearRules();
    assert.deepEqual(topo.rules(a), []);
    assert.equal(await dial(a, b.v6, 7947), 'refused');
  });

  it('blackhole makes a host look powered off to TCP', async () => {
    const [a, b] = topo.hosts;
    topo.blackhole(b);
    assert.equal(await dial(a, b.v6, 7947), 'timeout');
    assert.equal(topo.rules(b).filter((r) => r.includes('DROP')).length, 2);
  });

  it("destroy() removes every namespace, and a dead run's namespaces are swept by the next", () => {
    const extra = NetnsTopology.create(2);
    assert.equal(extra.leftovers().length, 3);
    extra.destroy();
    assert.deepEqual(extra.leftovers(), []);
    // A namespace named after a pid that cannot exist stands for a crashed run.
    const stale = 'hepto-4194999-x-1';
    execFileSync('ip', ['netns', 'add', stale]);
    try {
      assert.ok(cleanupStaleNetns().includes(stale));
    } finally {
      execFileSync('sh', ['-c', `ip netns del ${stale} 2>/dev/null || true`]);
    }
  });
});
