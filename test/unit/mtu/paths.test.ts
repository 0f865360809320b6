/**
 * The `paths` record field and the path MTU problems (agent/mtu/paths.ts,
 * links.ts): what goes in it, the cap, what counts as a change worth a
 * publication, and the status problem text: one line per pair, with the
 * smaller of the two reports and what to set.
 */
import assert from 'node:assert/strict';
import { buildPaths, pathMtuProblems, pathsChange, publishAt, PAIR_LINES, PATHS_MIN_GAP_MS, PATHS_PUBLISH_MS } from '../../../agent/mtu/paths';
import { ANSWER_WAIT_MS, PeerLinks } from '../../../agent/mtu/links';
import { LIMITS } from '../../../agent/gossip/messages';
import type { MemberState, PathView } from '../../../shared/member';

const pv = (up: boolean, rtt_ms: number | null, mtu: number | null): PathView => ({ up, rtt_ms, mtu });

describe('mtu/paths', () => {
  it('has an entry per member not gone that talked to this agent, dead ones down, at most LIMITS.paths, live ones kept first', () => {
    const link = (n: string) => ({ up: n !== 'c', rtt_ms: n === 'a' ? 3.4 : null, met: n !== 'fake' });
    const peers: { name: string; state: MemberState }[] = [
      { name: 'self', state: 'alive' },
      { name: 'a', state: 'alive' },
      { name: 'b', state: 'dead' },
      { name: 'c', state: 'suspect' },
      { name: 'd', state: 'left' },
      { name: 'fake', state: 'alive' }, // never talked to us: a made-up member (issue 14) gets no entry
    ];
    assert.deepEqual(buildPaths('self', peers, link, new Map([['a', 1280]])), { a: pv(true, 3, 1280), b: pv(false, null, null), c: pv(false, null, null) });
    const many = Array.from({ length: LIMITS.paths + 10 }, (_, i) => ({
      name: `m${String(i).padStart(4, '0')}`,
      state: (i < 20 ? 'dead' : 'alive') as MemberState,
    }));
    const out = buildPaths('self', many, () => ({ up: true, rtt_ms: 1, met: true }), new Map());
    assert.equal(Object.keys(out).length, LIMITS.paths);
    assert.ok(
      many.filter((p) => p.state === 'alive').every((p) => p.name in out),
      'every live member is kept',
    );
    assert.ok('m0000' in out && !('m0019' in out), 'the dead fill what is left, by name');
  });

  it('an up or mtu change, or a peer come or gone, is urgent; a round trip counts only when it moved by 2 ms and a fifth', () => {
    const base = { a: pv(true, 10, 1500) };
    assert.equal(pathsChange(base, { a: pv(true, 10, 1500) }), 'none');
    assert.equal(pathsChange(base, { a: pv(false, 10, 1500) }), 'urgent');
    assert.equal(pathsChange(base, { a: pv(true, 10, 1280) }), 'urgent');
    assert.equal(pathsChange(base, { a: pv(true, 10, 1500), b: pv(true, null, null) }), 'urgent');
    assert.equal(pathsChange(base, {}), 'urgent');
    assert.equal(pathsChange(base, { a: pv(true, 11, 1500) }), 'none');
    assert.equal(pathsChange(base, { a: pv(true, 13, 1500) }), 'rtt');
    assert.equal(pathsChange({ a: pv(true, 0, 1500) }, { a: pv(true, 1, 1500) }), 'none');
    assert.equal(pathsChange({ a: pv(true, null, 1500) }, { a: pv(true, 1, 1500) }), 'rtt');
    assert.equal(publishAt(undefined, null, base), 0);
    assert.equal(publishAt(base, 1000, { a: pv(true, 10, 1280) }), 1000 + PATHS_MIN_GAP_MS);
    assert.equal(publishAt(base, 1000, { a: pv(true, 50, 1500) }), 1000 + PATHS_PUBLISH_MS);
    assert.equal(publishAt(base, 1000, base), null);
    assert.equal(PATHS_PUBLISH_MS, 60_000);
  });

  it('links: the last probe RTT from the acks of that very peer; up while connected or answering', () => {
    const l = new PeerLinks();
    assert.deepEqual(l.view('a', 0), { up: false, rtt_ms: null, met: false });
    l.pingSent('a', 7, 1000);
    l.ackReceived('b', 7, 1005); // a helper's forwarded ack: no round trip for a
    assert.deepEqual(l.view('a', 1005), { up: false, rtt_ms: null, met: false });
    l.ackReceived('a', 7, 1012.6);
    assert.deepEqual(l.view('a', 1013), { up: true, rtt_ms: 13, met: false });
    l.pingSent('a', 8, 2000);
    assert.equal(l.view('a', 2000 + ANSWER_WAIT_MS - 1).up, true, 'an answer may still come');
    assert.equal(l.view('a', 2000 + ANSWER_WAIT_MS).up, false, 'the last probe went unanswered');
    l.heard('a');
    assert.equal(l.view('a', 9000).up, true, 'a connection is open');
    assert.equal(l.view('a', 9000).met, true);
    l.disconnected('a');
    assert.equal(l.view('a', 9000).up, false);
    l.retain(new Set());
    assert.deepEqual(l.view('a', 9000), { up: false, rtt_ms: null, met: false });
  });

  it('problems: one line per pair below the cluster mtu, the smaller report, naming both nodes and what to set', () => {
    const m = (name: string, state: MemberState, paths?: Record<string, PathView>) => ({ name, state, record: paths ? { paths } : {} });
    const problems = pathMtuProblems(
      [
        m('venus', 'alive', { mars: pv(true, 1, 1300), earth: pv(true, 1, 1500), pluto: pv(false, null, 1000) }),
        m('mars', 'alive', { venus: pv(true, 1, 1280), earth: pv(true, 1, 1400), jupiter: pv(true, 1, null) }),
        m('earth', 'suspect', { venus: pv(true, 1, 1500), mars: pv(true, 1, 1420) }),
        m('jupiter', 'alive'),
        m('pluto', 'dead', { venus: pv(true, 1, 900) }),
      ],
      1400,
    );
    assert.deepEqual(problems, [
      'path MTU between mars and venus is 1280 bytes, below the cluster mtu 1400: set "mtu" to 1280 or less in every machine\'s config (wesher\'s interface then gets 1280 - 80 = 1200 bytes), or raise the MTU of the links between them',
    ]);
    assert.deepEqual(pathMtuProblems([m('a', 'alive', { b: pv(true, 1, 1400) }), m('b', 'alive')], 1400), [], 'equal to the cluster mtu is fine');
    assert.equal(pathMtuProblems([m('a', 'alive', { b: pv(true, 1, 1300), c: pv(true, 1, 1280) }), m('b', 'alive'), m('c', 'alive')], 1400).length, 2);
    // A member low with more than PAIR_LINES peers (its own link, or a member reporting low values to all): one line.
    const many = Array.from({ length: 10 }, (_, i) => m(`p${i}`, 'alive'));
    const wide = pathMtuProblems([m('home', 'alive', Object.fromEntries(many.map((x, i) => [x.name, pv(true, 1, 1300 - i)]))), ...many], 1400);
    assert.deepEqual(wide, [
      'path MTU between home and 10 other members is below the cluster mtu 1400 (smallest 1291 bytes): home\'s own link is likely the narrow one: raise its MTU, or set "mtu" to 1291 or less in every machine\'s config (hepto-agent status --mesh shows each pair)',
    ]);
    assert.equal(
      pathMtuProblems([m('home', 'alive', Object.fromEntries(many.slice(0, PAIR_LINES).map((x) => [x.name, pv(true, 1, 1300)]))), ...many], 1400).length,
      PAIR_LINES,
    );
    // Below what the config takes (an IPv4 path): only the links can be fixed.
    assert.deepEqual(pathMtuProblems([m('a', 'alive', { b: pv(true, 1, 1000) }), m('b', 'alive')], 1400), [
      'path MTU between a and b is 1000 bytes, below the cluster mtu 1400, and hepto needs at least 1280: raise the MTU of the links between them',
    ]);
    // A record replaced with new paths is read again (the per-record memo).
    const a = m('a', 'alive', { b: pv(true, 1, 1300) });
    assert.equal(pathMtuProblems([a, m('b', 'alive')], 1400).length, 1);
    a.record = { paths: { b: pv(true, 1, 1500) } };
    assert.equal(pathMtuProblems([a, m('b', 'alive')], 1400).length, 0);
    assert.equal(pathMtuProblems([m('a', 'alive', { b: pv(true, 1, 1300) }), m('b', 'alive')], 1300).length, 0, 'another cluster mtu');
  });
});
