/**
 * A tiny dependency-free SVG line chart: one line per series through the
 * medians, with a min–max whisker at every point. Enough for docs/bench.
 */

export interface ChartPoint {
  x: number;
  y: number;
  lo?: number;
  hi?: number;
}

export interface ChartSeries {
  name: string;
  points: ChartPoint[];
  /** Dashed line, e.g. for reference figures or targets. */
  dashed?: boolean;
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: ChartSeries[];
  width?: number;
  height?: number;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A "nice" tick step (1, 2 or 5 × 10^k) giving about `count` ticks over `span`. */
export function niceStep(span: number, count = 5): number {
  if (!(span > 0)) return 1;
  const raw = span / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const f = raw / mag;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
}

function fmt(v: number): string {
  if (Math.abs(v) >= 1000 && v % 1000 === 0) return `${v / 1000}k`;
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}

export function lineChart(o: ChartOptions): string {
  const W = o.width ?? 640;
  const H = o.height ?? 400;
  const m = { l: 70, r: 20, t: 40, b: 80 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  const pts = o.series.flatMap((s) => s.points);
  const xs = [...new Set(pts.map((p) => p.x))].sort((a, b) => a - b);
  const xMin = Math.min(0, ...xs);
  const xMax = Math.max(1, ...xs);
  const yTop = Math.max(1, ...pts.map((p) => p.hi ?? p.y));
  const yStep = niceStep(yTop);
  const yMax = Math.ceil(yTop / yStep) * yStep;
  const X = (x: number): number => m.l + ((x - xMin) / (xMax - xMin || 1)) * pw;
  const Y = (y: number): number => m.t + ph - (y / yMax) * ph;
  const out: string[] = [];
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  out.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(o.title)}</text>`);
  for (let y = 0; y <= yMax + 1e-9; y += yStep) {
    out.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${Y(y).toFixed(1)}" y2="${Y(y).toFixed(1)}" stroke="#e0e0e0"/>`);
    out.push(`<text x="${m.l - 6}" y="${(Y(y) + 4).toFixed(1)}" text-anchor="end">${fmt(y)}</text>`);
  }
  for (const x of xs) {
    out.push(`<line x1="${X(x).toFixed(1)}" x2="${X(x).toFixed(1)}" y1="${m.t + ph}" y2="${m.t + ph + 5}" stroke="#333"/>`);
    out.push(`<text x="${X(x).toFixed(1)}" y="${m.t + ph + 18}" text-anchor="middle">${fmt(x)}</text>`);
  }
  out.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${m.t + ph}" y2="${m.t + ph}" stroke="#333"/>`);
  out.push(`<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${m.t + ph}" stroke="#333"/>`);
  out.push(`<text x="${m.l + pw / 2}" y="${m.t + ph + 36}" text-anchor="middle">${esc(o.xLabel)}</text>`);
  out.push(`<text transform="translate(16 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`);
  o.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const sorted = [...s.points].sort((a, b) => a.x - b.x);
    const d = sorted.map((p, j) => `${j === 0 ? 'M' : 'L'}${X(p.x).toFixed(1)} ${Y(p.y).toFixed(1)}`).join(' ');
    if (sorted.length > 1) out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    for (const p of sorted) {
      if (p.lo !== undefined && p.hi !== undefined) {
        const x = X(p.x).toFixed(1);
        out.push(`<line x1="${x}" x2="${x}" y1="${Y(p.hi).toFixed(1)}" y2="${Y(p.lo).toFixed(1)}" stroke="${color}" stroke-width="1.5"/>`);
        for (const v of [p.lo, p.hi])
          out.push(`<line x1="${(X(p.x) - 4).toFixed(1)}" x2="${(X(p.x) + 4).toFixed(1)}" y1="${Y(v).toFixed(1)}" y2="${Y(v).toFixed(1)}" stroke="${color}"/>`);
      }
      out.push(
        `<circle cx="${X(p.x).toFixed(1)}" cy="${Y(p.y).toFixed(1)}" r="3.5" fill="${color}"><title>${esc(`${s.name}: N=${p.x}, median ${fmt(p.y)}`)}</title></circle>`,
      );
    }
    const ly = H - 26 + (i >= 3 ? 16 : 0);
    const lx = m.l + (i % 3) * (pw / 3);
    out.push(`<line x1="${lx}" x2="${lx + 24}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    out.push(`<text x="${lx + 30}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}
