/** Summary of repeated timings, in milliseconds. */
export interface Timing {
  /** Median: the headline figure, robust to the odd slow step on a shared machine. */
  median: number;
  mean: number;
  /** 90th percentile (nearest rank). */
  p90: number;
  min: number;
  max: number;
  count: number;
}

/** Nearest-rank percentile of a non-empty sample, p in [0, 100]. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new RangeError('percentile of an empty sample');
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1]!;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError('median of an empty sample');
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function summarise(values: readonly number[]): Timing {
  if (values.length === 0) throw new RangeError('no timings to summarise');
  return {
    median: median(values),
    mean: values.reduce((s, v) => s + v, 0) / values.length,
    p90: percentile(values, 90),
    min: Math.min(...values),
    max: Math.max(...values),
    count: values.length,
  };
}
