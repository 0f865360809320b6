/**
 * Invitations end to end between real agents on loopback (issue 13): the
 * admin runs `hepto-agent invite`, a new machine whose config holds only the
 * token enrols through the anchor, writes its keys into its own config and
 * joins, admitted; a spent, expired or forged token is refused with one line.
 */
import { strict as assert } from 'assert';
import { readFileSync, statSync, writeFileSync } from 'fs';
import * as path from 'path';
import { AgentCluster, CLUSTER_KEY, OVERLAY_KEY, waitFor, type AgentHandle } from '../../helpers/agent-cluster';
import { adminInit, admissionFile, assertNoSecrets, cli, logObjects, member, show, type AdminKeyFile } from '../../helpers/admin-cli';

const AGENT_KEY = 'Tst2agentKey0123456789abcdefgXYZ';

/** An agent whose config holds only its name, its network settings and the invitation. */
function invited(cluster: AgentCluster, name: string, token: string): AgentHandle {
  const a = cluster.add(name);
  const config: Record<string, unknown> = {
    node: name,
    invite: token,
    gossip_port: a.config.gossip_port,
    gossip_listen: a.config.gossip_listen,
    storage_base: a.config.storage_base,
    control_socket: a.config.control_socket,
    runtime: 'none',
  };
  writeFileSync(a.configFile, JSON.stringify(config, null, 2), { mode: 0o600 });
  a.config = config;
  return a;
}

function configOf(a: AgentHandle): Record<string, unknown> {
  return JSON.parse(readFileSync(a.configFile, 'utf8')) as Record<string, unknown>;
}

/** `hepto-agent invite` on the admin machine; the token from its last line. */
function invite(alpha: AgentHandle, key: AdminKeyFile, args: string[] = []): string {
  const r = cli(['invite', '--admin-key', key.file, '--config', alpha.configFile, ...args]);
  assert.equal(r.code, 0, show(r));
  const last = r.out.trimEnd().split('\n').pop()!;
  const m = /HEPTO_INVITE=(hepto1\.[A-Za-z0-9_.-]+) \.\/install\.sh$/.exec(last);
  assert.ok(m, `last line: ${last}`);
  return m[1] as string;
}

/** Resolves with the exit code once the agent process has ended by itself. */
async function exited(a: AgentHandle, timeoutMs = 20000): Promise<number | null> {
  await waitFor(`${a.name} to exit`, () => (a.proc === null ? { done: true } : undefined), timeoutMs);
  await new Promise((r) => setTimeout(r, 300)); // its last lines of output
  return exitCodes.get(a.name) ?? null;
}
const exitCodes = new Map<string, number | null>();

describe('invitations: enrolling real agents', function () {
  this.timeout(120000);
  let cluster: AgentCluster;
  let key: AdminKeyFile;
  let alpha: AgentHandle;
  const tokens: string[] = [];

  beforeEach(async () => {
    process.env.HEPTO_JOIN_ENV = '/nonexistent/join.env';
    cluster = new AgentCluster();
    key = adminInit(cluster);
    alpha = cluster.add('alpha', { extra: { admin_pub: key.pub, agent_key: AGENT_KEY } });
    cluster.start(alpha);
    await cluster.waitStates(alpha, { alpha: 'alive' });
    const r = cli(['admit', 'alpha', '--admin-key', key.file, '--config', alpha.configFile]);
    assert.equal(r.code, 0, show(r));
    await waitFor('alpha admitted', async () => member(await cluster.status(alpha), 'alpha')?.admitted_at);
  });

  afterEach(async () => {
    assertNoSecrets(cluster, [key]);
    // The token is a secret too: only invite's own output shows it.
    for (const a of cluster.agents) for (const t of tokens) assert.ok(!a.logs.join('\n').includes(t), `the invitation token is in ${a.name}'s log`);
    await cluster.cleanup();
  });

  const start = (a: AgentHandle): void => {
    cluster.start(a);
    a.proc?.on('exit', (code) => exitCodes.set(a.name, code));
  };

  it('a machine holding only the token enrols, writes its keys, and joins admitted, without admit', async () => {
    const token = invite(alpha, key, ['--node', 'beta']);
    tokens.push(token);
    const beta = invited(cluster, 'beta', token);
    start(beta);
    await cluster.waitAllSee([alpha, beta], { alpha: 'alive', beta: 'alive' }, 30000);
    const conf = configOf(beta);
    assert.equal(conf.invite, undefined, 'the invitation is gone from the config');
    assert.equal(conf.overlay_key, OVERLAY_KEY);
    assert.equal(conf.agent_key, AGENT_KEY);
    assert.equal(conf.cluster_key, undefined, 'never the k3s server token');
    assert.equal(conf.admin_pub, key.pub);
    assert.equal(conf.master, 'alpha');
    assert.ok(Array.isArray(conf.anchors) && (conf.anchors as string[]).includes(`${alpha.host}:${alpha.port}`), JSON.stringify(conf.anchors));
    assert.equal(statSync(beta.configFile).mode & 0o777, 0o600);
    const adm = JSON.parse(readFileSync(admissionFile(beta), 'utf8')) as { inv?: { anchor: string; body: { node?: string } } };
    assert.equal(adm.inv?.anchor, 'alpha');
    assert.equal(adm.inv?.body.node, 'beta');
    const doc = await cluster.status(alpha);
    assert.ok(member(doc, 'beta')?.admitted_at, 'alpha sees beta admitted');
    assert.ok(logObjects(alpha).some((o) => o.msg === 'granted an enrolment' && o.node === 'beta'));
    assert.ok(logObjects(beta).some((o) => o.msg === 'enrolled: this machine is a member now' && o.through === 'alpha'));
    assert.ok(!CLUSTER_KEY || !readFileSync(beta.configFile, 'utf8').includes(CLUSTER_KEY));
    // It stays a member across a restart: the enrolled config and the saved admission.
    await cluster.kill(beta, 'SIGTERM');
    start(beta);
    await cluster.waitAllSee([alpha, beta], { alpha: 'alive', beta: 'alive' }, 30000);
  });

  it('refuses a spent, an expired and a forged invitation, with one line each, and the machine never joins', async () => {
    const token = invite(alpha, key);
    tokens.push(token);
    const beta = invited(cluster, 'beta', token);
    start(beta);
    await cluster.waitAllSee([alpha], { beta: 'alive' }, 30000);

    const gamma = invited(cluster, 'gamma', token);
    start(gamma);
    assert.equal(await exited(gamma), 4, gamma.logs.join('\n'));
    assert.match(gamma.logs.join('\n'), /the invitation is spent: 1 of 1 use taken/);

    const short = invite(alpha, key, ['--ttl', '1s']);
    tokens.push(short);
    await new Promise((r) => setTimeout(r, 1200));
    const delta = invited(cluster, 'delta', short);
    start(delta);
    assert.equal(await exited(delta), 4);
    assert.match(delta.logs.join('\n'), /expired on/);

    const parts = invite(alpha, key).split('.');
    const forged = [
      parts[0],
      Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(parts[1] as string, 'base64url').toString()), uses: 50 })).toString('base64url'),
      parts[2],
      parts[3],
    ].join('.');
    tokens.push(forged);
    const eps = invited(cluster, 'epsilon', forged);
    start(eps);
    assert.equal(await exited(eps), 4);
    assert.match(eps.logs.join('\n'), /signature does not verify/);

    const doc = await cluster.status(alpha);
    for (const n of ['gamma', 'delta', 'epsilon']) assert.equal(member(doc, n), undefined, `${n} never became a member`);
  });

  it('an anchor without agent_key refuses, never handing over the server token; the next anchor grants', async () => {
    const bare = cluster.add('omega', { anchors: [alpha], extra: { admin_pub: key.pub } });
    // omega is not the master, so it needs a k3s key: it holds only the server token.
    cluster.start(bare);
    await cluster.waitStates(bare, { omega: 'alive' });
    assert.equal(
      cli([
        'admit',
        'omega',
        '--admin-key',
        key.file,
        '--config',
        alpha.configFile,
        '--identity',
        `ed25519:${(JSON.parse(readFileSync(path.join(String(bare.config.storage_base), 'omega', 'identity.json'), 'utf8')) as { public: string }).public}`,
      ]).code,
      0,
    );
    await waitFor('omega admitted', async () => member(await cluster.status(bare), 'omega')?.admitted_at, 30000);
    // Made on omega: its first anchor is omega itself, then omega's anchor alpha.
    const token = invite(bare, key);
    tokens.push(token);
    const beta = invited(cluster, 'beta', token);
    start(beta);
    await cluster.waitAllSee([alpha, beta], { alpha: 'alive', beta: 'alive' }, 30000);
    assert.ok(
      logObjects(bare).some((o) => o.msg === 'refused an enrolment: this anchor has no agent_key to hand over' && o.node === 'beta'),
      'omega refused',
    );
    assert.ok(
      logObjects(beta).some((o) => o.msg === 'enrolled: this machine is a member now' && o.through === 'alpha'),
      'alpha granted it',
    );
    assert.equal(configOf(beta).cluster_key, undefined);
  });
});
