/**
 * The pair matrix of `hepto-agent status --mesh` and `status --json` (issue 15),
 * built from each member's record `paths`: golden tests at 3 and 30 members.
 * Regenerate the goldens with UPDATE_GOLDEN=1 once, and review them.
 */
import { strict as assert } from 'assert';
import fs from 'fs';
import path from 'path';
import { buildMesh, formatMesh, type MeshInput } from '../../../shared/mesh';
import { buildStatus, formatMeshStatus, formatStatus, statusJson } from '../../../shared/status';
import { UNSAFE_CHARS } from '../../../shared/printable';
import type { MemberRecord, MemberState, PathView } from '../../../shared/member';
import { record } from '../runtime/fixtures';

const GOLDEN_DIR = path.resolve(__dirname, '../../../../test/unit/shared/golden');

function golden(name: string, text: string): void {
  const file = path.join(GOLDEN_DIR, name);
  if (process.env.UPDATE_GOLDEN === '1') fs.writeFileSync(file, text);
  assert.ok(fs.existsSync(file), `golden file ${file} missing; run with UPDATE_GOLDEN=1 once and review it`);
  assert.equal(text, fs.readFileSync(file, 'utf8'), `differs from ${file}`);
}

function rec(name: string, paths?: Record<string, PathView>): MemberRecord {
  return record(name, { containers: {}, created_at: 0, ...(paths ? { paths } : {}) });
}

/** A name no gossip would let through (validate.ts refuses it): status escapes it all the same. */
const HOSTILE = 'ch\u001b[2J\u001b]0;owned\u0007rlie\u202e';

function three(): Array<MeshInput & { record: MemberRecord }> {
  return [
    // alpha: bravo up, the hostile one down (its last RTT is kept, no MTU yet), a name that is no member (ignored)
    {
      name: 'alpha',
      state: 'alive',
      record: rec('alpha', {
        bravo: { up: true, rtt_ms: 12, mtu: 1400 },
        [HOSTILE]: { up: false, rtt_ms: 340, mtu: null },
        ghost: { up: true, rtt_ms: 1, mtu: 1000 },
      }),
    },
    // bravo: alpha at 0 ms (a real value, shown), nothing on the hostile one
    { name: 'bravo', state: 'alive', record: rec('bravo', { alpha: { up: true, rtt_ms: 0, mtu: 1280 } }) },
    // the hostile one: no paths at all (an agent older than issue 15, or not measured yet)
    { name: HOSTILE, state: 'suspect', record: rec(HOSTILE) },
    // left: not in the matrix
    { name: 'delta', state: 'left', record: rec('delta', { alpha: { up: true, rtt_ms: 5, mtu: 500 } }) },
  ];
}

/** 30 members m01..m30 (m17 hostile, m30 a 63-character name), with every kind of cell. */
function thirty(): MeshInput[] {
  const names = Array.from({ length: 30 }, (_, i) => `m${String(i + 1).padStart(2, '0')}`);
  names[16] = `m17${HOSTILE}`;
  names[29] = `m30-${'x'.repeat(59)}`;
  return names.map((name, i): MeshInput => {
    if (i === 4) return { name, state: 'dead', record: rec(name) }; // no paths at all
    const paths: Record<string, PathView> = {};
    names.forEach((to, j) => {
      if (to === name || (i + j) % 11 === 0) return; // some peers not reported
      const up = (i * j) % 13 !== 1;
      const rtt = (i + j) % 7 === 0 ? null : [3, 45, 120, 999, 1500, 12_345, 600_000][(i * 3 + j) % 7];
      const mtu = (i + j) % 5 === 0 ? null : [1400, 1280, 9000, 65_535, 1500][(i + 2 * j) % 5];
      paths[to] = { up, rtt_ms: rtt, mtu };
    });
    return { name, state: i === 9 ? 'suspect' : 'alive', record: rec(name, paths) };
  });
}

const states = (ms: MeshInput[]): Record<string, MemberState> => Object.fromEntries(ms.map((m) => [m.name, m.state]));

describe('status --mesh: the pair matrix', () => {
  it('3 members: golden table; missing values are ? or -, never 0; names escaped', () => {
    const input = three();
    const text = formatMesh(buildMesh(input), { self: 'alpha', states: states(input) });
    golden('mesh-3.txt', text + '\n');
    for (const l of text.split('\n')) assert.doesNotMatch(l, UNSAFE_CHARS);
    assert.match(text, /ch\\x1b\[2J\\x1b\]0;owned\\x07rlie\\u202e/, 'the hostile name, escaped');
    assert.match(text, /^smallest path MTU: 1280 \(bravo → alpha\)$/m);
    assert.doesNotMatch(text, /ghost|delta/, 'a non-member and a member that left are not in it');
  });

  it('3 members: golden JSON of `mesh`, with the smallest MTU and the pair', () => {
    const mesh = buildMesh(three());
    golden('mesh-3.json', statusJson(mesh) + '\n');
    assert.deepEqual(JSON.parse(statusJson(mesh)), mesh, 'the escaped JSON is the same value');
    for (const l of statusJson(mesh).split('\n')) assert.doesNotMatch(l, UNSAFE_CHARS);
    assert.deepEqual(mesh.members, ['alpha', 'bravo', HOSTILE]);
    assert.equal(mesh.paths.length, 3, 'only the pairs a member reports on: no self pair, no made-up row');
    assert.equal(
      mesh.paths.find((p) => p.from === 'bravo' && p.to === HOSTILE),
      undefined,
      'bravo says nothing of it: absent, shown as ?',
    );
    assert.deepEqual(
      mesh.paths.find((p) => p.from === 'alpha' && p.to === HOSTILE),
      { from: 'alpha', to: HOSTILE, up: false, rtt_ms: 340, mtu: null },
    );
    assert.deepEqual(mesh.min_mtu, { mtu: 1280, from: 'bravo', to: 'alpha' });
  });

  it('30 members: golden table that fits 160 columns, every reported pair in it once', () => {
    const input = thirty();
    const mesh = buildMesh(input);
    const reported = input.reduce(
      (n, m) => n + Object.keys(m.record.paths ?? {}).filter((to) => to !== m.name && input.some((x) => x.name === to && x.state !== 'left')).length,
      0,
    );
    assert.equal(mesh.paths.length, reported, 'one entry per reported pair');
    const text = formatMesh(mesh, { self: 'm01', states: states(input) });
    golden('mesh-30.txt', text + '\n');
    const lines = text.split('\n');
    const widest = Math.max(...lines.map((l) => [...l].length));
    assert.ok(widest <= 160, `widest line ${widest} > 160`);
    for (const l of lines) assert.doesNotMatch(l, UNSAFE_CHARS);
    // 2 matrices × (title + header + 30 rows)
    const rows = lines.filter((l) => /^ *\d+( +\S+){30}$/.test(l));
    assert.equal(rows.length, 60, 'one row per member in each matrix');
    // The dead member with no paths: a row of ? in both matrices, "no report" in the key.
    assert.match(text, /^ {3}5 {2}m05 +dead +no report$/m);
    assert.equal(lines.filter((l) => /^ {2}5 /.test(l) && /^ {2}5( +[?.]){30}$/.test(l)).length, 2);
    assert.deepEqual(mesh.min_mtu, { mtu: 1280, from: 'm01', to: 'm04' });
  });

  it('more than 30 members: the columns come in blocks of 30, still within 160 columns', () => {
    const input: MeshInput[] = Array.from({ length: 45 }, (_, i) => ({ name: `n${i}`, state: 'alive', record: rec(`n${i}`) }));
    const text = formatMesh(buildMesh(input));
    assert.ok(Math.max(...text.split('\n').map((l) => l.length)) <= 160);
    assert.match(text, /columns 1-30/);
    assert.match(text, /columns 31-45/);
  });

  it('nothing measured: min_mtu null, shown as not measured yet, in both status forms', () => {
    const doc = buildStatus({
      node: 'solo',
      version: '0.1.0',
      runtime: 'podman',
      startedAt: 0,
      members: [
        {
          name: 'solo',
          state: 'alive',
          incarnation: 1,
          record: rec('solo', { other: { up: true, rtt_ms: 3, mtu: null } }),
          lastSeen: 0,
          identity: 'aaaaaaaaaaaa',
        },
        { name: 'other', state: 'alive', incarnation: 1, record: rec('other'), lastSeen: 0, identity: 'bbbbbbbbbbbb' },
      ],
      containers: [],
      problems: [],
    });
    assert.equal(doc.mesh?.min_mtu, null);
    assert.equal(JSON.parse(JSON.stringify(doc)).mesh.min_mtu, null, 'null in the JSON, not absent');
    assert.match(formatStatus(doc, 0), /^smallest path MTU: not measured yet \(every pair: hepto-agent status --mesh\)$/m);
    assert.match(formatMeshStatus(doc), /^smallest path MTU: not measured yet$/m);
    assert.match(formatMeshStatus(doc), /^ {2}1 {2}other +alive +no report$/m);
    assert.match(formatMeshStatus(doc), /^ {2}2 {2}solo \(this\) +alive +1\/1$/m);
  });

  it('status --json carries the mesh of the records buildStatus gets; the table shows the smallest MTU', () => {
    const doc = buildStatus({
      node: 'alpha',
      version: '0.1.0',
      runtime: 'podman',
      startedAt: 0,
      members: three().map((m, i) => ({ ...m, incarnation: 1, lastSeen: 0, identity: String(i).repeat(12) })),
      containers: [],
      problems: [],
    });
    assert.deepEqual(doc.mesh, buildMesh(three()));
    assert.match(formatStatus(doc, 0), /^smallest path MTU: 1280 \(bravo → alpha\) \(every pair: hepto-agent status --mesh\)$/m);
    assert.match(formatMeshStatus(doc), /alpha \(this\)/);
    // A document from an agent older than issue 15 has no mesh: one line, no crash.
    const { mesh: _omit, ...old } = doc;
    void _omit;
    assert.match(formatMeshStatus(old), /does not report the mesh/);
    assert.doesNotMatch(formatStatus(old, 0), /smallest path MTU/);
  });
});
