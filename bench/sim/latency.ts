/**
 * One-way link latency: a base per pair of regions ("geography") plus a
 * jitter drawn from a distribution (constant, uniform, or lognormal for the
 * long tail of home uplinks). Members are assigned to regions by weight,
 * deterministically from the run's rng.
 */
import { normal, type Rng } from './rng';

export type Jitter =
  | { kind: 'constant'; ms: number }
  | { kind: 'uniform'; min: number; max: number }
  /** median × e^(sigma·Z), capped at max: most links fast, a few very slow. */
  | { kind: 'lognormal'; median: number; sigma: number; max: number };

export interface Geography {
  regions: { name: string; weight: number }[];
  /** oneWayMs[i][j]: base one-way latency between regions i and j (symmetric). */
  oneWayMs: number[][];
}

export interface LatencySpec {
  name: string;
  geography: Geography;
  jitter: Jitter;
}

const ONE_REGION: Geography = { regions: [{ name: 'lan', weight: 1 }], oneWayMs: [[0]] };

/** Presets: `lan` (one switch), `constant` (textbook), `wan` (three continents, home uplinks with a long tail). */
export const LATENCY_PRESETS: Readonly<Record<string, LatencySpec>> = Object.freeze({
  lan: { name: 'lan', geography: ONE_REGION, jitter: { kind: 'uniform', min: 0.1, max: 0.5 } },
  constant: { name: 'constant', geography: ONE_REGION, jitter: { kind: 'constant', ms: 10 } },
  wan: {
    name: 'wan',
    geography: {
      regions: [
        { name: 'europe', weight: 0.5 },
        { name: 'north-america', weight: 0.3 },
        { name: 'asia', weight: 0.2 },
      ],
      // Rough one-way figures between home uplinks: in-region 10-20 ms, transatlantic ~45 ms,
      // Europe-Asia ~110 ms, transpacific ~80 ms.
      oneWayMs: [
        [10, 45, 110],
        [45, 15, 80],
        [110, 80, 20],
      ],
    },
    jitter: { kind: 'lognormal', median: 3, sigma: 1.2, max: 1500 },
  },
});

export class LatencyModel {
  private readonly region: Uint8Array;
  readonly spec: LatencySpec;

  constructor(spec: LatencySpec, capacity: number, rng: Rng) {
    this.spec = spec;
    checkSpec(spec);
    this.region = new Uint8Array(capacity);
    const total = spec.geography.regions.reduce((s, r) => s + r.weight, 0);
    for (let i = 0; i < capacity; i++) {
      let x = rng() * total;
      let r = 0;
      while (r < spec.geography.regions.length - 1 && x >= spec.geography.regions[r].weight) {
        x -= spec.geography.regions[r].weight;
        r++;
      }
      this.region[i] = r;
    }
  }

  regionOf(member: number): string {
    return this.spec.geography.regions[this.region[member]].name;
  }

  /** Base one-way latency between two members (no jitter). */
  base(a: number, b: number): number {
    return this.spec.geography.oneWayMs[this.region[a]][this.region[b]];
  }

  /** A sampled one-way latency, in ms. */
  oneWay(a: number, b: number, rng: Rng): number {
    return this.base(a, b) + sampleJitter(this.spec.jitter, rng);
  }

  /** A sampled round trip (two independent one-way samples). */
  rtt(a: number, b: number, rng: Rng): number {
    return this.oneWay(a, b, rng) + this.oneWay(b, a, rng);
  }
}

export function sampleJitter(j: Jitter, rng: Rng): number {
  switch (j.kind) {
    case 'constant':
      return j.ms;
    case 'uniform':
      return j.min + (j.max - j.min) * rng();
    case 'lognormal':
      return Math.min(j.max, j.median * Math.exp(j.sigma * normal(rng)));
  }
}

function checkSpec(spec: LatencySpec): void {
  const n = spec.geography.regions.length;
  if (n === 0 || n > 255) throw new RangeError(`latency ${spec.name}: 1 to 255 regions, got ${n}`);
  if (spec.geography.oneWayMs.length !== n || spec.geography.oneWayMs.some((row) => row.length !== n)) {
    throw new RangeError(`latency ${spec.name}: oneWayMs must be a ${n}×${n} matrix`);
  }
}
