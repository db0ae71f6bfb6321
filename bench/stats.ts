/**
 * Statistics for the benchmark: percentiles of one run's samples, and the
 * median and spread of a figure over interleaved rounds. Percentiles
 * interpolate linearly between closest ranks (the same definition as
 * numpy's default), so small samples give stable, comparable numbers.
 */

/** Samples is a growable array of numbers (latencies in µs), cheap to append on the hot loop. */
export class Samples {
  private data = new Float64Array(1024);
  private n = 0;

  /** push appends one value. */
  push(value: number): void {
    if (this.n === this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.n++] = value;
  }

  /** count is the number of values pushed. */
  get count(): number {
    return this.n;
  }

  /** sorted returns a sorted copy of the values. */
  sorted(): Float64Array {
    return this.data.slice(0, this.n).sort();
  }
}

/** percentile returns the p-th percentile (0–100) of ascending-sorted values, or NaN when empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  if (n === 1) return sorted[0]!;
  const rank = (Math.min(100, Math.max(0, p)) / 100) * (n - 1);
  const lo = Math.floor(rank);
  const hi = Math.min(n - 1, lo + 1);
  const frac = rank - lo;
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * frac;
}

/** Distribution summarizes one run's samples. */
export interface Distribution {
  count: number;
  mean: number;
  min: number;
  p25: number;
  p50: number;
  p75: number;
  p90: number;
  p99: number;
  max: number;
}

/** summarize computes a Distribution of samples (any order). */
export function summarize(values: Samples | ArrayLike<number>): Distribution {
  const sorted = values instanceof Samples ? values.sorted() : Float64Array.from(values as ArrayLike<number>).sort();
  let sum = 0;
  for (let i = 0; i < sorted.length; i++) sum += sorted[i]!;
  return {
    count: sorted.length,
    mean: sorted.length === 0 ? Number.NaN : sum / sorted.length,
    min: sorted.length === 0 ? Number.NaN : sorted[0]!,
    p25: percentile(sorted, 25),
    p50: percentile(sorted, 50),
    p75: percentile(sorted, 75),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted.length === 0 ? Number.NaN : sorted[sorted.length - 1]!,
  };
}

/**
 * Spread is a figure over rounds: its median and range. Figures are quoted
 * as median (min–max over rounds) so a noisy neighbour shows up as a wide
 * range instead of a wrong number.
 */
export interface Spread {
  /** rounds is how many rounds produced a value. */
  rounds: number;
  median: number;
  min: number;
  max: number;
  p25: number;
  p75: number;
  /** values are the per-round values, in round order. */
  values: number[];
}

/** spread summarizes per-round values; NaN values (a round that did not measure) are dropped. */
export function spread(values: readonly number[]): Spread {
  const kept = values.filter((v) => !Number.isNaN(v));
  const sorted = Float64Array.from(kept).sort();
  return {
    rounds: kept.length,
    median: percentile(sorted, 50),
    min: sorted.length === 0 ? Number.NaN : sorted[0]!,
    max: sorted.length === 0 ? Number.NaN : sorted[sorted.length - 1]!,
    p25: percentile(sorted, 25),
    p75: percentile(sorted, 75),
    values: kept,
  };
}

/**
 * paired returns a[i] - b[i] (or a[i] / b[i] with ratio) for rounds where
 * both measured; a ratio over a zero (a throughput of 0 at the bound) has
 * no value, so that round is left out rather than counted as Infinity.
 */
export function paired(a: readonly number[], b: readonly number[], op: "diff" | "ratio" = "diff"): number[] {
  const out: number[] = [];
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (Number.isNaN(x) || Number.isNaN(y) || (op === "ratio" && y === 0)) continue;
    out.push(op === "diff" ? x - y : x / y);
  }
  return out;
}
