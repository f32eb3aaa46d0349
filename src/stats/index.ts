// Descriptive statistics over repeated measurements (downtime, total time... across the
// repetitions of a sweep point). Pure functions on plain numbers; values that are missing or not
// finite are left out, so a run that did not report a figure does not count as zero.

/** The figures a sweep table shows for one metric. Undefined where the sample is too small. */
export interface Summary {
  readonly count: number;
  readonly mean?: number;
  readonly median?: number;
  /** Sample standard deviation (n - 1); needs two values. */
  readonly stdev?: number;
  readonly min?: number;
  readonly max?: number;
  /** stdev / mean; undefined when the mean is 0. */
  readonly cv?: number;
}

export const SUMMARY_FIELDS = ['count', 'mean', 'median', 'stdev', 'min', 'max'] as const;

/** The finite numbers among `values`, in their order. */
export function finite(values: readonly (number | null | undefined)[]): number[] {
  return values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
}

export function count(values: readonly (number | null | undefined)[]): number {
  return finite(values).length;
}

export function mean(values: readonly (number | null | undefined)[]): number | undefined {
  const xs = finite(values);
  if (xs.length === 0) return undefined;
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Sample standard deviation (Bessel's correction); undefined with fewer than two values. */
export function stdev(values: readonly (number | null | undefined)[]): number | undefined {
  const xs = finite(values);
  if (xs.length < 2) return undefined;
  const m = mean(xs)!;
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

export function min(values: readonly (number | null | undefined)[]): number | undefined {
  const xs = finite(values);
  return xs.length === 0 ? undefined : Math.min(...xs);
}

export function max(values: readonly (number | null | undefined)[]): number | undefined {
  const xs = finite(values);
  return xs.length === 0 ? undefined : Math.max(...xs);
}

/**
 * The p-th percentile (0-100) by linear interpolation between closest ranks (the method numpy,
 * R type 7 and spreadsheets use), so the 50th percentile is the median.
 */
export function percentile(values: readonly (number | null | undefined)[], p: number): number | undefined {
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be 0-100, got ${p}`);
  const xs = finite(values).sort((a, b) => a - b);
  if (xs.length === 0) return undefined;
  const rank = (p / 100) * (xs.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return xs[lo]! + (xs[hi]! - xs[lo]!) * (rank - lo);
}

export function median(values: readonly (number | null | undefined)[]): number | undefined {
  return percentile(values, 50);
}

/** Coefficient of variation: stdev / mean. */
export function coefficientOfVariation(values: readonly (number | null | undefined)[]): number | undefined {
  const s = stdev(values);
  const m = mean(values);
  return s === undefined || m === undefined || m === 0 ? undefined : s / Math.abs(m);
}

export function summarize(values: readonly (number | null | undefined)[]): Summary {
  const xs = finite(values);
  return {
    count: xs.length,
    mean: mean(xs),
    median: median(xs),
    stdev: stdev(xs),
    min: min(xs),
    max: max(xs),
    cv: coefficientOfVariation(xs),
  };
}
