import { runLoad, unarySender } from "../load.js";
import { UNARY_SCENARIO } from "../plan.js";
import type { Section } from "../report.js";
import { percentile } from "../stats.js";
import { TARGET_LABELS, measure, restSpec, type Target } from "../targets.js";
import { ErrorLog, TARGET_COLUMNS, comparisonCells, rate, record, targetCells, type BenchContext, type PerTarget } from "./common.js";

/**
 * Maximum throughput at bounded latency: concurrency is ramped (1, 2, 4, …)
 * and the best throughput of any level whose p99 stays within
 * maxAddedP99Ms of the upstream's own unloaded p99, with no errors, is the
 * figure. The ramp stops at the first level that breaks the bound, or
 * after two levels in a row that no longer raise throughput.
 */

/** RampLevel is one concurrency level of a ramp. */
export interface RampLevel {
  concurrency: number;
  throughput: number;
  p99Ms: number;
  errors: number;
  cpuUsPerRequest: number;
  accepted: boolean;
}

/** RampResult is one ramp of one target. */
export interface RampResult {
  /** best is the highest accepted throughput (0 when no level was accepted). */
  best: number;
  /** bestConcurrency is the level that gave it. */
  bestConcurrency: number;
  levels: RampLevel[];
  /** stop says why the ramp ended. */
  stop: string;
}

/** RampOptions configure ramp. */
export interface RampOptions {
  levels: readonly number[];
  levelMs: number;
  /** p99LimitMs is the absolute p99 bound (baseline + allowed addition). */
  p99LimitMs: number;
  /** label is shown on the progress line. */
  label: string;
}

/** ramp raises concurrency on one target until the p99 bound breaks or throughput stops growing. */
export async function ramp(ctx: BenchContext, t: Target, pid: number, options: RampOptions, errors?: ErrorLog): Promise<RampResult> {
  const out: RampResult = { best: 0, bestConcurrency: 0, levels: [], stop: "ran every level" };
  let flat = 0;
  const send = unarySender(t.pool, restSpec(t, UNARY_SCENARIO, false));
  for (const c of options.levels) {
    ctx.progress.step(`${options.label} · c=${c}`);
    // Open the level's connections before measuring, so connect cost is not counted.
    await runLoad({ concurrency: c, requests: c * 2, send });
    const m = await measure(pid, { concurrency: c, durationMs: options.levelMs, send, onProgress: (n, ms) => ctx.progress.detail(rate(n, ms)) });
    errors?.add(`${TARGET_LABELS[t.id]} at c=${c}`, m.result.errors, m.result.requests, m.result.firstError);
    const p99Ms = percentile(m.result.latency.sorted(), 99) / 1000;
    const accepted = m.result.errors === 0 && p99Ms <= options.p99LimitMs;
    out.levels.push({
      concurrency: c,
      throughput: m.result.throughput,
      p99Ms,
      errors: m.result.errors,
      cpuUsPerRequest: m.result.requests === 0 ? Number.NaN : m.cpuUs / m.result.requests,
      accepted,
    });
    if (!accepted) {
      out.stop =
        m.result.errors > 0
          ? `c=${c}: ${m.result.errors} errors`
          : `c=${c}: p99 ${p99Ms.toFixed(2)} ms > ${options.p99LimitMs.toFixed(2)} ms`;
      break;
    }
    // One flat level can be noise on a shared machine: stop only after two in a row add < 3%.
    flat = m.result.throughput > out.best * 1.03 ? 0 : flat + 1;
    if (m.result.throughput > out.best) {
      out.best = m.result.throughput;
      out.bestConcurrency = c;
    }
    if (flat >= 2) {
      out.stop = `c=${c}: saturated (two levels without a 3% gain)`;
      break;
    }
  }
  return out;
}

/** baselineP99Ms measures the upstream's own p99 at concurrency 1 (the reference "added" is measured from). */
export async function baselineP99Ms(ctx: BenchContext, direct: Target, durationMs: number): Promise<number> {
  ctx.progress.step("throughput · baseline p99 of the upstream at c=1");
  const r = await runLoad({ concurrency: 1, durationMs, send: unarySender(direct.pool, restSpec(direct, UNARY_SCENARIO, false)) });
  return percentile(r.latency.sorted(), 99) / 1000;
}

/** throughputSection ramps every target, interleaved by round. */
export async function throughputSection(ctx: BenchContext): Promise<Section> {
  const { rounds, levelMs, levels, maxAddedP99Ms } = ctx.plan.throughput;
  const best: PerTarget = {};
  const bestC: PerTarget = {};
  const cpuAtBest: PerTarget = {};
  const ramps: Record<string, RampResult[]> = {};
  const stops: string[] = [];
  const baselines: number[] = [];
  const errors = new ErrorLog();
  const direct = ctx.targets.find((t) => t.id === "direct")!;
  for (let r = 1; r <= rounds; r++) {
    const baseline = await baselineP99Ms(ctx, direct, levelMs);
    baselines.push(baseline);
    for (const t of ctx.targets) {
      const res = await ramp(ctx, t, t.server.pid, { levels, levelMs, p99LimitMs: baseline + maxAddedP99Ms, label: `throughput · round ${r}/${rounds} · ${TARGET_LABELS[t.id]}` }, errors);
      (ramps[t.id] ??= []).push(res);
      stops.push(`${TARGET_LABELS[t.id]} r${r}: ${res.stop}`);
      record(best, t.id, res.best);
      record(bestC, t.id, res.bestConcurrency);
      record(cpuAtBest, t.id, res.levels.find((l) => l.concurrency === res.bestConcurrency)?.cpuUsPerRequest ?? Number.NaN);
    }
  }
  return {
    id: "throughput",
    title: `Max throughput with added p99 ≤ ${maxAddedP99Ms} ms and no errors (non-streaming)`,
    columns: TARGET_COLUMNS,
    rows: [
      { figure: "max throughput", cells: { ...targetCells(ctx, best, "req/s"), ...comparisonCells(ctx, best, "ratio", "×") } },
      { figure: "at concurrency", cells: targetCells(ctx, bestC, "count") },
      { figure: "CPU per request at that level", cells: { ...targetCells(ctx, cpuAtBest, "µs"), ...comparisonCells(ctx, cpuAtBest, "ratio", "×") } },
    ],
    notes: [
      `Concurrency ramps over ${levels.join(", ")} (${levelMs / 1000} s per level); a level counts when it has no errors and its p99 ≤ the upstream's unloaded p99 at c=1 (${baselines.map((b) => b.toFixed(3)).join(", ")} ms by round) + ${maxAddedP99Ms} ms. The ramp stops at the first level that breaks the bound, or after two levels in a row that gain < 3%.`,
      "The load generator has one core: the direct column is the most this client can drive, so a target close to it is client-bound, not server-bound.",
      `Where each ramp stopped: ${stops.join("; ")}.`,
      ...errors.notes,
    ],
    raw: { ramps, baselineP99Ms: baselines },
  };
}
