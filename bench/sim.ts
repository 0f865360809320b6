/**
 * `npm run sim`: the real membership state machine on a simulated network in
 * virtual time, at several cluster sizes. Prints a table, writes
 * bench/results/sim-<seed>.json and docs/sim/convergence.svg. See docs/sim.md.
 */
import { mkdirSync, writeFileSync } from 'fs';
import * as path from 'path';
import { PRESETS } from '../agent/gossip/timing';
import { HeptoError, errorMessage, isHeptoError } from '../shared/errors';
import { parseArgs, USAGE } from './sim/args';
import { installFastCrypto } from './sim/crypto';
import { LATENCY_PRESETS } from './sim/latency';
import { FRAME_OVERHEAD } from '../agent/net/limits';
import { HANDSHAKE_BYTES } from './sim/network';
import { convergenceChart, growthFits, growthVerdict, medianConvergence, sweepTable, table } from './sim/report';
import { runSuite, type SuiteResult } from './sim/suite';

function main(argv: string[]): number {
  const args = parseArgs(argv);
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const crypto = installFastCrypto();
  const timing = PRESETS[args.timing];
  const latency = LATENCY_PRESETS[args.latency];
  const results: SuiteResult[] = [];
  const say = (line: string): void => void process.stdout.write(`${line}\n`);
  say(`sim: seed ${args.seed}, timing ${args.timing}, latency ${args.latency}, ${args.anchors} anchor(s), N = ${args.ns.join(', ')}${args.quick ? ' (quick)' : ''}`);
  const write = (final: boolean): void => {
    const ok = results.filter((r) => medianConvergence(r) !== null);
    const fits = growthFits(ok.map((r) => r.n), ok.map((r) => medianConvergence(r) as number));
    const verdict = growthVerdict(fits, ok.length);
    mkdirSync(args.out, { recursive: true });
    const file = path.join(args.out, `sim-${args.seed}${args.convergeOnly ? '-sweep' : ''}.json`);
    const json = {
      tool: 'hepto-agent simulator (npm run sim)',
      generatedAt: new Date().toISOString(),
      complete: final,
      args,
      timing,
      latency,
      bytesModel: { frameOverhead: FRAME_OVERHEAD, websocketHeader: '2 B, +2 over 125 B, +8 over 64 KiB, +4 mask from the dialer', handshake: HANDSHAKE_BYTES, tcpIpHeaders: 'not counted' },
      results,
      convergenceFits: fits,
      verdict,
      crypto: crypto.stats,
    };
    writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
    if (args.chart) {
      mkdirSync(path.dirname(args.chart), { recursive: true });
      writeFileSync(args.chart, convergenceChart(results, fits, `Simulated convergence vs N (${args.timing} timing, ${args.latency} latency, seed ${args.seed})`));
    }
    if (!final) return;
    say('');
    say(args.convergeOnly ? sweepTable(results) : table(results));
    say('');
    say(`convergence growth: ${verdict}`);
    say(`bytes: gossip JSON + ${FRAME_OVERHEAD} B sealed-frame overhead + 2-8 B WebSocket header (+4 mask from the dialer) per frame; handshakes ${HANDSHAKE_BYTES.dialer} + ${HANDSHAKE_BYTES.listener} B per new connection; TCP/IP headers not counted`);
    say(`signatures: ${crypto.stats.signatures} made, ${crypto.stats.verifications} checked, ${crypto.stats.cacheHits} answered from the cache`);
    say(`wrote ${file}${args.chart ? ` and ${args.chart}` : ''}`);
  };
  for (const n of [...args.ns].sort((a, b) => a - b)) {
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
  write(true);
  crypto.uninstall();
  return 0;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`${isHeptoError(e) ? (e as HeptoError).describe() : `sim failed: ${errorMessage(e)}`}\n`);
  process.exitCode = isHeptoError(e) && (e as HeptoError).code === 'USAGE' ? 2 : 1;
}
