/**
 * Turns suite results into the printed table, the growth fits (is
 * convergence ~ log N?), the JSON file and the convergence chart.
 */
import { lineChart } from '../svg';
import type { SuiteResult } from './suite';

export interface Fit {
  model: 'a + b·ln N' | 'c·N^k' | 'a + b·N';
  a: number;
  b: number;
  r2: number;
}

/** Least squares y = a + b·x. */
export function linearFit(xs: number[], ys: number[]): { a: number; b: number; r2: number } {
  const n = xs.length;
  const mx = xs.reduce((s, v) => s + v, 0) / n;
  const my = ys.reduce((s, v) => s + v, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
    syy += (ys[i] - my) ** 2;
  }
  const b = sxx === 0 ? 0 : sxy / sxx;
  const a = my - b * mx;
  const r2 = syy === 0 ? 1 : (sxy * sxy) / (sxx * syy);
  return { a, b, r2 };
}

/** Three candidate growth laws for y(N); r2 of the power law is in log-log space. */
export function growthFits(ns: number[], ys: number[]): Fit[] {
  if (ns.length < 2) return [];
  const lnN = ns.map(Math.log);
  const log = linearFit(lnN, ys);
  const pow = linearFit(lnN, ys.map(Math.log));
  const lin = linearFit(ns, ys);
  return [
    { model: 'a + b·ln N', ...log },
    { model: 'c·N^k', a: Math.exp(pow.a), b: pow.b, r2: pow.r2 },
    { model: 'a + b·N', ...lin },
  ];
}

/** One sentence: does convergence grow like log N? */
export function growthVerdict(fits: Fit[], points: number): string {
  const log = fits.find((f) => f.model === 'a + b·ln N');
  const pow = fits.find((f) => f.model === 'c·N^k');
  const lin = fits.find((f) => f.model === 'a + b·N');
  if (!log || !pow || !lin) return 'not enough sizes for a fit (need at least two)';
  const few = points < 4 ? ` (only ${points} sizes: indicative)` : '';
  const figures =
    `a + b·ln N with b = ${(log.b / 1000).toFixed(2)} s per e-fold of N (R² ${log.r2.toFixed(3)}); ` +
    `power law exponent k = ${pow.b.toFixed(2)} (R² ${pow.r2.toFixed(3)}); linear R² ${lin.r2.toFixed(3)}`;
  if (log.r2 >= 0.95 && log.r2 >= lin.r2 && pow.b < 0.5) return `consistent with log N${few}: ${figures}`;
  if (pow.b < 0.5 && lin.r2 < 0.9) return `no faster than log N, but noisy (a constant part dominates)${few}: ${figures}`;
  return `NOT like log N${few}: ${figures}`;
}

function s(ms: number | null | undefined, digits = 1): string {
  return ms === null || ms === undefined ? '—' : (ms / 1000).toFixed(digits);
}

/** Median over the seeds of one N of the time until all (or 50%, 90%) of members had a complete view; null when a seed never got there. */
export function medianConvergence(r: SuiteResult, which: 'ms' | 'p50' | 'p90' = 'ms'): number | null {
  const runs = r.convergeRuns ?? [{ ms: r.converge.ms, p50: r.converge.fractions.p50, p90: r.converge.fractions.p90 }];
  const v = runs.map((x) => x[which] ?? null);
  if (v.some((x) => x === null)) return null;
  return median(v as number[]);
}

function spread(r: SuiteResult): { lo: number; hi: number } {
  const ms = (r.convergeRuns ?? []).map((x) => x.ms).filter((x): x is number => x !== null);
  return ms.length > 0 ? { lo: Math.min(...ms), hi: Math.max(...ms) } : { lo: NaN, hi: NaN };
}

/** The --converge-only table: one row per N. */
export function sweepTable(results: SuiteResult[]): string {
  const out = [
    '| N | seeds | all complete: median s | min–max s | median gossip rounds | 50% / 90% complete: median s | runtime s |',
    '|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of results) {
    const m = medianConvergence(r);
    const sp = spread(r);
    out.push(
      `| ${r.n.toLocaleString('en-US')} | ${r.convergeRuns.length} | ${s(m, 2)} | ${s(sp.lo, 2)}–${s(sp.hi, 2)} | ${m === null ? '—' : (median(r.convergeRuns.map((c) => c.gossipRounds ?? NaN)) ?? NaN).toFixed(1)} | ${s(medianConvergence(r, 'p50'), 2)} / ${s(medianConvergence(r, 'p90'), 2)} | ${(r.runtime.realMs / 1000).toFixed(0)} |`,
    );
  }
  return out.join('\n');
}

function median(xs: number[]): number | null {
  if (xs.length === 0) return null;
  const a = [...xs].sort((x, y) => x - y);
  return a[Math.floor(a.length / 2)];
}

/** Markdown table, one column per N. */
export function table(results: SuiteResult[]): string {
  const skipped = (r: SuiteResult): string => (r.heavy === false ? 'not run (N > --heavy-max)' : '—');
  const cols = results.map((r) => `N = ${r.n.toLocaleString('en-US')}`);
  const rows: [string, (r: SuiteResult) => string][] = [
    ['converge: virtual s (all see all alive)', (r) => s(r.converge.ms, 2)],
    [
      'converge: gossip rounds / probe periods',
      (r) => (r.converge.ms === null ? '—' : `${r.converge.gossipRounds?.toFixed(1)} / ${r.converge.probePeriods?.toFixed(1)}`),
    ],
    ['converge: 50% / 90% of members complete, s', (r) => `${s(r.converge.fractions.p50, 2)} / ${s(r.converge.fractions.p90, 2)}`],
  ];
  for (const mode of ['kill', 'power-off'] as const) {
    rows.push([
      `crash (${mode}) seen dead: first / all, s`,
      (r) => {
        const c = r.crashes.find((x) => x.mode === mode);
        return c ? `${s(c.firstMs)} / ${s(c.allMs)}` : '—';
      },
    ]);
  }
  const fpKeys = [...new Set(results.flatMap((r) => r.falsePositives.map((f) => `${f.model}|${f.loss}`)))];
  for (const key of fpKeys) {
    const [model, loss] = key.split('|');
    rows.push([
      `false deaths per member-hour, ${(Number(loss) * 100).toFixed(0)}% loss (${model})`,
      (r) => {
        const f = r.falsePositives.find((x) => `${x.model}|${x.loss}` === key);
        return f ? `${f.perMemberHour.toFixed(3)} (${f.deadIncidents} in ${f.memberHours.toFixed(0)} member-h)` : model === 'drop' ? skipped(r) : '—';
      },
    ]);
  }
  rows.push(
    [
      'bytes/member/s at rest: total (of which handshakes)',
      (r) => (r.rest ? `${r.rest.bytesPerMemberPerS.toFixed(0)} (${r.rest.handshakeBytesPerMemberPerS.toFixed(0)})` : '—'),
    ],
    [
      '  + WebSocket keepalive, B/s (open connections per member)',
      (r) =>
        r.rest && r.rest.keepaliveBytesPerMemberPerS !== undefined
          ? `${r.rest.keepaliveBytesPerMemberPerS.toFixed(0)} (${r.rest.connectionsPerMember.toFixed(0)})`
          : '— (not measured by this run)',
    ],
    [
      'open connections per member at rest (end of the rest window): mean / max',
      (r) => (r.connections?.rest ? `${r.connections.rest.openMean.toFixed(0)} / ${r.connections.rest.openMax}` : '— (not measured by this run)'),
    ],
    [
      'handshakes in the first minute after the start: per member, bytes per member (B/s)',
      (r) => {
        const f = r.connections?.firstMinute;
        return f
          ? `${f.handshakesPerMember.toFixed(0)}, ${f.handshakeBytesPerMember.toFixed(0)} (${f.handshakeBytesPerMemberPerS.toFixed(0)})`
          : '— (not measured by this run)';
      },
    ],
    [
      'open connections per member after the loss windows: mean / max (at virtual s)',
      (r) =>
        r.connections?.later
          ? `${r.connections.later.openMean.toFixed(0)} / ${r.connections.later.openMax} (${r.connections.later.atS.toFixed(0)})`
          : '— (not measured by this run)',
    ],
    [
      'one member cut off (a home losing its uplink, healed once the rest holds it dead): seen dead / merged after heal, s',
      (r) =>
        r.homeCut ? `${r.homeCut.cutSeenMs == null ? `not in ${s(r.homeCut.holdMs ?? null, 0)}` : s(r.homeCut.cutSeenMs)} / ${s(r.homeCut.mergeMs)}` : '—',
    ],
    ['partition (two halves): split seen / merged after heal, s', (r) => (r.partition ? `${s(r.partition.splitMs)} / ${s(r.partition.mergeMs)}` : skipped(r))],
    ['churn: join / leave seen by all, median s', (r) => (r.churn ? `${s(median(r.churn.joinSeenMs))} / ${s(median(r.churn.leaveSeenMs))}` : skipped(r))],
    ['simulator runtime, s (peak heap MB)', (r) => `${(r.runtime.realMs / 1000).toFixed(0)} (${r.runtime.peakHeapMB})`],
  );
  const out = [`| | ${cols.join(' | ')} |`, `|---|${cols.map(() => '---:').join('|')}|`];
  for (const [label, f] of rows) out.push(`| ${label} | ${results.map(f).join(' | ')} |`);
  return out.join('\n');
}

/** Convergence (and crash detection by all) against N on a log10 axis, with the log fit dashed. */
export function convergenceChart(results: SuiteResult[], fits: Fit[], title: string): string {
  const ok = results.filter((r) => medianConvergence(r) !== null).sort((a, b) => a.n - b.n);
  const x = (n: number): number => Math.round(Math.log10(n) * 1000) / 1000;
  const multi = ok.some((r) => r.convergeRuns.length > 1);
  const series = [
    {
      name: multi ? 'all see all alive (s): median, min–max over seeds' : 'all see all alive (s); whisker from 50% complete',
      points: ok.map((r) => {
        const m = (medianConvergence(r) as number) / 1000;
        if (multi) {
          const sp = spread(r);
          return { x: x(r.n), y: m, lo: sp.lo / 1000, hi: sp.hi / 1000 };
        }
        return { x: x(r.n), y: m, lo: (r.converge.fractions.p50 ?? r.converge.ms ?? 0) / 1000, hi: m };
      }),
    },
  ];
  const log = fits.find((f) => f.model === 'a + b·ln N');
  if (log && ok.length >= 2) {
    series.push({
      name: `fit ${(log.a / 1000).toFixed(2)} + ${(log.b / 1000).toFixed(2)}·ln N (s)`,
      points: ok.map((r) => ({ x: x(r.n), y: (log.a + log.b * Math.log(r.n)) / 1000, lo: undefined as unknown as number, hi: undefined as unknown as number })),
    });
    (series[1] as { dashed?: boolean }).dashed = true;
  }
  const crash = ok.map((r) => ({ r, c: r.crashes.find((c) => c.mode === 'kill') })).filter((p) => p.c && p.c.allMs !== null);
  if (crash.length > 0) {
    series.push({
      name: 'crash (kill) seen dead by all (s)',
      points: crash.map((p) => ({ x: x(p.r.n), y: (p.c?.allMs as number) / 1000, lo: (p.c?.firstMs ?? 0) / 1000, hi: (p.c?.allMs as number) / 1000 })),
    });
  }
  return lineChart({ title, xLabel: 'members N, log10 scale (2 = 100, 3 = 1,000, 4 = 10,000)', yLabel: 'virtual seconds', series });
}
