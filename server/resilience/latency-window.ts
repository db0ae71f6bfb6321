/**
 * Local latency samples: a small ring of each deployment's most recent
 * latencies (time to first token for streams, whole latency otherwise),
 * for the two things that need a percentile rather than the shared store's
 * decayed mean: the p95 hedge threshold and the breaker's p95 latency
 * rule. They are per replica on purpose: a percentile over the last few
 * dozen requests is cheap to keep in memory and would cost a round trip per
 * request to share; what must agree across replicas (the breaker's state)
 * is in the shared store.
 */

/** SAMPLE_SIZE is how many recent latencies a window keeps. */
export const SAMPLE_SIZE = 32;

/** MIN_SAMPLES_FOR_P95 is how many samples a p95 needs before it is trusted. */
export const MIN_SAMPLES_FOR_P95 = 5;

/** LatencyWindow is a ring of recent latencies. */
export class LatencyWindow {
  private readonly values = new Float64Array(SAMPLE_SIZE);
  private count = 0;
  private next = 0;
  /** slowStreak counts consecutive observations whose p95 was above the breaker's threshold. */
  slowStreak = 0;

  /** add records one latency in ms. */
  add(ms: number): void {
    this.values[this.next] = ms;
    this.next = (this.next + 1) % SAMPLE_SIZE;
    if (this.count < SAMPLE_SIZE) this.count++;
  }

  /** size is how many samples the window holds. */
  get size(): number {
    return this.count;
  }

  /** p95 is the 95th percentile (nearest rank) of the samples, or undefined with fewer than minSamples. */
  p95(minSamples = MIN_SAMPLES_FOR_P95): number | undefined {
    if (this.count < minSamples || this.count === 0) return undefined;
    const sorted = this.values.slice(0, this.count).sort();
    return sorted[Math.min(this.count - 1, Math.ceil(0.95 * this.count) - 1)];
  }
}

/** LatencyKind says which latency a window holds. */
export type LatencyKind = "ttft" | "total";

/** LocalLatency holds the windows of every deployment seen by this replica. */
export class LocalLatency {
  private readonly windows = new Map<string, LatencyWindow>();

  /** window returns (creating) the window of a deployment and kind. */
  window(deploymentId: string, kind: LatencyKind): LatencyWindow {
    const key = `${kind}:${deploymentId}`;
    let w = this.windows.get(key);
    if (w === undefined) {
      w = new LatencyWindow();
      this.windows.set(key, w);
    }
    return w;
  }

  /** p95 reads a deployment's p95 of a kind, if enough was observed. */
  p95(deploymentId: string, kind: LatencyKind): number | undefined {
    return this.windows.get(`${kind}:${deploymentId}`)?.p95();
  }
}
