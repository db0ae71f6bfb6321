import { Code, ConnectError } from "@connectrpc/connect";
import { AttemptOutcome, ErrorClass, RouteTraceSchema, type RouteTrace } from "../../gen/llmgateway/v1/trace_pb.js";

/**
 * Test support for routing and resilience: a route trace reduced to what
 * the tests compare, and a ConnectError's code, retry hint and trace.
 */

/** SeenAttempt is one attempt as the tests compare it. */
export interface SeenAttempt {
  model: string;
  outcome: "succeeded" | "failed" | "cancelled";
  errorClass?: string;
  retryAfterMs?: number;
  hedged: boolean;
  errorMessage: string;
}

/** attemptsOf reduces a trace's attempts. */
export function attemptsOf(trace: RouteTrace | undefined): SeenAttempt[] {
  return (trace?.attempts ?? []).map((a) => {
    const seen: SeenAttempt = {
      model: a.model,
      outcome: a.outcome === AttemptOutcome.SUCCEEDED ? "succeeded" : a.outcome === AttemptOutcome.CANCELLED ? "cancelled" : "failed",
      hedged: a.hedged,
      errorMessage: a.errorMessage,
    };
    if (a.errorClass !== ErrorClass.UNSPECIFIED) seen.errorClass = ErrorClass[a.errorClass]!.toLowerCase();
    if (a.retryAfterMs !== undefined) seen.retryAfterMs = a.retryAfterMs;
    return seen;
  });
}

/** RpcFailure is what a failed RPC told its caller. */
export interface RpcFailure {
  code: Code;
  message: string;
  retryAfterMs?: number;
  trace?: RouteTrace;
}

/** rpcFailure runs an RPC that must fail and returns what the caller saw. */
export async function rpcFailure(call: () => Promise<unknown>): Promise<RpcFailure> {
  try {
    await call();
  } catch (err) {
    const ce = ConnectError.from(err);
    const hint = ce.metadata.get("retry-after-ms");
    return { code: ce.code, message: ce.rawMessage, retryAfterMs: hint === null ? undefined : Number(hint), trace: ce.findDetails(RouteTraceSchema)[0] };
  }
  throw new Error("the call was expected to fail");
}

/** deleteRedisKeys removes every key containing marker (a test's random key prefix) from a real Redis. */
export async function deleteRedisKeys(url: string, marker: string): Promise<void> {
  const { Redis } = await import("ioredis");
  const admin = new Redis(url, { maxRetriesPerRequest: 1 });
  try {
    let cursor = "0";
    do {
      const [next, keys] = await admin.scan(cursor, "MATCH", `*${marker}*`, "COUNT", 500);
      cursor = next;
      if (keys.length > 0) await admin.del(...keys);
    } while (cursor !== "0");
  } finally {
    admin.disconnect();
  }
}
