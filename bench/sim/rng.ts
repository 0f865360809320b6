/**
 * Seeded pseudo-random numbers for the simulator. Everything random in a run
 * (latencies, losses, which member crashes, the members' own rng) comes from
 * streams derived from one seed, so a seed replays the same run exactly.
 * Math.random is never used.
 */

/** A source of uniform numbers in [0, 1), like Math.random. */
export type Rng = () => number;

/** mulberry32: 32-bit state, fast, good enough for simulation (not for keys). */
export function mulberry32(seed: number): Rng {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Mixes a seed and a stream label into an independent 32-bit seed (splitmix-style finaliser). */
export function deriveSeed(seed: number, label: string | number): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  const s = String(label);
  for (let i = 0; i < s.length; i++) {
    h = Math.imul(h ^ s.charCodeAt(i), 0x85ebca6b) >>> 0;
    h = (h ^ (h >>> 13)) >>> 0;
  }
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** An independent stream for `label` under `seed`. */
export function stream(seed: number, label: string | number): Rng {
  return mulberry32(deriveSeed(seed, label));
}

/** Integer in [0, n). */
export function randInt(rng: Rng, n: number): number {
  return Math.floor(rng() * n);
}

/** Standard normal by Box-Muller (one of the pair; simple and deterministic). */
export function normal(rng: Rng): number {
  let u = rng();
  while (u <= Number.EPSILON) u = rng();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

/** `count` distinct integers from [0, n), in random order. */
export function sample(rng: Rng, n: number, count: number): number[] {
  const k = Math.min(n, count);
  const picked = new Set<number>();
  const out: number[] = [];
  while (out.length < k) {
    const i = randInt(rng, n);
    if (!picked.has(i)) {
      picked.add(i);
      out.push(i);
    }
  }
  return out;
}
