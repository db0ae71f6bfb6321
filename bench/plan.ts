/**
 * How long and how hard each section runs, for a full run (aimed at ≤ 10
 * minutes on two cores) and for --quick (a smoke run under a minute; its
 * figures are too short to quote). Upstream scenarios are model names
 * understood by upstream.ts.
 */

/** Plan is the whole run's shape. */
export interface Plan {
  quick: boolean;
  /** warmupMs is how long each target is warmed (unary and streaming) before anything is measured. */
  warmupMs: number;
  /** preRoundMs is a short unmeasured run before each measured run of a target (re-warms its connections). */
  preRoundMs: number;
  latency: { rounds: number; durationMs: number };
  throughput: { rounds: number; levelMs: number; levels: number[]; maxAddedP99Ms: number };
  streaming: { rounds: number; durationMs: number; concurrency: number; scenario: string; chunks: number; intervalMs: number };
  chunkCpu: { rounds: number; durationMs: number; concurrency: number; short: string; shortChunks: number; long: string; longChunks: number };
  cpu: { rounds: number; durationMs: number; concurrency: number };
  /**
   * lateMs, when set, adds a second reading that long after the load: long
   * enough for the gateway's idle collector (server.idle_gc_ms, 30 s by
   * default, whose second collection follows 5.5 s later) to have run.
   */
  memory: { streams: number; scenario: string; settleMs: number; lateMs?: number };
  protocols: { rounds: number; durationMs: number; concurrency: number };
  workers: { rounds: number; levelMs: number; levels: number[] };
  profile: { durationMs: number; concurrency: number };
  /**
   * instructions counts CPU instructions under callgrind: requests (or
   * streams of each length) sent to warm each target up, then measured.
   */
  instructions: { warmRequests: number; requests: number; warmStreams: number; streams: number };
}

/** UNARY_SCENARIO is the non-streaming upstream scenario (no added latency). */
export const UNARY_SCENARIO = "bench";

/** makePlan returns the full or quick plan. */
export function makePlan(quick: boolean): Plan {
  if (quick) {
    return {
      quick,
      warmupMs: 400,
      preRoundMs: 50,
      latency: { rounds: 2, durationMs: 400 },
      throughput: { rounds: 1, levelMs: 300, levels: [1, 8, 32, 128], maxAddedP99Ms: 5 },
      streaming: { rounds: 2, durationMs: 500, concurrency: 4, scenario: "bench-c10-i2", chunks: 10, intervalMs: 2 },
      chunkCpu: { rounds: 1, durationMs: 500, concurrency: 16, short: "bench-c10-i2", shortChunks: 10, long: "bench-c60-i2", longChunks: 60 },
      cpu: { rounds: 2, durationMs: 400, concurrency: 16 },
      memory: { streams: 200, scenario: "bench-c10-i200", settleMs: 1000 },
      protocols: { rounds: 1, durationMs: 400, concurrency: 16 },
      workers: { rounds: 1, levelMs: 300, levels: [2, 8, 32, 128] },
      profile: { durationMs: 1500, concurrency: 16 },
      instructions: { warmRequests: 300, requests: 100, warmStreams: 20, streams: 20 },
    };
  }
  return {
    quick,
    warmupMs: 3000,
    preRoundMs: 300,
    latency: { rounds: 5, durationMs: 3000 },
    throughput: { rounds: 2, levelMs: 1500, levels: [1, 2, 4, 8, 16, 32, 64, 128, 256], maxAddedP99Ms: 5 },
    streaming: { rounds: 5, durationMs: 3000, concurrency: 4, scenario: "bench-c10-i2", chunks: 10, intervalMs: 2 },
    chunkCpu: { rounds: 3, durationMs: 2500, concurrency: 16, short: "bench-c10-i2", shortChunks: 10, long: "bench-c110-i2", longChunks: 110 },
    cpu: { rounds: 5, durationMs: 2500, concurrency: 16 },
    memory: { streams: 1000, scenario: "bench-c50-i200", settleMs: 8000, lateMs: 38_000 },
    protocols: { rounds: 3, durationMs: 2500, concurrency: 16 },
    workers: { rounds: 2, levelMs: 1500, levels: [2, 4, 8, 16, 32, 64, 128, 256] },
    profile: { durationMs: 8000, concurrency: 16 },
    instructions: { warmRequests: 3000, requests: 1000, warmStreams: 200, streams: 200 },
  };
}

/** scenariosOf lists every upstream scenario a plan uses (the gateway needs a model for each). */
export function scenariosOf(plan: Plan): string[] {
  return [...new Set([UNARY_SCENARIO, plan.streaming.scenario, plan.chunkCpu.short, plan.chunkCpu.long, plan.memory.scenario])];
}
