import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createPool, runLoad, streamSender, unarySender, type Send } from "../load.js";
import { UNARY_SCENARIO } from "../plan.js";
import type { Cell, Section } from "../report.js";
import { freePort } from "../servers.js";
import { percentile, spread } from "../stats.js";
import { PROMPT, measure, restSpec } from "../targets.js";
import { ErrorLog, rate, versusFloor, type BenchContext } from "./common.js";

/**
 * Another gateway side by side with ours, on the same upstream, the same
 * client and the same CPU: latency at concurrency 1, CPU per request under
 * load and time to first token, each against the floor. The other gateway
 * is whatever command --other-cmd starts ({port} and {upstream} are filled
 * in); --other-header adds the headers it needs to reach the upstream (such
 * as Portkey's x-portkey-custom-host). It must speak OpenAI's
 * /v1/chat/completions. Its streaming is measured only when its first
 * stream succeeds; otherwise the report says why.
 */

/** OtherGateway says how to start and call the other gateway. */
export interface OtherGateway {
  /** name labels its column. */
  name: string;
  /** command is a shell command line; {port} and {upstream} (the upstream's origin) are substituted. */
  command: string;
  /** headers go on every request, after the same substitution. */
  headers: Record<string, string>;
  /** modelPrefix goes before the upstream scenario in the model name (default none). */
  modelPrefix: string;
}

/** parseHeader turns "name: value" into a pair, or throws naming the bad argument. */
export function parseHeader(text: string): [string, string] {
  const i = text.indexOf(":");
  const name = i < 0 ? "" : text.slice(0, i).trim();
  if (name === "" || !/^[!#$%&'*+.^_`|~0-9a-z-]+$/i.test(name)) throw new Error(`--other-header ${JSON.stringify(text)}: expected "name: value"`);
  return [name.toLowerCase(), text.slice(i + 1).trim()];
}

/** fill substitutes {port} and {upstream}. */
export function fill(template: string, port: number, upstream: string): string {
  return template.replaceAll("{port}", String(port)).replaceAll("{upstream}", upstream);
}

interface Running {
  child: ChildProcess;
  origin: string;
  output: () => string;
}

async function startOther(ctx: BenchContext, other: OtherGateway): Promise<Running> {
  const port = await freePort();
  const command = fill(other.command, port, ctx.upstream.origin);
  const argv = [...(ctx.pinning.enabled ? ["taskset", "-c", ctx.pinning.servers] : []), "sh", "-c", command];
  // Its own process group, so stopping it also stops whatever the command line started.
  const child = spawn(argv[0]!, argv.slice(1), { detached: true, stdio: ["ignore", "pipe", "pipe"] });
  // Outside the bench's process group, so an interrupted run must stop it on the way out.
  const onExit = () => stopOther(child);
  process.once("exit", onExit);
  child.once("exit", () => process.off("exit", onExit));
  let output = "";
  const keep = (b: Buffer) => {
    if (output.length < 8192) output += b.toString("utf8");
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const origin = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  // Ready once anything answers HTTP on the port (any status: gateways differ in what / returns).
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${other.name} exited before listening: ${output.slice(-500)}`);
    const up = await fetch(`${origin}/`, { signal: AbortSignal.timeout(1000) }).then(
      async (r) => {
        await r.arrayBuffer();
        return true;
      },
      () => false,
    );
    if (up) return { child, origin, output: () => output };
    if (Date.now() > deadline) {
      stopOther(child);
      throw new Error(`${other.name} did not answer on port ${port} within 30 s: ${output.slice(-500)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

function stopOther(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, "SIGKILL");
  } catch {
    // Already gone.
  }
}

type Who = "proxy" | "gateway" | "other";
const WHO: readonly Who[] = ["proxy", "gateway", "other"];

/** compareSection measures the floor, our gateway (memory state) and the other gateway in interleaved rounds. */
export async function compareSection(ctx: BenchContext, other: OtherGateway): Promise<Section> {
  const { rounds, durationMs, concurrency } = ctx.plan.protocols;
  const { concurrency: streams, scenario } = ctx.plan.streaming;
  const title = `Another gateway side by side: ${other.name} (memory state, same upstream and CPU)`;
  const proxy = ctx.targets.find((t) => t.id === "proxy");
  const gateway = ctx.targets.find((t) => t.id === "gateway");
  if (proxy === undefined || gateway === undefined) return { id: "compare", title, columns: [], rows: [], notes: ["not measured: the floor or the gateway did not start"] };
  const running = await startOther(ctx, other);
  const pool = createPool(running.origin);
  const headers = Object.fromEntries(Object.entries(other.headers).map(([k, v]) => [k, fill(v, 0, ctx.upstream.origin)]));
  const otherSpec = (stream: boolean) => {
    // Not a gateway in restSpec's sense: the model name is the scenario as given, after the other's prefix.
    const spec = restSpec({ isGateway: false }, `${other.modelPrefix}${stream ? scenario : UNARY_SCENARIO}`, stream);
    return { ...spec, headers: { ...spec.headers, ...headers } };
  };
  const unary: Record<Who, Send> = {
    proxy: unarySender(proxy.pool, restSpec(proxy, UNARY_SCENARIO, false)),
    gateway: unarySender(gateway.pool, restSpec(gateway, UNARY_SCENARIO, false)),
    other: unarySender(pool, otherSpec(false)),
  };
  const stream: Record<Who, Send> = {
    proxy: streamSender(proxy.pool, restSpec(proxy, scenario, true)),
    gateway: streamSender(gateway.pool, restSpec(gateway, scenario, true)),
    other: streamSender(pool, otherSpec(true)),
  };
  const pids: Record<Who, number> = { proxy: proxy.server.pid, gateway: gateway.server.pid, other: running.child.pid! };
  const p50: Record<Who, number[]> = { proxy: [], gateway: [], other: [] };
  const p99: Record<Who, number[]> = { proxy: [], gateway: [], other: [] };
  const cpu: Record<Who, number[]> = { proxy: [], gateway: [], other: [] };
  const ttft: Record<Who, number[]> = { proxy: [], gateway: [], other: [] };
  const errors = new ErrorLog();
  const notes: string[] = [];
  try {
    const first = await unary.other();
    if (!first.ok) {
      return { id: "compare", title, columns: [], rows: [], notes: [`not measured: ${other.name}'s first request failed: ${first.error}; its output: ${running.output().slice(-300)}`] };
    }
    const firstStream = await stream.other();
    const streamed = firstStream.ok;
    if (!streamed) notes.push(`${other.name}: streaming not measured: its first stream failed (${firstStream.error}).`);
    ctx.progress.step(`compare · warm-up · ${other.name}`);
    await runLoad({ concurrency, durationMs: ctx.plan.warmupMs, send: unary.other });
    for (let r = 1; r <= rounds; r++) {
      for (const who of WHO) {
        const label = who === "other" ? other.name : who;
        ctx.progress.step(`compare · round ${r}/${rounds} · ${label} · c=1`);
        await runLoad({ concurrency: 1, durationMs: ctx.plan.preRoundMs, send: unary[who] });
        const lat = await runLoad({ concurrency: 1, durationMs, send: unary[who], onProgress: (n, ms) => ctx.progress.detail(rate(n, ms)) });
        errors.add(`${label} c=1`, lat.errors, lat.requests, lat.firstError);
        const sorted = lat.latency.sorted();
        p50[who].push(percentile(sorted, 50) / 1000);
        p99[who].push(percentile(sorted, 99) / 1000);
        ctx.progress.step(`compare · round ${r}/${rounds} · ${label} · c=${concurrency}`);
        const m = await measure(pids[who], { concurrency, durationMs, send: unary[who], onProgress: (n, ms) => ctx.progress.detail(rate(n, ms)) });
        errors.add(`${label} c=${concurrency}`, m.result.errors, m.result.requests, m.result.firstError);
        cpu[who].push(m.result.requests === 0 ? Number.NaN : m.cpuUs / m.result.requests);
        if (!streamed) continue;
        ctx.progress.step(`compare · round ${r}/${rounds} · ${label} · ${streams} streams`);
        const s = await runLoad({ concurrency: streams, durationMs, send: stream[who], onProgress: (n, ms) => ctx.progress.detail(rate(n, ms)) });
        errors.add(`${label} streams`, s.errors, s.requests, s.firstError);
        ttft[who].push(percentile(s.ttft.sorted(), 50) / 1000);
      }
    }
  } finally {
    await pool.close().catch(() => {});
    stopOther(running.child);
    await once(running.child, "exit").catch(() => {});
  }
  const row = (figure: string, values: Record<Who, number[]>, unit: "ms" | "µs", kind: "diff" | "ratio"): { figure: string; cells: Record<string, Cell> } => {
    const vs = (who: Who): Cell => (values[who].length === 0 ? { text: "not measured" } : versusFloor(values[who], values.proxy, kind, unit));
    const cell = (who: Who): Cell => (values[who].length === 0 ? { text: "not measured" } : { value: spread(values[who]), unit });
    return { figure, cells: { proxy: cell("proxy"), gateway: cell("gateway"), other: cell("other"), gatewayVsFloor: vs("gateway"), otherVsFloor: vs("other") } };
  };
  return {
    id: "compare",
    title,
    columns: [
      { key: "proxy", label: "floor (proxy)" },
      { key: "gateway", label: "gateway" },
      { key: "other", label: other.name },
      { key: "gatewayVsFloor", label: "gateway vs floor" },
      { key: "otherVsFloor", label: `${other.name} vs floor` },
    ],
    rows: [
      row("p50 latency at c=1", p50, "ms", "diff"),
      row("p99 latency at c=1", p99, "ms", "diff"),
      row(`CPU per request at c=${concurrency}`, cpu, "µs", "ratio"),
      // Streams are measured for all three only when the other gateway streams (the streaming section has ours).
      ...(ttft.other.length > 0 ? [row(`TTFT p50 (${streams} concurrent streams, ${scenario})`, ttft, "ms", "diff")] : []),
    ],
    notes: [
      `${rounds} rounds, interleaved; each target ${durationMs / 1000} s at c=1, ${durationMs / 1000} s at c=${concurrency} and, when it streams, ${durationMs / 1000} s of streams. Same prompt ("${PROMPT.slice(0, 30)}…") and upstream for all; ${other.name} was started with: ${other.command}`,
      `${other.name} runs on the servers' CPU like the gateway; its CPU is its whole process tree. Our gateway enforces its bench configuration (a key, per-key limits, a budget, request logs at info); ${other.name} runs as its command line configures it.`,
      ...notes,
      ...errors.notes,
    ],
    raw: { p50Ms: p50, p99Ms: p99, cpuPerRequestUs: cpu, ttftP50Ms: ttft },
  };
}
