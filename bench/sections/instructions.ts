import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createPool, type Send, streamSender, unarySender } from "../load.js";
import { UNARY_SCENARIO } from "../plan.js";
import type { Section } from "../report.js";
import { compiled, spawnServer, type ServerProcess } from "../servers.js";
import { spread } from "../stats.js";
import { restSpec } from "../targets.js";
import type { BenchContext } from "./common.js";

/**
 * Instructions per request and per streamed chunk, counted by valgrind's
 * callgrind: unlike CPU time on a shared machine, a count does not move
 * with what else the machine is doing, so a change of a few percent shows
 * in a single run. The floor (the pipe proxy) and the gateway each run
 * under callgrind with instrumentation off; after a warm-up (so the JIT
 * has compiled the hot path), instrumentation goes on, each kind of load
 * runs in turn, and a dump after each gives its count. Only the main
 * thread is counted: V8 compiles and collects garbage on other threads,
 * whose work depends on timing. Kernel time (system calls) is not counted,
 * and an instruction is not a fixed time (cache misses are not counted):
 * read the ratio beside the CPU-time figures, not instead of them.
 */

/** CONCURRENCY is the load generator's concurrency under valgrind, which serializes the target onto one core. */
const CONCURRENCY = 4;

function available(cmd: string): boolean {
  return spawnSync(cmd, ["--version"], { stdio: "ignore" }).status === 0;
}

/** sendCount sends n requests through send with CONCURRENCY in flight. */
async function sendCount(n: number, send: Send): Promise<number> {
  let started = 0;
  let errors = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (started < n) {
        started++;
        if (!(await send()).ok) errors++;
      }
    }),
  );
  return errors;
}

/** mainThreadInstructions reads the instruction total of a dump's main-thread file. */
function mainThreadInstructions(file: string): number {
  const m = /^totals:\s+(\d+)/m.exec(readFileSync(file, "utf8"));
  if (m === null) throw new Error(`no totals line in ${file}`);
  return Number(m[1]);
}

interface Counts {
  perRequest: number;
  perShortStream: number;
  perLongStream: number;
  errors: number;
}

async function countTarget(ctx: BenchContext, server: ServerProcess, isGateway: boolean, outFile: string, label: string): Promise<Counts> {
  const { warmRequests, requests, warmStreams, streams } = ctx.plan.instructions;
  const { short, long } = ctx.plan.chunkCpu;
  const pool = createPool(server.origin);
  const target = { isGateway };
  const unary = unarySender(pool, restSpec(target, UNARY_SCENARIO, false));
  const shortStream = streamSender(pool, restSpec(target, short, true));
  const longStream = streamSender(pool, restSpec(target, long, true));
  const control = (...args: string[]) => execFileSync("callgrind_control", [...args, String(server.pid)], { stdio: "ignore" });
  try {
    ctx.progress.step(`instructions · ${label} · warm-up`);
    let errors = await sendCount(warmRequests, unary);
    errors += await sendCount(warmStreams, shortStream);
    errors += await sendCount(warmStreams, longStream);
    control("--instr=on");
    // Each dump holds the count since the one before (dump 1: non-streaming, 2: short streams, 3: long ones).
    ctx.progress.step(`instructions · ${label} · ${requests} requests`);
    errors += await sendCount(requests, unary);
    control("--dump");
    ctx.progress.step(`instructions · ${label} · ${streams} short streams`);
    errors += await sendCount(streams, shortStream);
    control("--dump");
    ctx.progress.step(`instructions · ${label} · ${streams} long streams`);
    errors += await sendCount(streams, longStream);
    control("--dump");
    control("--instr=off");
    return {
      perRequest: mainThreadInstructions(`${outFile}.1-01`) / requests,
      perShortStream: mainThreadInstructions(`${outFile}.2-01`) / streams,
      perLongStream: mainThreadInstructions(`${outFile}.3-01`) / streams,
      errors,
    };
  } finally {
    await pool.close();
  }
}

/** instructionsSection counts instructions per request and per chunk for the floor and the gateway. */
export async function instructionsSection(ctx: BenchContext): Promise<Section> {
  const base = { id: "instructions", title: "Instructions per request and per streamed chunk (callgrind, main thread)", columns: [] as Section["columns"] };
  if (!available("valgrind") || !available("callgrind_control")) {
    return { ...base, rows: [], notes: ["not measured: valgrind (with callgrind_control) is not installed"] };
  }
  const dir = mkdtempSync(join(tmpdir(), "llmgw-bench-callgrind-"));
  const wrapper = (name: string) => [
    "valgrind",
    "--tool=callgrind",
    "--instr-atstart=no",
    "--separate-threads=yes",
    // V8 writes and rewrites machine code at run time.
    "--smc-check=all-non-file",
    `--callgrind-out-file=${join(dir, name)}`,
  ];
  const servers: ServerProcess[] = [];
  try {
    ctx.progress.step("instructions · starting the floor under valgrind");
    const proxy = await spawnServer({
      name: "proxy (callgrind)",
      script: compiled("bench/proxy.ts"),
      args: ["--target", ctx.upstream.origin, "--port", "0"],
      wrapper: wrapper("proxy"),
      readiness: { kind: "stdout-port" },
      timeoutMs: 120_000,
    });
    servers.push(proxy);
    const floor = await countTarget(ctx, proxy, false, join(dir, "proxy"), "floor (proxy)");
    await proxy.stop();

    ctx.progress.step("instructions · starting the gateway under valgrind");
    const gw = await ctx.startGateway({ name: "gateway (callgrind)", wrapper: wrapper("gateway"), timeoutMs: 120_000 });
    servers.push(gw);
    const gateway = await countTarget(ctx, gw, true, join(dir, "gateway"), "gateway");
    await gw.stop();

    const { shortChunks, longChunks } = ctx.plan.chunkCpu;
    const perChunk = (c: Counts) => (c.perLongStream - c.perShortStream) / (longChunks - shortChunks);
    const row = (figure: string, f: number, g: number) => ({
      figure,
      cells: {
        proxy: { value: spread([f]), unit: "count" as const },
        gateway: { value: spread([g]), unit: "count" as const },
        ratio: { value: spread([g / f]), unit: "×" as const },
      },
    });
    const errors = floor.errors + gateway.errors;
    return {
      ...base,
      columns: [
        { key: "proxy", label: "floor (proxy)" },
        { key: "gateway", label: "gateway" },
        { key: "ratio", label: "gateway vs floor" },
      ],
      rows: [
        row("instructions per request (non-streaming)", floor.perRequest, gateway.perRequest),
        row(`instructions per ${ctx.plan.chunkCpu.shortChunks}-chunk stream`, floor.perShortStream, gateway.perShortStream),
        row("instructions per streamed chunk (marginal)", perChunk(floor), perChunk(gateway)),
      ],
      notes: [
        `One run per target: ${ctx.plan.instructions.requests} requests and ${ctx.plan.instructions.streams} streams of each length after a warm-up of ${ctx.plan.instructions.warmRequests} requests and ${ctx.plan.instructions.warmStreams} streams of each length, ${CONCURRENCY} at a time. The gateway runs its bench configuration on memory state.`,
        "Counts are of the main thread only and exclude kernel time and cache misses. Runs of the same build usually agree within 2% (V8 optimizes a little differently from run to run; now and then by more): compare builds over two runs each.",
        ...(errors > 0 ? [`${errors} requests failed under valgrind; their work is in the counts.`] : []),
      ],
      raw: { floor, gateway },
    };
  } finally {
    for (const s of servers) await s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
