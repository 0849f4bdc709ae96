/**
 * Order statistics of samples: quantiles by the nearest-rank method (a reported p99 is a value that
 * was actually measured), summaries and ratios.
 *
 * @module
 */

/** p50/p95/p99/max of one metric. */
export interface Summary {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  min: number;
  mean: number;
}

/** Finite numbers of `xs`, ascending. */
export function sortedFinite(xs: readonly (number | null | undefined)[]): number[] {
  return xs.filter((x): x is number => typeof x === "number" && Number.isFinite(x)).sort((a, b) =>
    a - b
  );
}

/**
 * The `q`-quantile (0 < q ≤ 1) of ascending `sorted` by nearest rank: the smallest sample with at
 * least a fraction `q` of the samples at or below it. `undefined` for no samples.
 */
export function quantile(sorted: readonly number[], q: number): number | undefined {
  if (!(q > 0 && q <= 1)) throw new RangeError(`quantile: q must be in (0, 1], got ${q}`);
  if (sorted.length === 0) return undefined;
  const rank = Math.ceil(q * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** Summary of the finite samples of `xs`; `undefined` when there are none. */
export function summarize(xs: readonly (number | null | undefined)[]): Summary | undefined {
  const s = sortedFinite(xs);
  if (s.length === 0) return undefined;
  return {
    n: s.length,
    p50: quantile(s, 0.5)!,
    p95: quantile(s, 0.95)!,
    p99: quantile(s, 0.99)!,
    max: s[s.length - 1],
    min: s[0],
    mean: s.reduce((a, b) => a + b, 0) / s.length,
  };
}

/** `a / b` when both are positive finite numbers, else `undefined`. */
export function ratio(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined || b === undefined) return undefined;
  if (!(Number.isFinite(a) && Number.isFinite(b)) || b <= 0 || a < 0) return undefined;
  return a / b;
}

/** Empirical CDF points `(value, fraction ≤ value)` of the finite samples, for plotting. */
export function ecdf(xs: readonly (number | null | undefined)[]): { x: number; p: number }[] {
  const s = sortedFinite(xs);
  return s.map((x, i) => ({ x, p: (i + 1) / s.length }));
}

/** A deterministic PRNG (mulberry32) for reproducible fault phases and samples. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
