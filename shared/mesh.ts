/**
 * The pair matrix (issue 15): for every ordered pair of members, what the
 * first (the row) says of its path to the second (the column), from the row
 * member's own record `paths`. Built by a pure function from the members'
 * records; shown by `hepto-agent status --mesh` and carried in
 * `status --json` as its `mesh` field.
 *
 * JSON shape (`status --json` → `mesh`):
 * ```
 * { "members": ["alpha", "bravo", ...],          // rows and columns, by name; members that left are not in it
 *   "paths": [ { "from": "alpha", "to": "bravo", // one per pair `from` reports on, by from then to
 *                "up": true,                     // connected (or its last probe was answered)
 *                "rtt_ms": 12,                   // last probe round trip; null: none measured (or no report)
 *                "mtu": 1400 } ],                // path MTU in bytes; null: not measured yet (or no report)
 *   "min_mtu": { "mtu": 1280, "from": "bravo", "to": "charlie" } }  // smallest measured; null: none measured
 * ```
 * Missing data is null, never 0 (0 ms is a real round trip).
 */
import type { MemberRecord, MemberState, PathView } from './member';
import { printable } from './printable';
import { byCodePoint as byName } from './order';

export interface MeshPath {
  from: string;
  to: string;
  /** `from` has a connection to `to` (or its last probe was answered); null: `from` reports nothing on `to`. */
  up: boolean | null;
  rtt_ms: number | null;
  mtu: number | null;
}

export interface MeshDoc {
  /** Rows and columns, sorted by name: every member but those that left. */
  members: string[];
  /** One entry per ordered pair the first member reports on (its record's `paths`), sorted by from then to; a pair absent here: no report. */
  paths: MeshPath[];
  /** The smallest measured path MTU over all pairs and the pair that has it; null: none measured yet. */
  min_mtu: { mtu: number; from: string; to: string } | null;
}

export interface MeshInput {
  name: string;
  state: MemberState;
  record: Pick<MemberRecord, 'paths'>;
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : null);

export function buildMesh(input: MeshInput[]): MeshDoc {
  const live = input.filter((m) => m.state !== 'left');
  const members = [...new Set(live.map((m) => m.name))].sort(byName);
  const known = new Set(members);
  const paths: MeshPath[] = [];
  let min: MeshDoc['min_mtu'] = null;
  // Only what members report: a pair nobody reports on is absent (the table shows `?`), so the cost
  // follows the reports (at most LIMITS.paths per record), not N × N: 2,000 made-up members that
  // report nothing (issue 14, attack 2) cost nothing here.
  for (const m of live) {
    const seen = m.record.paths;
    if (!seen) continue;
    for (const to of Object.keys(seen)) {
      if (to === m.name || !known.has(to)) continue;
      const v: PathView = seen[to];
      const p: MeshPath = { from: m.name, to, up: typeof v.up === 'boolean' ? v.up : null, rtt_ms: num(v.rtt_ms), mtu: num(v.mtu) };
      paths.push(p);
      if (p.mtu !== null && (min === null || p.mtu < min.mtu || (p.mtu === min.mtu && byName(`${p.from}\n${p.to}`, `${min.from}\n${min.to}`) < 0)))
        min = { mtu: p.mtu, from: p.from, to };
    }
  }
  paths.sort((a, b) => byName(a.from, b.from) || byName(a.to, b.to));
  return { members, paths, min_mtu: min };
}

/** `1280 (bravo → charlie)`, or `not measured yet`: the status line for the smallest path MTU. Names escaped. */
export function minMtuText(mesh: MeshDoc | null | undefined): string {
  const m = mesh?.min_mtu;
  return m ? `${m.mtu} (${printable(m.from)} → ${printable(m.to)})` : 'not measured yet';
}

/** Widest line `formatMesh` makes for the cells: 4 for the row number, 5 per column. */
export const MESH_MAX_COLUMNS = 30;
const CELL = 5;
const LABEL = 4;
/** A member name in the key is cut to this many characters (once escaped). */
const NAME_MAX = 64;

function ms(v: number): string {
  return v < 10_000 ? String(v) : `${Math.round(v / 1000)}s`;
}
function bytes(v: number): string {
  return v < 10_000 ? String(v) : `${Math.floor(v / 1000)}k`;
}

/** One cell of the connection matrix: the RTT, `x` not connected, `up` no RTT yet, `?` no report, `.` itself. */
function rttCell(p: MeshPath | null | undefined): string {
  if (p === null) return '.';
  if (!p || p.up === null) return '?';
  if (!p.up) return 'x';
  return p.rtt_ms === null ? 'up' : ms(p.rtt_ms);
}
/** One cell of the MTU matrix: the MTU, `-` not measured yet, `?` no report, `.` itself. */
function mtuCell(p: MeshPath | null | undefined): string {
  if (p === null) return '.';
  if (!p || p.up === null) return '?';
  return p.mtu === null ? '-' : bytes(p.mtu);
}

function matrix(title: string, mesh: MeshDoc, cell: (p: MeshPath | null | undefined) => string): string[] {
  const n = mesh.members.length;
  const at = new Map(mesh.paths.map((p) => [`${p.from}\n${p.to}`, p]));
  const out: string[] = [];
  // Blocks of at most MESH_MAX_COLUMNS columns, so a line stays within 4 + 5 × 30 = 154 characters.
  for (let c0 = 0; c0 < n; c0 += MESH_MAX_COLUMNS) {
    const cols = mesh.members.slice(c0, c0 + MESH_MAX_COLUMNS);
    out.push('');
    out.push(n > MESH_MAX_COLUMNS ? `${title}, columns ${c0 + 1}-${c0 + cols.length}` : title);
    out.push(' '.repeat(LABEL) + cols.map((_, j) => String(c0 + j + 1).padStart(CELL)).join(''));
    mesh.members.forEach((from, i) => {
      const cells = cols.map((to) => cell(to === from ? null : at.get(`${from}\n${to}`)).padStart(CELL));
      out.push(`${String(i + 1).padStart(LABEL - 1)} ${cells.join('')}`);
    });
  }
  return out;
}

/**
 * The human form of the pair matrix: a numbered key of the members, then two
 * matrices (row = the member reporting, column = its peer): connected and
 * RTT, and path MTU. Fits 160 columns for up to 30 members (more: the
 * columns come in blocks of 30). Every name is escaped.
 */
export function formatMesh(mesh: MeshDoc, opts: { self?: string; states?: Record<string, MemberState> } = {}): string {
  const out: string[] = [];
  const n = mesh.members.length;
  out.push(`mesh: ${n} member${n === 1 ? '' : 's'}, each one's view of its path to the others (row: the member reporting, column: its peer)`);
  out.push(`smallest path MTU: ${minMtuText(mesh)}`);
  if (n === 0) return out.join('\n');
  out.push('');
  const rows = [['#', 'MEMBER', 'STATE', 'SEES UP']];
  const byFrom = new Map<string, MeshPath[]>();
  for (const p of mesh.paths) byFrom.set(p.from, [...(byFrom.get(p.from) ?? []), p]);
  mesh.members.forEach((name, i) => {
    const reported = byFrom.get(name) ?? [];
    const shown = printable(name);
    const cut = shown.length > NAME_MAX ? `${shown.slice(0, NAME_MAX - 3)}...` : shown;
    rows.push([
      String(i + 1),
      name === opts.self ? `${cut} (this)` : cut,
      opts.states?.[name] ?? '-',
      reported.length === 0 && n > 1 ? 'no report' : `${reported.filter((p) => p.up === true).length}/${n - 1}`,
    ]);
  });
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) out.push(('  ' + r.map((c, i) => (i === 0 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ')).trimEnd());
  out.push(...matrix('connected, RTT in ms (x: not connected; up: connected, no RTT yet)', mesh, rttCell));
  out.push(...matrix('path MTU in bytes (-: not measured yet)', mesh, mtuCell));
  out.push('');
  out.push('?: the row member reports nothing on that peer; .: itself; 12s: seconds; 65k: thousands of bytes');
  return out.map(printable).join('\n');
}
