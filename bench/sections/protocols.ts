import { runLoad, unarySender, type Send } from "../load.js";
import { UNARY_SCENARIO } from "../plan.js";
import type { Cell, Section } from "../report.js";
import { COMPLETE_PATH, completeRequestBytes, connectUnarySpec, grpcUnarySender, openGrpcSession } from "../rpc-load.js";
import { paired, percentile, spread } from "../stats.js";
import { AUTHORIZATION, PROMPT, measure, modelFor, restSpec } from "../targets.js";
import { ErrorLog, rate, type BenchContext } from "./common.js";

/**
 * The gateway's three edges on the same upstream call: the OpenAI REST
 * shim (JSON over HTTP/1.1), Connect unary (binary protobuf over HTTP/1.1,
 * same client as REST) and gRPC (protobuf over h2c, one multiplexed
 * connection). Latency at concurrency 1 and CPU per request under load,
 * each as a ratio to the REST shim.
 */

type Protocol = "rest" | "connect" | "grpc";
const protocols: readonly Protocol[] = ["rest", "connect", "grpc"];
const labels: Record<Protocol, string> = { rest: "REST shim (JSON, h1)", connect: "Connect unary (binary, h1)", grpc: "gRPC (h2c)" };

/** protocolsSection compares the edges on the memory-state gateway. */
export async function protocolsSection(ctx: BenchContext): Promise<Section> {
  const { rounds, durationMs, concurrency } = ctx.plan.protocols;
  const gw = ctx.targets.find((t) => t.id === "gateway");
  if (gw === undefined) {
    return { id: "protocols", title: "Connect and gRPC vs the REST shim", columns: [], rows: [], notes: ["not measured: the gateway did not start"] };
  }
  const model = modelFor(gw, UNARY_SCENARIO);
  const session = await openGrpcSession(gw.server.origin);
  const senders: Record<Protocol, Send> = {
    rest: unarySender(gw.pool, restSpec(gw, UNARY_SCENARIO, false)),
    connect: unarySender(gw.pool, connectUnarySpec(model, PROMPT, AUTHORIZATION)),
    grpc: grpcUnarySender(session, COMPLETE_PATH, completeRequestBytes(model, PROMPT), AUTHORIZATION),
  };
  const p50: Record<Protocol, number[]> = { rest: [], connect: [], grpc: [] };
  const p99: Record<Protocol, number[]> = { rest: [], connect: [], grpc: [] };
  const cpu: Record<Protocol, number[]> = { rest: [], connect: [], grpc: [] };
  const errors = new ErrorLog();
  try {
    // A first call of each kind must succeed, or the figures would be of error paths.
    for (const p of protocols) {
      const s = await senders[p]();
      if (!s.ok) errors.add(`${labels[p]} (first call)`, 1, 1, s.error);
    }
    for (let r = 1; r <= rounds; r++) {
      for (const p of protocols) {
        ctx.progress.step(`protocols · round ${r}/${rounds} · ${labels[p]} · c=1`);
        await runLoad({ concurrency: 1, durationMs: ctx.plan.preRoundMs, send: senders[p] });
        const lat = await runLoad({ concurrency: 1, durationMs, send: senders[p], onProgress: (n, ms) => ctx.progress.detail(rate(n, ms)) });
        errors.add(`${labels[p]} c=1`, lat.errors, lat.requests, lat.firstError);
        const sorted = lat.latency.sorted();
        p50[p].push(percentile(sorted, 50) / 1000);
        p99[p].push(percentile(sorted, 99) / 1000);
        ctx.progress.step(`protocols · round ${r}/${rounds} · ${labels[p]} · c=${concurrency}`);
        const m = await measure(gw.server.pid, { concurrency, durationMs, send: senders[p], onProgress: (n, ms) => ctx.progress.detail(rate(n, ms)) });
        errors.add(`${labels[p]} c=${concurrency}`, m.result.errors, m.result.requests, m.result.firstError);
        cpu[p].push(m.result.requests === 0 ? Number.NaN : m.cpuUs / m.result.requests);
      }
    }
  } finally {
    session.close();
  }
  const row = (figure: string, values: Record<Protocol, number[]>, unit: "ms" | "µs"): { figure: string; cells: Record<string, Cell> } => ({
    figure,
    cells: {
      rest: { value: spread(values.rest), unit },
      connect: { value: spread(values.connect), unit },
      grpc: { value: spread(values.grpc), unit },
      connectVsRest: { value: spread(paired(values.connect, values.rest, "ratio")), unit: "×" },
      grpcVsRest: { value: spread(paired(values.grpc, values.rest, "ratio")), unit: "×" },
    },
  });
  return {
    id: "protocols",
    title: "Gateway edges: Connect unary and gRPC vs the REST shim (non-streaming, memory state)",
    columns: [
      { key: "rest", label: labels.rest },
      { key: "connect", label: labels.connect },
      { key: "grpc", label: labels.grpc },
      { key: "connectVsRest", label: "Connect / REST" },
      { key: "grpcVsRest", label: "gRPC / REST" },
    ],
    rows: [row("p50 latency at c=1", p50, "ms"), row("p99 latency at c=1", p99, "ms"), row(`CPU per request at c=${concurrency}`, cpu, "µs")],
    notes: [
      `${rounds} rounds; each protocol ${durationMs / 1000} s at c=1 and ${durationMs / 1000} s at c=${concurrency}. Connect and REST share one undici client; gRPC uses a raw node:http2 session (its client cost differs, so its latency ratio includes the client).`,
      ...errors.notes,
    ],
    raw: { p50Ms: p50, p99Ms: p99, cpuPerRequestUs: cpu },
  };
}
