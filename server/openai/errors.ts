import { GatewayError, UpstreamError, type ErrorCode } from "../core/errors.js";

/**
 * GatewayError → OpenAI-shaped error body and HTTP status, chosen so the
 * official SDK raises its usual classes (BadRequestError, AuthenticationError,
 * PermissionDeniedError, NotFoundError, RateLimitError, InternalServerError).
 */

const statusByCode: Record<ErrorCode, number> = {
  invalid_argument: 400,
  unauthenticated: 401,
  permission_denied: 403,
  not_found: 404,
  resource_exhausted: 429,
  canceled: 499,
  internal: 500,
  unavailable: 503,
  deadline_exceeded: 504,
};

const typeByCode: Record<ErrorCode, string> = {
  invalid_argument: "invalid_request_error",
  unauthenticated: "authentication_error",
  permission_denied: "permission_error",
  not_found: "invalid_request_error",
  resource_exhausted: "rate_limit_error",
  canceled: "request_cancelled",
  internal: "server_error",
  unavailable: "server_error",
  deadline_exceeded: "timeout_error",
};

/** OpenAIErrorReply is a status, headers and body for an error. */
export interface OpenAIErrorReply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** toOpenAIError renders any thrown value; unknown errors become a generic 500 without internals. */
export function toOpenAIError(err: unknown): OpenAIErrorReply {
  const e = err instanceof GatewayError ? err : new GatewayError("internal", "internal error");
  const headers: Record<string, string> = {};
  if (e.retryAfterMs !== undefined) {
    headers["retry-after-ms"] = String(e.retryAfterMs);
    headers["retry-after"] = String(Math.max(1, Math.ceil(e.retryAfterMs / 1000)));
  }
  // A provider's verdict that another try cannot help (a dead key, an exhausted quota) must not
  // be retried by the SDK just because it arrives as a 5xx; the SDK honours x-should-retry.
  if (e.cause instanceof UpstreamError && !e.cause.retryable) headers["x-should-retry"] = "false";
  const body: Record<string, unknown> = {
    error: {
      message: e.message,
      type: e.openaiType ?? typeByCode[e.code],
      param: e.param ?? null,
      code: e.openaiCode ?? e.code,
    },
  };
  if (e.trace !== undefined) body.x_gateway = { route: e.trace };
  // An oversized body is the caller's mistake like any bad argument, but HTTP has a status of its own for it.
  const status = e.openaiCode === "request_too_large" ? 413 : statusByCode[e.code];
  return { status, headers, body: JSON.stringify(body) };
}
