import { execFileSync, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createPool, type Send, streamSender, unarySender } from "../load.js";
import { UNARY_SCENARIO } from "../plan.js";
import type { Section } from "../report.js";
import { redisReachable } from "../redis-check.js";
import { compiled, freePort, spawnServer, type ServerProcess } from "../servers.js";
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
 *
 * The gateway is counted again on Redis state, against a private
 * redis-server that runs under callgrind too: the Redis figures of the
 * latency section move with the machine's noise far more than their
 * difference, while these counts (the gateway's client work, and Redis's
 * own per request) show a change to the Redis path in one run.
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

/** dumpInstructions reads the instruction total of one dump file (with separate threads, one thread's). */
function dumpInstructions(file: string): number {
  const m = /^totals:\s+(\d+)/m.exec(readFileSync(file, "utf8"));
  if (m === null) throw new Error(`no totals line in ${file}`);
  return Number(m[1]);
}

/** callgrindControl sends callgrind_control a command for a process (--instr=on, --dump). */
function callgrindControl(pid: number, ...args: string[]): void {
  execFileSync("callgrind_control", [...args, String(pid)], { stdio: "ignore" });
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
  const control = (...args: string[]) => callgrindControl(server.pid, ...args);
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
      perRequest: dumpInstructions(`${outFile}.1-01`) / requests,
      perShortStream: dumpInstructions(`${outFile}.2-01`) / streams,
      perLongStream: dumpInstructions(`${outFile}.3-01`) / streams,
      errors,
    };
  } finally {
    await pool.close();
  }
}

/** RedisCounts are a non-streaming request's instructions with Redis state: the gateway's main thread's, and Redis's. */
interface RedisCounts {
  gatewayPerRequest: number;
  redisPerRequest: number;
  errors: number;
}

/**
 * countRedisState counts non-streaming requests through a gateway on Redis
 * state, both under callgrind; it returns why not when it cannot.
 */
async function countRedisState(ctx: BenchContext, dir: string, wrapper: (name: string) => string[]): Promise<RedisCounts | string> {
  if (!available("redis-server")) return "redis-server is not installed";
  const { warmRequests, requests } = ctx.plan.instructions;
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  ctx.progress.step("instructions · starting a private Redis under valgrind");
  // One dump file for all of Redis's threads (its commands run on the main one).
  const valgrind = ["--tool=callgrind", "--instr-atstart=no", `--callgrind-out-file=${join(dir, "redis")}`];
  const redis = spawn("valgrind", [...valgrind, "redis-server", "--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
  const exited = once(redis, "exit");
  try {
    const deadline = Date.now() + 60_000;
    while (!(await redisReachable(url))) {
      if (redis.exitCode !== null || Date.now() > deadline) return "the private redis-server did not start under valgrind";
      await new Promise((r) => setTimeout(r, 250));
    }
    ctx.progress.step("instructions · starting the gateway on Redis state under valgrind");
    const gw = await ctx.startGateway({ name: "gateway-redis (callgrind)", wrapper: wrapper("gateway-redis"), timeoutMs: 120_000, redisUrl: url });
    const pool = createPool(gw.origin);
    const unary = unarySender(pool, restSpec({ isGateway: true }, UNARY_SCENARIO, false));
    try {
      ctx.progress.step("instructions · gateway on Redis state · warm-up");
      let errors = await sendCount(warmRequests, unary);
      callgrindControl(gw.pid, "--instr=on");
      callgrindControl(redis.pid!, "--instr=on");
      ctx.progress.step(`instructions · gateway on Redis state · ${requests} requests`);
      errors += await sendCount(requests, unary);
      callgrindControl(gw.pid, "--dump");
      callgrindControl(redis.pid!, "--dump");
      return {
        gatewayPerRequest: dumpInstructions(join(dir, "gateway-redis.1-01")) / requests,
        redisPerRequest: dumpInstructions(join(dir, "redis.1")) / requests,
        errors,
      };
    } finally {
      await pool.close();
      await gw.stop();
    }
  } finally {
    if (redis.exitCode === null) redis.kill("SIGTERM");
    await exited;
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
    const onRedis = await countRedisState(ctx, dir, wrapper);

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
    const errors = floor.errors + gateway.errors + (typeof onRedis === "string" ? 0 : onRedis.errors);
    const redisRows =
      typeof onRedis === "string"
        ? []
        : [
            row("instructions per request (non-streaming), Redis state", floor.perRequest, onRedis.gatewayPerRequest),
            { figure: "Redis server's instructions per request (non-streaming)", cells: { gateway: { value: spread([onRedis.redisPerRequest]), unit: "count" as const } } },
          ];
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
        ...redisRows,
      ],
      notes: [
        `One run per target: ${ctx.plan.instructions.requests} requests and ${ctx.plan.instructions.streams} streams of each length after a warm-up of ${ctx.plan.instructions.warmRequests} requests and ${ctx.plan.instructions.warmStreams} streams of each length, ${CONCURRENCY} at a time. The gateway runs its bench configuration on memory state.`,
        typeof onRedis === "string"
          ? `Redis state not counted: ${onRedis}.`
          : `On Redis state (a private redis-server, also under callgrind, all its threads counted): ${ctx.plan.instructions.requests} non-streaming requests after a warm-up of ${ctx.plan.instructions.warmRequests}.`,
        "Counts are of the main thread only and exclude kernel time and cache misses. Runs of the same build usually agree within 2% (V8 optimizes a little differently from run to run; now and then by more): compare builds over two runs each.",
        ...(errors > 0 ? [`${errors} requests failed under valgrind; their work is in the counts.`] : []),
      ],
      raw: { floor, gateway, onRedis },
    };
  } finally {
    for (const s of servers) await s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
