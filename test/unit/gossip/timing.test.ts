import assert from 'node:assert/strict';
import {
  LAN,
  TEST,
  WAN,
  backoffDelay,
  expectedConfirmations,
  retransmitLimit,
  suspicionMax,
  suspicionMin,
  suspicionTimeout,
} from '../../../agent/gossip/timing';
import { BroadcastQueue } from '../../../agent/gossip/dissemination';
import type { Update } from '../../../agent/gossip/messages';
import { updateSize } from '../../../agent/gossip/messages';
import { seededRng } from '../../helpers/sim-router';

describe('gossip: timing math', () => {
  it('suspicion minimum scales with log10 N, never below one probe multiple', () => {
    const t = { suspicionMult: 4, probeInterval: 1000 };
    // memberlist-bench.md: 4.0 s, 6.8 s, 8.0 s, 9.2 s at N = 10, 50, 100, 200.
    const table: [number, number][] = [
      [1, 4000],
      [3, 4000],
      [10, 4000],
      [50, 6796],
      [100, 8000],
      [200, 9204],
    ];
    for (const [n, want] of table) assert.equal(suspicionMin(t, n), want, `N=${n}`);
  });

  it('suspicion maximum is suspicionMaxMult × minimum', () => {
    assert.equal(suspicionMax({ suspicionMult: 4, suspicionMaxMult: 6, probeInterval: 1000 }, 100), 48_000);
    assert.equal(suspicionMax(LAN, 100), 4 * suspicionMin(LAN, 100));
  });

  it('suspicion timeout shrinks logarithmically with confirmations (table)', () => {
    // [confirmations, expected, min, max, want]
    const table: [number, number, number, number, number][] = [
      [0, 3, 2000, 30_000, 30_000],
      [1, 3, 2000, 30_000, 16_000],
      [2, 3, 2000, 30_000, 7_810],
      [3, 3, 2000, 30_000, 2000],
      [4, 3, 2000, 30_000, 2000], // more than expected: still min
      [0, 0, 2000, 30_000, 2000], // nobody can confirm: min straight away
      [5, 0, 2000, 30_000, 2000],
      [0, 1, 1000, 5000, 5000],
      [1, 1, 1000, 5000, 1000],
      [-1, 3, 2000, 30_000, 30_000],
    ];
    for (const [c, k, min, max, want] of table) assert.equal(suspicionTimeout(c, k, min, max), want, `c=${c} k=${k}`);
  });

  it('expected confirmations are capped by the members who could confirm', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 100].map((n) => expectedConfirmations(3, n)),
      [0, 0, 1, 2, 3, 3],
    );
  });

  it('retransmit limit follows the current cluster size', () => {
    assert.deepEqual(
      [0, 1, 9, 10, 99, 100, 1000].map((n) => retransmitLimit(4, n)),
      [4, 4, 4, 8, 8, 12, 16],
    );
  });

  it('backoff doubles, is jittered within ±25 % and capped', () => {
    const lo = () => 0;
    const hi = () => 0.999999;
    assert.equal(backoffDelay(0, 1000, 30_000, lo), 750);
    assert.equal(backoffDelay(0, 1000, 30_000, hi), 1250);
    assert.equal(backoffDelay(3, 1000, 30_000, lo), 6000);
    assert.equal(backoffDelay(10, 1000, 30_000, hi), 30_000);
    assert.equal(backoffDelay(10, 1000, 30_000, lo), 22_500);
    assert.equal(backoffDelay(1e9, 1000, 30_000, hi), 30_000);
  });

  it('presets: LAN detects faster than memberlist, WAN is slower than LAN, TEST is fastest', () => {
    for (const t of [LAN, WAN, TEST]) {
      assert.ok(t.probeTimeout < t.probeInterval);
      assert.ok(t.suspicionMaxMult >= 1);
    }
    // LAN suspicion at N=100 must leave room for a crash seen by all within ~5 s (memberlist: 8 s + probe).
    assert.ok(suspicionMin(LAN, 100) + LAN.probeInterval <= 4000);
    assert.ok(WAN.probeInterval > LAN.probeInterval && TEST.probeInterval < LAN.probeInterval);
  });
});

describe('gossip: dissemination queue', () => {
  const u = (n: string): Update => ({ k: 'd', n, i: 1, f: 'x' });

  it('keeps an update queued while the cluster grows: the limit is read at each send', () => {
    const q = new BroadcastQueue(4);
    q.enqueue('a', u('a'));
    // While n = 3, the update retires after the 2 other members got it.
    assert.equal(q.take(1000, 3, 'm1').length, 1);
    assert.equal(q.size, 1);
    // The cluster turns out to be 100 strong: now it goes to 12 distinct members.
    let sent = 1;
    for (let i = 2; i < 50 && q.size > 0; i++) sent += q.take(1000, 100, `m${i}`).length;
    assert.equal(sent, retransmitLimit(4, 100));
  });

  it('never sends the same update twice to the same member, and a newer update replaces the older', () => {
    const q = new BroadcastQueue(4);
    q.enqueue('a', u('a'));
    assert.equal(q.take(1000, 50, 'm1').length, 1);
    assert.equal(q.take(1000, 50, 'm1').length, 0);
    q.enqueue('a', { k: 'd', n: 'a', i: 2, f: 'x' });
    assert.deepEqual(q.take(1000, 50, 'm1'), [{ k: 'd', n: 'a', i: 2, f: 'x' }]);
  });

  it('sends the least sent updates first, the newest first among those, and retires them when the cluster shrinks', () => {
    const q = new BroadcastQueue(4);
    for (const n of ['a', 'b', 'c']) q.enqueue(n, u(n));
    const one = JSON.stringify(u('a')).length + 1;
    const names = (us: Update[]): string[] => us.map((x) => (x.k === 'a' ? x.r.record.name : x.n));
    assert.deepEqual(names(q.take(one, 50, 'm1')), ['c']);
    assert.deepEqual(names(q.take(one * 2, 50, 'm2')), ['b', 'a']);
    // Everything sent once: newest first again, and never twice to the same member.
    assert.deepEqual(names(q.take(one * 3, 50, 'm1')), ['b', 'a']);
    q.enqueue('d', u('d'));
    assert.deepEqual(names(q.take(one * 2, 50, 'm3')), ['d', 'c']);
    // Replacing an update puts it back at the front, unsent.
    q.enqueue('a', { k: 'd', n: 'a', i: 2, f: 'x' });
    assert.deepEqual(names(q.take(one, 50, 'm4')), ['a']);
    // With 3 members an update retires after 2 sends: b and c, sent twice, retire unsent; a and d go once more and retire.
    assert.equal(q.size, 4);
    assert.deepEqual(names(q.take(one * 4, 3, 'm5')), ['a', 'd']);
    assert.equal(q.size, 0);
    q.enqueue('e', u('e'));
    q.drop('e');
    assert.equal(q.size, 0);
    assert.deepEqual(q.take(1000, 50, 'm6'), []);
  });

  it('takes exactly what a plain sorted walk would, through thousands of enqueues, replacements, drops and takes', () => {
    // The reference: each bucket (updates sent k times) found afresh and sorted newest first, walked
    // with the queue's own rules: budget, at most 256 looked at, stop once less room than the smallest.
    interface Ref {
      name: string;
      update: Update;
      size: number;
      sentTo: string[];
      order: number;
    }
    let ref: Ref[] = [];
    let order = 0;
    let smallest = Infinity;
    const refTake = (budget: number, n: number, target: string): Update[] => {
      const limit = Math.max(1, Math.min(retransmitLimit(4, n), n - 1));
      ref = ref.filter((r) => r.sentTo.length < limit);
      const out: Update[] = [];
      let used = 0;
      let looked = 0;
      const room = (): boolean => looked < 256 && (out.length === 0 || budget - used >= smallest);
      for (let k = 0; k < limit && room(); k++) {
        const bucket = ref.filter((r) => r.sentTo.length === k).sort((a, b) => b.order - a.order);
        for (const r of bucket) {
          if (!room()) break;
          looked++;
          if (r.sentTo.includes(target) || (used + r.size > budget && out.length > 0)) continue;
          out.push(r.update);
          used += r.size;
          r.sentTo.push(target);
        }
        ref = ref.filter((r) => r.sentTo.length < limit);
      }
      return out;
    };
    const rng = seededRng(21);
    const q = new BroadcastQueue(4);
    const pickOf = <T>(xs: readonly T[]): T => xs[Math.floor(rng() * xs.length)] as T;
    let taken = 0;
    for (let op = 0; op < 4000; op++) {
      const r = rng();
      if (r < 0.35) {
        const name = `member-${'x'.repeat(Math.floor(rng() * 30))}${Math.floor(rng() * 300)}`;
        const update: Update = { k: 'd', n: name, i: op, f: 'x' };
        q.enqueue(name, update);
        ref = ref.filter((x) => x.name !== name);
        if (ref.length === 0) smallest = Infinity;
        const size = updateSize(update);
        smallest = Math.min(smallest, size);
        ref.push({ name, update, size, sentTo: [], order: order++ });
      } else if (r < 0.42 && ref.length > 0) {
        const name = pickOf(ref).name;
        q.drop(name);
        ref = ref.filter((x) => x.name !== name);
      } else {
        const budget = pickOf([60, 300, 1200, 5000]);
        const n = pickOf([3, 20, 100, 10_000]);
        const target = `t${Math.floor(rng() * 40)}`;
        const want = refTake(budget, n, target);
        assert.deepEqual(q.take(budget, n, target), want, `take ${op}`);
        taken += want.length;
      }
      assert.equal(q.size, ref.length, `size after op ${op}`);
    }
    assert.ok(taken > 3000, `${taken} updates taken`);
  });

  it('respects the byte budget but always sends at least one update', () => {
    const q = new BroadcastQueue(4);
    for (let i = 0; i < 10; i++) q.enqueue(`n${i}`, u(`n${i}`));
    const one = JSON.stringify(u('n0')).length + 1;
    assert.equal(q.take(one * 3, 50, 'm').length, 3);
    assert.equal(q.take(1, 50, 'm2').length, 1);
  });
});
