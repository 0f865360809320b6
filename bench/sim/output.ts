/**
 * Everything a run leaves behind, built from the results alone so that
 * `--render FILE` can redo the table, fits and chart of an earlier run
 * without simulating again.
 */
import { mkdirSync, writeFileSync } from 'fs';
import * as path from 'path';
import type { GossipTiming } from '../../agent/gossip/timing';
import { FRAME_OVERHEAD } from '../../agent/net/limits';
import type { SimArgs } from './args';
import type { CryptoStats } from './crypto';
import type { LatencySpec } from './latency';
import { HANDSHAKE_BYTES } from './network';
import { convergenceChart, growthFits, growthVerdict, medianConvergence, sweepTable, table, type Fit } from './report';
import type { SuiteResult } from './suite';

export interface Skipped {
  n: number;
  reason: string;
}

export interface RunFile {
  tool: string;
  generatedAt: string;
  complete: boolean;
  args: SimArgs;
  timing: GossipTiming;
  latency: LatencySpec;
  bytesModel: Record<string, unknown>;
  results: SuiteResult[];
  skipped: Skipped[];
  convergenceFits: Fit[];
  verdict: string;
  halfComplete: { fits: Fit[]; verdict: string };
  ninetyComplete: { fits: Fit[]; verdict: string };
  crypto: CryptoStats;
}

function fitsFor(results: SuiteResult[], which: 'ms' | 'p50' | 'p90'): { fits: Fit[]; verdict: string } {
  const rs = results.filter((r) => medianConvergence(r, which) !== null);
  const fits = growthFits(
    rs.map((r) => r.n),
    rs.map((r) => medianConvergence(r, which) as number),
  );
  return { fits, verdict: growthVerdict(fits, rs.length) };
}

export function buildRunFile(o: {
  args: SimArgs;
  timing: GossipTiming;
  latency: LatencySpec;
  results: SuiteResult[];
  skipped: Skipped[];
  crypto: CryptoStats;
  complete: boolean;
}): RunFile {
  const all = fitsFor(o.results, 'ms');
  return {
    tool: 'hepto-agent simulator (npm run sim)',
    generatedAt: new Date().toISOString(),
    complete: o.complete,
    args: o.args,
    timing: o.timing,
    latency: o.latency,
    bytesModel: {
      frameOverhead: FRAME_OVERHEAD,
      websocketHeader: '2 B, +2 over 125 B, +8 over 64 KiB, +4 mask from the dialer',
      handshake: HANDSHAKE_BYTES,
      tcpIpHeaders: 'not counted',
    },
    results: o.results,
    skipped: o.skipped,
    convergenceFits: all.fits,
    verdict: all.verdict,
    halfComplete: fitsFor(o.results, 'p50'),
    ninetyComplete: fitsFor(o.results, 'p90'),
    crypto: o.crypto,
  };
}

/** Recomputes the fits and verdicts of a stored run (after the report logic changed). */
export function refresh(f: RunFile): RunFile {
  const all = fitsFor(f.results, 'ms');
  return {
    ...f,
    skipped: f.skipped ?? [],
    convergenceFits: all.fits,
    verdict: all.verdict,
    halfComplete: fitsFor(f.results, 'p50'),
    ninetyComplete: fitsFor(f.results, 'p90'),
  };
}

export function jsonPath(args: Pick<SimArgs, 'out' | 'seed' | 'convergeOnly'>): string {
  return path.join(args.out, `sim-${args.seed}${args.convergeOnly ? '-sweep' : ''}.json`);
}

export function writeRunFile(file: string, f: RunFile): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(f, null, 2)}\n`);
}

export function writeChart(file: string, f: RunFile): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(
    file,
    convergenceChart(f.results, f.convergenceFits, `Simulated convergence vs N (${f.args.timing} timing, ${f.args.latency} latency, seed ${f.args.seed})`),
  );
}

/** The printed summary: table, what was not run, the growth verdicts, the bytes model. */
export function summary(f: RunFile): string {
  const lines = [f.args.convergeOnly ? sweepTable(f.results) : table(f.results), ''];
  for (const k of f.skipped) lines.push(`N=${k.n}: ${k.reason}`);
  lines.push(`convergence growth (all members complete): ${f.verdict}`);
  lines.push(`  50% of members complete: ${f.halfComplete.verdict}`);
  lines.push(`  90% of members complete: ${f.ninetyComplete.verdict}`);
  lines.push(
    `bytes: gossip JSON + ${FRAME_OVERHEAD} B sealed-frame overhead + 2-8 B WebSocket header (+4 mask from the dialer) per frame; ` +
      `handshakes ${HANDSHAKE_BYTES.dialer} + ${HANDSHAKE_BYTES.listener} B per new connection; TCP/IP headers not counted`,
  );
  lines.push(`signatures: ${f.crypto.signatures} made, ${f.crypto.verifications} checked, ${f.crypto.cacheHits} answered from the cache`);
  return lines.join('\n');
}
