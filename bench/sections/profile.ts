import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { analyzeProfile, tsxSourceResolver, type CpuProfile, type ProfileSummary } from "../cpuprofile.js";
import { createPool, runLoad, streamSender, unarySender } from "../load.js";
import { UNARY_SCENARIO } from "../plan.js";
import type { Section } from "../report.js";
import { compiled, REPO_ROOT, spawnServer, type ServerProcess } from "../servers.js";
import { rate, type BenchContext } from "./common.js";
import { restSpec } from "../targets.js";

/**
 * A CPU profile of the gateway under load, to aim optimization: a fresh
 * gateway process runs with `node --cpu-prof`, takes non-streaming (then,
 * in a second process, streaming) load, exits cleanly so V8 writes the
 * profile, and the profile is reduced to the top functions by self time,
 * this repository's functions by inclusive time, and self time by module.
 * Start-up is excluded. Profiling slows the process, so none of these
 * processes' numbers appear elsewhere in the report. The profiled gateway
 * gets the servers' CPU to itself, with its own upstream on the load
 * generator's CPU, so no other process's work lands in its samples.
 */

/** monotonicUs is CLOCK_MONOTONIC in µs: the clock V8 stamps profile samples with on Linux. */
function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

function pct(v: number): string {
  return `${v.toFixed(1)}%`;
}

async function profileOnce(ctx: BenchContext, kind: "unary" | "stream", dir: string, upstream: ServerProcess): Promise<ProfileSummary> {
  const { durationMs, concurrency } = ctx.plan.profile;
  const gw = await ctx.startGateway({
    name: `gateway (profiled, ${kind})`,
    upstreamOrigin: upstream.origin,
    // One directory per process: tsx's loader hooks run on a second thread, which writes its own profile.
    nodeFlags: ["--cpu-prof", `--cpu-prof-dir=${join(dir, kind)}`],
  });
  const pool = createPool(gw.origin);
  const target = { isGateway: true };
  const send = kind === "unary" ? unarySender(pool, restSpec(target, UNARY_SCENARIO, false)) : streamSender(pool, restSpec(target, ctx.plan.streaming.scenario, true));
  try {
    ctx.progress.step(`profile · ${kind} · warm-up`);
    await runLoad({ concurrency, durationMs: Math.min(1000, durationMs / 4), send });
    const fromUs = monotonicUs();
    ctx.progress.step(`profile · ${kind} · c=${concurrency} for ${durationMs / 1000} s`);
    const r = await runLoad({ concurrency, durationMs, send, onProgress: (n, ms) => ctx.progress.detail(rate(n, ms)) });
    const toUs = monotonicUs();
    if (r.errors > 0) ctx.progress.note(`profile ${kind}: ${r.errors} errors; first: ${r.firstError}`);
    await pool.close();
    await gw.stop();
    // Files are CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile; thread 0 is the main thread, which serves requests.
    const file = readdirSync(join(dir, kind)).find((f) => f.includes(`.${gw.pid}.0.`) && f.endsWith(".cpuprofile"));
    if (file === undefined) throw new Error(`the profiled gateway wrote no main-thread profile (exit: ${await gw.exited})`);
    const profile = JSON.parse(readFileSync(join(dir, kind, file), "utf8")) as CpuProfile;
    // Only the measured load counts: start-up, warm-up and shutdown are left out.
    return analyzeProfile(profile, { repoRoot: REPO_ROOT.replace(/\/$/, ""), fromUs, toUs, top: 20, resolve: tsxSourceResolver() });
  } finally {
    await pool.close().catch(() => {});
    await gw.stop();
  }
}

/** profileSections profiles the gateway under unary and streaming load and returns one section per kind. */
export async function profileSections(ctx: BenchContext): Promise<Section[]> {
  const dir = mkdtempSync(join(tmpdir(), "llmgw-bench-prof-"));
  const out: Section[] = [];
  // V8 samples wall time: a process that shares the gateway's CPU (the shared upstream) would have its
  // work billed to whatever gateway frame it preempted. This upstream runs beside the load generator instead.
  const upstream = await spawnServer({
    name: "upstream (profile)",
    script: compiled("bench/upstream.ts"),
    args: ["--port", "0"],
    cpus: ctx.pinning.enabled ? ctx.pinning.loadgen : undefined,
    readiness: { kind: "stdout-port" },
  });
  try {
    for (const kind of ["unary", "stream"] as const) {
      let summary: ProfileSummary;
      try {
        summary = await profileOnce(ctx, kind, dir, upstream);
      } catch (err) {
        out.push({ id: `profile-${kind}`, title: `CPU profile: ${kind}`, columns: [], rows: [], notes: [`not measured: ${(err as Error).message}`] });
        continue;
      }
      const load = kind === "unary" ? "non-streaming requests" : `streams (${ctx.plan.streaming.scenario})`;
      out.push({
        id: `profile-${kind}`,
        title: `CPU profile of the gateway: ${load}, concurrency ${ctx.plan.profile.concurrency} — top functions by self time`,
        columns: [
          { key: "self", label: "self" },
          { key: "location", label: "location" },
          { key: "caller", label: "called from (nearest package or repo frame)" },
        ],
        rows: summary.self.map((h) => ({
          figure: h.functionName,
          cells: { self: { text: pct(h.pct) }, location: { text: h.location }, caller: { text: h.caller ?? "" } },
        })),
        notes: [
          `Busy ${(summary.busyUs / 1000).toFixed(0)} ms sampled, idle ${(summary.idleUs / 1000).toFixed(0)} ms; percentages are of busy time. The profiled gateway has ${ctx.pinning.enabled ? `CPU ${ctx.pinning.servers}` : "its CPU"} to itself (its upstream runs with the load generator). Samples are wall time of the main thread while busy: a native call such as writeString also carries the time the process's own libuv threads (file writes) took the CPU from it.`,
          `Self time by module: ${summary.modules.slice(0, 12).map((m) => `${m.module} ${pct(m.pct)}`).join(", ")}.`,
          `This repository's functions by inclusive time: ${summary.inclusive.slice(0, 15).map((h) => `${h.functionName} (${h.location}) ${pct(h.pct)}`).join("; ")}.`,
        ],
        raw: summary,
      });
    }
  } finally {
    await upstream.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}
