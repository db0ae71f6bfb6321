import { createPool, holdStreams, runLoad, streamSender } from "../load.js";
import { goalAtMost, type Section } from "../report.js";
import { processTree, rssBytes } from "../proc.js";
import { spread } from "../stats.js";
import { TARGET_LABELS, restSpec, type TargetId } from "../targets.js";
import { ErrorLog, TARGET_COLUMNS, record, targetCells, type BenchContext, type PerTarget } from "./common.js";

/**
 * Memory: resident set size (VmRSS) of the measured process when idle,
 * while it holds many slow streams open at once, and some seconds after
 * they end. "Idle" is the process after settleMs of quiet, what a
 * long-running gateway looks like between bursts; "after" waits the same
 * settleMs, so both are read at rest. "Late" is read lateMs after the load,
 * once the gateway's idle collector has had its chance (it waits for 30 s
 * of quiet by default, because a collection in a short gap costs the next
 * burst CPU); the target is judged on it when it is read. "Warm" is read
 * straight after a short load, with the heap grown as any busy process has
 * it; the streams' marginal cost is measured from there, so a young
 * generation that grows under any load (and shrinks at rest) is not charged
 * to the streams.
 */

const MB = 1024 * 1024;
/** WARM_MS is the short streaming load before the warm reading. */
const WARM_MS = 1500;

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function sampleRss(pid: number, samples: number, everyMs: number, pick: "median" | "max"): Promise<number> {
  const values: number[] = [];
  for (let i = 0; i < samples; i++) {
    if (i > 0) await sleep(everyMs);
    values.push(rssBytes(processTree(pid)));
  }
  values.sort((a, b) => a - b);
  return pick === "max" ? values[values.length - 1]! : values[Math.floor(values.length / 2)]!;
}

/** memorySection holds plan.memory.streams streams open through each server and reads RSS. */
export async function memorySection(ctx: BenchContext, coldRss: Partial<Record<TargetId, number>>): Promise<Section> {
  const { streams, scenario, settleMs, lateMs } = ctx.plan.memory;
  const measured: TargetId[] = ["proxy", "gateway", "gatewayRedis"];
  const cold: PerTarget = {};
  const idle: PerTarget = {};
  const warm: PerTarget = {};
  const held: PerTarget = {};
  const per1000: PerTarget = {};
  const after: PerTarget = {};
  const afterVsIdle: PerTarget = {};
  const late: PerTarget = {};
  const lateVsIdle: PerTarget = {};
  // When each target's load ended and its idle reading, for the late reading.
  const ended: Array<{ id: TargetId; pid: number; at: number; idleRss: number }> = [];
  const errors = new ErrorLog();
  const notes: string[] = [];
  for (const t of ctx.targets) {
    if (!measured.includes(t.id)) continue;
    const label = TARGET_LABELS[t.id];
    const pid = t.server.pid;
    // Idle is read after the same quiet wait as "after", so both are readings of a process at rest.
    ctx.progress.step(`memory · ${label} · idle (after ${settleMs / 1000} s of quiet)`);
    await sleep(settleMs);
    const idleRss = await sampleRss(pid, 3, 200, "median");
    ctx.progress.step(`memory · ${label} · warming`);
    await runLoad({ concurrency: 16, durationMs: WARM_MS, send: streamSender(t.pool, restSpec(t, ctx.plan.streaming.scenario, true)) });
    const warmRss = await sampleRss(pid, 3, 100, "median");
    ctx.progress.step(`memory · ${label} · opening ${streams} streams`);
    // The streams' own connections, closed once they end: "after the load" is after its clients left.
    const streamPool = createPool(t.server.origin);
    const h = holdStreams(streamPool, restSpec(t, scenario, true), streams);
    let timer: NodeJS.Timeout | undefined;
    const startedInTime = await Promise.race([h.allStarted.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(r, 60_000, false)))]);
    clearTimeout(timer);
    if (!startedInTime) notes.push(`${label}: not every stream had started after 60 s; RSS was read anyway.`);
    ctx.progress.step(`memory · ${label} · ${streams} streams open`);
    const heldRss = await sampleRss(pid, 5, 200, "max");
    const result = await h.finished;
    await streamPool.close();
    ended.push({ id: t.id, pid, at: performance.now(), idleRss });
    errors.add(label, result.errors, result.requests, result.firstError);
    ctx.progress.step(`memory · ${label} · settling ${settleMs / 1000} s after the load`);
    await sleep(settleMs);
    const afterRss = await sampleRss(pid, 3, 200, "median");
    record(cold, t.id, (coldRss[t.id] ?? Number.NaN) / MB);
    record(idle, t.id, idleRss / MB);
    record(held, t.id, heldRss / MB);
    record(warm, t.id, warmRss / MB);
    record(per1000, t.id, ((heldRss - warmRss) / MB) * (1000 / streams));
    record(after, t.id, afterRss / MB);
    record(afterVsIdle, t.id, (afterRss / idleRss - 1) * 100);
  }
  if (lateMs !== undefined && ended.length > 0) {
    // One wait for all: every target has been quiet at least lateMs when it is read.
    const readAt = ended[ended.length - 1]!.at + lateMs;
    ctx.progress.step(`memory · waiting until ${lateMs / 1000} s after the last load`);
    await sleep(Math.max(0, readAt - performance.now()));
    for (const e of ended) {
      const lateRss = await sampleRss(e.pid, 3, 200, "median");
      record(late, e.id, lateRss / MB);
      record(lateVsIdle, e.id, (lateRss / e.idleRss - 1) * 100);
    }
  }
  const only = measured;
  const gwPer1000 = per1000.gateway === undefined ? undefined : spread(per1000.gateway);
  // The target is judged on the late reading when there is one (see the file comment).
  const judged = lateMs !== undefined ? lateVsIdle : afterVsIdle;
  const gwAfter = judged.gateway === undefined ? undefined : spread(judged.gateway);
  const goal = goalAtMost("back within 10% of idle after the load", gwAfter, 10, "%");
  const lateRows =
    lateMs === undefined
      ? []
      : [
          { figure: `RSS ${lateMs / 1000} s after the load`, cells: targetCells(ctx, late, "MB", only) },
          { figure: `${lateMs / 1000} s after the load vs idle`, cells: targetCells(ctx, lateVsIdle, "%", only), goal },
        ];
  return {
    id: "memory",
    title: `Memory (RSS) with ${streams} concurrent slow streams`,
    columns: TARGET_COLUMNS.slice(1, 4),
    rows: [
      { figure: "RSS at start (cold)", cells: targetCells(ctx, cold, "MB", only) },
      { figure: `RSS idle (${settleMs / 1000} s quiet, before the load)`, cells: targetCells(ctx, idle, "MB", only) },
      { figure: "RSS warm (just after a short load)", cells: targetCells(ctx, warm, "MB", only) },
      { figure: `RSS with ${streams} streams open`, cells: targetCells(ctx, held, "MB", only) },
      { figure: "RSS per 1,000 concurrent streams", cells: targetCells(ctx, per1000, "MB", only), goal: goalAtMost("≤ 64 MB RSS per 1,000 concurrent streams", gwPer1000, 64, "MB") },
      { figure: `RSS ${settleMs / 1000} s after the load`, cells: targetCells(ctx, after, "MB", only) },
      { figure: `${settleMs / 1000} s after the load vs idle`, cells: targetCells(ctx, afterVsIdle, "%", only), goal: lateMs === undefined ? goal : undefined },
      ...lateRows,
    ],
    notes: [
      `One pass per target (not interleaved: each holds ${streams} streams of the upstream scenario ${scenario} open at once). RSS is VmRSS from /proc/<pid>/status; "open" is the highest of 5 reads once every stream has its first chunk; per 1,000 = (open − warm)${streams === 1000 ? "" : ` × 1000/${streams} (scaled)`}.`,
      ...(lateMs === undefined
        ? []
        : [
            `The ${lateMs / 1000} s reading is taken once that long has passed since the last target's load ended (earlier targets have been quiet longer); the target is judged on it, because the gateway's idle collector waits for 30 s of quiet (server.idle_gc_ms) before it collects.`,
          ]),
      ...notes,
      ...errors.notes,
    ],
    raw: { coldMB: cold, idleMB: idle, warmMB: warm, heldMB: held, per1000MB: per1000, afterMB: after, afterVsIdlePct: afterVsIdle, lateMB: late, lateVsIdlePct: lateVsIdle },
  };
}
