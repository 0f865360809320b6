import assert from 'node:assert/strict';
import type { Membership, Step } from '../../../agent/gossip/membership';
import { signRecord } from '../../../agent/gossip/records';
import { QUICK_TIMEOUT_SHARE } from '../../../agent/gossip/probe';
import { TEST, suspicionMin } from '../../../agent/gossip/timing';
import { aLearnsBC, bootCluster, identity, makeMember, recordFor } from './helpers';

type Peer = { name: string; idPub: string; remote: string };

/**
 * Ticks `m` every ms from `t` until it has pinged `target` and then asked
 * `helper` to (ping-req); the helper acks just after (an indirect ack: no
 * round-trip sample). Pings to the helper are acked at once. `first`: a
 * step just taken at `t` whose messages count too.
 */
function timeToIndirect(m: Membership, target: string, t: number, helper: Peer, first?: Step): { pingAt: number; indirectAt: number; end: number } {
  let pingAt = -1;
  let seq = -1;
  for (let now = t; now < t + 10 * TEST.probeInterval; now++) {
    const sent = now === t && first ? [...first.send, ...m.tick(now).send] : m.tick(now).send;
    for (const out of sent) {
      if (out.msg.t !== 'p' && out.msg.t !== 'r') continue;
      if (out.to.name === helper.name && out.msg.t === 'p') m.receive(helper, { t: 'k', s: out.msg.s }, now);
      if (out.to.name === target && out.msg.t === 'p' && pingAt < 0) [pingAt, seq] = [now, out.msg.s];
      if (out.msg.t === 'r' && out.msg.n === target && pingAt >= 0) {
        m.receive(helper, { t: 'k', s: seq }, now + 1);
        return { pingAt, indirectAt: now, end: now + 1 };
      }
    }
  }
  throw new Error(`no ping then ping-req about ${target}`);
}

describe('gossip: failure detection', () => {
  it('ping is answered by an ack with the same sequence number, and nobody is suspected', () => {
    const { router, names } = bootCluster(2);
    router.runUntilTrue(() => router.allSee(names, 'alive'), 5000);
    router.recordSent = true;
    router.run(3000);
    const pings = router.sent.filter((m) => m.from === 'n0' && m.to === 'n1' && m.msg.t === 'p');
    const acks = router.sent.filter((m) => m.from === 'n1' && m.to === 'n0' && m.msg.t === 'k');
    assert.ok(pings.length >= 10, `n0 probed n1 ${pings.length} times in 3 s`);
    const ackSeqs = new Set(acks.map((a) => (a.msg as { s: number }).s));
    for (const p of pings) assert.ok(ackSeqs.has((p.msg as { s: number }).s), 'every ping got its ack');
    assert.deepEqual(
      router.events.filter((e) => e.type === 'suspect'),
      [],
    );
  });

  it('a member cut off briefly is suspected, then refutes with a higher incarnation: no death', () => {
    const { router, names } = bootCluster(5, { partitionMode: 'drop' });
    router.runUntilTrue(() => router.allSee(names, 'alive'), 5000);
    router.partition([['n2'], names.filter((n) => n !== 'n2')]);
    router.runUntilTrue(() => router.events.some((e) => e.type === 'suspect' && e.name === 'n2'), 5000, 'n2 suspected');
    router.heal();
    router.runUntilTrue(() => router.allSee(names, 'alive'), 5000, 'all alive again');
    assert.ok(
      router.events.some((e) => e.type === 'refuted' && e.observer === 'n2'),
      'n2 refuted',
    );
    const inc =
      router
        .node('n0')
        .m.view()
        .find((v) => v.name === 'n2')?.incarnation ?? 0;
    assert.ok(inc > 1, `n2 is alive at incarnation ${inc}`);
    router.run(5000);
    assert.deepEqual(
      router.events.filter((e) => e.type === 'dead'),
      [],
    );
  });

  it('a crashed member is suspected, then declared dead by all once the suspicion times out', () => {
    const { router, names } = bootCluster(5, { notifyDisconnect: false });
    router.runUntilTrue(() => router.allSee(names, 'alive'), 5000);
    const t0 = router.now;
    router.crash('n3');
    const up = names.filter((n) => n !== 'n3');
    const took = router.runUntilTrue(() => router.allSee(['n3'], 'dead', up), 10_000, 'n3 dead everywhere');
    const firstSuspect = router.events.find((e) => e.type === 'suspect' && e.name === 'n3' && e.at >= t0);
    const firstDead = router.events.find((e) => e.type === 'dead' && e.name === 'n3');
    assert.ok(firstSuspect && firstDead);
    assert.ok(firstDead.at - firstSuspect.at >= suspicionMin(TEST, 5), 'not before the minimum suspicion timeout');
    assert.ok(took < 3000, `dead everywhere after ${took} ms`);
    assert.deepEqual(
      router.events.filter((e) => (e.type === 'dead' || e.type === 'suspect') && e.name !== 'n3'),
      [],
    );
  });

  it('a closed connection gets the member probed at once', () => {
    const { router, names } = bootCluster(5);
    router.runUntilTrue(() => router.allSee(names, 'alive'), 5000);
    const t0 = router.now;
    router.crash('n4');
    router.runUntilTrue(() => router.events.some((e) => e.type === 'suspect' && e.name === 'n4'), 5000);
    const s = router.events.find((e) => e.type === 'suspect' && e.name === 'n4');
    // No waiting for n4's turn in the round-robin, nor for the end of the probe period: the
    // connection is refused, and every helper reports (nack) that it cannot reach n4 either.
    assert.ok(s && s.at - t0 < TEST.probeInterval / 2, `suspected after ${s ? s.at - t0 : '?'} ms`);
  });

  it('a first contact waits twice the probe timeout (dial and handshake) before going indirect; a member met before, once', () => {
    const T0 = 1_000_000;
    // a learns b and c from c's gossip: b has never talked to a.
    const { a, b, c } = aLearnsBC(T0, 'ft');
    const cold = timeToIndirect(a, 'b', T0, c);
    assert.equal(cold.indirectAt - cold.pingAt, 2 * TEST.probeTimeout, 'first contact: twice the timeout');
    // b talks to a: the next probe has the plain timeout.
    a.receive(b, { t: 'p', s: 7 }, cold.end);
    const warm = timeToIndirect(a, 'b', cold.end, c);
    assert.equal(warm.indirectAt - warm.pingAt, TEST.probeTimeout, 'connected: the plain timeout');
    // Its connection closes: b is probed at once, with the plain timeout (we met it: a vanished
    // machine is not detected any later).
    const closed = a.disconnected('b', warm.end);
    assert.ok(
      closed.send.some((o) => o.to.name === 'b' && o.msg.t === 'p'),
      'probed at once',
    );
    const again = timeToIndirect(a, 'b', warm.end, c, closed);
    assert.equal(again.indirectAt - again.pingAt, TEST.probeTimeout, 'after a disconnect: still the plain timeout');
    assert.deepEqual(
      a
        .view()
        .map((v) => [v.name, v.state])
        .sort(),
      [
        ['a', 'alive'],
        ['b', 'alive'],
        ['c', 'alive'],
      ],
    );
  });

  it('a member already held suspect is probed without the indirect stage, and the silent failure still ends dead everywhere', () => {
    // A hung machine: no connection closes (no disconnect events), it just stops answering.
    const { router, names } = bootCluster(6, { notifyDisconnect: false });
    router.runUntilTrue(() => router.allSee(names, 'alive'), 5000);
    router.run(3000); // every member has measured round trips
    router.recordSent = true;
    router.crash('n5');
    const rest = names.filter((n) => n !== 'n5');
    router.runUntilTrue(() => router.allSee(['n5'], 'dead', rest), 30_000, 'n5 dead everywhere');
    const suspectedAt = new Map<string, number>();
    for (const e of router.events) if (e.type === 'suspect' && e.name === 'n5' && !suspectedAt.has(e.observer)) suspectedAt.set(e.observer, e.at);
    assert.deepEqual([...suspectedAt.keys()].sort(), rest, 'every other member held n5 suspect before dead');
    // Each ping-req about n5 belongs to a probe its sender started while it still held n5 alive.
    let quick = 0;
    for (const from of rest) {
      const pings = router.sent.filter((m) => m.from === from && m.to === 'n5' && m.msg.t === 'p');
      for (const p of pings) {
        const seq = (p.msg as { s: number }).s;
        const req = router.sent.some((m) => m.from === from && m.msg.t === 'r' && m.msg.n === 'n5' && m.msg.s === seq);
        // At the very instant of the suspicion counts: a suspicion heard is probed in the same step.
        if (p.at >= (suspectedAt.get(from) as number)) {
          assert.ok(!req, `${from} asked helpers about n5 in a probe it started at ${p.at}, with n5 already suspect since ${suspectedAt.get(from)}`);
          quick++;
        }
      }
    }
    assert.ok(quick > 0, 'some member probed n5 while it held it suspect');
  });

  it("a member held suspect on another's word is probed with a quarter of the timeout, and only then does the suspicion travel on", () => {
    const T0 = 1_000_000;
    const { a, b, c } = aLearnsBC(T0, 'qp');
    a.receive(b, { t: 'p', s: 1 }, T0); // b has talked to a: no first-contact doubling
    // A few probe periods with every ping acked within 1 ms: a has measured round trips.
    let t = T0;
    for (; t < T0 + 3 * TEST.probeInterval; t++) {
      for (const o of a.tick(t).send) if (o.msg.t === 'p') a.receive(o.to.name === 'b' ? b : c, { t: 'k', s: o.msg.s }, t + 1);
    }
    // c says b is suspect: a probes b at once, directly only.
    const claim = a.receive(c, { t: 'g', u: [{ k: 's', n: 'b', i: 1, f: 'c' }] }, t + 1);
    const ping = claim.send.find((o) => o.to.name === 'b' && o.msg.t === 'p');
    assert.ok(ping, 'probed at once');
    const ownClaim = (sent: Step['send']): boolean =>
      sent.some((o) => o.msg.t === 'g' && o.to.name !== 'b' && (o.msg.u ?? []).some((u) => u.k === 's' && u.n === 'b' && u.f === 'a'));
    assert.ok(!ownClaim(claim.send), "c's claim is not passed on as a's own");
    let failedAt = -1;
    let spread = false;
    for (let now = t + 2; now < t + 2 * TEST.probeInterval && failedAt < 0; now++) {
      const step = a.tick(now);
      assert.ok(!step.send.some((o) => o.msg.t === 'r'), 'no ping-req about a member held suspect');
      if (a.counters()['probe-failed'] === 1) [failedAt, spread] = [now, ownClaim(step.send)];
      else assert.ok(!ownClaim(step.send), 'no suspicion of its own before its probe failed');
    }
    assert.equal(failedAt - (t + 1), TEST.probeTimeout * QUICK_TIMEOUT_SHARE, 'the quick probe failed at a quarter of the timeout');
    for (let now = failedAt + 1; now < failedAt + 5 * TEST.gossipInterval && !spread; now++) spread = ownClaim(a.tick(now).send);
    assert.ok(spread, "once a's own probe failed, a gossips the suspicion as its own");
  });

  it('a probe that fails after its target refuted raises no suspicion of the new incarnation', () => {
    const T0 = 1_000_000;
    const { a, b, c } = aLearnsBC(T0, 'or');
    a.receive(b, { t: 'p', s: 1 }, T0);
    let t = T0;
    for (; t < T0 + 3 * TEST.probeInterval; t++) {
      for (const o of a.tick(t).send) if (o.msg.t === 'p') a.receive(o.to.name === 'b' ? b : c, { t: 'k', s: o.msg.s }, t + 1);
    }
    // c says b is suspect: a probes b at once. b's refutation (incarnation 2) reaches a through c
    // before a's ping is answered, and that ping is never answered (b was busy, its ack lost).
    const claim = a.receive(c, { t: 'g', u: [{ k: 's', n: 'b', i: 1, f: 'c' }] }, t + 1);
    assert.ok(
      claim.send.some((o) => o.to.name === 'b' && o.msg.t === 'p'),
      'probed at once',
    );
    const B = identity('or-b');
    a.receive(c, { t: 'g', u: [{ k: 'a', r: signRecord(recordFor('b', '127.0.0.2:7947', B), 2, B.secretKey) }] }, t + 2);
    assert.equal(a.view().find((v) => v.name === 'b')?.state, 'alive', 'the refutation cleared the suspicion');
    const failedBefore = a.counters()['probe-failed'] ?? 0;
    const events: string[] = [];
    for (let now = t + 3; now < t + 3 * TEST.probeInterval; now++) {
      const step = a.tick(now);
      events.push(...step.events.filter((e) => e.name === 'b').map((e) => e.type));
      for (const o of step.send) if (o.msg.t === 'p' && o.to.name === 'c') a.receive(c, { t: 'k', s: o.msg.s }, now + 1);
      for (const o of step.send) if (o.msg.t === 'p' && o.to.name === 'b') a.receive(b, { t: 'k', s: o.msg.s }, now + 1);
    }
    assert.deepEqual(events, [], 'b was not suspected again');
    assert.equal(a.view().find((v) => v.name === 'b')?.state, 'alive');
    assert.equal(a.counters()['probe-outdated'], 1, "a's probe of incarnation 1 ended without an answer, and was put aside");
    assert.equal(a.counters()['probe-failed'] ?? 0, failedBefore, 'no probe failure counted');
  });

  it('a quick probe waits at least twice the last round trip to that member, however fast the others answer', () => {
    // a's 24 peers answer in 1 ms, except b, across an ocean: 150 ms. Probed once per round of
    // 24, b weighs little in a's round-trip estimate, which the fast answers bring back down.
    const T0 = 1_000_000;
    const a = makeMember('a', '127.0.0.1:7947', T0);
    const names = ['b', ...Array.from({ length: 23 }, (_, i) => `f${i}`)];
    const peers = new Map(
      names.map((n, i) => {
        const id = identity(`lr-${n}`);
        return [
          n,
          {
            peer: { name: n, idPub: id.idPub, remote: `127.0.1.${i + 2}:40000` },
            record: signRecord(recordFor(n, `127.0.1.${i + 2}:7947`, id), 1, id.secretKey),
          },
        ];
      }),
    );
    const f0 = peers.get('f0')!.peer;
    a.receive(f0, { t: 'g', u: [...peers.values()].map((p) => ({ k: 'a' as const, r: p.record })) }, T0);
    for (const p of peers.values()) a.receive(p.peer, { t: 'p', s: 1 }, T0); // all met
    const acks: { at: number; from: string; seq: number }[] = [];
    let sinceB = 0;
    const tickAt = (now: number): void => {
      for (const k of acks.filter((x) => x.at === now)) a.receive(peers.get(k.from)!.peer, { t: 'k', s: k.seq }, now);
      for (const o of a.tick(now).send) {
        if (o.msg.t !== 'p' || !o.to.name || !peers.has(o.to.name)) continue;
        acks.push({ at: now + (o.to.name === 'b' ? 150 : 1), from: o.to.name, seq: o.msg.s });
        sinceB = o.to.name === 'b' ? 0 : sinceB + 1;
      }
    };
    let t = T0 + 1;
    // Warm up, then wait until b's last answer lies 22 fast ones back: the estimate alone would
    // now give b's quick probe the plain quarter timeout, far under its 150 ms.
    for (; t < T0 + 60 * TEST.probeInterval || sinceB < 22; t++) tickAt(t);
    const failedBefore = a.counters()['probe-failed'] ?? 0;
    // f0 says b is suspect: a probes b at once, and b answers in its usual 150 ms.
    for (const o of a.receive(f0, { t: 'g', u: [{ k: 's', n: 'b', i: 1, f: 'f0' }] }, t).send) {
      if (o.msg.t === 'p' && o.to.name === 'b') acks.push({ at: t + 150, from: 'b', seq: o.msg.s });
    }
    for (const end = t + 400; t < end; t++) tickAt(t + 1);
    assert.equal(a.counters()['probe-failed'] ?? 0, failedBefore, 'the quick probe of b did not fail');
    assert.equal(a.view().find((v) => v.name === 'b')?.state, 'alive', 'its answer cleared the suspicion');
  });

  it('a helper that cannot reach the target answers the ping-req with a nack', () => {
    const { router, names } = bootCluster(4);
    router.runUntilTrue(() => router.allSee(names, 'alive'), 5000);
    router.recordSent = true;
    router.crash('n3');
    router.run(200);
    const nacks = router.sent.filter((m) => m.msg.t === 'n');
    assert.ok(nacks.length > 0, 'some helper sent a nack');
    for (const n of nacks) {
      const req = router.sent.find((m) => m.msg.t === 'r' && m.from === n.to && m.to === n.from && m.msg.s === (n.msg as { s: number }).s);
      assert.ok(req, 'each nack answers a ping-req with the same sequence number');
    }
  });

  it('a hung member (connections open) is suspected as soon as every helper reports no answer, before the probe period ends', () => {
    const { router, names } = bootCluster(5, { notifyDisconnect: false });
    router.runUntilTrue(() => router.allSee(names, 'alive'), 5000);
    router.run(3000);
    router.recordSent = true;
    const t0 = router.now;
    router.crash('n4');
    router.runUntilTrue(() => router.events.some((e) => e.type === 'suspect' && e.name === 'n4' && e.at >= t0), 10_000, 'n4 suspected');
    const first = router.events.find((e) => e.type === 'suspect' && e.name === 'n4' && e.at >= t0)!;
    const ping = router.sent.find((m) => m.from === first.observer && m.to === 'n4' && m.msg.t === 'p' && m.at >= t0)!;
    const seq = (ping.msg as { s: number }).s;
    const asked = router.sent.filter((m) => m.from === first.observer && m.msg.t === 'r' && m.msg.s === seq).map((m) => m.to);
    const nacked = router.sent.filter((m) => m.to === first.observer && m.msg.t === 'n' && m.msg.s === seq).map((m) => m.from);
    assert.ok(asked.length > 0, `${first.observer} asked helpers about n4`);
    assert.deepEqual(nacked.sort(), asked.sort(), 'every helper, its own ping to n4 unanswered over an open connection, sent a nack');
    assert.ok(first.at - ping.at < TEST.probeInterval, `suspected ${first.at - ping.at} ms after the ping, within the probe period`);
  });

  it("a nack counts only from a helper asked, once: a stranger's or a repeated nack hastens nothing", () => {
    const T0 = 1_000_000;
    const a = makeMember('a', '127.0.0.1:7947', T0);
    const peers = ['b', 'c', 'd'].map((n, i) => {
      const id = identity(`na-${n}`);
      const peer = { name: n, idPub: id.idPub, remote: `127.0.0.${i + 2}:40000` };
      return { peer, record: signRecord(recordFor(n, `127.0.0.${i + 2}:7947`, id), 1, id.secretKey) };
    });
    const [b, c, d] = peers.map((p) => p.peer) as [Peer, Peer, Peer];
    a.receive(c, { t: 'g', u: peers.map((p) => ({ k: 'a' as const, r: p.record })) }, T0);
    for (const p of [b, c, d]) a.receive(p, { t: 'p', s: 1 }, T0);
    // Tick until a probes b; c and d answer pings at once, b never does.
    let seq = -1;
    let asked: string[] = [];
    let t = T0;
    for (; t < T0 + 10 * TEST.probeInterval && asked.length === 0; t++) {
      for (const o of a.tick(t).send) {
        if (o.msg.t === 'p' && o.to.name !== 'b') a.receive(o.to.name === 'c' ? c : d, { t: 'k', s: o.msg.s }, t);
        if (o.msg.t === 'p' && o.to.name === 'b' && seq < 0) seq = o.msg.s;
        if (o.msg.t === 'r' && o.msg.n === 'b' && o.msg.s === seq) asked.push(o.to.name as string);
      }
    }
    assert.deepEqual(asked.sort(), ['c', 'd'], 'a asked c and d about b');
    // c nacks three times, b (not asked) once: one nack of two counted, no verdict yet.
    for (const from of [c, c, c, b]) a.receive(from, { t: 'n', s: seq }, t);
    assert.equal(a.view().find((v) => v.name === 'b')?.state, 'alive', 'b not suspected on c alone');
    assert.equal(a.counters()['nack-unasked'], 3, "c's repeats and b's nack were not counted");
    // d nacks too: every helper has, and a suspects b at once.
    const step = a.receive(d, { t: 'n', s: seq }, t);
    assert.ok(
      step.events.some((e) => e.type === 'suspect' && e.name === 'b'),
      'suspected once every helper reported',
    );
  });

  it('indirect probes save a member whose direct path is cut', () => {
    const { router, names } = bootCluster(5);
    router.runUntilTrue(() => router.allSee(names, 'alive'), 5000);
    router.recordSent = true;
    router.cut('n1', 'n2');
    router.run(10_000);
    const pingReqs = router.sent.filter((m) => m.from === 'n1' && m.msg.t === 'r' && m.msg.n === 'n2');
    assert.ok(pingReqs.length > 0, 'n1 asked others to probe n2');
    assert.deepEqual(
      router.events.filter((e) => e.type === 'suspect' || e.type === 'dead'),
      [],
    );
    assert.equal(router.node('n1').m.counters()['probe-failed'], undefined);
  });

  it('a leaving member is seen left by all, is not suspected, and is not retried', () => {
    const { router, names } = bootCluster(6);
    router.runUntilTrue(() => router.allSee(names, 'alive'), 5000);
    const n3 = router.node('n3');
    router.handle(n3, n3.m.leave(router.now));
    router.crash('n3'); // the agent exits right after announcing
    const rest = names.filter((n) => n !== 'n3');
    const took = router.runUntilTrue(() => router.allSee(['n3'], 'left', rest), 2000, 'left everywhere');
    assert.ok(took < 500, `left seen by all after ${took} ms`);
    router.recordSent = true;
    router.run(10_000);
    assert.ok(router.allSee(['n3'], 'left', rest));
    assert.deepEqual(
      router.events.filter((e) => e.name === 'n3' && (e.type === 'suspect' || e.type === 'dead')),
      [],
    );
    assert.deepEqual(
      router.sent.filter((m) => m.to === 'n3'),
      [],
      'nobody probes or syncs with a left member',
    );
    assert.deepEqual(n3.m.view().find((v) => v.name === 'n3')?.state, 'left');
  });
});
