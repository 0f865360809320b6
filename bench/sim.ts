/**
 * `npm run sim`: the real membership state machine on a simulated network in
 * virtual time, at several cluster sizes. Prints a table, writes
 * bench/results/sim-<seed>.json and docs/sim/convergence.svg. See docs/sim.md.
 */
import { readFileSync } from 'fs';
import { getHeapStatistics } from 'v8';
import { PRESETS } from '../agent/gossip/timing';
import { HeptoError, errorMessage, isHeptoError } from '../shared/errors';
import { parseArgs, USAGE } from './sim/args';
import { installFastCrypto } from './sim/crypto';
import { LATENCY_PRESETS } from './sim/latency';
import { buildRunFile, jsonPath, refresh, summary, writeChart, writeRunFile, type RunFile, type Skipped } from './sim/output';
import { runSuite, type SuiteResult } from './sim/suite';

/**
 * Peak heap per (member, member) pair during a join storm, measured at N = 2,000
 * (1.65 GB): every member holds an entry for every other, and the join storm
 * queues an update per entry. At rest it is about 160 B.
 */
/**
 * Heap per member pair at the peak of a join storm: 420 B measured at N = 2,000-3,000
 * with a Set per queued update, about 320 B since (RSS of a convergence run at N = 3,000,
 * docs/sim.md). The higher figure is kept: running out of heap an hour in costs more.
 */
const PEAK_BYTES_PER_PAIR = 420;

/** Why this N cannot run in this process, or null. */
function tooBig(n: number, force: boolean): string | null {
  const need = n * n * PEAK_BYTES_PER_PAIR + 200e6;
  const limit = getHeapStatistics().heap_size_limit;
  if (force || need <= limit) return null;
  const gb = (b: number): string => `${(b / 1e9).toFixed(1)} GB`;
  return (
    `not run: ${n.toLocaleString('en-US')} real Membership instances hold ${n.toLocaleString('en-US')}² member entries, ` +
    `about ${gb(need)} of heap at the join storm, over this process's ${gb(limit)} limit. On a machine with that much memory: ` +
    `node --max-old-space-size=${Math.ceil((need * 1.2) / 1e6)} dist/bench/sim.js --n ${n} --force`
  );
}

function render(file: string, chart: string): number {
  let f: RunFile;
  try {
    f = refresh(JSON.parse(readFileSync(file, 'utf8')) as RunFile);
  } catch (e) {
    throw new HeptoError('USAGE', `sim: --render ${file}: cannot read a simulator result (${errorMessage(e)})`, { hint: 'pass a bench/results/sim-<seed>.json written by npm run sim' });
  }
  writeRunFile(file, f);
  if (chart) writeChart(chart, f);
  process.stdout.write(`${summary(f)}\nrewrote ${file}${chart ? ` and ${chart}` : ''}\n`);
  return 0;
}

function main(argv: string[]): number {
  const args = parseArgs(argv);
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (args.render) return render(args.render, args.chart);
  const crypto = installFastCrypto();
  const timing = PRESETS[args.timing];
  const latency = LATENCY_PRESETS[args.latency];
  const results: SuiteResult[] = [];
  const skipped: Skipped[] = [];
  const say = (line: string): void => void process.stdout.write(`${line}\n`);
  const file = jsonPath(args);
  const write = (complete: boolean): RunFile => {
    const f = buildRunFile({ args, timing, latency, results, skipped, crypto: crypto.stats, complete });
    writeRunFile(file, f);
    if (args.chart) writeChart(args.chart, f);
    return f;
  };
  say(`sim: seed ${args.seed}, timing ${args.timing}, latency ${args.latency}, ${args.anchors} anchor(s), N = ${args.ns.join(', ')}${args.quick ? ' (quick)' : ''}`);
  try {
    for (const n of [...args.ns].sort((a, b) => a - b)) {
      const why = tooBig(n, args.force);
      if (why) {
        skipped.push({ n, reason: why });
        say(`N=${n}: ${why}`);
        continue;
      }
      say(`N=${n}: starting`);
      const r = runSuite({
        n,
        seed: args.seed,
        timing,
        timingName: args.timing,
        latency,
        anchors: args.anchors,
        startSpreadMs: args.spreadMs,
        lossRates: args.loss,
        lossModels: args.lossModels,
        memberHours: args.memberHours,
        churnPairs: args.churn,
        wire: args.wire,
        repeat: args.repeat,
        convergeOnly: args.convergeOnly,
        progress: say,
      });
      results.push(r);
      say(`N=${n}: done in ${(r.runtime.realMs / 1000).toFixed(1)} s, ${r.runtime.events} events`);
      write(false); // a long run keeps what it has so far
    }
    const f = write(true);
    say('');
    say(summary(f));
    say(`wrote ${file}${args.chart ? ` and ${args.chart}` : ''}`);
  } finally {
    crypto.uninstall();
  }
  return 0;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`${isHeptoError(e) ? (e as HeptoError).describe() : `sim failed: ${errorMessage(e)}`}\n`);
  process.exitCode = isHeptoError(e) && (e as HeptoError).code === 'USAGE' ? 2 : 1;
}
