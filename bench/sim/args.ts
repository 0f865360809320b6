/**
 * Flags of `npm run sim -- ...`, declared as data, with a clear error naming
 * the flag for anything malformed.
 */
import { HeptoError } from '../../shared/errors';
import { PRESETS } from '../../agent/gossip/timing';
import { LATENCY_PRESETS } from './latency';
import type { LossModel } from './network';

export interface SimArgs {
  ns: number[];
  seed: number;
  quick: boolean;
  timing: 'LAN' | 'WAN' | 'TEST';
  latency: string;
  anchors: number;
  spreadMs: number;
  loss: number[];
  lossModels: LossModel[];
  memberHours: number;
  churn: number;
  wire: 'decode' | 'shared';
  out: string;
  chart: string;
  repeat: number;
  convergeOnly: boolean;
  /** Run an N even when its memory estimate exceeds the heap limit. */
  force: boolean;
  /** Largest N that runs the heavy phases (partition, churn, drop-model loss). */
  heavyMax: number;
  /** Re-render table, fits and chart from this result file instead of simulating. */
  render: string;
  help: boolean;
}

export const USAGE = `usage: npm run sim -- [flags]
  --n 100,1000,10000   cluster sizes (default 100,1000,10000; --quick: 100,1000)
  --seed 42            seed of every random choice; the same seed replays the same run
  --quick              shorter loss windows (a tenth of the member-hours), tcp loss model only, no churn
  --timing LAN         gossip timing preset: LAN, WAN or TEST
  --latency lan        link latency: lan, wan (three continents, long tail) or constant (10 ms)
  --anchors 1          members everyone joins through (all start within --spread ms)
  --spread 100         start window of the non-anchor members, ms
  --loss 0.01,0.05,0.1 loss rates of the false-positive windows
  --loss-model both    tcp (loss = retransmission delay, like the real transport), drop (message lost), both
  --member-hours 100   exposure per loss window (60 s to 1 h of virtual time)
  --churn 10           leave+join pairs in the churn phase (0 = none)
  --wire shared        shared (messages passed by reference; fast) or decode (encode+decode every message)
  --repeat 1           convergence runs per N (seeds seed, seed+1, ...): the chart shows their median and range
  --converge-only      only the convergence phase (a sweep over N; writes sim-<seed>-sweep.json)
  --heavy-max 1000     largest N that also runs the split in halves, the churn and the drop-model loss windows
                       (storms of suspicions and syncs: N² log N work, hours at 10,000 here)
  --force              run an N even if its memory estimate exceeds the heap limit (see docs/sim.md)
  --render FILE        no simulation: redo the table, fits and chart of an earlier result file
  --out bench/results  where sim-<seed>.json goes
  --chart docs/sim/convergence.svg   the convergence chart ('' = none)`;

function bad(flag: string, why: string): HeptoError {
  return new HeptoError('USAGE', `sim: ${flag} ${why}`, { hint: 'run `npm run sim -- --help` for the flags' });
}

function numbers(flag: string, v: string, int: boolean, min: number, max: number): number[] {
  const out = v
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x !== '')
    .map(Number);
  if (out.length === 0) throw bad(flag, 'needs at least one number');
  for (const x of out) {
    if (!Number.isFinite(x) || (int && !Number.isInteger(x)) || x < min || x > max)
      throw bad(flag, `values must be ${int ? 'integers' : 'numbers'} from ${min} to ${max}, got "${v}"`);
  }
  return out;
}

export function parseArgs(argv: string[]): SimArgs {
  const a: SimArgs = {
    ns: [100, 1000, 10000],
    seed: 42,
    quick: false,
    timing: 'LAN',
    latency: 'lan',
    anchors: 1,
    spreadMs: 100,
    loss: [0.01, 0.05, 0.1],
    lossModels: ['tcp', 'drop'],
    memberHours: 100,
    churn: 10,
    wire: 'shared',
    out: 'bench/results',
    chart: 'docs/sim/convergence.svg',
    repeat: 1,
    convergeOnly: false,
    force: false,
    heavyMax: 1000,
    render: '',
    help: false,
  };
  let nGiven = false;
  let modelGiven = false;
  let churnGiven = false;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--quick') {
      a.quick = true;
      continue;
    }
    if (flag === '--help' || flag === '-h') {
      a.help = true;
      continue;
    }
    if (flag === '--converge-only') {
      a.convergeOnly = true;
      continue;
    }
    if (flag === '--force') {
      a.force = true;
      continue;
    }
    const v = argv[i + 1];
    if (v === undefined || (v.startsWith('--') && v !== '')) throw bad(flag, 'needs a value');
    i++;
    switch (flag) {
      case '--n':
        a.ns = numbers(flag, v, true, 2, 100_000);
        nGiven = true;
        break;
      case '--seed':
        a.seed = numbers(flag, v, true, 0, 2 ** 32 - 1)[0];
        break;
      case '--timing':
        if (!(v in PRESETS)) throw bad(flag, `must be LAN, WAN or TEST, got "${v}"`);
        a.timing = v as SimArgs['timing'];
        break;
      case '--latency':
        if (!(v in LATENCY_PRESETS)) throw bad(flag, `must be one of ${Object.keys(LATENCY_PRESETS).join(', ')}, got "${v}"`);
        a.latency = v;
        break;
      case '--anchors':
        a.anchors = numbers(flag, v, true, 1, 100)[0];
        break;
      case '--spread':
        a.spreadMs = numbers(flag, v, false, 0, 3_600_000)[0];
        break;
      case '--loss':
        a.loss = numbers(flag, v, false, 0, 0.9);
        break;
      case '--loss-model':
        if (!['tcp', 'drop', 'both'].includes(v)) throw bad(flag, `must be tcp, drop or both, got "${v}"`);
        a.lossModels = v === 'both' ? ['tcp', 'drop'] : [v as LossModel];
        modelGiven = true;
        break;
      case '--member-hours':
        a.memberHours = numbers(flag, v, false, 0.01, 1e6)[0];
        break;
      case '--churn':
        a.churn = numbers(flag, v, true, 0, 10_000)[0];
        churnGiven = true;
        break;
      case '--wire':
        if (v !== 'shared' && v !== 'decode') throw bad(flag, `must be shared or decode, got "${v}"`);
        a.wire = v;
        break;
      case '--heavy-max':
        a.heavyMax = numbers(flag, v, true, 0, 1_000_000)[0];
        break;
      case '--repeat':
        a.repeat = numbers(flag, v, true, 1, 100)[0];
        break;
      case '--out':
        a.out = v;
        break;
      case '--render':
        a.render = v;
        break;
      case '--chart':
        a.chart = v;
        break;
      default:
        throw bad(flag, 'is not a known flag');
    }
  }
  if (a.quick) {
    if (!nGiven) a.ns = [100, 1000];
    if (!modelGiven) a.lossModels = ['tcp'];
    if (!churnGiven) a.churn = 0;
    a.memberHours /= 10;
  }
  return a;
}
