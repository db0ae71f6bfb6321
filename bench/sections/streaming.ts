import { runLoad, streamSender } from "../load.js";
import { goalAtMost, type Section } from "../report.js";
import { paired, percentile, spread } from "../stats.js";
import { TARGET_LABELS, measure, restSpec, type Target } from "../targets.js";
import { ErrorLog, TARGET_COLUMNS, comparisonCells, rate, record, targetCells, type BenchContext, type PerTarget } from "./common.js";

/**
 * Streaming figures. Time to first token is from sending the request to the
 * first body bytes; the inter-chunk gap is between consecutive body reads
 * (the upstream spaces chunks intervalMs apart, so a read is a chunk). CPU
 * per streamed chunk is marginal: the CPU per stream of a long stream minus
 * that of a short one, divided by the extra chunks, so the per-request cost
 * does not leak into the per-chunk figure.
 */

async function preRound(ctx: BenchContext, t: Target, scenario: string, concurrency: number): Promise<void> {
  if (ctx.plan.preRoundMs <= 0) return;
  await runLoad({ concurrency, durationMs: ctx.plan.preRoundMs, send: streamSender(t.pool, restSpec(t, scenario, true)) });
}

/** streamingSection measures added TTFT and inter-chunk gaps. */
export async function streamingSection(ctx: BenchContext): Promise<Section> {
  const { rounds, durationMs, concurrency, scenario, chunks, intervalMs } = ctx.plan.streaming;
  const ttft50: PerTarget = {};
  const ttft99: PerTarget = {};
  const gap99: PerTarget = {};
  const gap50: PerTarget = {};
  const errors = new ErrorLog();
  for (let r = 1; r <= rounds; r++) {
    for (const t of ctx.targets) {
      ctx.progress.step(`streaming TTFT · round ${r}/${rounds} · ${TARGET_LABELS[t.id]}`);
      await preRound(ctx, t, scenario, concurrency);
      const m = await measure(t.server.pid, {
        concurrency,
        durationMs,
        send: streamSender(t.pool, restSpec(t, scenario, true)),
        onProgress: (n, ms) => ctx.progress.detail(`${rate(n, ms).replace(/req/g, "streams")}`),
      });
      errors.add(TARGET_LABELS[t.id], m.result.errors, m.result.requests, m.result.firstError);
      const tt = m.result.ttft.sorted();
      const gp = m.result.gaps.sorted();
      record(ttft50, t.id, percentile(tt, 50) / 1000);
      record(ttft99, t.id, percentile(tt, 99) / 1000);
      record(gap50, t.id, percentile(gp, 50) / 1000);
      record(gap99, t.id, percentile(gp, 99) / 1000);
    }
  }
  const t50 = comparisonCells(ctx, ttft50, "diff", "ms");
  return {
    id: "streaming",
    title: `Streaming: time to first token and gaps (${chunks} chunks ${intervalMs} ms apart, ${concurrency} concurrent streams)`,
    columns: TARGET_COLUMNS,
    rows: [
      { figure: "TTFT p50", cells: { ...targetCells(ctx, ttft50, "ms"), ...t50 }, goal: goalAtMost("added TTFT p50 ≤ 0.5 ms over the floor", t50.gatewayVsFloor?.value, 0.5, "ms", true) },
      { figure: "TTFT p99", cells: { ...targetCells(ctx, ttft99, "ms"), ...comparisonCells(ctx, ttft99, "diff", "ms") } },
      { figure: "inter-chunk gap p50", cells: { ...targetCells(ctx, gap50, "ms"), ...comparisonCells(ctx, gap50, "diff", "ms") } },
      { figure: "inter-chunk gap p99", cells: { ...targetCells(ctx, gap99, "ms"), ...comparisonCells(ctx, gap99, "diff", "ms") } },
    ],
    notes: [
      `${rounds} rounds × ${durationMs / 1000} s per target. TTFT is to the first body bytes (headers alone are not counted as a token). The upstream's own gap is ${intervalMs} ms plus timer jitter, which is in every column.`,
      ...errors.notes,
    ],
    raw: { ttftP50Ms: ttft50, ttftP99Ms: ttft99, gapP50Ms: gap50, gapP99Ms: gap99 },
  };
}

/** CHUNK_CPU_GOAL_US is issue 6's target for the gateway's CPU per streamed chunk. */
const CHUNK_CPU_GOAL_US = 20;

/**
 * floorNote says so when the floor itself spent more per chunk than the
 * goal: then no Node hop meets it on this host, and what the gateway adds
 * over the floor (per round, then the median) is the figure to read.
 */
export function floorNote(perChunk: PerTarget, goalUs: number): string[] {
  const floor = spread(perChunk.proxy ?? []);
  const gateway = perChunk.gateway ?? [];
  if (!(floor.median > goalUs) || gateway.length === 0) return [];
  const added = spread(paired(gateway, perChunk.proxy!, "diff"));
  return [
    `The floor (a bare pipe proxy: one read and one write per chunk) itself spent ${floor.median.toFixed(1)} µs per chunk here, above the ${goalUs} µs goal, so no Node hop meets it on this host; the gateway added ${added.median.toFixed(1)} µs per chunk over the floor (median of the rounds' differences, ${added.min.toFixed(1)}…${added.max.toFixed(1)}).`,
  ];
}

/** chunkCpuSection measures marginal CPU per streamed chunk. */
export async function chunkCpuSection(ctx: BenchContext): Promise<Section> {
  const { rounds, durationMs, concurrency, short, shortChunks, long, longChunks } = ctx.plan.chunkCpu;
  const perChunk: PerTarget = {};
  const perStreamShort: PerTarget = {};
  const perStreamLong: PerTarget = {};
  const errors = new ErrorLog();
  for (let r = 1; r <= rounds; r++) {
    for (const t of ctx.targets) {
      const perStream: number[] = [];
      for (const scenario of [short, long]) {
        ctx.progress.step(`CPU per chunk · round ${r}/${rounds} · ${TARGET_LABELS[t.id]} · ${scenario}`);
        await preRound(ctx, t, scenario, concurrency);
        const m = await measure(t.server.pid, {
          concurrency,
          durationMs,
          send: streamSender(t.pool, restSpec(t, scenario, true)),
          onProgress: (n, ms) => ctx.progress.detail(`${rate(n, ms).replace(/req/g, "streams")}`),
        });
        errors.add(`${TARGET_LABELS[t.id]} (${scenario})`, m.result.errors, m.result.requests, m.result.firstError);
        perStream.push(m.result.requests === 0 ? Number.NaN : m.cpuUs / m.result.requests);
      }
      record(perStreamShort, t.id, perStream[0]!);
      record(perStreamLong, t.id, perStream[1]!);
      record(perChunk, t.id, (perStream[1]! - perStream[0]!) / (longChunks - shortChunks));
    }
  }
  const gw = targetCells(ctx, perChunk, "µs");
  return {
    id: "chunk-cpu",
    title: `CPU per streamed chunk (marginal: ${longChunks}- vs ${shortChunks}-chunk streams, ${concurrency} concurrent)`,
    columns: TARGET_COLUMNS,
    rows: [
      {
        figure: "CPU per streamed chunk",
        cells: { ...gw, ...comparisonCells(ctx, perChunk, "ratio", "×") },
        goal: goalAtMost(`≤ ${CHUNK_CPU_GOAL_US} µs CPU per streamed chunk`, gw.gateway?.value, CHUNK_CPU_GOAL_US, "µs"),
      },
      { figure: `CPU per ${shortChunks}-chunk stream`, cells: { ...targetCells(ctx, perStreamShort, "µs"), ...comparisonCells(ctx, perStreamShort, "ratio", "×") } },
      { figure: `CPU per ${longChunks}-chunk stream`, cells: { ...targetCells(ctx, perStreamLong, "µs"), ...comparisonCells(ctx, perStreamLong, "ratio", "×") } },
    ],
    notes: [
      "Chunks are 2 ms apart, so each is its own read and write (as with a real model), not one coalesced buffer. The figure is the gateway's own per-chunk cost, the floor's is shown for scale.",
      ...floorNote(perChunk, CHUNK_CPU_GOAL_US),
      ...errors.notes,
    ],
    raw: { perChunkUs: perChunk, perStreamShortUs: perStreamShort, perStreamLongUs: perStreamLong },
  };
}

