/**
 * GossipNode, the shell around Membership, over the in-memory network with a
 * manual clock: nothing moves unless the test advances time, so every step is
 * deterministic (issue 17).
 */
import { strict as assert } from 'assert';
import { GossipNode } from '../../../agent/daemon/gossip-node';
import type { MemberEvent } from '../../../agent/gossip/membership';
import { ManualClock } from '../../../shared/clock';
import { memoryLogger } from '../../helpers/memory-logger';
import { MemoryNetwork, type MemoryTransport } from '../../helpers/memory-transport';
import { encodeMessage, type Update } from '../../../agent/gossip/messages';
import { signRecord } from '../../../agent/gossip/records';
import { stepClock } from '../../helpers/virtual-time';
import { addressOf, identity, makeMember, recordFor } from '../gossip/helpers';

const LATENCY_MS = 5;

interface Node {
  name: string;
  node: GossipNode;
  events: MemberEvent[];
  lines: string[];
}

/** Sends that never settle while `hang` is set: a dial that neither connects nor fails. */
const hanging = { hang: false };

const transports = new Map<string, MemoryTransport>();

function cluster(names: string[]): { clock: ManualClock; net: MemoryNetwork; nodes: Node[] } {
  const clock = new ManualClock();
  const net = new MemoryNetwork({ clock, latencyMs: LATENCY_MS });
  const nodes = names.map((name, i): Node => {
    const { logger, lines } = memoryLogger('debug');
    // Records carry IP literals only (gossip/newnames.ts), so the in-memory addresses are loopback ones.
    const address = addressOf(i);
    const node = new GossipNode({
      membership: makeMember(name, address, clock.now()),
      transport: (events) => {
        const t = net.transport({ name, events, idPub: identity(name).idPub, addresses: [address] });
        const send = t.send.bind(t);
        t.send = (to, payload) => (hanging.hang ? new Promise(() => undefined) : send(to, payload));
        transports.set(name, t);
        return t;
      },
      clock,
      logger,
      anchors: i === 0 ? [] : [addressOf(0)],
    });
    const events: MemberEvent[] = [];
    node.onEvent((e) => events.push(e));
    return { name, node, events, lines };
  });
  return { clock, net, nodes };
}

/** Advances virtual time in small steps, letting promise chains (sends) run between them. */
const run = (clock: ManualClock, ms: number, until?: () => boolean): Promise<boolean> => stepClock(clock, LATENCY_MS, ms, until);

const stateOf = (n: Node, name: string): string | undefined => n.node.membership.view().find((m) => m.name === name)?.state;
const allAlive = (nodes: Node[]): boolean => nodes.every((n) => nodes.every((o) => stateOf(n, o.name) === 'alive'));

describe('GossipNode over the in-memory network, manual clock', () => {
  it('does nothing until time moves, then three nodes meet through the anchor and report each other alive', async () => {
    const { clock, nodes } = cluster(['a', 'b', 'c']);
    for (const n of nodes) await n.node.start();
    await new Promise((r) => setImmediate(r));
    assert.equal(allAlive(nodes), false, 'met without any virtual time passing');
    assert.ok(await run(clock, 5_000, () => allAlive(nodes)), 'never all alive');
    for (const n of nodes) {
      const seen = n.events
        .filter((e) => e.type === 'alive')
        .map((e) => e.name)
        .sort();
      assert.deepEqual(
        seen,
        nodes.filter((o) => o !== n).map((o) => o.name),
        `${n.name}'s alive events`,
      );
    }
  });

  it('stop with leave waits on the injected clock for its announcements, and the others see it left', async () => {
    const { clock, nodes } = cluster(['a', 'b', 'c']);
    for (const n of nodes) await n.node.start();
    assert.ok(await run(clock, 5_000, () => allAlive(nodes)));
    const [a, b, c] = nodes as [Node, Node, Node];
    let stopped = false;
    const stopping = c.node.stop({ leave: true, flushMs: 1_000 }).then(() => (stopped = true));
    await run(clock, 200, () => stopped);
    assert.ok(stopped, 'stop() did not return within 200 ms of virtual time');
    await stopping;
    assert.ok(
      await run(clock, 2_000, () => stateOf(a, 'c') === 'left' && stateOf(b, 'c') === 'left'),
      `a sees c ${stateOf(a, 'c')}, b sees c ${stateOf(b, 'c')}`,
    );
    assert.ok(a.events.some((e) => e.type === 'left' && e.name === 'c'));
  });

  it('stop with leave gives sends that never settle flushMs of the injected clock, no more and no less', async () => {
    const { clock, nodes } = cluster(['a', 'b', 'c']);
    for (const n of nodes) await n.node.start();
    assert.ok(await run(clock, 5_000, () => allAlive(nodes)));
    const c = nodes[2] as Node;
    hanging.hang = true;
    try {
      let stopped = false;
      const stopping = c.node.stop({ leave: true, flushMs: 1_000 }).then(() => (stopped = true));
      await run(clock, 900);
      assert.equal(stopped, false, 'stop() returned before flushMs of virtual time');
      // A few real milliseconds, 200 virtual ones: only a flush on the injected clock ends here.
      await run(clock, 200, () => stopped);
      assert.ok(stopped, 'stop() still waits after flushMs of virtual time');
      await stopping;
    } finally {
      hanging.hang = false;
    }
  });

  it('a crashed peer is reported dead by the others, in virtual time', async () => {
    const { clock, net, nodes } = cluster(['a', 'b', 'c']);
    for (const n of nodes) await n.node.start();
    assert.ok(await run(clock, 5_000, () => allAlive(nodes)));
    const [a, b] = nodes as [Node, Node, Node];
    net.drop('c');
    assert.ok(
      await run(clock, 30_000, () => stateOf(a, 'c') === 'dead' && stateOf(b, 'c') === 'dead'),
      `a sees c ${stateOf(a, 'c')}, b sees c ${stateOf(b, 'c')}`,
    );
    assert.ok(b.events.some((e) => e.type === 'dead' && e.name === 'c'));
  });

  it('a big gossip message is applied a slice per turn of the event loop; slices still waiting are dropped when the sender disconnects', async () => {
    const { clock, nodes } = cluster(['a', 'b']);
    const [a] = nodes as [Node, Node];
    for (const n of nodes) await n.node.start();
    assert.ok(await run(clock, 5_000, () => allAlive(nodes)), 'never all alive');
    // From now on, work put off to the next turn waits here until the test runs it.
    const turns: (() => void)[] = [];
    (clock as { defer?: (fn: () => void) => void }).defer = (fn) => turns.push(fn);
    const fakeId = identity('slices-fakes');
    const big = (prefix: string, n: number): Uint8Array => {
      const u: Update[] = [];
      for (let i = 0; i < n; i++) u.push({ k: 'a', r: signRecord(recordFor(`${prefix}${i}`, '127.0.9.9:7947', fakeId), 1, fakeId.secretKey) });
      return encodeMessage({ t: 'g', u });
    };
    const held = (prefix: string): number => a.node.membership.view().filter((v) => v.name.startsWith(prefix)).length;
    const nextTurn = async (): Promise<void> => {
      for (const fn of turns.splice(0)) fn();
      await new Promise((r) => setImmediate(r));
    };
    await transports.get('b')!.send({ name: 'a', addresses: [addressOf(0)] }, big('one', 600));
    await run(clock, 2 * LATENCY_MS, () => held('one') > 0);
    assert.equal(held('one'), 256, 'the first slice at once');
    await nextTurn();
    assert.equal(held('one'), 512, 'the second on the next turn');
    await nextTurn();
    assert.equal(held('one'), 600, 'the last on the turn after');
    // A second message (within b's 1,024 new names a minute): its first slice, then a closes its connection with b before the next turn.
    await transports.get('b')!.send({ name: 'a', addresses: [addressOf(0)] }, big('two', 400));
    await run(clock, 2 * LATENCY_MS, () => held('two') > 0);
    assert.equal(held('two'), 256);
    transports.get('a')!.disconnect('b');
    await run(clock, 2 * LATENCY_MS);
    for (let i = 0; i < 3; i++) await nextTurn();
    assert.equal(held('two'), 256, 'the slices still waiting were dropped');
    delete (clock as { defer?: unknown }).defer;
  });

  it('a payload that is not a message is logged and dropped; the node goes on', async () => {
    const { clock, net, nodes } = cluster(['a', 'b']);
    for (const n of nodes) await n.node.start();
    assert.ok(await run(clock, 5_000, () => allAlive(nodes)));
    const [a] = nodes as [Node, Node];
    const rogue = net.transport({
      name: 'rogue',
      idPub: identity('rogue').idPub,
      addresses: [addressOf(9)],
      events: { message: () => undefined, disconnected: () => undefined, rejected: () => undefined },
    });
    await rogue.start();
    await rogue.send({ name: 'a', addresses: [addressOf(0)] }, new TextEncoder().encode('{"t":"nonsense"}'));
    await run(clock, 50);
    assert.ok(
      a.lines.some((l) => l.includes('rogue')),
      `nothing logged about the rogue payload:\n${a.lines.slice(-5).join('\n')}`,
    );
    assert.equal(stateOf(a, 'b'), 'alive');
    assert.equal(stateOf(a, 'rogue'), undefined, 'a learnt a member from a malformed payload');
  });
});

describe('GossipNode: an anchor address that is this very agent', () => {
  /** One node whose transport also listens on anchor.example:7947, joining through `anchor`. */
  async function alone(anchor: string): Promise<string[]> {
    const clock = new ManualClock();
    const net = new MemoryNetwork({ clock, latencyMs: LATENCY_MS });
    const node = new GossipNode({
      membership: makeMember('a0', addressOf(0), clock.now()),
      transport: (events) => net.transport({ name: 'a0', events, idPub: identity('a0').idPub, addresses: [addressOf(0), 'anchor.example:7947'] }),
      clock,
      logger: memoryLogger('debug').logger,
      anchors: [anchor],
    });
    await node.start();
    await run(clock, 60_000);
    const problems = node.membership.problems();
    await node.stop({ leave: false });
    return problems;
  }

  it('the first anchor of a new cluster, listed under another of its names, starts alone without a join problem', async () => {
    assert.deepEqual(await alone('anchor.example:7947'), []);
  });

  it('an anchor nobody answers at is a join problem (the same set-up can fail)', async () => {
    const problems = await alone('nobody.example:7947');
    assert.ok(
      problems.some((p) => p.startsWith('cannot reach any anchor')),
      JSON.stringify(problems),
    );
  });
});
