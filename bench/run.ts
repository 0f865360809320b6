/**
 * `npm run bench`: the gossip benchmark beside memberlist, then the self-heal
 * benchmark when it is built. Flags: see USAGE.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseArgs } from 'util';
import { LAN, WAN, type GossipTiming } from '../agent/gossip/timing';
import { runGossipCluster, type GossipRunResult } from './gossip-bench';
import { measureAgentRss, type AgentRssResult } from './lib/agent-process';
import { buildMemberlistBench, installMemberlist, memberlistMissing, runMemberlistBench } from './lib/memberlist';
import { REFERENCE_SOURCE } from './lib/reference';
import { charts, formatAgentLine, formatTable, summarize, type MemberlistSource, type SummaryRow } from './lib/report';

const REPO = path.resolve(__dirname, '../..');

const USAGE = `\`npm run bench\`: the gossip benchmark beside memberlist, then the self-heal
benchmark when it is built. Writes bench/results/gossip-<date>.json and,
for a full run with the default LAN timing, redraws docs/bench/*.svg.

  --n 10,50,100,300    cluster sizes
  --runs 3             fresh clusters per size
  --quick              N=10, one run, short rest window, no docs, no agent process
  --rest-ms 10000      traffic window at rest (after a 3 s settle)
  --with-memberlist    install Go + memberlist with apt-get if missing, and run it
  --no-memberlist      print the reference figures instead of running memberlist
  --no-agent-rss       skip the one-agent-process RSS measurement
  --agent-peers N      peers of that agent process (default 100, or the largest size below it); above 300
                       they are hosted in child processes with the WAN timing, so that they converge on
                       2 cores (1,000: 9-12 minutes here)
  --agent-node PATH    the node binary for that agent process (default: this one), e.g. Debian 12's Node 18
  --agent-flags FLAGS  its node flags, space-separated (default: the installer's, agent/node-flags.ts; '' for none)
  --no-selfheal        skip the self-heal benchmark
  --timing JSON        experiment: override LAN timing fields, e.g. '{"probeTimeout":600}'
  --same-host          every member on 127.0.0.1 (shows the per-source socket cap)
  --threads K          worker threads hosting the members (default: one per core; 1 = the old single thread)
  --charts-from FILE[,EXPERIMENT]  only redraw docs/bench/*.svg from an earlier JSON (plus an experiment's, dashed)
HEPTO_BENCH_MEMBERLIST=install does what --with-memberlist does; =off what --no-memberlist does.`;
const SETTLE_MS = 3000;

export interface BenchFile {
  kind: 'hepto-gossip-bench';
  version: 1;
  date: string;
  machine: { cpus: number; model: string; node: string; loadavgStart: number[]; loadavgEnd: number[]; note: string };
  /** The code measured: commit, and whether agent/ or shared/ had uncommitted changes. */
  code: { commit: string | null; uncommittedAgentChanges: boolean | null };
  config: {
    sizes: number[];
    runs: number;
    restMs: number;
    settleMs: number;
    timing: GossipTiming;
    timingPreset: string;
    sameHost: boolean;
    /** Worker threads hosting the members (absent in older files: one thread). */ threads?: number;
    /** Older files: the --native-crypto experiment, before the agent itself went native. */ nativeCrypto?: boolean;
  };
  hepto: GossipRunResult[];
  memberlist: MemberlistSource;
  agentProcess: AgentRssResult | null;
  summary: SummaryRow[];
}

function codeVersion(): BenchFile['code'] {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO, encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'agent', 'shared'], { cwd: REPO, encoding: 'utf8' }).trim() !== '';
    return { commit, uncommittedAgentChanges: dirty };
  } catch {
    return { commit: null, uncommittedAgentChanges: null };
  }
}

function say(line: string): void {
  process.stdout.write(line + '\n');
}

/** A cluster size the bench hosts: 3 to 1,000 members. */
function isClusterSize(n: number): boolean {
  return Number.isInteger(n) && n >= 3 && n <= 1000;
}

function parseSizes(text: string): number[] {
  const sizes = text.split(',').map((s) => Number(s.trim()));
  if (!sizes.every(isClusterSize)) throw new Error(`--n: "${text}" must be a comma-separated list of integers from 3 to 1000 (e.g. 10,50,100,300)`);
  return sizes;
}

function parseAgentPeers(text: string): number {
  const n = Number(text.trim());
  if (!isClusterSize(n)) throw new Error(`--agent-peers: "${text}" must be an integer from 3 to 1000 (e.g. 1000)`);
  return n;
}

function parseTiming(text: string | undefined): { timing: GossipTiming; preset: string } {
  if (!text) return { timing: LAN, preset: 'LAN' };
  let patch: unknown;
  try {
    patch = JSON.parse(text);
  } catch {
    throw new Error(`--timing: not JSON: ${text}`);
  }
  if (!patch || typeof patch !== 'object' || Array.isArray(patch)) throw new Error('--timing: expected a JSON object of GossipTiming fields');
  for (const [k, v] of Object.entries(patch)) {
    if (!(k in LAN)) throw new Error(`--timing: unknown field "${k}"; known: ${Object.keys(LAN).join(', ')}`);
    if (typeof v !== 'number' || !(v > 0)) throw new Error(`--timing: field "${k}" must be a positive number`);
  }
  return { timing: { ...LAN, ...(patch as Partial<GossipTiming>) }, preset: `LAN+${JSON.stringify(patch)}` };
}

function experimentLabel(doc: BenchFile): string {
  const parts: string[] = [];
  if (doc.config.nativeCrypto) parts.push('native crypto');
  if (doc.config.timingPreset !== 'LAN') parts.push(doc.config.timingPreset);
  return parts.join(', ') || 'second run';
}

function writeCharts(rows: SummaryRow[], src: MemberlistSource, experiment?: BenchFile): void {
  const dir = path.join(REPO, 'docs/bench');
  fs.mkdirSync(dir, { recursive: true });
  const extra = experiment ? { label: experimentLabel(experiment), rows: experiment.summary } : undefined;
  for (const [file, svg] of Object.entries(charts(rows, src, extra))) {
    fs.writeFileSync(path.join(dir, file), svg);
    say(`wrote docs/bench/${file}`);
  }
}

async function memberlistSource(o: {
  want: 'auto' | 'install' | 'off';
  sizes: number[];
  runs: number;
  restMs: number;
  timeoutMs: number;
}): Promise<MemberlistSource> {
  if (o.want === 'off') return { kind: 'reference', why: 'skipped (--no-memberlist)' };
  let missing = memberlistMissing();
  if (missing && o.want === 'install') {
    try {
      installMemberlist(say);
    } catch (e) {
      return { kind: 'reference', why: `could not install memberlist: ${e instanceof Error ? e.message : String(e)}` };
    }
    missing = memberlistMissing();
  }
  if (missing) return { kind: 'reference', why: `${missing}; pass --with-memberlist (or HEPTO_BENCH_MEMBERLIST=install) to install it with apt-get` };
  try {
    say('building the memberlist bench (Go, GOPATH mode, offline)');
    const bin = buildMemberlistBench(REPO);
    say(`memberlist: N = ${o.sizes.join(', ')}, ${o.runs} fresh clusters each, encryption on`);
    const runs = await runMemberlistBench({ bin, sizes: o.sizes, runs: o.runs, restMs: o.restMs, settleMs: SETTLE_MS, timeoutMs: o.timeoutMs, progress: say });
    return { kind: 'measured', runs };
  } catch (e) {
    return { kind: 'reference', why: `memberlist bench failed: ${e instanceof Error ? e.message : String(e)}` };
  }
}

async function runSelfheal(quick: boolean): Promise<void> {
  const file = path.join(__dirname, 'selfheal.js');
  if (!fs.existsSync(file)) {
    say('\nself-heal bench: not built (no dist/bench/selfheal.js); skipped');
    return;
  }
  say('\nself-heal bench (Podman)');
  try {
    const mod = (await import(file)) as Record<string, unknown>;
    const entry = ['main', 'runSelfhealBench', 'run'].map((k) => mod[k]).find((f): f is (o: { quick: boolean }) => unknown => typeof f === 'function');
    if (!entry) {
      say('self-heal bench: dist/bench/selfheal.js exports no main(); skipped');
      return;
    }
    await entry({ quick });
  } catch (e) {
    say(`self-heal bench did not run: ${e instanceof Error ? e.message : String(e)} (Podman missing or not usable here?); going on`);
  }
}

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      n: { type: 'string' },
      runs: { type: 'string' },
      quick: { type: 'boolean', default: false },
      'rest-ms': { type: 'string' },
      'with-memberlist': { type: 'boolean', default: false },
      'no-memberlist': { type: 'boolean', default: false },
      'no-agent-rss': { type: 'boolean', default: false },
      'agent-node': { type: 'string' },
      'agent-peers': { type: 'string' },
      'agent-flags': { type: 'string' },
      'no-selfheal': { type: 'boolean', default: false },
      'same-host': { type: 'boolean', default: false },
      threads: { type: 'string' },
      timing: { type: 'string' },
      'charts-from': { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    say(USAGE);
    return 0;
  }
  if (values['charts-from']) {
    // FILE, or FILE,EXPERIMENT: the second run's hepto figures are drawn dashed beside the first.
    const [main, experiment] = values['charts-from'].split(',').map((f) => JSON.parse(fs.readFileSync(f, 'utf8')) as BenchFile);
    writeCharts(main.summary, main.memberlist, experiment);
    return 0;
  }
  const quick = values.quick;
  const sizes = parseSizes(values.n ?? (quick ? '10' : '10,50,100,300'));
  const runs = Number(values.runs ?? (quick ? 1 : 3));
  if (!Number.isInteger(runs) || runs < 1 || runs > 20) throw new Error(`--runs: "${values.runs}" must be an integer from 1 to 20`);
  const restMs = Number(values['rest-ms'] ?? (quick ? 3000 : 10000));
  if (!(restMs >= 1000)) throw new Error(`--rest-ms: "${values['rest-ms']}" must be at least 1000`);
  const { timing, preset } = parseTiming(values.timing);
  const env = process.env.HEPTO_BENCH_MEMBERLIST;
  const wantMl = values['no-memberlist'] || env === 'off' ? 'off' : values['with-memberlist'] || env === 'install' ? 'install' : quick ? 'off' : 'auto';
  const threads = Number(values.threads ?? os.cpus().length);
  if (!Number.isInteger(threads) || threads < 1 || threads > 64) throw new Error(`--threads: "${values.threads}" must be an integer from 1 to 64`);
  // A 300-member join storm in one process on 2 cores takes tens of seconds: give it room to finish.
  const phaseTimeoutFor = (n: number): number => Math.max(45_000, 300 * n);
  const experiment = preset !== 'LAN' || values['same-host'];
  const loadStart = os.loadavg();
  const code = codeVersion();

  say(
    `hepto gossip bench: N = ${sizes.join(', ')}, ${runs} fresh cluster(s) each, timing ${preset}, rest window ${restMs} ms, members on ${threads} worker thread(s)`,
  );
  say(
    `machine: ${os.cpus().length} cores, load average ${loadStart.map((l) => l.toFixed(2)).join(' ')} (other work on this machine makes the figures noisier)`,
  );
  // Warm-up: load and compile every code path once, so the first measured run's memory and times are not inflated by it.
  await runGossipCluster({ n: 3, run: 0, timing, restMs: 1000, settleMs: 100, phaseTimeoutMs: 30_000, subnet: '127.0.1', threads, progress: () => undefined });
  const hepto: GossipRunResult[] = [];
  for (const n of sizes) {
    for (let run = 1; run <= runs; run++) {
      say(`hepto N=${n} run ${run}/${runs}`);
      const r = await runGossipCluster({
        n,
        run,
        timing,
        restMs,
        settleMs: SETTLE_MS,
        phaseTimeoutMs: phaseTimeoutFor(n),
        subnet: '127.0.1',
        sameHost: values['same-host'],
        threads,
        progress: say,
      });
      for (const e of r.errors) say(`  ! ${e}`);
      if (r.falseDeaths > 0) say(`  ! ${r.falseDeaths} false death(s), ${r.falseSuspicions} false suspicion(s)`);
      hepto.push(r);
    }
  }

  // The memory targets speak of 100 and 1,000 peers.
  const agentPeers = values['agent-peers'] ? parseAgentPeers(values['agent-peers']) : sizes.some((n) => n >= 100) ? 100 : Math.max(...sizes);
  // One process cannot host many more (descriptors, CPU): past 300, child processes, with slower probes.
  const farScaffold = agentPeers > 300;
  const agentProcess =
    values['no-agent-rss'] || quick
      ? null
      : await measureAgentRss({
          peers: agentPeers,
          timing: farScaffold ? WAN : timing,
          scaffoldProcesses: farScaffold ? Math.min(8, Math.ceil(agentPeers / 125)) : undefined,
          restMs: 10_000,
          timeoutMs: phaseTimeoutFor(Math.min(agentPeers, 300)),
          nodeBin: values['agent-node'],
          nodeArgs: values['agent-flags']?.split(' ').filter(Boolean),
          progress: say,
        });
  if (agentProcess) say(formatAgentLine(agentProcess));

  const memberlist = await memberlistSource({ want: wantMl, sizes, runs, restMs, timeoutMs: 120_000 });
  if (memberlist.kind === 'reference') say(`\nmemberlist not run here: ${memberlist.why}.\nRatios use the reference figures from ${REFERENCE_SOURCE}.`);

  const summary = summarize(hepto, memberlist);
  const doc: BenchFile = {
    kind: 'hepto-gossip-bench',
    version: 1,
    date: new Date().toISOString(),
    machine: {
      cpus: os.cpus().length,
      model: os.cpus()[0]?.model ?? 'unknown',
      node: process.version,
      loadavgStart: loadStart,
      loadavgEnd: os.loadavg(),
      note: `all members share this one process, dealt out over ${threads} worker thread(s); other work on the machine adds noise`,
    },
    code,
    config: { sizes, runs, restMs, settleMs: SETTLE_MS, timing, timingPreset: preset, sameHost: values['same-host'], threads },
    hepto,
    memberlist,
    agentProcess,
    summary,
  };
  const outDir = path.join(REPO, 'bench/results');
  fs.mkdirSync(outDir, { recursive: true });
  const out = path.join(outDir, `gossip-${doc.date.replace(/[:.]/g, '-')}.json`);
  fs.writeFileSync(out, JSON.stringify(doc, null, 2) + '\n');

  say('\n' + formatTable(summary, memberlist));
  say('\n' + formatAgentLine(agentProcess));
  say(`\nwrote ${path.relative(REPO, out)}`);
  if (!quick && !experiment) writeCharts(summary, memberlist);
  else say('docs/bench charts not redrawn (quick run or experiment)');

  if (!values['no-selfheal']) await runSelfheal(quick);
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`bench: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 2;
    },
  );
}
