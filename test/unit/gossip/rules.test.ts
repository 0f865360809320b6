import assert from 'node:assert/strict';
import type { Membership } from '../../../agent/gossip/membership';
import type { Update } from '../../../agent/gossip/messages';
import { signLeft, signRecord } from '../../../agent/gossip/records';
import type { PeerInfo } from '../../../agent/net/transport';
import { TEST } from '../../../agent/gossip/timing';
import { identity, makeMember, recordFor } from './helpers';
import type { State, Suspicion } from '../../../agent/gossip/state';
import type { SignedRecord } from '../../../shared/member';
import { liveCount } from '../../../agent/gossip/state';
import { DISTRUST_AFTER } from '../../../agent/gossip/claims';

const T0 = 1_000_000;
const B = identity('subject-b');
const bRecord = recordFor('b', '127.0.0.2:7947', B);
const alive = (i: number, id = B, name = 'b'): Update => ({
  k: 'a',
  r: signRecord(name === 'b' && id === B ? bRecord : recordFor(name, '127.0.0.9:7947', id), i, id.secretKey),
});
const suspect = (i: number, n = 'b'): Update => ({ k: 's', n, i, f: 'c' });
const dead = (i: number, n = 'b'): Update => ({ k: 'd', n, i, f: 'c' });
const left = (i: number, id = B, n = 'b'): Update => ({ k: 'l', n, i, g: signLeft(n, i, id.secretKey) });
const peer = (name: string, idPub = identity(name).idPub): PeerInfo => ({ name, idPub, remote: '127.0.0.3:40000' });

function gossip(m: Membership, updates: Update[], from: PeerInfo = peer('c'), now = T0): void {
  m.receive(from, { t: 'g', u: updates }, now);
}

function stateOf(m: Membership, name: string): [string, number] | undefined {
  const v = m.view().find((x) => x.name === name);
  return v ? [v.state, v.incarnation] : undefined;
}

type Start = 'alive' | 'suspect' | 'dead' | 'left';
function observerWith(start: Start): Membership {
  const a = makeMember('a', '127.0.0.1:7947', T0);
  // Another member's word makes a known member suspect at most (claims.ts): learn it dead from the start.
  gossip(a, [start === 'dead' ? { ...(alive(5) as { k: 'a'; r: SignedRecord }), o: 'd' } : alive(5)]);
  if (start === 'suspect') gossip(a, [suspect(5)]);
  if (start === 'left') gossip(a, [left(5)]);
  assert.deepEqual(stateOf(a, 'b'), [start, 5], `set-up ${start}`);
  return a;
}

describe('gossip: incarnation and state precedence', () => {
  it('applies the SWIM ordering rules (table)', () => {
    // [held state at incarnation 5, incoming update, expected state, expected incarnation]
    const table: [Start, Update, Start, number][] = [
      ['alive', alive(4), 'alive', 5],
      ['alive', alive(6), 'alive', 6],
      ['alive', suspect(4), 'alive', 5],
      ['alive', suspect(5), 'suspect', 5],
      ['alive', suspect(6), 'alive', 5], // no signed record at 6: cannot be checked
      ['alive', suspect(2 ** 52), 'alive', 5],
      ['alive', dead(5), 'suspect', 5], // another member's word: a suspicion, not a death (claims.ts)
      ['alive', dead(4), 'alive', 5],
      ['alive', left(5), 'left', 5],
      ['alive', left(6), 'left', 6], // signed by the owner: valid at a newer incarnation
      ['suspect', alive(5), 'suspect', 5],
      ['suspect', alive(6), 'alive', 6],
      ['suspect', dead(5), 'suspect', 5],
      ['suspect', suspect(5), 'suspect', 5],
      ['suspect', left(5), 'left', 5],
      ['dead', alive(5), 'dead', 5],
      ['dead', alive(6), 'alive', 6],
      ['dead', suspect(5), 'dead', 5],
      ['dead', left(5), 'left', 5],
      ['left', alive(5), 'left', 5],
      ['left', alive(6), 'alive', 6],
      ['left', dead(5), 'left', 5],
      ['left', suspect(5), 'left', 5],
    ];
    for (const [start, u, wantState, wantInc] of table) {
      const a = observerWith(start);
      gossip(a, [u], peer('c'), T0 + 1);
      assert.deepEqual(stateOf(a, 'b'), [wantState, wantInc], `${start}@5 + ${u.k}${'i' in u ? u.i : (u as { r: { incarnation: number } }).r.incarnation}`);
    }
  });

  it('drops records and leave notices with a bad signature, and counts them', () => {
    const a = observerWith('alive');
    const forged = alive(9) as { k: 'a'; r: { sig: string } };
    forged.r.sig = (alive(9) as { r: { sig: string } }).r.sig.replace(/^../, 'AA');
    const otherKeyLeft: Update = { k: 'l', n: 'b', i: 5, g: signLeft('b', 5, identity('intruder').secretKey) };
    const unknown = alive(1, identity('ghost'), 'ghost') as { k: 'a'; r: { incarnation: number } };
    unknown.r.incarnation = 2; // signature was made for 1
    gossip(a, [forged as Update, otherKeyLeft, unknown as Update], peer('c'), T0 + 1);
    assert.deepEqual(stateOf(a, 'b'), ['alive', 5]);
    assert.equal(stateOf(a, 'ghost'), undefined);
    assert.equal(a.counters()['bad-signature'], 3);
  });

  it('refutes a suspicion or death about itself at its incarnation, ignores stale or unverifiable ones', () => {
    const a = makeMember('a', '127.0.0.1:7947', T0, { incarnation: 10 });
    gossip(a, [suspect(9, 'a')]);
    gossip(a, [suspect(2 ** 50, 'a')]);
    assert.equal(a.incarnation(), 10);
    assert.equal(a.counters()['unverifiable-incarnation'], 1);
    const c = peer('c');
    a.receive(c, { t: 'g', u: [suspect(10, 'a')] }, T0 + 1);
    assert.equal(a.incarnation(), 11);
    const step = a.receive(c, { t: 'g', u: [dead(11, 'a')] }, T0 + 2);
    assert.equal(a.incarnation(), 12);
    assert.ok(step.events.some((e) => e.type === 'refuted' && e.incarnation === 12));
    // The refutation goes straight back to whoever carried the claim.
    const back = step.send.find((o) => o.to.name === 'c' && o.msg.t === 'g');
    assert.ok(back && back.msg.t === 'g' && back.msg.u[0]?.k === 'a' && back.msg.u[0].r.incarnation === 12);
    assert.deepEqual(stateOf(a, 'a'), ['alive', 12]);
  });

  it('answers a suspicion it already refuted with its current record, to the carrier, once per probe period', () => {
    const a = makeMember('a', '127.0.0.1:7947', T0, { incarnation: 10 });
    const c = peer('c');
    // News of a suspicion at 9 still travels after incarnation 10 refuted it: the carrier may hold it.
    const step = a.receive(c, { t: 'g', u: [suspect(9, 'a')] }, T0);
    assert.equal(a.incarnation(), 10, 'no new incarnation for a stale claim');
    const shown = step.send.filter((o) => o.to.name === 'c' && o.msg.t === 'g');
    assert.equal(shown.length, 1);
    const u = shown[0]!.msg.t === 'g' ? shown[0]!.msg.u[0] : undefined;
    assert.ok(u && u.k === 'a' && u.r.incarnation === 10 && u.r.record.name === 'a');
    const records = (at: number): number => a.receive(c, { t: 'g', u: [suspect(9, 'a')] }, at).send.filter((o) => o.to.name === 'c' && o.msg.t === 'g').length;
    assert.equal(records(T0 + 10), 0, 'rate-limited');
    assert.equal(records(T0 + 10 + TEST.probeInterval), 1);
  });

  it('tells the suspect directly when it hears of a suspicion second-hand', () => {
    const a = observerWith('alive');
    const step = a.receive(peer('c'), { t: 'g', u: [suspect(5)] }, T0 + 1);
    assert.deepEqual(stateOf(a, 'b'), ['suspect', 5]);
    const told = step.send.find((o) => o.to.name === 'b' && o.msg.t === 'g');
    assert.ok(told && told.msg.t === 'g', 'the suspect hears it from us too, not only from whoever first suspected it');
    assert.deepEqual(told.msg.u, [{ k: 's', n: 'b', i: 5, f: 'c' }]);
  });

  it('counts confirmations once per sender (whatever the claim names), only up to the expected number, and spreads none of them', () => {
    const a = observerWith('alive');
    const others = ['c1', 'c2', 'c3', 'c4', 'c5', 'c6'];
    gossip(
      a,
      others.map((n) => alive(1, identity(n), n)),
    );
    gossip(a, [{ k: 's', n: 'b', i: 5, f: 'c6' }], peer('c1'));
    const s = (a as unknown as { s: State }).s;
    const susp = (): Suspicion => s.entries.get('b')?.susp as Suspicion;
    assert.equal(susp().expected, 3, 'with 8 live members, 3 confirmations are expected');
    assert.deepEqual([...susp().froms], ['c1'], 'the accuser is the sender, not the f field');
    const deadlines = [susp().deadline];
    // The same sender again, naming others: no confirmation.
    gossip(
      a,
      [
        { k: 's', n: 'b', i: 5, f: 'c2' },
        { k: 'd', n: 'b', i: 5, f: 'c3' },
      ],
      peer('c1'),
    );
    assert.deepEqual([...susp().froms], ['c1']);
    for (const f of others.slice(1)) {
      gossip(a, [{ k: 's', n: 'b', i: 5, f: 'zz' }], peer(f));
      deadlines.push(susp().deadline);
    }
    assert.deepEqual([...susp().froms], ['c1', 'c2', 'c3', 'c4'], 'the first suspecter and three confirmations');
    assert.ok(
      deadlines[3] < deadlines[2] && deadlines[2] < deadlines[1] && deadlines[1] < deadlines[0],
      `each counted confirmation brings the deadline nearer: ${deadlines.join(', ')}`,
    );
    assert.deepEqual(deadlines.slice(3), [deadlines[3], deadlines[3], deadlines[3]], 'later ones change nothing');
    const queued = s.queue.take(10_000, liveCount(s), 'c6').filter((u) => u.k === 's' || u.k === 'd');
    assert.deepEqual(queued, [], "others' claims are not passed on: only our own failed probe spreads a suspicion");
  });

  it("a suspicion on others' word ends in a death only after our own probe fails; an answer clears it and blames the accuser", () => {
    const a = observerWith('alive');
    gossip(a, [alive(1, identity('c'), 'c')]);
    const s = (a as unknown as { s: State }).s;
    a.receive(peer('c'), { t: 'g', u: [dead(5)] }, T0 + 1);
    assert.deepEqual(stateOf(a, 'b'), ['suspect', 5]);
    // Past the deadline: no death yet, a probe of b instead.
    const deadline = (s.entries.get('b')?.susp as Suspicion).deadline;
    const step = a.tick(deadline + 1);
    assert.deepEqual(stateOf(a, 'b'), ['suspect', 5], 'not dead on the word of others');
    const ping = step.send.find((o) => o.to.name === 'b' && o.msg.t === 'p');
    assert.ok(ping && ping.msg.t === 'p', 'our own probe of b');
    // b answers: alive again, and c's claim counts as refuted.
    a.receive(peer('b', B.idPub), { t: 'k', s: ping.msg.s }, deadline + 5);
    assert.deepEqual(stateOf(a, 'b'), ['alive', 5]);
    assert.equal(a.counters()['claim-refuted'], 1);
    // Same again, but b stays silent: our probe fails, then it dies.
    a.receive(peer('c'), { t: 'g', u: [dead(5)] }, deadline + 10);
    let t = deadline + 10;
    for (let i = 0; i < 200 && stateOf(a, 'b')?.[0] !== 'dead'; i++) a.tick((t += TEST.probeInterval / 4));
    assert.deepEqual(stateOf(a, 'b'), ['dead', 5]);
    assert.ok(a.counters()['probe-failed']! >= 1, 'dead only after a probe of ours failed');
  });

  it('a sender whose claims keep being refuted is named in problems, and its claims are then ignored', () => {
    const a = observerWith('alive');
    gossip(a, [alive(1, identity('liar'), 'liar')]);
    let t = T0 + 1;
    for (let inc = 5; inc < 5 + DISTRUST_AFTER; inc++) {
      a.receive(peer('liar'), { t: 'g', u: [suspect(inc)] }, (t += 10));
      assert.deepEqual(stateOf(a, 'b'), ['suspect', inc]);
      gossip(a, [alive(inc + 1)], peer('b', B.idPub), (t += 10)); // b refutes
      assert.deepEqual(stateOf(a, 'b'), ['alive', inc + 1]);
    }
    const p = a.problems().find((x) => x.startsWith('member "liar" keeps saying'));
    assert.ok(p, a.problems().join('\n'));
    assert.match(p, /5 of its claims were refuted .* remove it \(hepto-agent remove\)/);
    a.receive(peer('liar'), { t: 'g', u: [dead(5 + DISTRUST_AFTER)] }, (t += 10));
    assert.deepEqual(stateOf(a, 'b'), ['alive', 5 + DISTRUST_AFTER], 'ignored');
    assert.ok(a.counters()['claim-from-distrusted']! >= 1);
  });

  it('a ping-req never makes it dial an address only the request names; a known target is pinged at its own recorded addresses', () => {
    const a = observerWith('alive');
    const step = a.receive(peer('c'), { t: 'r', s: 7, n: 'nobody', a: ['198.51.100.7:7947'] }, T0 + 1);
    assert.deepEqual(step.send, [], JSON.stringify(step.send));
    assert.equal(a.counters()['relay-unknown-target'], 1);
    const known = a.receive(peer('c'), { t: 'r', s: 8, n: 'b', a: ['198.51.100.7:7947'] }, T0 + 2);
    const ping = known.send.find((o) => o.msg.t === 'p');
    assert.deepEqual(ping?.to, { name: 'b', addresses: ['127.0.0.2:7947'] });
  });

  it('out-bids its own signed record from an earlier run with a higher incarnation', () => {
    const idA = identity('a');
    const a = makeMember('a', '127.0.0.1:7947', T0, { incarnation: 3 });
    const old = signRecord(recordFor('a', '127.0.0.1:7947', idA), 50, idA.secretKey);
    gossip(a, [{ k: 'a', r: old }]);
    assert.equal(a.incarnation(), 51);
    // Its own old leave notice does not make it leave either.
    gossip(a, [{ k: 'l', n: 'a', i: 51, g: signLeft('a', 51, idA.secretKey) }]);
    assert.deepEqual(stateOf(a, 'a'), ['alive', 52]);
    // At the very top of the range it cannot out-bid, and says so rather than overflow.
    gossip(a, [{ k: 'a', r: signRecord(recordFor('a', '127.0.0.1:7947', idA), Number.MAX_SAFE_INTEGER, idA.secretKey) }]);
    assert.equal(a.incarnation(), 52);
    assert.equal(a.counters()['incarnation-exhausted'], 1);
  });

  it('never throws out of receive on hostile input from an authenticated peer', () => {
    const a = observerWith('alive');
    const junk: unknown[] = [
      { t: 'g', u: [{ k: 'a', r: null }] },
      { t: 'g', u: null },
      { t: 'zz' },
      { t: 'd', d: [['b', 2 ** 60, 2]] },
      { t: 'y', u: [{ k: 's', n: 'b', i: Number.NaN, f: 'c' }], w: ['b', 'nobody'] },
      { t: 'r', s: 1, n: 'a', a: [] },
      { t: 'k', s: 999_999 },
      null,
    ];
    for (const m of junk) a.receive(peer('c'), m as never, T0 + 1);
    assert.deepEqual(stateOf(a, 'b'), ['alive', 5]);
  });
});
