/**
 * Issue 13, "only the master holds the k3s server token": which token each k3s
 * gets (docs/upstream.md K25-K29). The master's server gets agent_key through
 * --agent-token-file only where its datastore allows it; a non-master joins
 * with K10<master's k3s_ca>::node:<agent_key>, waits for that hash, and status
 * says where a machine holds the server token it should not.
 */
import assert from 'node:assert/strict';
import { createHash } from 'crypto';
import {
  CLUSTER_KEY_HELD_PROBLEM,
  CLUSTER_KEY_JOIN_PROBLEM,
  computeDesired,
  masterCaHash,
  NO_AGENT_KEY_PROBLEM,
  type DesiredState,
} from '../../../agent/runtime/desired';
import {
  parsePasswd,
  planAgentToken,
  planAgentTokenFile,
  readServerCaHash,
  secureAgentToken,
  serverCaPath,
  serverPasswdPath,
} from '../../../agent/runtime/k3s-token';
import { buildSupervisorStatus } from '../../../agent/runtime/runtime-status';
import { emptyHistory } from '../../../agent/runtime/planner';
import { K3S_AGENT_TOKEN_FILE, K3S_TOKEN_FILE, k3sDataDir, type ContainerSpec } from '../../../agent/runtime/specs';
import type { HeptoConfig } from '../../../shared/config/types';
import { AGENT_KEY, CLUSTER_KEY, OVERLAY_KEY, testConfig, view } from './fixtures';

const FACTS = { defaultIface: 'eth0', netavarkVersion: '1.4.0' };
const CA = 'c'.repeat(64);
const OTHER_CA = 'd'.repeat(64);
const OLD_AGENT = 'TESTONLYoldAgentKEY0123456789abc';
const WHERE = { dataDir: '/srv/master1/k3s', node: 'master1' };
/** server/token as k3s writes it (docs/upstream.md K10). */
const TOKEN_FILE = `K10${'a'.repeat(64)}::server:${CLUSTER_KEY}\n`;
/** server/cred/passwd as k3s writes it (K25): map order, so either order. */
const passwd = (node: string, server = CLUSTER_KEY): { text: string } => ({ text: `${server},server,server,k3s:server\n${node},node,node,k3s:agent\n` });

const k3s = (d: DesiredState, node?: string) => d.containers.find((c) => c.role === 'k3s' && (node === undefined || c.node === node))!;
const cmd = (s: ContainerSpec): string[] => s.create.Cmd as string[];
const fileOf = (s: ContainerSpec, inside: string): string | undefined => s.files.find((f) => f.path.endsWith(`/${inside.split('/').pop()}`))?.content;

/** Every key and secure token that must never show in a problem, argv, label or env. */
const SECRETS = [OVERLAY_KEY, CLUSTER_KEY, AGENT_KEY, OLD_AGENT];
function noSecretIn(texts: string[]): void {
  for (const t of texts) for (const k of SECRETS) assert.ok(!t.includes(k), `a key in: ${t}`);
}

describe('runtime/k3s-token: the server agent token and its datastore (K25, K28)', () => {
  it('a new datastore (no server/token, or an empty one): the server gets agent_key, or no agent token without one', () => {
    for (const token of [null, '', '\n']) {
      assert.deepEqual(planAgentToken(token, { missing: true }, AGENT_KEY, WHERE), { token: AGENT_KEY, problem: null });
      assert.deepEqual(planAgentToken(token, { missing: true }, null, WHERE), { token: null, problem: null });
    }
  });

  it('an existing datastore whose node password is agent_key: agent_key (steady state of one made with it)', () => {
    assert.deepEqual(planAgentToken(TOKEN_FILE, passwd(AGENT_KEY), AGENT_KEY, WHERE), { token: AGENT_KEY, problem: null });
  });

  it('an existing datastore made without an agent token: no flag, and a problem saying why and that rotate-keys gives it one', () => {
    const plan = planAgentToken(TOKEN_FILE, passwd(CLUSTER_KEY), AGENT_KEY, WHERE);
    assert.equal(plan.token, null, 'never adds an agent token to an existing datastore');
    assert.equal(
      plan.problem,
      'agent_key is set, but the k3s datastore in /srv/master1/k3s was made without an agent token, and k3s saves its passwords in the datastore only when it makes it, ' +
        'so a server whose agent token changes starts once, then fails at its next restart with "…/server/cred/passwd newer than datastore and could cause a cluster outage" (docs/upstream.md K28): ' +
        'so the server keeps running without it, and the other machines still need cluster_key (the server token) to join k3s; ' +
        "to give it one, run hepto-agent rotate-keys on the machine with the admin key: every member gets a new agent_key, and the master's server takes it (its datastore re-synced)",
    );
    // Without agent_key the same datastore is as it always was: nothing to say here (desired.ts says the rest).
    assert.deepEqual(planAgentToken(TOKEN_FILE, passwd(CLUSTER_KEY), null, WHERE), { token: null, problem: null });
  });

  it('a datastore holding another agent token keeps it (a change would fail the next restart too), with a problem', () => {
    const changed = planAgentToken(TOKEN_FILE, passwd(OLD_AGENT), AGENT_KEY, WHERE);
    assert.equal(changed.token, OLD_AGENT);
    assert.match(
      changed.problem!,
      /^agent_key changed, but the k3s datastore in \/srv\/master1\/k3s holds another agent token, .*newer than datastore.*: so the server keeps the old one, .*put the old agent_key back on every machine/,
    );
    const removed = planAgentToken(TOKEN_FILE, passwd(OLD_AGENT), null, WHERE);
    assert.equal(removed.token, OLD_AGENT, 'dropping the flag would change the node password as well');
    assert.match(
      removed.problem!,
      /^agent_key is not set, but the k3s datastore in \/srv\/master1\/k3s holds an agent token, .*so the server keeps it; put the agent_key it was made with back/,
    );
  });

  it('a passwd that is missing, unreadable or has no node user: no flag; with agent_key a problem naming the file', () => {
    for (const [pw, why] of [
      [{ missing: true } as const, 'is missing'],
      [{ error: 'EACCES' }, 'cannot be read (EACCES)'],
      [{ text: `${CLUSTER_KEY},server,server,k3s:server\n` }, 'has no "node" user'],
    ] as const) {
      const plan = planAgentToken(TOKEN_FILE, pw, AGENT_KEY, WHERE);
      assert.equal(plan.token, null);
      assert.ok(plan.problem!.startsWith(`agent_key is set, but /srv/master1/k3s/server/cred/passwd ${why}, so whether the k3s datastore`), plan.problem!);
      assert.deepEqual(planAgentToken(TOKEN_FILE, pw, null, WHERE), { token: null, problem: null });
    }
  });

  it('a server token given in K10 form is compared by its password; no problem ever holds a key', () => {
    const k10 = `K10${'b'.repeat(64)}::server:${CLUSTER_KEY}`;
    assert.equal(planAgentToken(k10, passwd(CLUSTER_KEY), AGENT_KEY, WHERE).token, null);
    const problems = [
      planAgentToken(TOKEN_FILE, passwd(CLUSTER_KEY), AGENT_KEY, WHERE),
      planAgentToken(TOKEN_FILE, passwd(OLD_AGENT), AGENT_KEY, WHERE),
      planAgentToken(TOKEN_FILE, passwd(OLD_AGENT), null, WHERE),
      planAgentToken(TOKEN_FILE, { missing: true }, AGENT_KEY, WHERE),
    ].map((p) => p.problem!);
    noSecretIn(problems);
  });

  it("parsePasswd reads k3s's CSV (Go encoding/csv quoting) in any order", () => {
    const users = parsePasswd('"pw,with ""quotes""",node,node,k3s:agent\r\nS3rv3r,server,server,k3s:server\n\n');
    assert.equal(users.get('node'), 'pw,with "quotes"');
    assert.equal(users.get('server'), 'S3rv3r');
    assert.equal(parsePasswd('').size, 0);
  });

  it('planAgentTokenFile reads server/token, then server/cred/passwd, under the data dir the spec binds', async () => {
    const dir = k3sDataDir(testConfig(), 'master1');
    assert.equal(serverPasswdPath(dir), '/srv/master1/k3s/server/cred/passwd');
    assert.equal(serverCaPath(dir), '/srv/master1/k3s/server/tls/server-ca.crt');
    const asked: string[] = [];
    const files: Record<string, string> = { '/srv/master1/k3s/server/token': TOKEN_FILE, '/srv/master1/k3s/server/cred/passwd': passwd(AGENT_KEY).text };
    const read = async (f: string): Promise<string> => {
      asked.push(f);
      if (f in files) return files[f];
      throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
    };
    assert.deepEqual(await planAgentTokenFile(dir, 'master1', AGENT_KEY, read), { token: AGENT_KEY, problem: null });
    assert.deepEqual(asked, ['/srv/master1/k3s/server/token', '/srv/master1/k3s/server/cred/passwd'], 'token first: k3s writes passwd before it');
    delete files['/srv/master1/k3s/server/token'];
    assert.deepEqual(await planAgentTokenFile(dir, 'master1', AGENT_KEY, read), { token: AGENT_KEY, problem: null }, 'no token file: a new datastore');
    const eacces = async (): Promise<string> => {
      throw Object.assign(new Error('EACCES'), { code: 'EACCES' });
    };
    assert.deepEqual(
      await planAgentTokenFile(dir, 'master1', AGENT_KEY, eacces),
      { token: null, problem: null },
      'an unreadable token file: no flag (the token check reports it)',
    );
  });

  it('readServerCaHash: sha256 of the CA file bytes, lowercase hex (K26); null while missing or empty', async () => {
    const pem = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const want = createHash('sha256').update(pem).digest('hex');
    let asked = '';
    assert.equal(await readServerCaHash('/srv/master1/k3s', async (f) => ((asked = f), pem)), want);
    assert.equal(asked, '/srv/master1/k3s/server/tls/server-ca.crt');
    assert.match(want, /^[0-9a-f]{64}$/);
    assert.equal(await readServerCaHash('/d', async () => Buffer.alloc(0)), null);
    assert.equal(await readServerCaHash('/d', async () => Promise.reject(Object.assign(new Error('x'), { code: 'ENOENT' }))), null);
  });

  it('secureAgentToken: K10<hash>::node:<key> (K26)', () => {
    assert.equal(secureAgentToken(CA, AGENT_KEY), `K10${CA}::node:${AGENT_KEY}`);
  });
});

describe("runtime/desired: the master's k3s server and its agent token", () => {
  const master = (over: Partial<HeptoConfig> = {}) => testConfig(over);

  it('with agent_key on a new datastore: --agent-token-file, a 0600 file holding agent_key, and no problem', () => {
    const d = computeDesired(master({ agent_key: AGENT_KEY }), view(['master1', 'alive']), FACTS);
    const s = k3s(d).spec!;
    const c = cmd(s);
    assert.deepEqual(c.slice(c.indexOf('--token-file'), c.indexOf('--token-file') + 4), [
      '--token-file',
      K3S_TOKEN_FILE,
      '--agent-token-file',
      K3S_AGENT_TOKEN_FILE,
    ]);
    assert.equal(c[0], 'server');
    assert.deepEqual(s.files, [
      { path: '/srv/master1/rancher-k3s/hepto-token', content: CLUSTER_KEY },
      { path: '/srv/master1/rancher-k3s/hepto-agent-token', content: AGENT_KEY },
    ]);
    assert.deepEqual(d.problems, []);
    noSecretIn([JSON.stringify(s.create)]);
  });

  it('with agent_key whose datastore exists without an agent token: no flag, as today, and the datastore problem', () => {
    const plan = planAgentToken(TOKEN_FILE, passwd(CLUSTER_KEY), AGENT_KEY, WHERE);
    const d = computeDesired(master({ agent_key: AGENT_KEY }), view(['master1', 'alive']), FACTS, {}, { master1: plan });
    const s = k3s(d).spec!;
    assert.ok(!cmd(s).includes('--agent-token-file'));
    assert.deepEqual(
      s.files.map((f) => f.content),
      [CLUSTER_KEY],
    );
    const today = k3s(computeDesired(master(), view(['master1', 'alive']), FACTS)).spec!;
    assert.equal(s.hash, today.hash, 'the very spec of a master without agent_key: the running server is not recreated');
    assert.deepEqual(d.problems, [plan.problem]);
    assert.ok(!d.problems.includes(NO_AGENT_KEY_PROBLEM));
  });

  it('with agent_key matching the datastore: the flag (same spec as on the new datastore, so no recreate)', () => {
    const fresh = k3s(computeDesired(master({ agent_key: AGENT_KEY }), view(['master1', 'alive']), FACTS)).spec!;
    const d = computeDesired(
      master({ agent_key: AGENT_KEY }),
      view(['master1', 'alive']),
      FACTS,
      {},
      { master1: planAgentToken(TOKEN_FILE, passwd(AGENT_KEY), AGENT_KEY, WHERE) },
    );
    assert.equal(k3s(d).spec!.hash, fresh.hash);
    assert.deepEqual(d.problems, []);
  });

  it('a datastore with another agent token: the server keeps that one in its file', () => {
    const plan = planAgentToken(TOKEN_FILE, passwd(OLD_AGENT), AGENT_KEY, WHERE);
    const d = computeDesired(master({ agent_key: AGENT_KEY }), view(['master1', 'alive']), FACTS, {}, { master1: plan });
    assert.equal(fileOf(k3s(d).spec!, K3S_AGENT_TOKEN_FILE), OLD_AGENT);
    assert.ok(d.problems.includes(plan.problem!));
  });

  it('without agent_key: as today (no flag), and a problem saying the others need the server token and what to do', () => {
    const d = computeDesired(master(), view(['master1', 'alive']), FACTS);
    assert.ok(!cmd(k3s(d).spec!).includes('--agent-token-file'));
    assert.deepEqual(d.problems, [NO_AGENT_KEY_PROBLEM]);
    assert.match(NO_AGENT_KEY_PROBLEM, /cluster_key, the k3s server token/);
    assert.match(NO_AGENT_KEY_PROBLEM, /set agent_key \("hepto-agent keygen"\) in the master's config and give it to the others/);
  });

  it('a master waiting on a changed cluster_key shows only that problem', () => {
    const d = computeDesired(master(), view(['master1', 'alive']), FACTS, { master1: 'cluster_key changed, …' });
    assert.equal(k3s(d).spec, null);
    assert.deepEqual(d.problems, ['cluster_key changed, …']);
  });
});

describe("runtime/desired: a non-master joins with the agent token pinned to the master's CA", () => {
  const node = (over: Partial<HeptoConfig> = {}) => testConfig({ node: 'w1', master: 'm1', agent_key: AGENT_KEY, cluster_key: null, ...over });

  it("waits, with one sentence, until the master's record carries k3s_ca; wesher runs meanwhile; no key problem", () => {
    const d = computeDesired(node(), view(['w1', 'alive'], ['m1', 'alive', { role: 'master' }]), FACTS);
    const k = k3s(d);
    assert.equal(k.spec, null);
    assert.ok(k.waiting!.startsWith('k3s on w1 is waiting for the master "m1" to publish its k3s CA hash in gossip; '), k.waiting!);
    assert.ok(!k.waiting!.includes('\n'));
    assert.deepEqual(d.problems, [k.waiting]);
    assert.ok(d.containers.find((c) => c.role === 'wesher')!.spec);
    // Status shows it as waiting, with that reason.
    const st = buildSupervisorStatus({ desired: d, observed: [], history: emptyHistory(), podman: 'connected', podmanProblem: null, now: 0 });
    assert.equal(st.containers.find((c) => c.role === 'k3s')!.state, 'waiting');
    assert.equal(st.containers.find((c) => c.role === 'k3s')!.last_error, k.waiting);
    assert.equal(st.k3sCa, null);
  });

  it('with k3s_ca: its token file holds K10<k3s_ca>::node:<agent_key>; no agent-token flag; no key in argv', () => {
    const d = computeDesired(node(), view(['w1', 'alive'], ['m1', 'alive', { role: 'master', k3s_ca: CA }]), FACTS);
    const s = k3s(d).spec!;
    assert.equal(cmd(s)[0], 'agent');
    assert.ok(!cmd(s).includes('--agent-token-file'));
    assert.deepEqual(s.files, [{ path: '/srv/w1/rancher-k3s/hepto-token', content: `K10${CA}::node:${AGENT_KEY}`, live: true }]);
    assert.deepEqual(d.problems, []);
    noSecretIn([JSON.stringify(s.create)]);
    assert.ok(!JSON.stringify(s.create).includes(CA), 'the pinned hash is in the file only');
    // A new CA (a new master datastore) changes the spec: the agent is recreated with the new pin.
    const moved = k3s(computeDesired(node(), view(['w1', 'alive'], ['m1', 'alive', { k3s_ca: OTHER_CA }]), FACTS)).spec!;
    assert.notEqual(moved.hash, s.hash);
    assert.equal(moved.files[0].content, `K10${OTHER_CA}::node:${AGENT_KEY}`);
  });

  it("the master's own record gives the hash; a member hosting the master as an extra node does when no member has its name", () => {
    const hosted = view(['w1', 'alive'], ['box', 'alive', { containers: { m1: { wesher: 'running', k3s: 'running' } }, k3s_ca: CA }]);
    assert.equal(masterCaHash(node(), hosted), CA);
    assert.equal(k3s(computeDesired(node(), hosted, FACTS)).spec!.files[0].content, `K10${CA}::node:${AGENT_KEY}`);
    // A member named as the master wins over another's claim, even while its record has no hash yet.
    const claimed = view(['w1', 'alive'], ['m1', 'alive'], ['box', 'alive', { containers: { m1: { wesher: 'running', k3s: 'running' } }, k3s_ca: OTHER_CA }]);
    assert.equal(masterCaHash(node(), claimed), null);
  });

  it('with cluster_key only (an older config): as today, the server token, and a problem saying how to remove it', () => {
    const d = computeDesired(node({ agent_key: null, cluster_key: CLUSTER_KEY }), view(['w1', 'alive'], ['m1', 'alive', { k3s_ca: CA }]), FACTS);
    assert.deepEqual(
      k3s(d).spec!.files.map((f) => f.content),
      [CLUSTER_KEY],
    );
    assert.deepEqual(d.problems, [CLUSTER_KEY_JOIN_PROBLEM]);
    assert.equal(
      CLUSTER_KEY_JOIN_PROBLEM,
      "this machine joins k3s with cluster_key, the k3s server token, which makes its owner Kubernetes admin: put the master's agent_key in its config as agent_key and remove cluster_key",
    );
    // ... and the same before the master is even known.
    assert.ok(computeDesired(node({ agent_key: null, cluster_key: CLUSTER_KEY }), view(['w1', 'alive']), FACTS).problems.includes(CLUSTER_KEY_JOIN_PROBLEM));
  });

  it('with both: joins with agent_key, and a problem telling to remove cluster_key', () => {
    const d = computeDesired(node({ cluster_key: CLUSTER_KEY }), view(['w1', 'alive'], ['m1', 'alive', { k3s_ca: CA }]), FACTS);
    assert.deepEqual(
      k3s(d).spec!.files.map((f) => f.content),
      [`K10${CA}::node:${AGENT_KEY}`],
    );
    assert.deepEqual(d.problems, [CLUSTER_KEY_HELD_PROBLEM]);
    assert.match(CLUSTER_KEY_HELD_PROBLEM, /remove cluster_key from its config$/);
  });

  it('still waits for the master to be seen alive first', () => {
    const k = k3s(computeDesired(node(), view(['w1', 'alive'], ['m1', 'dead', { k3s_ca: CA }]), FACTS));
    assert.equal(k.spec, null);
    assert.match(k.waiting!, /waits for the master node m1 to be seen alive/);
  });

  it("on the master's machine, an extra node joins the way the local server lets agents in", () => {
    const extra = { node: 'w2', iface: 'eth0', ip: ['2001:db8::22/64'], gw: [], network_mode: 'macvlan' as const };
    const cfg = testConfig({ agent_key: AGENT_KEY, nodes: [extra] });
    const self = view([
      'master1',
      'alive',
      { role: 'master', k3s_ca: CA, containers: { master1: { wesher: 'running', k3s: 'running' }, w2: { wesher: 'running', k3s: 'waiting' } } },
    ]);
    // The server has the agent token: K10 form with the master's own published hash.
    const d = computeDesired(cfg, self, FACTS);
    assert.equal(k3s(d, 'w2').spec!.files[0].content, `K10${CA}::node:${AGENT_KEY}`);
    assert.deepEqual(d.problems, [], "the master's own machine holds cluster_key rightly");
    // Its datastore refused the agent token: the server token, as today.
    const plan = planAgentToken(TOKEN_FILE, passwd(CLUSTER_KEY), AGENT_KEY, WHERE);
    assert.equal(k3s(computeDesired(cfg, self, FACTS, {}, { master1: plan }), 'w2').spec!.files[0].content, CLUSTER_KEY);
  });
});
