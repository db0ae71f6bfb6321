import type { ErrorClass } from "./errors.js";

/**
 * The route trace: every attempt a request made and why the router chose
 * what it chose. Both edges render it (the RPC as RouteTrace, the REST shim
 * as headers and an error field), and the request log records its summary.
 */

/** AttemptRecord is one upstream attempt. */
export interface AttemptRecord {
  provider: string;
  model: string;
  outcome: "succeeded" | "failed" | "cancelled";
  errorClass?: ErrorClass;
  errorMessage?: string;
  latencyMs: number;
  timeToFirstTokenMs?: number;
  httpStatus: number;
  retryAfterMs?: number;
  hedged: boolean;
}

/** SkippedRecord is a candidate filtered out before any attempt. */
export interface SkippedRecord {
  model: string;
  reason: string;
}

/** RouteTraceRecord explains how one request was routed. */
export interface RouteTraceRecord {
  /** route is the route id requested; empty when a model was named. */
  route: string;
  strategy: string;
  reason: string;
  attempts: AttemptRecord[];
  skipped: SkippedRecord[];
}
