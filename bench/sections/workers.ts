import { createPool, runLoad, unarySender } from "../load.js";
import { UNARY_SCENARIO } from "../plan.js";
import { pinProcess, processTree } from "../proc.js";
import type { Cell, Row, Section } from "../report.js";
import { firstErrorLine, ServerStartError, type ServerProcess } from "../servers.js";
import { paired, spread } from "../stats.js";
import { restSpec, type Target } from "../targets.js";
import { ErrorLog, type BenchContext } from "./common.js";
import { baselineP99Ms, ramp, type RampResult } from "./throughput.js";

/**
 * Multi-core scaling: the gateway with `--workers 1` and `--workers 2`,
 * each ramped to its max throughput at bounded p99. Support is detected by
 * trying: a gateway that refuses the flag (or exits) is reported as not
 * implemented. For this section nothing is pinned (two workers on one CPU
 * cannot scale), so the load generator competes with the workers for the
 * two CPUs: the ratio is a lower bound on the real scaling.
 */

const title = "Multi-core: gateway --workers 1 → 2 (max throughput at bounded p99, unpinned)";

function notMeasured(reason: string): Section {
  return { id: "workers", title, columns: [{ key: "status", label: "status" }], rows: [{ figure: "1 → 2 worker scaling", cells: { status: { text: `not measured: ${reason}` } } }], notes: [] };
}

/** workersSection detects --workers and measures 1 → 2 worker scaling when it exists. */
export async function workersSection(ctx: BenchContext): Promise<Section> {
  ctx.progress.step("workers · trying --workers 2");
  let two: ServerProcess;
  try {
    two = await ctx.startGateway({ name: "gateway --workers 2", extraArgs: ["--workers", "2"], cpus: ctx.pinning.all });
  } catch (err) {
    const why = err instanceof ServerStartError ? firstErrorLine(err.output) : (err as Error).message;
    return notMeasured(`--workers not implemented (the gateway refused it: ${why})`);
  }
  let one: ServerProcess | undefined;
  const processes = processTree(two.pid).length;
  const pools = [createPool(two.origin)];
  const notes: string[] = [];
  const errors = new ErrorLog();
  pinProcess(process.pid, ctx.pinning.all);
  try {
    one = await ctx.startGateway({ name: "gateway --workers 1", extraArgs: ["--workers", "1"], cpus: ctx.pinning.all });
    pools.push(createPool(one.origin));
    const targets: Array<{ workers: number; server: ServerProcess; target: Target }> = [
      { workers: 1, server: one, target: { id: "gateway", server: one, pool: pools[1]!, isGateway: true } },
      { workers: 2, server: two, target: { id: "gateway", server: two, pool: pools[0]!, isGateway: true } },
    ];
    // Fresh processes (and each of their workers) must be warm before a ramp, as every other target is.
    for (const { target } of targets) {
      ctx.progress.step(`workers · warm-up · ${target.server.name}`);
      await runLoad({ concurrency: 16, durationMs: ctx.plan.warmupMs, send: unarySender(target.pool, restSpec(target, UNARY_SCENARIO, false)) });
    }
    const direct = ctx.targets.find((t) => t.id === "direct")!;
    const { rounds, levelMs, levels } = ctx.plan.workers;
    const best: Record<number, number[]> = { 1: [], 2: [] };
    const peak: Record<number, number[]> = { 1: [], 2: [] };
    const ramps: Record<number, RampResult[]> = { 1: [], 2: [] };
    const peakRamps: Record<number, RampResult[]> = { 1: [], 2: [] };
    for (let r = 1; r <= rounds; r++) {
      const baseline = await baselineP99Ms(ctx, direct, levelMs);
      for (const { workers, server, target } of targets) {
        const res = await ramp(ctx, target, server.pid, { levels, levelMs, p99LimitMs: baseline + ctx.plan.throughput.maxAddedP99Ms, label: `workers · round ${r}/${rounds} · --workers ${workers}` }, errors);
        best[workers]!.push(res.best);
        ramps[workers]!.push(res);
        // The same ramp without the latency bound: how much the processes can serve at all, with the client on the same cores.
        const open = await ramp(ctx, target, server.pid, { levels, levelMs, p99LimitMs: Infinity, label: `workers · round ${r}/${rounds} · --workers ${workers} · peak` }, errors);
        peak[workers]!.push(open.best);
        peakRamps[workers]!.push(open);
      }
    }
    if (processes < 3) notes.push(`--workers 2 was accepted, but only ${processes} process(es) were found in its tree (expected a primary and 2 workers; threads are not counted).`);
    const cells = (of: Record<number, number[]>, w: number): Cell => ({ value: spread(of[w]!), unit: "req/s" });
    const row = (figure: string, of: Record<number, number[]>): Row => ({
      figure,
      cells: { w1: cells(of, 1), w2: cells(of, 2), scaling: { value: spread(paired(of[2]!, of[1]!, "ratio")), unit: "×" as const } },
    });
    return {
      id: "workers",
      title,
      columns: [
        { key: "w1", label: "--workers 1" },
        { key: "w2", label: "--workers 2" },
        { key: "scaling", label: "2 / 1" },
      ],
      rows: [row("max throughput with added p99 ≤ 5 ms", best), row("peak throughput (no latency bound, no errors)", peak)],
      notes: [
        "Unpinned: the load generator, the upstream and the workers share both CPUs, so this is a lower bound on scaling. A 0 means the lowest level already broke the bound.",
        ...notes,
        ...errors.notes,
      ],
      raw: { ramps, peakRamps },
    };
  } catch (err) {
    return notMeasured(`--workers 2 started but the run failed: ${(err as Error).message}`);
  } finally {
    pinProcess(process.pid, ctx.pinning.loadgen);
    for (const p of pools) await p.close().catch(() => {});
    await two.stop();
    await one?.stop();
  }
}
