import type { Pool } from "undici";
import { BENCH_KEY, MODEL_PREFIX } from "./gateway-config.js";
import { runLoad, type HttpRequestSpec, type LoadOptions, type LoadResult } from "./load.js";
import { meterCpu } from "./proc.js";
import type { ServerProcess } from "./servers.js";

/**
 * The things measured side by side: the upstream directly, the pipe proxy
 * (the floor), the gateway on memory state and the gateway on Redis state.
 * Every target gets byte-for-byte the same kind of request (only the model
 * name carries the gateway's `bench/` prefix), from the same client code.
 */

/** TargetId names a target. */
export type TargetId = "direct" | "proxy" | "gateway" | "gatewayRedis";

/** TARGET_LABELS are the targets' names in the report. */
export const TARGET_LABELS: Readonly<Record<TargetId, string>> = {
  direct: "direct",
  proxy: "floor (proxy)",
  gateway: "gateway",
  gatewayRedis: "gateway+Redis",
};

/** Target is one running thing to send load to. */
export interface Target {
  id: TargetId;
  /** server is the process whose CPU and memory are measured (the upstream itself for direct). */
  server: ServerProcess;
  pool: Pool;
  /** isGateway is true when model ids need the gateway's prefix. */
  isGateway: boolean;
}

/** PROMPT is the user message of every request (~100 characters, a typical short prompt). */
export const PROMPT = "Summarize the following in one sentence: the quick brown fox jumps over the lazy dog, twice, at noon.";

/** AUTHORIZATION is the header every request carries (the upstream and proxy ignore it). */
export const AUTHORIZATION = `Bearer ${BENCH_KEY}`;

/** modelFor returns the model id a target expects for an upstream scenario. */
export function modelFor(target: Pick<Target, "isGateway">, scenario: string): string {
  return target.isGateway ? `${MODEL_PREFIX}${scenario}` : scenario;
}

/** restSpec builds a chat-completions request for a target and scenario. */
export function restSpec(target: Pick<Target, "isGateway">, scenario: string, stream: boolean): HttpRequestSpec {
  const body: Record<string, unknown> = { model: modelFor(target, scenario), messages: [{ role: "user", content: PROMPT }] };
  if (stream) {
    body.stream = true;
    body.stream_options = { include_usage: true };
  }
  return {
    path: "/v1/chat/completions",
    headers: { "content-type": "application/json", authorization: AUTHORIZATION },
    body: JSON.stringify(body),
  };
}

/** Measured is a load run plus the CPU the measured process used during it. */
export interface Measured {
  result: LoadResult;
  /** cpuUs is the target process's CPU time during the run, in µs. */
  cpuUs: number;
}

/** measure runs load while metering the CPU of pid (and its descendants). */
export async function measure(pid: number, options: LoadOptions): Promise<Measured> {
  const meter = meterCpu(pid);
  const result = await runLoad(options);
  return { result, cpuUs: meter.stop() };
}
