/**
 * The member table (columns indexed by member id) and the lists derived from
 * it: a view reads and writes its row, the table grows without losing rows,
 * ids are never reused, and the lists kept up to date incrementally as
 * members are added equal a rebuild from scratch after a run with joins,
 * crashes, a partition and churn; so do the digest and its hash, kept in
 * name order between additions.
 */
import { strict as assert } from 'assert';
import type { State } from '../../../agent/gossip/state';
import { STATE_CODE, deadIds, liveCount, liveIds } from '../../../agent/gossip/state';
import { digestHash, digestOf } from '../../../agent/gossip/sync';
import { MemberTable, NameIndex } from '../../../agent/gossip/table';
import { LAN } from '../../../agent/gossip/timing';
import type { SignedRecord } from '../../../shared/member';
import { installFastCrypto, type FastCrypto } from '../../../bench/sim/crypto';
import { LATENCY_PRESETS } from '../../../bench/sim/latency';
import { stream } from '../../../bench/sim/rng';
import * as sc from '../../../bench/sim/scenarios';
import { World } from '../../../bench/sim/world';

const rec = (name: string, incarnation = 1): SignedRecord => ({ record: { name } as SignedRecord['record'], incarnation, sig: 'x' });
const init = (name: string) => ({ signed: rec(name), state: 'alive' as const, inc: 1, stateSince: 10.5, lastSeen: 11.25, warmAt: -1, probeRound: -1 });

describe('gossip: member table', () => {
  it('a view reads and writes its row; rare fields come and go', () => {
    const t = new MemberTable(new NameIndex());
    const e = t.add('a', init('a'));
    assert.equal(e.name, 'a');
    assert.equal(e.state, 'alive');
    assert.equal(e.stateSince, 10.5, 'fractional times are kept');
    e.state = 'suspect';
    e.inc = 2 ** 40;
    e.susp = { start: 1, froms: new Set(['b']), expected: 2, min: 1, max: 2, deadline: 3 };
    e.leftSig = 'sig';
    const again = t.get('a');
    assert.ok(again);
    assert.equal(again.state, 'suspect');
    assert.equal(again.inc, 2 ** 40);
    assert.equal(again.susp?.deadline, 3);
    again.susp = undefined;
    again.leftSig = undefined;
    assert.equal(t.get('a')?.susp, undefined);
    assert.equal(t.get('a')?.leftSig, undefined);
    assert.equal(t.get('nobody'), undefined);
  });

  it('its digest follows every row change, whatever the order rows came in, and tells different tables apart', () => {
    const hashOf = (t: MemberTable): string => digestHash({ entries: t } as State);
    const a = new MemberTable(new NameIndex());
    const b = new MemberTable(new NameIndex());
    const empty = hashOf(a);
    for (const n of ['x', 'y', 'z']) a.add(n, init(n));
    for (const n of ['z', 'x', 'y']) b.add(n, init(n));
    assert.equal(hashOf(a), hashOf(b), 'same rows, any order');
    assert.notEqual(hashOf(a), empty);
    const before = hashOf(a);
    const y = a.get('y');
    assert.ok(y);
    y.state = 'suspect';
    const suspect = hashOf(a);
    assert.notEqual(suspect, before, 'a state change shows');
    y.inc = 2;
    assert.notEqual(hashOf(a), suspect, 'an incarnation change shows');
    y.inc = 1;
    y.state = 'alive';
    assert.equal(hashOf(a), before, 'back to the same rows, back to the same hash');
    a.delete('z');
    assert.notEqual(hashOf(a), hashOf(b), 'a missing row shows');
    a.add('z', { ...init('z'), state: 'dead' });
    assert.notEqual(hashOf(a), hashOf(b), 'a replaced row shows');
    a.add('z', init('z'));
    assert.equal(hashOf(a), hashOf(b));
    assert.match(hashOf(a), /^[A-Za-z0-9+/]{16}$/, '16 base64 characters, as the h message carries');
  });

  it('grows without losing rows, keeps ids, and iterates present entries in id order', () => {
    const index = new NameIndex();
    const t = new MemberTable(index);
    for (let i = 0; i < 100; i++) t.add(`m${i}`, { ...init(`m${i}`), inc: i });
    assert.equal(t.size, 100);
    for (let i = 0; i < 100; i++) assert.equal(t.get(`m${i}`)?.inc, i);
    assert.equal(t.delete('m5'), true);
    assert.equal(t.delete('m5'), false);
    assert.equal(t.size, 99);
    assert.equal(t.get('m5'), undefined);
    // A name coming back gets its old id, with a fresh row (no leftover suspicion).
    const id = index.find('m5');
    const back = t.add('m5', { ...init('m5'), inc: 50 });
    assert.equal(back.id, id);
    assert.equal(back.susp, undefined);
    const names = [...t.values()].map((e) => e.name);
    assert.deepEqual(
      names,
      Array.from({ length: 100 }, (_, i) => `m${i}`),
    );
    assert.deepEqual(
      [...t].slice(0, 2).map(([n, e]) => [n, e.inc]),
      [
        ['m0', 0],
        ['m1', 1],
      ],
    );
  });

  it('tables sharing an index line up by id, each with its own rows', () => {
    const index = new NameIndex();
    const a = new MemberTable(index);
    const b = new MemberTable(index);
    a.add('x', init('x'));
    b.add('y', init('y'));
    b.add('x', { ...init('x'), inc: 9 });
    assert.equal(a.get('y'), undefined);
    assert.equal(a.get('x')?.inc, 1);
    assert.equal(b.get('x')?.inc, 9);
    assert.equal(a.get('x')?.id, b.get('x')?.id);
  });
});

describe('gossip: member lists kept by the table', function () {
  this.timeout(30_000);
  let fast: FastCrypto;
  before(() => {
    fast = installFastCrypto();
  });
  after(() => fast.uninstall());

  it('kept at every write, they equal a scan after joins, a crash, during and after a partition, and after churn', () => {
    const n = 40;
    const w = new World({ seed: 11, timing: LAN, latency: LATENCY_PRESETS.lan, capacity: n + 4, wire: 'shared', countBytes: false });
    const rng = stream(11, 'scenarios');
    let anchorChecks = 0;
    const check = (when: string): number => {
      let compared = 0;
      for (let i = 0; i < w.size; i++) {
        const m = w.membership(i);
        if (!m) continue;
        const s = (m as unknown as { s: State }).s;
        // The lists the table keeps at every write hold exactly the ids a scan finds, self excluded.
        const scan = (codes: number[]): number[] =>
          [...s.entries.values()].filter((e) => e.name !== s.selfName && codes.includes(STATE_CODE[e.state])).map((e) => e.id);
        for (const [kept, codes, what] of [
          [liveIds(s), [0, 1], 'live'],
          [deadIds(s), [2], 'dead'],
        ] as const) {
          const rebuilt = scan([...codes]);
          assert.deepEqual(
            [...kept].sort((x, y) => x - y),
            rebuilt,
            `${when}: member ${i}, ${what}`,
          );
          compared += rebuilt.length;
        }
        // The anchor's address is counted once per live record (and ours) that advertises it (the anchor itself watches none).
        for (const anchorAddr of s.join.anchors) {
          const holders = [...s.entries.values()].filter(
            (e) => (e.name === s.selfName || e.state === 'alive' || e.state === 'suspect') && e.signed.record.addresses.includes(anchorAddr),
          ).length;
          assert.equal(s.entries.held.get(anchorAddr) ?? 0, holders, `${when}: member ${i}, anchor address held`);
          anchorChecks += holders;
        }
        const selfLive = ['alive', 'suspect'].includes(s.entries.get(s.selfName)?.state ?? 'left') ? 1 : 0;
        assert.equal(liveCount(s), scan([0, 1]).length + selfLive, `${when}: member ${i}, live count`);
        // The digest in name order, from the kept order, equals one sorted afresh; so does its hash.
        const digest = digestOf(s);
        const hash = digestHash(s);
        const fresh = [...s.entries].map(([name, e]) => [name, e.inc, ['alive', 'suspect', 'dead', 'left'].indexOf(e.state)]);
        fresh.sort((a, b) => ((a[0] as string) < (b[0] as string) ? -1 : 1));
        assert.deepEqual(digest, fresh, `${when}: member ${i}, digest`);
        // A table holding the same rows, added in reverse order under other ids, has the same hash.
        const copy = new MemberTable(new NameIndex());
        for (const [name, e] of [...s.entries].reverse())
          copy.add(name, { signed: e.signed, state: e.state, inc: e.inc, stateSince: 0, lastSeen: 0, warmAt: -1, probeRound: -1 });
        assert.equal(digestHash({ entries: copy } as State), hash, `${when}: member ${i}, digest hash`);
      }
      return compared;
    };
    // Lists are made, then members join one by one: the incremental path.
    const c = sc.converge(w, n, { anchors: 1, spreadMs: 100, limitMs: 60_000, rng });
    assert.notEqual(c.ms, null);
    assert.ok(check('after the join storm') >= n * (n - 1), 'every member listed every other');
    sc.crash(w, { mode: 'kill', anchors: 1, limitMs: 60_000, rng });
    check('after a crash');
    const up = Array.from({ length: w.size }, (_, i) => i).filter((i) => w.isUp(i));
    w.net.partition([up.slice(0, up.length / 2), up.slice(up.length / 2)]);
    // Each member's own probes decide a death (claims.ts): about 35 s for all of the other half at 40 members.
    w.runFor(45_000);
    const deadSeen = up.reduce((sum, i) => sum + deadIds((w.membership(i) as unknown as { s: State }).s).length, 0);
    assert.ok(deadSeen >= (up.length * up.length) / 2, `each side holds the other dead (${deadSeen} dead entries)`);
    check('during a partition');
    w.net.heal();
    w.runFor(30_000);
    sc.partition(w, { limitMs: 60_000, rng });
    check('after a partition healed');
    sc.churn(w, { pairs: 2, spacingMs: 2000, anchors: 1, firstNew: n, settleMs: 60_000, rng });
    check('after churn');
    assert.ok(anchorChecks > 0, 'the anchor address was held by live members at some check');
  });
});
