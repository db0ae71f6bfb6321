import { Code, ConnectError } from "@connectrpc/connect";
import { RouteTraceSchema } from "../../gen/llmgateway/v1/trace_pb.js";
import { GatewayError, type ErrorCode } from "../core/errors.js";
import type { RouteTraceRecord } from "../core/trace.js";
import { traceToProto } from "./convert.js";

/**
 * GatewayError → ConnectError. Rate limits and budgets carry a
 * `retry-after-ms` header; failures after routing carry the route trace as
 * an error detail, so a client can see every attempt.
 */

const codes: Record<ErrorCode, Code> = {
  invalid_argument: Code.InvalidArgument,
  unauthenticated: Code.Unauthenticated,
  permission_denied: Code.PermissionDenied,
  not_found: Code.NotFound,
  resource_exhausted: Code.ResourceExhausted,
  unavailable: Code.Unavailable,
  deadline_exceeded: Code.DeadlineExceeded,
  canceled: Code.Canceled,
  internal: Code.Internal,
};

/** toConnectError converts anything thrown by the core; unknown errors become Internal without internals. */
export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  if (!(err instanceof GatewayError)) return new ConnectError("internal error", Code.Internal);
  const metadata = new Headers();
  if (err.retryAfterMs !== undefined) metadata.set("retry-after-ms", String(err.retryAfterMs));
  const details = err.trace !== undefined ? [{ desc: RouteTraceSchema, value: traceToProto(err.trace as RouteTraceRecord) }] : [];
  return new ConnectError(err.message, codes[err.code], metadata, details);
}
