/**
 * Bounded connections on real sockets (issue 16): 40 members, each a real
 * Membership and GossipNode over the real WebSocket transport, on loopback
 * addresses 127.0.9.x. Every agent must end up holding at most 32 open
 * connections while everyone still sees everyone, and a crash is still seen
 * by all.
 */
import { strict as assert } from 'assert';
import { TEST } from '../../../agent/gossip/timing';
import { BenchCluster, type BenchMember } from '../../../bench/lib/cluster';

const N = 40;
/** The bound the issue sets for an agent at rest, whatever N. */
const MAX_OPEN = 32;

function openConnections(m: BenchMember): number {
  return m.transport.stats().connections;
}

function widest(members: BenchMember[]): string {
  const counts = members.map((m) => ({ name: m.name, open: openConnections(m), neighbours: m.node.membership.activeView().neighbours.length }));
  counts.sort((a, b) => b.open - a.open);
  return counts
    .slice(0, 5)
    .map((c) => `${c.name}: ${c.open} open, ${c.neighbours} neighbours`)
    .join('; ');
}

describe('bounded connections: 40 agents on loopback', function () {
  this.timeout(180_000);
  let cluster: BenchCluster | undefined;

  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
  });

  it('each agent holds at most 32 connections, everyone sees everyone, and a crash is seen by all', async () => {
    cluster = await BenchCluster.create({ n: N, timing: TEST, subnet: '127.0.9' });
    const c = cluster;
    await c.startMembers(c.members.map((m) => m.index));
    assert.ok(await c.waitFor(() => c.allSeeAllAlive(), 60_000), 'all 40 see all alive');
    // At rest: fills and trims have settled.
    const settled = await c.waitFor(() => c.running().every((m) => openConnections(m) <= MAX_OPEN), 30_000);
    assert.ok(settled, `connections never came within the bound: ${widest(c.running())}`);
    // And stay there, while probes and syncs go on.
    await new Promise((r) => setTimeout(r, 3 * TEST.syncInterval));
    for (const m of c.running()) {
      assert.ok(openConnections(m) <= MAX_OPEN, `${m.name} holds ${openConnections(m)} connections: ${widest(c.running())}`);
      assert.equal(m.node.membership.activeView().bounded, true, `${m.name} bounds its connections`);
      // A member that was just dialled sits one neighbour over activeMax until its
      // next trim (active-view.ts: every quarter probe period, not while a probe of
      // it is in flight): the bound holds again soon after.
      const neighbours = (): number => m.node.membership.activeView().neighbours.length;
      const soon = 2 * Math.max(TEST.probeInterval, TEST.syncInterval);
      assert.ok(
        await c.waitFor(() => neighbours() <= TEST.activeMax, soon),
        `${m.name} still has ${neighbours()} neighbours ${soon} ms later, over ${TEST.activeMax}`,
      );
    }
    assert.ok(c.allSeeAllAlive(), 'everyone still sees everyone alive');

    const victim = c.member(17);
    await c.crash(victim);
    const rest = c.running();
    const seen = await c.waitFor(() => rest.every((m) => m.node.membership.view().find((v) => v.name === victim.name)?.state === 'dead'), 30_000);
    const missing = rest.filter((m) => m.node.membership.view().find((v) => v.name === victim.name)?.state !== 'dead').map((m) => m.name);
    assert.ok(seen, `not seen dead by ${missing.join(', ')}`);
  });
});
