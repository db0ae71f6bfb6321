import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { runLoad, unarySender } from "../load.js";
import { UNARY_SCENARIO } from "../plan.js";
import { goalAtMost, type Section } from "../report.js";
import { paired, percentile, spread } from "../stats.js";
import { TARGET_LABELS, measure, restSpec, type Target } from "../targets.js";
import { compiled, nodeCommand, REPO_ROOT } from "../servers.js";
import { ErrorLog, TARGET_COLUMNS, comparisonCells, rate, record, targetCells, type BenchContext, type PerTarget } from "./common.js";

/**
 * Non-streaming figures: latency at concurrency 1 (what one caller feels)
 * and CPU per request under moderate load (what a request costs the
 * process). Rounds visit every target in turn, so slow drifts of the
 * machine hit all of them alike.
 */

/**
 * redisRoundTripMs times bare PINGs (p50, ms) from a process on the
 * servers' CPU to the Redis of the gateway+Redis target (bench/redis-ping.ts):
 * what one state round trip costs on this machine before any work is
 * done (what a request pays that cannot be admitted from a quota lease),
 * NaN if the probe fails.
 */
async function redisRoundTripMs(ctx: BenchContext, url: string): Promise<number> {
  const [cmd, args] = nodeCommand({ script: compiled("bench/redis-ping.ts"), args: [url, "2000"], cpus: ctx.pinning.enabled ? ctx.pinning.servers : undefined });
  try {
    const { stdout } = await promisify(execFile)(cmd, args, { cwd: REPO_ROOT, timeout: 60_000 });
    return (JSON.parse(stdout) as { p50Us: number }).p50Us / 1000;
  } catch {
    return Number.NaN;
  }
}

async function preRound(ctx: BenchContext, t: Target, concurrency: number): Promise<void> {
  if (ctx.plan.preRoundMs <= 0) return;
  await runLoad({ concurrency, durationMs: ctx.plan.preRoundMs, send: unarySender(t.pool, restSpec(t, UNARY_SCENARIO, false)) });
}

/** latencySection measures p50/p99 latency and CPU per request at concurrency 1. */
export async function latencySection(ctx: BenchContext): Promise<Section> {
  const { rounds, durationMs } = ctx.plan.latency;
  const p50: PerTarget = {};
  const p99: PerTarget = {};
  const cpu: PerTarget = {};
  const pingMs: number[] = [];
  const errors = new ErrorLog();
  const redisUrl = ctx.unavailable.gatewayRedis === undefined ? ctx.redisUrl : undefined;
  for (let r = 1; r <= rounds; r++) {
    if (redisUrl !== undefined) {
      ctx.progress.step(`latency c=1 · round ${r}/${rounds} · Redis round trip (PING)`);
      pingMs.push(await redisRoundTripMs(ctx, redisUrl));
    }
    for (const t of ctx.targets) {
      ctx.progress.step(`latency c=1 · round ${r}/${rounds} · ${TARGET_LABELS[t.id]}`);
      await preRound(ctx, t, 1);
      const m = await measure(t.server.pid, {
        concurrency: 1,
        durationMs,
        send: unarySender(t.pool, restSpec(t, UNARY_SCENARIO, false)),
        onProgress: (n, ms) => ctx.progress.detail(rate(n, ms)),
      });
      errors.add(TARGET_LABELS[t.id], m.result.errors, m.result.requests, m.result.firstError);
      const d = m.result.latency.sorted();
      const ok = m.result.latency.count;
      record(p50, t.id, ok === 0 ? Number.NaN : percentile(d, 50) / 1000);
      record(p99, t.id, ok === 0 ? Number.NaN : percentile(d, 99) / 1000);
      record(cpu, t.id, ok === 0 ? Number.NaN : m.cpuUs / m.result.requests);
    }
  }
  const redisVsMemory = spread(paired(p50.gatewayRedis ?? [], p50.gateway ?? [], "diff"));
  const gwP50 = comparisonCells(ctx, p50, "diff", "ms");
  const gwP99 = comparisonCells(ctx, p99, "diff", "ms");
  const cpuCmp = comparisonCells(ctx, cpu, "ratio", "×");
  return {
    id: "latency",
    title: "Latency at concurrency 1 (non-streaming, ~1.4 KB answer)",
    columns: TARGET_COLUMNS,
    rows: [
      { figure: "p50 latency", cells: { ...targetCells(ctx, p50, "ms"), ...gwP50 }, goal: goalAtMost("added p50 ≤ 0.3 ms over the floor", gwP50.gatewayVsFloor?.value, 0.3, "ms", true) },
      { figure: "p99 latency", cells: { ...targetCells(ctx, p99, "ms"), ...gwP99 }, goal: goalAtMost("added p99 ≤ 1 ms over the floor", gwP99.gatewayVsFloor?.value, 1, "ms", true) },
      { figure: "CPU per request at c=1", cells: { ...targetCells(ctx, cpu, "µs"), ...cpuCmp } },
      {
        figure: "Redis state: p50 over memory state",
        cells: {
          gatewayRedis: ctx.unavailable.gatewayRedis !== undefined ? { text: "not measured" } : { value: redisVsMemory, unit: "ms", signed: true },
        },
        goal:
          ctx.unavailable.gatewayRedis !== undefined
            ? { target: "Redis adds ≤ 0.3 ms p50 over memory", measured: `not measured: ${ctx.unavailable.gatewayRedis}`, met: undefined }
            : goalAtMost("Redis adds ≤ 0.3 ms p50 over memory", redisVsMemory, 0.3, "ms", true),
      },
      ...(pingMs.length === 0
        ? []
        : [{ figure: "Redis round trip (bare PING from the servers' CPU), p50", cells: { gatewayRedis: { value: spread(pingMs), unit: "ms" as const } } }]),
    ],
    notes: [
      `${rounds} rounds × ${durationMs / 1000} s per target, one request at a time; latency is from sending to the last byte of the answer, measured by the load generator.`,
      "CPU per request is the measured process's utime+stime over the run (10 ms kernel ticks) divided by requests; the direct column is the upstream's own cost.",
      ...(pingMs.length === 0
        ? []
        : [
            "The Redis round trip is 2,000 sequential PINGs per round over one ioredis connection, from a process on the servers' CPU to the gateway's Redis: what a request on Redis state pays on top when it has to ask Redis before it goes upstream (near a limit, or with lease_ms: 0); far from its limits a request is admitted from the replica's quota leases without one, and its settlement goes after the answer.",
          ]),
      ...errors.notes,
    ],
    raw: { p50, p99, cpuPerRequestUs: cpu, redisPingP50Ms: pingMs },
  };
}

/** cpuSection measures CPU per request under steady load (plan.cpu.concurrency workers). */
export async function cpuSection(ctx: BenchContext): Promise<Section> {
  const { rounds, durationMs, concurrency } = ctx.plan.cpu;
  const cpu: PerTarget = {};
  const tput: PerTarget = {};
  const errors = new ErrorLog();
  for (let r = 1; r <= rounds; r++) {
    for (const t of ctx.targets) {
      ctx.progress.step(`CPU per request c=${concurrency} · round ${r}/${rounds} · ${TARGET_LABELS[t.id]}`);
      await preRound(ctx, t, concurrency);
      const m = await measure(t.server.pid, {
        concurrency,
        durationMs,
        send: unarySender(t.pool, restSpec(t, UNARY_SCENARIO, false)),
        onProgress: (n, ms) => ctx.progress.detail(rate(n, ms)),
      });
      errors.add(TARGET_LABELS[t.id], m.result.errors, m.result.requests, m.result.firstError);
      record(cpu, t.id, m.result.requests === 0 ? Number.NaN : m.cpuUs / m.result.requests);
      record(tput, t.id, m.result.throughput);
    }
  }
  const cpuCmp = comparisonCells(ctx, cpu, "ratio", "×");
  return {
    id: "cpu",
    title: `CPU per request under load (non-streaming, concurrency ${concurrency})`,
    columns: TARGET_COLUMNS,
    rows: [
      { figure: "CPU per request", cells: { ...targetCells(ctx, cpu, "µs"), ...cpuCmp }, goal: goalAtMost("CPU per request ≤ 1.5× the floor's", cpuCmp.gatewayVsFloor?.value, 1.5, "×") },
      { figure: "throughput during the run", cells: { ...targetCells(ctx, tput, "req/s"), ...comparisonCells(ctx, tput, "ratio", "×") } },
    ],
    notes: [
      `${rounds} rounds × ${durationMs / 1000} s per target at ${concurrency} concurrent requests. CPU is the measured process only (utime+stime from /proc/<pid>/stat), not the upstream's.`,
      ...errors.notes,
    ],
    raw: { cpuPerRequestUs: cpu, throughput: tput },
  };
}
