/**
 * Key rotation, the runtime half (issue 13), as pure planning: what a new
 * overlay key and a new agent_key change in the specs and in the plan, which
 * agent token the master's server gets, and the re-sync request's inputs.
 * docs/upstream.md W25, K28, K31-K35.
 */
import assert from 'node:assert/strict';
import { createHash } from 'crypto';
import { DEFAULT_BACKOFF } from '../../../agent/runtime/backoff';
import { computeDesired, type DesiredState } from '../../../agent/runtime/desired';
import { planAgentToken } from '../../../agent/runtime/k3s-token';
import { planTokenRotate, supervisorLoopback, TOKEN_ROTATE_PATH } from '../../../agent/runtime/k3s-resync';
import { emptyHistory, planReconcile, specMatches, type Observed, type ObservedContainer } from '../../../agent/runtime/planner';
import { BASE_HASH_LABEL } from '../../../agent/runtime/spec-hash';
import { AGENT_KEY, CLUSTER_KEY, runningAsDesired, testConfig, view } from './fixtures';

const NOW = 1_700_000_000_000;
const OPTS = { policy: DEFAULT_BACKOFF, random: () => 0.5 };
const FACTS = { defaultIface: 'eth0', netavarkVersion: '1.4.0' };
const NEW_OVERLAY = 'TESTONLYnewOVERLAYkey0123456789a';
const NEW_AGENT = 'TESTONLYnewAGENTkey0123456789abc';
const CA = 'c'.repeat(64);
const WHERE = { dataDir: '/srv/master1/k3s', node: 'master1' };
const TOKEN_FILE = `K10${CA}::server:${CLUSTER_KEY}\n`;
const passwd = (node: string): { text: string } => ({ text: `${node},node,node,k3s:agent\n${CLUSTER_KEY},server,server,k3s:server\n` });

function worker(over = {}): DesiredState {
  const cfg = testConfig({ node: 'w1', master: 'master1', cluster_key: null, agent_key: AGENT_KEY, ip: ['2001:db8::2/64'], ...over });
  return computeDesired(cfg, view(['w1', 'alive'], ['master1', 'alive', { role: 'master', k3s_ca: CA, node_ips: ['2001:db8::1'] }]), FACTS);
}

function running(d: DesiredState, name: string, over: Partial<ObservedContainer> = {}): ObservedContainer {
  return runningAsDesired(d, name, NOW, over);
}

function observedOf(d: DesiredState, containers: ObservedContainer[]): Observed {
  return {
    containers,
    networks: d.networks.map((n) => n.name),
    images: ['example.invalid/wesher:pinned', 'example.invalid/k3s:pinned'],
    links: Object.fromEntries(d.links.map((l) => [l.node, { exists: true, up: true, mtu: l.mtu, addresses: [l.address] }])),
    wesherStateAt: Object.fromEntries(containers.filter((c) => c.role === 'wesher').map((c) => [c.node!, (c.startedAt ?? NOW) + 1])),
  };
}

const brief = (acts: Array<{ type: string; name?: string }>): string[] => acts.filter((a) => a.type !== 'wait').map((a) => `${a.type} ${a.name ?? ''}`.trim());

describe('runtime/key rotation (pure)', () => {
  describe('wesher: a new overlay key recreates it, and its k3s with it (k3s lives in its network namespace)', () => {
    it('the spec hash changes with the overlay key, and the plan removes k3s, then recreates wesher', () => {
      const before = worker();
      const after = worker({ overlay_key: NEW_OVERLAY });
      const w = (d: DesiredState) => d.containers.find((c) => c.role === 'wesher')!.spec!;
      assert.notEqual(w(before).hash, w(after).hash);
      assert.equal(w(after).baseHash, null, 'wesher has no live file');
      const env = w(after).create.Env!.find((e) => e.startsWith('WESHER_CLUSTER_KEY='))!;
      assert.equal(env, `WESHER_CLUSTER_KEY=${Buffer.from(NEW_OVERLAY).toString('base64')}`);
      // Podman runs the old specs.
      const obs = observedOf(after, [running(before, 'hepto-w1-wesher'), running(before, 'hepto-w1-k3s')]);
      const acts = planReconcile(after, obs, emptyHistory(), NOW, OPTS);
      assert.deepEqual(brief(acts), ['remove hepto-w1-k3s', 'recreate hepto-w1-wesher']);
      for (const k of [NEW_OVERLAY, AGENT_KEY]) assert.ok(!JSON.stringify(w(after).create.Labels).includes(k));
    });
  });

  describe('k3s on a non-master: a new agent_key rewrites its token file, and does not recreate it', () => {
    it('the token file is live: hash changes, base hash does not; the plan leaves the running agent alone', () => {
      const before = worker();
      const after = worker({ agent_key: NEW_AGENT });
      const k = (d: DesiredState) => d.containers.find((c) => c.role === 'k3s')!.spec!;
      assert.deepEqual(k(after).files, [{ path: '/srv/w1/rancher-k3s/hepto-token', content: `K10${CA}::node:${NEW_AGENT}`, live: true }]);
      assert.notEqual(k(before).hash, k(after).hash);
      assert.ok(k(after).baseHash);
      assert.equal(k(before).baseHash, k(after).baseHash);
      assert.equal(k(after).create.Labels![BASE_HASH_LABEL], k(after).baseHash);
      assert.ok(specMatches(running(before, 'hepto-w1-k3s'), k(after)));
      const obs = observedOf(after, [running(before, 'hepto-w1-wesher'), running(before, 'hepto-w1-k3s')]);
      assert.deepEqual(brief(planReconcile(after, obs, emptyHistory(), NOW, OPTS)), []);
    });

    it('anything else that changes still recreates it, and a container made before the base hash existed is recreated once', () => {
      const before = worker();
      const after = worker({ agent_key: NEW_AGENT, images: { wesher: 'example.invalid/wesher:pinned', k3s: 'example.invalid/k3s:other' } });
      const k = after.containers.find((c) => c.role === 'k3s')!.spec!;
      assert.ok(!specMatches(running(before, 'hepto-w1-k3s'), k));
      const old = running(before, 'hepto-w1-k3s', { baseHash: null });
      assert.ok(!specMatches(old, worker({ agent_key: NEW_AGENT }).containers.find((c) => c.role === 'k3s')!.spec!));
      assert.ok(specMatches(old, before.containers.find((c) => c.role === 'k3s')!.spec!), 'the same spec still matches by its hash');
    });

    it("the master's server token and agent token files are not live: a change recreates the server (k3s reads them at start)", () => {
      const m = (agentToken: string) =>
        computeDesired(
          testConfig({ agent_key: agentToken }),
          view(['master1', 'alive']),
          FACTS,
          {},
          { master1: { token: agentToken, problem: null } },
        ).containers.find((c) => c.role === 'k3s')!.spec!;
      assert.equal(m(AGENT_KEY).baseHash, null);
      assert.ok(m(AGENT_KEY).files.every((f) => !f.live));
      assert.notEqual(m(AGENT_KEY).hash, m(NEW_AGENT).hash);
    });
  });

  describe('k3s on the master: which agent token the server gets (K28, K31-K34)', () => {
    it('without a rotation, a datastore holding the previous agent token keeps it, with the problem, as before', () => {
      const p = planAgentToken(TOKEN_FILE, passwd(AGENT_KEY), NEW_AGENT, WHERE);
      assert.equal(p.token, AGENT_KEY);
      assert.match(p.problem!, /^agent_key changed, but the k3s datastore/);
      assert.ok(!p.rotating);
    });

    it('with a rotation from that token, the server moves to the new agent_key and owes a re-sync', () => {
      assert.deepEqual(planAgentToken(TOKEN_FILE, passwd(AGENT_KEY), NEW_AGENT, WHERE, { previous: AGENT_KEY }), {
        token: NEW_AGENT,
        problem: null,
        rotating: true,
      });
    });

    it("a datastore made without an agent token (node password = the server's) moves too under a rotation", () => {
      assert.deepEqual(planAgentToken(TOKEN_FILE, passwd(CLUSTER_KEY), NEW_AGENT, WHERE, { previous: null }), {
        token: NEW_AGENT,
        problem: null,
        rotating: true,
      });
    });

    it('once the server runs with the new agent token, no move (the re-sync marker, not the plan, says whether one is owed)', () => {
      assert.deepEqual(planAgentToken(TOKEN_FILE, passwd(NEW_AGENT), NEW_AGENT, WHERE, { previous: AGENT_KEY }), { token: NEW_AGENT, problem: null });
    });

    it('a datastore holding some third token is not touched, even under a rotation; nor is a new datastore marked', () => {
      const other = 'TESTONLYsomeOTHERkey0123456789ab';
      const p = planAgentToken(TOKEN_FILE, passwd(other), NEW_AGENT, WHERE, { previous: AGENT_KEY });
      assert.equal(p.token, other);
      assert.ok(p.problem && !p.rotating);
      assert.deepEqual(planAgentToken(null, { missing: true }, NEW_AGENT, WHERE, { previous: AGENT_KEY }), { token: NEW_AGENT, problem: null });
    });

    it('a rotation that keeps no agent token (agent_key null) changes nothing for k3s', () => {
      assert.deepEqual(planAgentToken(TOKEN_FILE, passwd(CLUSTER_KEY), null, WHERE, { previous: null }), { token: null, problem: null });
    });
  });

  describe('the re-sync request (PUT /v1-k3s/token with the unchanged server password)', () => {
    const caPem = Buffer.from('-----BEGIN CERTIFICATE-----\nstand-in\n-----END CERTIFICATE-----\n');
    const hash = createHash('sha256').update(caPem).digest('hex');

    it('takes the password from server/token and the CA the token pins', () => {
      assert.equal(TOKEN_ROTATE_PATH, '/v1-k3s/token');
      assert.deepEqual(planTokenRotate(`K10${hash}::server:${CLUSTER_KEY}\n`, caPem), { password: CLUSTER_KEY, ca: caPem.toString() });
      assert.deepEqual(planTokenRotate(`${CLUSTER_KEY}\n`, caPem), { password: CLUSTER_KEY, ca: caPem.toString() }, 'a bare token pins nothing');
    });

    it('refuses a CA that is not the one the token pins, an empty CA or an empty token, naming no key', () => {
      for (const [token, ca] of [
        [`K10${'0'.repeat(64)}::server:${CLUSTER_KEY}`, caPem],
        [`K10${hash}::server:${CLUSTER_KEY}`, Buffer.alloc(0)],
        ['', caPem],
      ] as Array<[string, Buffer]>) {
        const r = planTokenRotate(token, ca);
        assert.ok('error' in r, token);
        assert.ok(!r.error.includes(CLUSTER_KEY));
      }
    });

    it("talks to the loopback of the service range's family (as k3s's own kubeconfig, K21)", () => {
      assert.equal(supervisorLoopback('172.29.0.0/16'), '127.0.0.1');
      assert.equal(supervisorLoopback('fd42:4865:7074:7000::/112'), '::1');
    });
  });

  it('overlay address unchanged by a key rotation (it depends on the name only, W19)', () => {
    const a = worker().links[0];
    const b = worker({ overlay_key: NEW_OVERLAY }).links[0];
    assert.equal(a.address, b.address);
  });
});
