/**
 * Turns raw runs into the summary rows (min/median/max, memberlist ratio,
 * target met or missed), the printed table, and the docs/bench charts.
 */
import type { GossipRunResult } from '../gossip-bench';
import { lineChart, type ChartSeries } from '../svg';
import type { AgentRssResult } from './agent-process';
import type { MemberlistRunResult } from './memberlist';
import { MEMBERLIST_REFERENCE, type MeasuredOnlyMetric, type Metric } from './reference';
import { ratio, spread, type Spread } from './stats';

export type HeptoMetric = keyof Pick<
  GossipRunResult,
  | 'joinMs'
  | 'joinCompleteness'
  | 'joinCpuSeconds'
  | 'crashFirstMs'
  | 'crashAllMs'
  | 'silentFirstMs'
  | 'silentAllMs'
  | 'leaveAllMs'
  | 'bytesPerSecPerMember'
  | 'bytesPerSecMeshed'
  | 'memPerMemberKiB'
  | 'heapPerMemberKiB'
  | 'falseDeaths'
  | 'connections'
  | 'openFds'
>;

interface MetricDef {
  key: HeptoMetric;
  label: string;
  /** memberlist figure it is compared with. */
  vs?: Metric | MeasuredOnlyMetric;
  /** Target: hepto median ≤ maxRatio × memberlist median. */
  maxRatio?: number;
  /** Target on the absolute value (max over runs ≤ this). */
  maxAbsolute?: number;
  digits?: number;
}

export const METRICS: MetricDef[] = [
  { key: 'joinMs', label: 'join: all see all alive (ms)', vs: 'joinMs', maxRatio: 1.0 },
  { key: 'joinCompleteness', label: 'join: share of views complete at the end of the phase' },
  { key: 'joinCpuSeconds', label: 'join: CPU seconds the bench process used' },
  { key: 'crashFirstMs', label: 'crash: first sees it dead (ms)', vs: 'crashFirstMs', maxRatio: 0.5 },
  { key: 'crashAllMs', label: 'crash: all see it dead (ms)', vs: 'crashAllMs', maxRatio: 0.5 },
  { key: 'silentFirstMs', label: 'silent failure: first sees it dead (ms)', vs: 'crashFirstMs', maxRatio: 0.5 },
  { key: 'silentAllMs', label: 'silent failure: all see it dead (ms)', vs: 'crashAllMs', maxRatio: 0.5 },
  { key: 'leaveAllMs', label: 'leave: all see it left (ms)', vs: 'leaveAllMs', maxRatio: 1.0 },
  // Issue 16's targets: in the first minute after a join at most 2× memberlist's traffic, at rest at most 1×.
  {
    key: 'bytesPerSecPerMember',
    label: 'traffic per member right after the join, first contacts still handshaking (B/s)',
    vs: 'bytesPerSecPerMember',
    maxRatio: 2.0,
  },
  { key: 'bytesPerSecMeshed', label: 'traffic per member at rest, every pair connected (B/s)', vs: 'bytesPerSecPerMember', maxRatio: 1.0 },
  { key: 'memPerMemberKiB', label: 'memory per member, one process: RSS delta / N (KiB)', vs: 'memPerMemberKiB' },
  { key: 'heapPerMemberKiB', label: 'memory per member: heap delta / N (KiB)', vs: 'heapPerMemberKiB' },
  { key: 'falseDeaths', label: 'false deaths (count)', vs: 'falseDeaths', maxAbsolute: 0 },
  { key: 'connections', label: 'open connections at rest (pairs)' },
  { key: 'openFds', label: 'open file descriptors, whole process' },
];

export interface SummaryRow {
  n: number;
  /** Cluster runs at this size; hepto.count below it means some runs never reached this phase. */
  runs: number;
  metric: HeptoMetric;
  label: string;
  hepto: Spread | null;
  memberlist: Spread | null;
  ratio: number | null;
  target: string | null;
  /** null: no target, or no figure to judge. */
  met: boolean | null;
}

export type MemberlistSource = { kind: 'measured'; runs: MemberlistRunResult[] } | { kind: 'reference'; why: string };

function memberlistSpread(src: MemberlistSource, n: number, m: Metric | MeasuredOnlyMetric): Spread | null {
  if (src.kind === 'measured') return spread(src.runs.filter((r) => r.n === n && !r.error).map((r) => r[m]));
  if (m === 'falseDeaths' || m === 'heapPerMemberKiB') return null;
  return MEMBERLIST_REFERENCE[n]?.[m] ?? null;
}

export function summarize(runs: GossipRunResult[], src: MemberlistSource): SummaryRow[] {
  const sizes = [...new Set(runs.map((r) => r.n))].sort((a, b) => a - b);
  const rows: SummaryRow[] = [];
  for (const n of sizes) {
    const mine = runs.filter((r) => r.n === n);
    for (const d of METRICS) {
      const hepto = spread(mine.map((r) => r[d.key]));
      const ml = d.vs ? memberlistSpread(src, n, d.vs) : null;
      const r = d.maxRatio !== undefined ? ratio(hepto, ml) : null;
      let target: string | null = null;
      let met: boolean | null = null;
      if (d.maxRatio !== undefined) {
        target = `≤ ${d.maxRatio.toFixed(1)}×`;
        met = r === null ? null : r <= d.maxRatio;
      } else if (d.maxAbsolute !== undefined) {
        target = `= ${d.maxAbsolute}`;
        met = hepto === null ? null : hepto.max <= d.maxAbsolute;
      }
      // A phase that failed in some run is a miss, whatever the other runs say.
      if (target !== null && (hepto?.count ?? 0) < mine.length) met = false;
      rows.push({ n, runs: mine.length, metric: d.key, label: d.label, hepto, memberlist: ml, ratio: r, target, met });
    }
  }
  return rows;
}

function num(v: number, digits = 0): string {
  if (Number.isInteger(v)) return String(v);
  if (Math.abs(v) < 10) return v.toFixed(2);
  return v >= 100 || digits === 0 ? v.toFixed(0) : v.toFixed(digits);
}

function sp(s: Spread | null): string {
  if (!s) return '—';
  return s.min === s.max ? num(s.median, 1) : `${num(s.min, 1)} / ${num(s.median, 1)} / ${num(s.max, 1)}`;
}

/** Markdown-compatible table (also readable in a terminal). */
export function formatTable(rows: SummaryRow[], src: MemberlistSource): string {
  const head = ['N', 'measure', 'hepto min / median / max', `memberlist (${src.kind})`, 'ratio', 'target', 'met?'];
  const lines = [head, head.map(() => '---')];
  for (const r of rows) {
    lines.push([
      String(r.n),
      r.label,
      (r.hepto?.count ?? 0) < r.runs ? `${sp(r.hepto)} (${r.hepto?.count ?? 0} of ${r.runs} runs got here)` : sp(r.hepto),
      r.memberlist ? num(r.memberlist.median, 1) : '—',
      r.ratio === null ? '—' : `${r.ratio.toFixed(2)}×`,
      r.target ?? '—',
      r.met === null ? (r.target ? 'n/a' : '') : r.met ? 'met' : 'MISSED',
    ]);
  }
  return lines.map((l) => `| ${l.join(' | ')} |`).join('\n');
}

export function formatAgentLine(a: AgentRssResult | null): string {
  if (!a) return 'one agent process: not measured (--quick or --no-agent-rss)';
  if (a.error || a.rssMiB === null) return `one agent process with ${a.peers} peers: not measured: ${a.error ?? 'no sample'}`;
  const mb = (a.rssMiB * 1048576) / 1e6;
  // Older result files lack the runtime, node and CPU fields.
  const how = `runtime ${a.runtime ?? 'none'}, node ${a.node?.version ?? '?'}${a.nodeArgs.length ? ' ' + a.nodeArgs.join(' ') : ''}`;
  const cpu = a.cpuJoinMs != null && a.cpuRestMsPerS != null ? `; CPU ${Math.round(a.cpuJoinMs)} ms to join, ${a.cpuRestMsPerS.toFixed(1)} ms/s at rest` : '';
  const target = agentRssTargetMB(a.peers);
  const verdict = target === null ? 'no target at this size' : `target at most ${target} MB: ${mb <= target ? 'met' : 'MISSED'}`;
  return `one agent process with ${a.peers} peers (${how}): RSS ${a.rssMiB.toFixed(1)} MiB (${mb.toFixed(1)} MB), peak ${a.hwmMiB?.toFixed(1) ?? '?'} MiB${cpu}; ${verdict}`;
}

/** Issue 16's targets for a supervising agent: 60 MB with 100 peers, 80 MB with 1,000. */
export function agentRssTargetMB(peers: number): number | null {
  return peers <= 100 ? 60 : peers <= 1000 ? 80 : null;
}

function seriesFor(rows: SummaryRow[], metric: HeptoMetric, name: string, from: 'hepto' | 'memberlist', dashed = false, scale = 1): ChartSeries {
  const points = rows
    .filter((r) => r.metric === metric && r[from])
    .map((r) => {
      const s = r[from]!;
      return { x: r.n, y: (s.median * scale) / 1000, lo: (s.min * scale) / 1000, hi: (s.max * scale) / 1000 };
    });
  return { name, points, dashed };
}

/** The docs/bench charts: file name → SVG text. `experiment` adds hepto series from another run (e.g. --native-crypto). */
export function charts(rows: SummaryRow[], src: MemberlistSource, experiment?: { label: string; rows: SummaryRow[] }): Record<string, string> {
  const extra = (metric: HeptoMetric, what: string): ChartSeries[] =>
    experiment ? [seriesFor(experiment.rows, metric, `hepto ${what}, ${experiment.label}`, 'hepto', true)] : [];
  const ml = src.kind === 'measured' ? 'memberlist (measured)' : 'memberlist (reference)';
  const half = seriesFor(rows, 'crashAllMs', 'target: ½ memberlist', 'memberlist', true, 0.5);
  half.points = half.points.map((p) => ({ x: p.x, y: p.y }));
  return {
    'convergence.svg': lineChart({
      title: 'Join: time until all see all alive',
      xLabel: 'members (N), all joining through one anchor',
      yLabel: 'seconds (median, bars: min–max)',
      series: [seriesFor(rows, 'joinMs', 'hepto', 'hepto'), seriesFor(rows, 'joinMs', ml, 'memberlist', src.kind === 'reference'), ...extra('joinMs', 'join')],
    }),
    'crash-detection.svg': lineChart({
      title: 'Crash: time until all others see it dead',
      xLabel: 'members (N)',
      yLabel: 'seconds (median, bars: min–max)',
      series: [
        seriesFor(rows, 'crashAllMs', 'hepto: crash (sockets close)', 'hepto'),
        seriesFor(rows, 'silentAllMs', 'hepto: silent failure', 'hepto'),
        seriesFor(rows, 'crashAllMs', ml, 'memberlist', src.kind === 'reference'),
        half,
        ...extra('crashAllMs', 'crash'),
      ],
    }),
  };
}
