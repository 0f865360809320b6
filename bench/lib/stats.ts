/** Small statistics for benchmark figures: every figure is reported as min / median / max. */

export interface Spread {
  min: number;
  median: number;
  max: number;
  /** How many samples the spread was taken over. */
  count: number;
}

/** min, median and max of the finite values; null when there is none. */
export function spread(values: Array<number | null | undefined>): Spread | null {
  const v = values.filter((x): x is number => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = Math.floor(v.length / 2);
  const median = v.length % 2 === 1 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
  return { min: v[0], median, max: v[v.length - 1], count: v.length };
}

/** Ratio of two medians, or null when either is missing or the reference is zero. */
export function ratio(ours: Spread | null, ref: Spread | null): number | null {
  if (!ours || !ref || ref.median === 0) return null;
  return ours.median / ref.median;
}
