/**
 * Issue 14, attack 2 (fake members without limit) and the bounds, in virtual
 * time: the per-sender cap on new names, IP-literal addresses, dead entries
 * that expire, digests in chunks that fit a frame, admin_pub dropping
 * unadmitted fakes, and the wesher join list with thousands of fakes.
 */
import assert from 'node:assert/strict';
import type { MemberRecord, SignedRecord } from '../../../shared/member';
import type { PeerInfo } from '../../../agent/net/transport';
import { encodeMessage, LIMITS, type GossipMessage, type SyncDigestMsg, type Update } from '../../../agent/gossip/messages';
import { decodeMessage } from '../../../agent/gossip/validate';
import type { Membership, Step } from '../../../agent/gossip/membership';
import { signRecord } from '../../../agent/gossip/records';
import { NEW_NAMES_PER_MINUTE } from '../../../agent/gossip/newnames';
import { TEST } from '../../../agent/gossip/timing';
import { generateAdminKey } from '../../../agent/admin/key';
import { addressOf, bootCluster, identity, makeMember, recordFor } from './helpers';
import { joinList, JOIN_CAP, type ClusterView } from '../../../agent/runtime/desired';
import { wesherSpec } from '../../../agent/runtime/specs';
import { record as runtimeRecord, testConfig } from '../runtime/fixtures';

const T0 = 1_000_000;
const fakeId = identity('mallory-fakes');

function fake(name: string, over: Partial<MemberRecord> = {}, inc = 1): SignedRecord {
  return signRecord({ ...recordFor(name, '127.0.9.9:7947', fakeId), ...over }, inc, fakeId.secretKey);
}

function peer(name: string): PeerInfo {
  return { name, idPub: identity(name).idPub, remote: '127.0.0.99:40000' };
}

function fakesMsg(prefix: string, n: number, o?: 'd'): GossipMessage {
  const u: Update[] = [];
  for (let i = 0; i < n; i++) u.push(o ? { k: 'a', r: fake(`${prefix}${i}`), o, f: 'mallory' } : { k: 'a', r: fake(`${prefix}${i}`) });
  return o ? { t: 'y', u, w: [] } : { t: 'g', u };
}

function held(m: Membership, prefix: string): number {
  return m.view().filter((v) => v.name.startsWith(prefix)).length;
}

describe('gossip: fake members (issue 14, attack 2) and bounds', function () {
  this.timeout(60_000);

  it('a sender introduces at most NEW_NAMES_PER_MINUTE new names a minute; others are not held back', () => {
    const m = makeMember('n0', addressOf(0), T0);
    m.receive(peer('mallory'), fakesMsg('fake-a', LIMITS.updates), T0);
    const first = held(m, 'fake-a');
    console.log(`      one message of ${LIMITS.updates} fakes: ${first} held, ${m.counters()['new-names-limited'] ?? 0} refused`);
    assert.equal(first, NEW_NAMES_PER_MINUTE);
    // Another message at once: nothing more from that sender.
    m.receive(peer('mallory'), fakesMsg('fake-b', 100), T0 + 10);
    assert.equal(held(m, 'fake-b'), 0);
    // Another sender has a bucket of its own (a joiner pulls the rest of a big cluster from the next member).
    m.receive(peer('honest'), fakesMsg('fake-c', 100), T0 + 20);
    assert.equal(held(m, 'fake-c'), 100);
    // A minute later the bucket is full again, not more.
    m.receive(peer('mallory'), fakesMsg('fake-d', LIMITS.updates), T0 + 60_000);
    assert.equal(held(m, 'fake-d'), NEW_NAMES_PER_MINUTE);
  });

  it("a record whose addresses are not IP literals with a port is dropped (no DNS lookups on a peer's word)", () => {
    const m = makeMember('n0', addressOf(0), T0);
    const cases: [string, string[], boolean][] = [
      ['h-name', ['evil.example:7947'], false],
      ['h-noport', ['192.0.2.1'], false],
      ['h-v6bare', ['2001:db8::1:7947'], false],
      ['h-badport', ['192.0.2.1:70000'], false],
      ['h-v4', ['192.0.2.1:7947'], true],
      ['h-v6', ['[2001:db8::1]:7947', '192.0.2.1:7947'], true],
      ['h-mixed', ['[2001:db8::1]:7947', 'localhost:7947'], false],
    ];
    m.receive(peer('mallory'), { t: 'g', u: cases.map(([n, addresses]) => ({ k: 'a', r: fake(n, { addresses }) })) }, T0);
    for (const [n, addresses, ok] of cases)
      assert.equal(
        m.view().some((v) => v.name === n),
        ok,
        `${n} ${addresses.join(' ')}`,
      );
    assert.equal(m.counters()['bad-address'], 5);
  });

  it('a dead member learnt from a peer and never met is forgotten after leftRetention, and not learnt back from a peer that still holds it', () => {
    const m = makeMember('n0', addressOf(0), T0);
    m.receive(peer('mallory'), fakesMsg('ghost', 50, 'd'), T0);
    assert.equal(m.view().filter((v) => v.name.startsWith('ghost') && v.state === 'dead').length, 50);
    let now = T0;
    const until = T0 + TEST.leftRetention + 5000;
    while (now < until) {
      now += 1000;
      m.tick(now);
    }
    assert.equal(held(m, 'ghost'), 0, 'forgotten');
    m.receive(peer('honest'), fakesMsg('ghost', 50, 'd'), now);
    assert.equal(held(m, 'ghost'), 0, 'not learnt back dead');
    // A newer incarnation, alive, is news: the member is back.
    m.receive(peer('honest'), { t: 'g', u: [{ k: 'a', r: fake('ghost1', {}, 2) }] }, now + 10);
    assert.equal(m.view().find((v) => v.name === 'ghost1')?.state, 'alive');
  });

  it('a crashed member every agent had met is forgotten by all after 24 × leftRetention, and stays forgotten', () => {
    const { router } = bootCluster(4, { seed: 3 });
    router.runUntilTrue(() => router.allSee(['n0', 'n1', 'n2', 'n3'], 'alive'), 30_000, 'converged');
    router.run(TEST.probeInterval * 6); // a few probe rounds: every agent has now met n3 (heard it over a connection)
    router.crash('n3');
    router.runUntilTrue(() => router.allSee(['n3'], 'dead', ['n0', 'n1', 'n2']), 60_000, 'n3 seen dead');
    router.run(TEST.leftRetention * 20);
    assert.deepEqual(
      ['n0', 'n1', 'n2'].map((o) => router.stateOf(o, 'n3')),
      ['dead', 'dead', 'dead'],
      'still held (and retried) well after it died',
    );
    router.run(TEST.leftRetention * 5);
    assert.deepEqual(
      ['n0', 'n1', 'n2'].map((o) => router.stateOf(o, 'n3')),
      [undefined, undefined, undefined],
      'forgotten',
    );
    router.run(TEST.leftRetention * 3);
    assert.deepEqual(
      ['n0', 'n1', 'n2'].map((o) => router.stateOf(o, 'n3')),
      [undefined, undefined, undefined],
      'not handed back and forth',
    );
    assert.ok(router.allSee(['n0', 'n1', 'n2'], 'alive'));
  });

  it('a digest of 16,000 long names goes in chunks that each fit a frame, and the peer asks for every name once', () => {
    const a = makeMember('a-node', addressOf(0), T0);
    const names: string[] = [];
    const pad = 'x'.repeat(50);
    for (let i = 0; i < 16_000; i++) names.push(`m${String(i).padStart(5, '0')}-${pad}`);
    // Fed by 16 relays (each has its own bucket of new names).
    for (let k = 0; k < 16; k++) {
      const chunk = names.slice(k * 1000, (k + 1) * 1000);
      a.receive(peer(`relay${k}`), { t: 'g', u: chunk.map((n) => ({ k: 'a', r: fake(n) })) }, T0 + k);
    }
    assert.equal(a.view().length, 16_001);
    const b = makeMember('b-node', addressOf(1), T0);
    const step: Step = a.receive(peer('b-node'), { t: 'h', h: 'not-the-same-hash' }, T0 + 100);
    const digests = step.send.filter((o) => o.msg.t === 'd').map((o) => o.msg as SyncDigestMsg);
    const sizes = digests.map((d) => encodeMessage(d).byteLength);
    console.log(`      ${digests.length} digest chunks, largest ${Math.max(...sizes)} bytes (frame: ${LIMITS.messageBytes})`);
    assert.ok(digests.length > 1);
    for (const d of digests) assert.deepEqual(decodeMessage(encodeMessage(d)), d);
    assert.equal(
      digests.reduce((n, d) => n + d.d.length, 0),
      16_001,
    );
    // b answers each chunk: what it wants (every name but its own), and its own record pushed once.
    const wanted: string[] = [];
    let pushedSelf = 0;
    for (const d of digests) {
      const out = b.receive(peer('a-node'), decodeMessage(encodeMessage(d)), T0 + 200);
      for (const o of out.send) {
        if (o.msg.t !== 'y') continue;
        assert.ok(encodeMessage(o.msg).byteLength <= LIMITS.messageBytes);
        wanted.push(...o.msg.w);
        pushedSelf += o.msg.u.filter((u) => u.k === 'a' && u.r.record.name === 'b-node').length;
      }
    }
    assert.equal(new Set(wanted).size, 16_000);
    assert.equal(wanted.length, 16_000);
    assert.equal(pushedSelf, 1);
  });

  it('with admin_pub, unadmitted fake records are dropped at once, none held', () => {
    const admin = generateAdminKey(T0);
    const m = makeMember('n0', addressOf(0), T0, { adminPub: admin.pub });
    m.receive(peer('mallory'), fakesMsg('fake', 500), T0);
    assert.equal(held(m, 'fake'), 0);
    assert.equal(m.view().length, 1);
  });

  it('the wesher join list stays capped with 2,048 fake members running wesher, far under the 128 KiB argument limit', () => {
    const cfg = testConfig({ node: 'w1', ip: ['2001:db8::21/64'] });
    const members: ClusterView['members'] = [{ name: 'w1', state: 'alive', record: runtimeRecord('w1', { node_ips: ['2001:db8::21'] }), lastSeen: 1 }];
    for (let i = 0; i < 2048; i++) {
      const ips = Array.from({ length: LIMITS.nodeIps }, (_, j) => `2001:db8:${i.toString(16)}::${(j + 1).toString(16)}`);
      members.push({
        name: `f${i}`,
        state: 'alive',
        record: runtimeRecord(`f${i}`, { node_ips: ips, containers: { [`f${i}`]: { wesher: 'running', k3s: 'running' } } }),
        lastSeen: 2 + i,
      });
    }
    const node = { node: 'w1', iface: null, ip: cfg.ip, gw: [], network_mode: 'host' as const };
    const join = joinList(cfg, { members }, node);
    assert.equal(join.length, JOIN_CAP);
    const spec = wesherSpec({ config: cfg, node, net: { mode: 'host' } as never, join, bindAddr: '2001:db8::21' });
    const env = (spec.create.Env ?? []).find((e) => e.startsWith('WESHER_JOIN=')) ?? '';
    console.log(`      WESHER_JOIN: ${join.length} addresses, ${env.length} bytes`);
    assert.ok(env.length < 4096);
  });
});
