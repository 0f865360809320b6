import assert from 'node:assert/strict';
import { computeDesired, joinList, JOIN_CAP, type ClusterView } from '../../../agent/runtime/desired';
import { overlayCollisions } from '../../../agent/runtime/collisions';
import { overlayIp } from '../../../agent/runtime/overlay-ip';
import { record, testConfig, view } from './fixtures';

const FACTS = { defaultIface: 'eth0', netavarkVersion: '1.4.0' };

/** Two distinct names with the same overlay IP in a /24 (found by search, deterministic). */
function collidingPair(net: string): [string, string] {
  const seen = new Map<string, string>();
  for (let i = 0; ; i++) {
    const name = `n${i}`;
    const ip = overlayIp(name, net);
    const other = seen.get(ip);
    if (other) return [other, name];
    seen.set(ip, name);
  }
}

describe('runtime/desired', () => {
  it('an agent k3s waits, with a reason, until the master is seen alive; wesher runs meanwhile', () => {
    const cfg = testConfig({ node: 'w1', master: 'm1' });
    const alone = computeDesired(cfg, view(['w1', 'alive']), FACTS);
    const k3s = alone.containers.find((c) => c.role === 'k3s')!;
    assert.equal(k3s.spec, null);
    assert.match(k3s.waiting!, /waits for the master node m1/);
    assert.ok(alone.problems.some((p) => /m1/.test(p)));
    assert.ok(alone.containers.find((c) => c.role === 'wesher')!.spec);

    const suspectMaster = computeDesired(cfg, view(['w1', 'alive'], ['m1', 'suspect']), FACTS);
    assert.equal(suspectMaster.containers.find((c) => c.role === 'k3s')!.spec, null, 'a suspect master is not yet "seen alive"');

    // The master may be hosted by another member under a different member name.
    const hosted = computeDesired(cfg, view(['w1', 'alive'], ['box', 'alive', { containers: { m1: { wesher: 'running', k3s: 'running' } } }]), FACTS);
    const k = hosted.containers.find((c) => c.role === 'k3s')!;
    assert.ok(k.spec);
    assert.ok(k.spec.create.Cmd!.includes(`https://${overlayIp('m1', '10.0.0.0/8')}:6443`));
  });

  it('join list: only live members that run wesher, in the bind family, most recently seen first, capped; never anchors as such', () => {
    const cfg = testConfig({ node: 'w1', ip: ['2001:db8::21/64'], anchors: ['[2001:db8::1]:7947', '192.0.2.1:7947', 'a.example.invalid'] });
    const v: ClusterView = {
      members: [
        { name: 'w1', state: 'alive', record: record('w1', { node_ips: ['2001:db8::21'] }), lastSeen: 9 },
        { name: 'm1', state: 'alive', record: record('m1', { node_ips: ['2001:db8::1', '192.0.2.1'] }), lastSeen: 5 },
        { name: 'fresh', state: 'alive', record: record('fresh', { node_ips: ['2001:db8::5'] }), lastSeen: 8 },
        { name: 'x', state: 'dead', record: record('x', { node_ips: ['2001:db8::99'] }), lastSeen: 9 },
        { name: 'y', state: 'suspect', record: record('y', { node_ips: ['2001:db8::33/64'] }), lastSeen: 9 },
        { name: 'anchor', state: 'alive', record: record('anchor', { node_ips: ['2001:db8::7'], containers: {} }), lastSeen: 9 },
        {
          name: 'down',
          state: 'alive',
          record: record('down', { node_ips: ['2001:db8::8'], containers: { down: { wesher: 'crashloop', k3s: 'waiting' } } }),
          lastSeen: 9,
        },
      ],
    };
    const node = { node: 'w1', iface: null, ip: cfg.ip, gw: [], network_mode: 'host' as const };
    assert.deepEqual(
      joinList(cfg, v, node),
      ['2001:db8::5', '2001:db8::1'],
      'gossip-only anchor, dead, suspect, no wesher and other-family addresses left out',
    );
    // A member's record is its own word: only IP literals reach WESHER_JOIN (no DNS lookups, no comma injection).
    const odd: ClusterView = {
      members: [{ name: 'odd', state: 'alive', record: record('odd', { node_ips: ['victim.example.invalid', '2001:db8::6,2001:db8::7', '2001:db8::8'] }) }],
    };
    assert.deepEqual(joinList(cfg, odd, node), ['2001:db8::8']);
    assert.deepEqual(
      joinList(testConfig({ node: 'w1', ip: ['192.0.2.21/24'] }), odd, { ...node, ip: ['192.0.2.21/24'] }),
      [],
      'a name is not an IPv4 address either',
    );
    const many: ClusterView = {
      members: Array.from({ length: 20 }, (_, i) => ({
        name: `n${i}`,
        state: 'alive' as const,
        record: record(`n${i}`, { node_ips: [`2001:db8::1:${i}`] }),
        lastSeen: i,
      })),
    };
    const capped = joinList(cfg, many, node);
    assert.equal(capped.length, JOIN_CAP);
    assert.equal(capped[0], '2001:db8::1:19', 'most recently seen first');
  });

  it('bind address: the node ip, IPv6 first; else the advertised address; the other family is a problem naming the node', () => {
    const v6 = computeDesired(testConfig({ ip: ['192.0.2.1/24', '2001:db8::1/64'] }), view(['master1', 'alive']), FACTS);
    assert.ok(v6.containers[0].spec!.create.Env!.includes('WESHER_BIND_ADDR=2001:db8::1'));
    // Host mode without ip: the agent's advertised address, IPv6 included (wesher alone would pick only IPv4, or exit).
    const adv = computeDesired(
      testConfig({ ip: [] }),
      view(['master1', 'alive', { addresses: ['127.0.0.1:7947', '192.0.2.9:7947', '[2001:db8::9]:7947'] }]),
      FACTS,
    );
    assert.ok(adv.containers[0].spec!.create.Env!.includes('WESHER_BIND_ADDR=2001:db8::9'), adv.containers[0].spec!.create.Env!.join(' '));
    // An IPv4-only node among IPv6 weshers.
    const only4 = computeDesired(testConfig({ ip: ['192.0.2.1/24'] }), view(['master1', 'alive'], ['w2', 'alive', { node_ips: ['2001:db8::2'] }]), FACTS);
    assert.ok(
      only4.problems.some((p) => /node master1 can only offer wesher IPv4 \(192\.0\.2\.1\) while w2 use IPv6/.test(p)),
      only4.problems.join('\n'),
    );
    assert.equal(only4.containers[0].spec!.join.length, 0, 'no join address across families');
    // An IPv4-only member seen from an IPv6 node.
    const seen = computeDesired(testConfig(), view(['master1', 'alive'], ['w3', 'alive', { node_ips: ['192.0.2.3'] }]), FACTS);
    assert.ok(
      seen.problems.some((p) => /member w3 offers wesher only IPv4 \(192\.0\.2\.3\)/.test(p)),
      seen.problems.join('\n'),
    );
  });

  it('a master whose datastore the cluster_key cannot open: k3s waits with the problem, wesher runs', () => {
    const problem = 'cluster_key changed, but the k3s datastore in /srv/master1/k3s was created with another token: …';
    const d = computeDesired(testConfig(), view(['master1', 'alive']), FACTS, { master1: problem });
    assert.ok(d.containers.find((c) => c.role === 'wesher')!.spec);
    const k = d.containers.find((c) => c.role === 'k3s')!;
    assert.equal(k.spec, null, 'never recreated with a token its data cannot open');
    assert.equal(k.waiting, problem);
    assert.ok(d.problems.includes(problem));
  });

  it('a node with anchors waits to start wesher until gossip has found another member', () => {
    const cfg = testConfig({ node: 'w1', master: 'm1', ip: ['2001:db8::21/64'], anchors: ['[2001:db8::1]:7947'] });
    const alone = computeDesired(cfg, view(['w1', 'alive']), FACTS);
    assert.ok(alone.containers.every((c) => c.spec === null));
    assert.match(alone.containers[0].waiting!, /waits for gossip to find another member through the anchors/);
    const found = computeDesired(cfg, view(['w1', 'alive'], ['m1', 'alive', { node_ips: ['2001:db8::1'] }]), FACTS);
    assert.deepEqual(found.containers[0].spec!.join, ['2001:db8::1']);
    // The first machine (no anchors) starts alone.
    assert.ok(computeDesired(testConfig(), view(['master1', 'alive']), FACTS).containers[0].spec);
  });

  it('overlay-IP collision: the node this agent saw later does not start; created_at counts for nothing', () => {
    const net = '10.0.0.0/24';
    const [a, b] = collidingPair(net);
    // We host b, not pinned yet; a was seen first. b's record even claims the older identity.
    const cfg = testConfig({ node: b, master: a, overlay_net: net });
    const v: ClusterView = { ...view([a, 'alive', { created_at: 9_999 }], [b, 'alive', { created_at: 0 }]), firstSeen: { [a]: 1 } };
    const d = computeDesired(cfg, v, FACTS);
    assert.ok(
      d.containers.every((c) => c.spec === null),
      'neither wesher nor k3s starts on the newcomer',
    );
    const p = d.problems.find((x) => x.includes('collision'))!;
    assert.ok(p.includes(a) && p.includes(b) && /rename/.test(p), p);
    assert.equal(overlayCollisions(cfg, v)[0].nodes[0].node, a);

    // The pinned node keeps running whatever the newcomer claims (created_at 0), and names it.
    const forged: ClusterView = { ...view([a, 'alive', { created_at: 9_999 }], [b, 'alive', { created_at: 0 }]), firstSeen: { [a]: 5, [b]: 1 } };
    const winner = computeDesired(testConfig({ node: a, master: a, overlay_net: net }), forged, FACTS);
    assert.ok(winner.containers.every((c) => c.spec !== null));
    assert.ok(winner.problems.some((x) => x.includes('collision') && x.includes(`member ${b}`) && /keeps it/.test(x)));

    // Between two other members' nodes, the one seen first wins; a tie goes to the smaller name.
    const third = testConfig({ node: 'x', master: 'x', overlay_net: net });
    const both = view(['x', 'alive'], [a, 'alive'], [b, 'alive']);
    assert.equal(overlayCollisions(third, { ...both, firstSeen: { x: 1, [a]: 3, [b]: 2 } })[0].nodes[0].node, b);
    assert.equal(overlayCollisions(third, { ...both, firstSeen: { x: 1, [a]: 2, [b]: 2 } })[0].nodes[0].node, [a, b].sort()[0]);
  });

  it("a hosted node not pinned yet waits, and yields to a dead member's name too", () => {
    const net = '10.0.0.0/24';
    const [a, b] = collidingPair(net);
    const cfg = testConfig({ node: b, master: 'm', overlay_net: net });
    const waiting = computeDesired(cfg, { ...view([b, 'alive']), firstSeen: {} }, FACTS);
    assert.ok(waiting.containers.every((c) => c.spec === null));
    assert.match(waiting.containers[0].waiting!, /waits until this agent has the cluster's node names/);
    // a is dead (away): its name still blocks b from taking the address...
    const away: ClusterView = { ...view([b, 'alive'], [a, 'dead']), firstSeen: { [a]: 1 } };
    assert.equal(overlayCollisions(cfg, away)[0].nodes[0].node, a);
    assert.match(computeDesired(cfg, away, FACTS).problems.join('\n'), new RegExp(`${a}, away now`));
    // ...but once b is pinned, a dead name is no collision, and a left one never is.
    assert.deepEqual(overlayCollisions(cfg, { ...away, firstSeen: { [a]: 1, [b]: 2 } }), []);
    assert.deepEqual(overlayCollisions(cfg, { ...view([b, 'alive'], [a, 'left']), firstSeen: { [a]: 1 } }), []);
  });

  it('several nodes: each supervised on its own; only one may use the host network', () => {
    const cfg = testConfig({
      nodes: [
        { node: 'extra1', iface: 'eth0', ip: ['192.0.2.31/24', '2001:db8::31/64'], gw: ['192.0.2.254'], network_mode: 'macvlan' },
        { node: 'extra2', iface: null, ip: [], gw: [], network_mode: 'host' },
      ],
    });
    const d = computeDesired(cfg, view(['master1', 'alive']), FACTS);
    const names = d.containers.filter((c) => c.spec).map((c) => c.name);
    assert.deepEqual(names, ['hepto-master1-wesher', 'hepto-master1-k3s', 'hepto-extra1-wesher', 'hepto-extra1-k3s']);
    assert.deepEqual(
      d.networks.map((n) => n.name),
      ['hepto-extra1'],
    );
    assert.ok(d.problems.some((p) => /extra2 cannot use network_mode host/.test(p)));
    // extra1's wesher joins master1's address (same machine, another node).
    assert.match(d.containers[2].spec!.create.Env!.join(' '), /WESHER_JOIN=2001:db8::1/);
  });

  it('ipvlan is refused with the reason on netavark 1.4.0; macvlan without an address is refused naming the field', () => {
    const d = computeDesired(testConfig({ network_mode: 'ipvlan', iface: 'eth0' }), view(['master1', 'alive']), FACTS);
    assert.ok(d.containers.every((c) => c.spec === null));
    assert.ok(
      d.problems.some((p) => /ipvlan needs netavark >= 1\.5\.0, this machine has 1\.4\.0/.test(p)),
      d.problems.join('\n'),
    );
    const unknown = computeDesired(testConfig({ network_mode: 'ipvlan', iface: 'eth0' }), view(), { defaultIface: null, netavarkVersion: null });
    assert.ok(unknown.problems.some((p) => /could not be determined/.test(p)));
    const noIp = computeDesired(testConfig({ network_mode: 'macvlan', ip: [] }), view(), FACTS);
    assert.ok(noIp.problems.some((p) => /node master1: ip is empty/.test(p)));
  });

  it('spec hash: a key change changes it, a join list change does not, the label hides the key', () => {
    const base = computeDesired(testConfig(), view(['master1', 'alive']), FACTS).containers;
    const rekeyed = computeDesired(testConfig({ overlay_key: 'TESTONLYotherKEY0123456789abcdef' }), view(['master1', 'alive']), FACTS).containers;
    const joined = computeDesired(testConfig(), view(['master1', 'alive'], ['w7', 'alive', { node_ips: ['2001:db8::7'] }]), FACTS).containers;
    assert.notEqual(base[0].spec!.hash, rekeyed[0].spec!.hash);
    assert.equal(base[1].spec!.hash, rekeyed[1].spec!.hash, 'k3s does not use the overlay key');
    assert.equal(base[0].spec!.hash, joined[0].spec!.hash);
    assert.notDeepEqual(base[0].spec!.join, joined[0].spec!.join);
    const k3sNewToken = computeDesired(testConfig({ cluster_key: 'TESTONLYanotherKEY0123456789abcd' }), view(['master1', 'alive']), FACTS).containers;
    assert.notEqual(base[1].spec!.hash, k3sNewToken[1].spec!.hash);
  });
});
