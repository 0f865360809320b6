/**
 * `npm run sim`: the real membership state machine on a simulated network in
 * virtual time, at several cluster sizes. Prints a table, writes
 * bench/results/sim-<seed>.json and docs/sim/convergence.svg. See docs/sim.md.
 */
import { spawnSync } from 'child_process';
import { readFileSync } from 'fs';
import { totalmem } from 'os';
import { getHeapStatistics } from 'v8';
import { PRESETS } from '../agent/gossip/timing';
import { HeptoError, errorMessage, isHeptoError } from '../shared/errors';
import { parseArgs, USAGE } from './sim/args';
import { installFastCrypto } from './sim/crypto';
import { LATENCY_PRESETS } from './sim/latency';
import { buildRunFile, jsonPath, refresh, summary, writeChart, writeRunFile, type RunFile, type Skipped } from './sim/output';
import { runSuite, type SuiteResult } from './sim/suite';

/**
 * Heap per member pair that a run needs: live heap peaks at about 77 B per
 * pair in a join storm (N = 1,000 to 10,000, member tables in columns), and
 * V8 needs room above that to collect without thrashing. docs/sim.md.
 */
const HEAP_BYTES_PER_PAIR = 150;
/** Young generation size: the simulator allocates a lot of short-lived messages, and 16 MB semi-spaces made scavenges a third of a 10,000-member run. */
const SEMI_SPACE_MB = 128;

/** Heap this N needs, in bytes. */
function heapNeed(n: number): number {
  return n * n * HEAP_BYTES_PER_PAIR + 500e6;
}

/** Why this N cannot run in this process, or null. */
function tooBig(n: number, force: boolean): string | null {
  const need = heapNeed(n);
  const limit = getHeapStatistics().heap_size_limit;
  if (force || need <= limit) return null;
  const gb = (b: number): string => `${(b / 1e9).toFixed(1)} GB`;
  return (
    `not run: ${n.toLocaleString('en-US')} real Membership instances hold ${n.toLocaleString('en-US')}² member entries, ` +
    `about ${gb(need)} of heap, over this process's ${gb(limit)} limit (npm run sim raises it to at most 80% of this machine's ${gb(totalmem())}). ` +
    `On a machine with more: node --max-old-space-size=${Math.ceil(need / 1e6)} dist/bench/sim.js --n ${n}`
  );
}

/**
 * Node's default heap limit (about a quarter of the memory, at most 4 GB
 * here) cannot hold 10,000 members. When the sizes asked for need more and
 * the machine has it (at most 80% of its memory), run again in a child node
 * with the heap they need and larger young-generation spaces. Returns the
 * child's exit code, or null to run in this process.
 */
function rerunWithHeap(argv: string[], ns: number[]): number | null {
  if (process.env.HEPTO_SIM_CHILD === '1' || process.execArgv.some((a) => a.startsWith('--max-old-space-size'))) return null;
  const affordable = ns.filter((n) => heapNeed(n) <= 0.8 * totalmem());
  const need = Math.max(0, ...affordable.map(heapNeed));
  if (need <= getHeapStatistics().heap_size_limit) return null;
  const flags = [`--max-old-space-size=${Math.ceil(need / 1e6)}`, `--max-semi-space-size=${SEMI_SPACE_MB}`];
  process.stdout.write(`sim: running with ${flags.join(' ')} (${(totalmem() / 1e9).toFixed(1)} GB of memory here)\n`);
  const r = spawnSync(process.execPath, [...flags, __filename, ...argv], { stdio: 'inherit', env: { ...process.env, HEPTO_SIM_CHILD: '1' } });
  return r.status ?? 1;
}

function render(file: string, chart: string): number {
  let f: RunFile;
  try {
    f = refresh(JSON.parse(readFileSync(file, 'utf8')) as RunFile);
  } catch (e) {
    throw new HeptoError('USAGE', `sim: --render ${file}: cannot read a simulator result (${errorMessage(e)})`, {
      hint: 'pass a bench/results/sim-<seed>.json written by npm run sim',
    });
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
  const child = rerunWithHeap(argv, args.ns);
  if (child !== null) return child;
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
  say(
    `sim: seed ${args.seed}, timing ${args.timing}, latency ${args.latency}, ${args.anchors} anchor(s), N = ${args.ns.join(', ')}${args.quick ? ' (quick)' : ''}`,
  );
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
        heavy: n <= args.heavyMax,
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
