import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { benchGatewayConfig, PROBE_KEY, writeBenchConfig, type StateBackend } from "./gateway-config.js";
import { createPool, runLoad, streamSender, unarySender } from "./load.js";
import { makePlan, scenariosOf, UNARY_SCENARIO } from "./plan.js";
import { affinityOf, pinProcess, planPinning, rssBytes } from "./proc.js";
import { createProgress } from "./progress.js";
import { countKeysContaining, deleteKeysContaining, localRedisPid, redisReachable } from "./redis-check.js";
import { renderReport, type Section } from "./report.js";
import type { BenchContext, GatewayLaunch } from "./sections/common.js";
import { compareSection, parseHeader, type OtherGateway } from "./sections/compare.js";
import { instructionsSection } from "./sections/instructions.js";
import { memorySection } from "./sections/memory.js";
import { profileSections } from "./sections/profile.js";
import { protocolsSection } from "./sections/protocols.js";
import { chunkCpuSection, streamingSection } from "./sections/streaming.js";
import { throughputSection } from "./sections/throughput.js";
import { cpuSection, latencySection } from "./sections/unary.js";
import { workersSection } from "./sections/workers.js";
import { firstErrorLine, freePort, REPO_ROOT, ServerStartError, compiled, spawnServer, type ServerProcess } from "./servers.js";
import { restSpec, TARGET_LABELS, type Target, type TargetId } from "./targets.js";

/**
 * `npm run bench`: the side-by-side benchmark of issue 6. It starts the
 * fast upstream, the bare pipe proxy (the floor) and the gateway (memory
 * state, and again on Redis state), pins them away from the load
 * generator, warms everything up, runs the sections in interleaved rounds,
 * prints a markdown report on stdout and writes it with the raw data to
 * bench/results/<timestamp>.{md,json}. Progress goes to stderr.
 *
 *   npm run bench                      full run (about 10 minutes)
 *   npm run bench -- --quick           smoke run (under a minute; figures not quotable)
 *   npm run bench -- --only latency,streaming
 *
 * Sections: latency, cpu, throughput, streaming, chunk-cpu, memory, protocols, workers, profile.
 */

/** SECTION_IDS are the sections in the order a run visits them. */
export const SECTION_IDS = ["memory", "latency", "streaming", "chunk-cpu", "cpu", "throughput", "protocols", "workers", "profile", "instructions", "compare"] as const;
type SectionId = (typeof SECTION_IDS)[number];

/**
 * ON_REQUEST are sections a run includes only when asked: instructions
 * (named in --only; it runs the targets under valgrind for minutes) and
 * compare (whenever --other-cmd names another gateway).
 */
const ON_REQUEST: readonly SectionId[] = ["instructions", "compare"];

const REDIS_URL = "redis://127.0.0.1:6379/15";

const { values: flags } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    only: { type: "string" },
    out: { type: "string" },
    "other-cmd": { type: "string" },
    "other-name": { type: "string", default: "other gateway" },
    "other-header": { type: "string", multiple: true, default: [] },
    "other-model-prefix": { type: "string", default: "" },
    help: { type: "boolean", default: false },
  },
  strict: true,
});

if (flags.help) {
  process.stdout.write(
    `usage: npm run bench -- [--quick] [--only ${SECTION_IDS.join(",")}] [--out DIR]\n` +
      "  --quick  short rounds (a smoke run under a minute)\n  --only   comma-separated sections to run (instructions runs only when named)\n  --out    results directory (default bench/results)\n" +
      "  --other-cmd CMD           also run the compare section against another gateway: a shell command line\n" +
      "                            that starts it ({port}: where it must listen, {upstream}: the upstream's origin)\n" +
      "  --other-name NAME         its column's label\n" +
      '  --other-header "K: V"     a header on every request to it (repeatable; {upstream} is substituted)\n' +
      "  --other-model-prefix P    put P before the upstream model name for it\n",
  );
  process.exit(0);
}

let selected: SectionId[] = SECTION_IDS.filter((s) => !ON_REQUEST.includes(s));
if (flags.only !== undefined) {
  const wanted = flags.only.split(",").map((s) => s.trim()).filter((s) => s !== "");
  const unknown = wanted.filter((w) => !(SECTION_IDS as readonly string[]).includes(w));
  if (unknown.length > 0) {
    process.stderr.write(`bench: unknown section(s) ${unknown.join(", ")}; known: ${SECTION_IDS.join(", ")}\n`);
    process.exit(2);
  }
  selected = SECTION_IDS.filter((s) => wanted.includes(s));
}
let other: OtherGateway | undefined;
try {
  other =
    flags["other-cmd"] === undefined
      ? undefined
      : { name: flags["other-name"], command: flags["other-cmd"], headers: Object.fromEntries(flags["other-header"].map(parseHeader)), modelPrefix: flags["other-model-prefix"] };
} catch (err) {
  process.stderr.write(`bench: ${(err as Error).message}\n`);
  process.exit(2);
}
if (other !== undefined && !selected.includes("compare")) selected.push("compare");
if (other === undefined && selected.includes("compare")) {
  process.stderr.write("bench: the compare section needs --other-cmd (see --help)\n");
  process.exit(2);
}

const plan = makePlan(flags.quick);
const progress = createProgress();
const pinning = planPinning();
if (pinning.enabled && !pinProcess(process.pid, pinning.loadgen)) progress.note("could not pin the load generator; continuing unpinned");
const startedAt = new Date();
const t0 = performance.now();
const loadAvgAtStart = loadavg().map((l) => l.toFixed(2)).join(" ");
const workDir = mkdtempSync(join(tmpdir(), "llmgw-bench-"));
const servers: ServerProcess[] = [];
const pools: Array<{ close(): Promise<void> }> = [];
const unavailable: Partial<Record<TargetId, string>> = {};
const metaNotes: string[] = [];
const redisPrefix = `bench-${randomBytes(4).toString("hex")}`;
let redisStarted = false;
// Redis's own CPU list, to give back at the end when the run pinned it.
let redisAffinity: { pid: number; cpus: string } | undefined;

function gitCommit(): string {
  try {
    const head = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: REPO_ROOT, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain"], { cwd: REPO_ROOT, encoding: "utf8" }).trim() !== "";
    return dirty ? `${head} (uncommitted changes)` : head;
  } catch {
    return "unknown";
  }
}

async function startGatewayProcess(name: string, configPath: string, launch: Partial<GatewayLaunch> = {}): Promise<ServerProcess> {
  const port = await freePort();
  const logFile = join(workDir, `${name.replace(/[^a-z0-9]+/gi, "-")}-${port}.log`);
  const gw = await spawnServer({
    name,
    script: compiled("server/main.ts"),
    args: ["--config", configPath, "--port", String(port), ...(launch.extraArgs ?? [])],
    env: { GATEWAY_LOG_FILE: logFile },
    nodeFlags: launch.nodeFlags,
    wrapper: launch.wrapper,
    timeoutMs: launch.timeoutMs,
    cpus: launch.cpus ?? (pinning.enabled ? pinning.servers : undefined),
    readiness: { kind: "http", port, path: "/healthz" },
  });
  servers.push(gw);
  return gw;
}

/**
 * pinRedis moves a local Redis off the servers' CPU, onto the load
 * generator's, as a Redis on its own host would be: left unpinned, its
 * wake-ups queued behind the gateway and upstream on a busy CPU (TTFT on
 * Redis state was +1.8 ms over memory unpinned, +0.8 ms pinned, in one
 * pair of runs). Its CPU list is given back in cleanup().
 */
async function pinRedis(): Promise<void> {
  const pid = await localRedisPid(REDIS_URL);
  const cpus = pid === undefined ? undefined : affinityOf(pid);
  if (pid !== undefined && cpus !== undefined && pinProcess(pid, pinning.loadgen)) {
    redisAffinity = { pid, cpus };
    metaNotes.push(`Redis (pid ${pid}) runs on CPU ${pinning.loadgen} with the load generator, off the servers' CPU; its CPU list (${cpus}) is restored at the end.`);
  } else {
    metaNotes.push("Redis is not pinned (not a process on this machine that this user may move): its wake-ups compete with the servers'.");
  }
}

async function check(t: Target): Promise<string | undefined> {
  const unary = await unarySender(t.pool, restSpec(t, UNARY_SCENARIO, false))();
  if (!unary.ok) return `non-streaming request failed: ${unary.error}`;
  const stream = await streamSender(t.pool, restSpec(t, plan.streaming.scenario, true))();
  if (!stream.ok) return `streaming request failed: ${stream.error}`;
  return undefined;
}

async function limitsEnforced(t: Target): Promise<boolean> {
  const spec = restSpec(t, UNARY_SCENARIO, false);
  const probe = { ...spec, headers: { ...spec.headers, authorization: `Bearer ${PROBE_KEY}` } };
  const send = unarySender(t.pool, probe);
  await send();
  const second = await send();
  return !second.ok && (second.error ?? "").startsWith("HTTP 429");
}

async function main(): Promise<void> {
  const serverCpus = pinning.enabled ? pinning.servers : undefined;
  progress.step("starting the upstream and the proxy");
  const upstream = await spawnServer({ name: "upstream", script: compiled("bench/upstream.ts"), args: ["--port", "0"], cpus: serverCpus, readiness: { kind: "stdout-port" } });
  servers.push(upstream);
  const proxy = await spawnServer({ name: "proxy", script: compiled("bench/proxy.ts"), args: ["--target", upstream.origin, "--port", "0"], cpus: serverCpus, readiness: { kind: "stdout-port" } });
  servers.push(proxy);

  const maxConnections = plan.memory.streams * 2 + 256;
  const configFor = (state: StateBackend, file: string): string =>
    writeBenchConfig(workDir, file, benchGatewayConfig({ upstreamOrigin: upstream.origin, scenarios: scenariosOf(plan), state, maxConnections }));
  const memoryConfig = configFor({ backend: "memory" }, "gateway.yaml");

  progress.step("starting the gateway (memory state)");
  const coldRss: Partial<Record<TargetId, number>> = {};
  const gateway = await startGatewayProcess("gateway", memoryConfig);
  coldRss.proxy = rssBytes([proxy.pid]);
  coldRss.gateway = rssBytes([gateway.pid]);

  let gatewayRedis: ServerProcess | undefined;
  if (!(await redisReachable(REDIS_URL))) {
    unavailable.gatewayRedis = `Redis is not reachable at ${REDIS_URL}`;
  } else {
    progress.step("starting the gateway (Redis state)");
    const redisConfig = configFor({ backend: "redis", url: REDIS_URL, key_prefix: redisPrefix }, "gateway-redis.yaml");
    try {
      gatewayRedis = await startGatewayProcess("gateway-redis", redisConfig);
      redisStarted = true;
      if (pinning.enabled) await pinRedis();
      coldRss.gatewayRedis = rssBytes([gatewayRedis.pid]);
    } catch (err) {
      unavailable.gatewayRedis = `the gateway did not start with state.backend redis: ${err instanceof ServerStartError ? firstErrorLine(err.output) : (err as Error).message}`;
    }
  }

  const targets: Target[] = [];
  const add = (id: TargetId, server: ServerProcess, isGateway: boolean): void => {
    const pool = createPool(server.origin);
    pools.push(pool);
    targets.push({ id, server, pool, isGateway });
  };
  add("direct", upstream, false);
  add("proxy", proxy, false);
  add("gateway", gateway, true);
  if (gatewayRedis !== undefined) add("gatewayRedis", gatewayRedis, true);

  progress.step("checking every target answers");
  for (const t of [...targets]) {
    const problem = await check(t);
    if (problem === undefined) continue;
    if (t.id === "gatewayRedis") {
      unavailable.gatewayRedis = problem;
      targets.splice(targets.indexOf(t), 1);
    } else {
      throw new Error(`${TARGET_LABELS[t.id]}: ${problem}`);
    }
  }
  for (const t of targets.filter((x) => x.isGateway)) {
    metaNotes.push(`${TARGET_LABELS[t.id]}: per-key limits ${(await limitsEnforced(t)) ? "are enforced (a key with rpm: 1 got 429 on its 2nd request)" : "are configured but NOT enforced (a key with rpm: 1 was not refused on its 2nd request)"}.`);
  }

  for (const t of targets) {
    progress.step(`warm-up · ${TARGET_LABELS[t.id]}`);
    await runLoad({ concurrency: 8, durationMs: plan.warmupMs, send: unarySender(t.pool, restSpec(t, UNARY_SCENARIO, false)) });
    await runLoad({ concurrency: 8, durationMs: plan.warmupMs / 2, send: streamSender(t.pool, restSpec(t, plan.streaming.scenario, true)) });
  }

  const redisTarget = targets.find((t) => t.id === "gatewayRedis");
  if (redisTarget !== undefined) {
    const keys = await countKeysContaining(REDIS_URL, redisPrefix).catch(() => 0);
    if (keys === 0) {
      unavailable.gatewayRedis =
        "the Redis state backend is not wired: the gateway accepted state.backend redis, but after warm-up no key exists under its prefix, so it ran on memory state";
      targets.splice(targets.indexOf(redisTarget), 1);
      await redisTarget.server.stop();
    } else {
      metaNotes.push(`gateway+Redis: ${keys} keys under prefix ${redisPrefix} after warm-up (the Redis backend is in use).`);
    }
  }
  if (unavailable.gatewayRedis !== undefined) metaNotes.push(`gateway+Redis: not measured — ${unavailable.gatewayRedis}.`);

  const ctx: BenchContext = {
    plan,
    targets,
    unavailable,
    progress,
    pinning,
    upstream,
    redisUrl: unavailable.gatewayRedis === undefined ? REDIS_URL : undefined,
    startGateway: (launch) => {
      const slug = launch.name.replace(/[^a-z0-9]+/gi, "-");
      return startGatewayProcess(
        launch.name,
        launch.upstreamOrigin === undefined && launch.redisUrl === undefined
          ? memoryConfig
          : writeBenchConfig(
              workDir,
              `gateway-${slug}.yaml`,
              benchGatewayConfig({
                upstreamOrigin: launch.upstreamOrigin ?? upstream.origin,
                scenarios: scenariosOf(plan),
                state: launch.redisUrl === undefined ? { backend: "memory" } : { backend: "redis", url: launch.redisUrl, key_prefix: `${redisPrefix}-${slug}` },
                maxConnections,
              }),
            ),
        launch,
      );
    },
  };

  const sections: Section[] = [];
  for (const id of selected) {
    try {
      switch (id) {
        case "memory":
          sections.push(await memorySection(ctx, coldRss));
          break;
        case "latency":
          sections.push(await latencySection(ctx));
          break;
        case "streaming":
          sections.push(await streamingSection(ctx));
          break;
        case "chunk-cpu":
          sections.push(await chunkCpuSection(ctx));
          break;
        case "cpu":
          sections.push(await cpuSection(ctx));
          break;
        case "throughput":
          sections.push(await throughputSection(ctx));
          break;
        case "protocols":
          sections.push(await protocolsSection(ctx));
          break;
        case "workers":
          sections.push(await workersSection(ctx));
          break;
        case "profile":
          sections.push(...(await profileSections(ctx)));
          break;
        case "instructions":
          sections.push(await instructionsSection(ctx));
          break;
        case "compare":
          sections.push(await compareSection(ctx, other!));
          break;
      }
    } catch (err) {
      progress.note(`section ${id} failed: ${(err as Error).stack ?? String(err)}`);
      sections.push({ id, title: id, columns: [], rows: [], notes: [`failed: ${(err as Error).message}`] });
    }
  }

  try {
    const bytes = statSync(join(workDir, `gateway-${gateway.port}.log`)).size;
    metaNotes.push(`The memory-state gateway wrote ${(bytes / 1024 / 1024).toFixed(1)} MB of request logs (info level) during the run.`);
  } catch {
    // The log is informative only.
  }
  progress.done();

  const durationS = (performance.now() - t0) / 1000;
  const meta = {
    startedAt: startedAt.toISOString(),
    durationS,
    mode: plan.quick ? ("quick" as const) : ("full" as const),
    node: process.version,
    cpus: `${cpus().length} × ${cpus()[0]?.model.trim() ?? "unknown CPU"}`,
    loadAvg: `${loadAvgAtStart} (at start), ${loadavg().map((l) => l.toFixed(2)).join(" ")} (at end)`,
    pinning: pinning.note,
    commit: gitCommit(),
    notes: metaNotes,
  };
  const markdown = renderReport(meta, sections);
  const outDir = flags.out ?? join(REPO_ROOT, "bench", "results");
  mkdirSync(outDir, { recursive: true });
  const stamp = startedAt.toISOString().replace(/[:.]/g, "-");
  writeFileSync(join(outDir, `${stamp}.md`), markdown);
  writeFileSync(join(outDir, `${stamp}.json`), `${JSON.stringify({ meta, plan, sections }, null, 2)}\n`);
  process.stdout.write(markdown);
  process.stderr.write(`bench: wrote ${join(outDir, `${stamp}.md`)} and .json\n`);
}

async function cleanup(): Promise<void> {
  for (const p of pools) await p.close().catch(() => {});
  await Promise.all(servers.map((s) => s.stop().catch(() => {})));
  if (redisStarted) await deleteKeysContaining(REDIS_URL, redisPrefix).catch(() => 0);
  if (redisAffinity !== undefined) pinProcess(redisAffinity.pid, redisAffinity.cpus);
  rmSync(workDir, { recursive: true, force: true });
}

let interrupted = false;
process.on("SIGINT", () => {
  if (interrupted) process.exit(130);
  interrupted = true;
  progress.done();
  process.stderr.write("bench: interrupted, stopping servers\n");
  void cleanup().then(() => process.exit(130));
});

try {
  await main();
  await cleanup();
} catch (err) {
  progress.done();
  process.stderr.write(`bench: failed: ${err instanceof ServerStartError ? `${err.message}\n${err.output}` : ((err as Error).stack ?? String(err))}\n`);
  await cleanup();
  process.exitCode = 1;
}
