import { strict as assert } from 'assert';
import { spawnSync } from 'child_process';
import { readFileSync } from 'fs';
import * as path from 'path';
import { AgentCluster, CLI, waitFor } from '../../helpers/agent-cluster';
import { fingerprint } from '../../../agent/net/identity';
import { NO_ADMIN_KEY_PROBLEM } from '../../../agent/daemon/agent';

function cli(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 15000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** The id_pub of an agent's identity file, as its record carries it. */
function idPub(storage: string, node: string): string {
  return (JSON.parse(readFileSync(path.join(storage, node, 'identity.json'), 'utf8')) as { public: string }).public;
}

describe('admin key in status: identity fingerprints and the no-admin problem', function () {
  this.timeout(40000);
  let cluster: AgentCluster;
  beforeEach(() => (cluster = new AgentCluster()));
  afterEach(async () => cluster.cleanup());

  it('without admin_pub: every member shows its identity fingerprint, and problems say what to do, once', async () => {
    const a = cluster.add('alpha');
    const b = cluster.add('beta', { anchors: [a] });
    cluster.start(a);
    cluster.start(b);
    await cluster.waitAllSee([a, b], { alpha: 'alive', beta: 'alive' });
    const doc = await cluster.status(a);
    const expected = Object.fromEntries(
      ['alpha', 'beta'].map((n) => [n, fingerprint(idPub(String(cluster.agents.find((x) => x.name === n)!.config.storage_base), n))]),
    );
    assert.deepEqual(Object.fromEntries(doc.members.map((m) => [m.name, m.identity])), expected);
    for (const fp of Object.values(expected)) assert.match(fp, /^[0-9a-f]{12}$/);
    assert.notEqual(expected.alpha, expected.beta);
    assert.equal(doc.problems.filter((p) => p === NO_ADMIN_KEY_PROBLEM).length, 1, JSON.stringify(doc.problems));
    assert.match(NO_ADMIN_KEY_PROBLEM, /any holder of the overlay key can take a node's name: run "hepto-agent admin init" .* as admin_pub$/);

    const table = cli(['status', '--config', a.configFile]);
    assert.equal(table.code, 0, table.err);
    assert.match(table.out, /MEMBER\s+STATE\s+ROLE.*\s+IDENTITY\n/);
    assert.match(table.out, new RegExp(`alpha \\(this\\)\\s+alive\\s+master.*\\s${expected.alpha}\\n`));
    assert.match(table.out, new RegExp(`beta\\s+alive\\s+node.*\\s${expected.beta}\\n`));
    assert.ok(table.out.includes(NO_ADMIN_KEY_PROBLEM));
  });

  it('with admin_pub from admin init: the problem is gone, and no private key shows in status or logs', async () => {
    const keyFile = path.join(cluster.root, 'admin.key');
    const init = cli(['admin', 'init', '--admin-key', keyFile]);
    assert.equal(init.code, 0, init.err);
    const pub = init.out.trimEnd().split('\n').pop()!;
    const priv = (JSON.parse(readFileSync(keyFile, 'utf8')) as { private: string }).private;
    const a = cluster.add('solo', { extra: { admin_pub: pub } });
    cluster.start(a);
    await cluster.waitStates(a, { solo: 'alive' });
    const doc = await waitFor('a status', async () => cluster.status(a));
    assert.ok(!doc.problems.includes(NO_ADMIN_KEY_PROBLEM), JSON.stringify(doc.problems));
    const json = cli(['status', '--json', '--config', a.configFile]);
    assert.equal(json.code, 0, json.err);
    assert.match(JSON.parse(json.out).members[0].identity, /^[0-9a-f]{12}$/);
    for (const text of [json.out, json.err, a.logs.join('\n')]) assert.ok(!text.includes(priv.slice(0, 20)), 'private key shown');
  });
});
