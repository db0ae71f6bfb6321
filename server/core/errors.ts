/**
 * Errors the gateway raises. Edges map a GatewayError to their own protocol
 * (a Connect code, or an OpenAI-shaped body and status); UpstreamError is what
 * adapters throw, classified so the router decides on classes, never on raw
 * statuses.
 */

/**
 * ErrorCode is the caller-facing kind of error; the names follow Connect's
 * codes, which the REST shim maps to HTTP statuses.
 */
export type ErrorCode =
  | "invalid_argument"
  | "unauthenticated"
  | "permission_denied"
  | "not_found"
  | "resource_exhausted"
  | "unavailable"
  | "deadline_exceeded"
  | "canceled"
  | "internal";

/**
 * ErrorClass classifies an upstream failure independently of the provider.
 * See proto/llmgateway/v1/trace.proto for the meaning of each.
 */
export type ErrorClass =
  | "rate_limited"
  | "overloaded"
  | "quota_exhausted"
  | "auth"
  | "invalid_request"
  | "context_length_exceeded"
  | "content_filtered"
  | "not_found"
  | "server_error"
  | "timeout"
  | "connection"
  | "cancelled"
  | "malformed_response";

const retryableClasses: ReadonlySet<ErrorClass> = new Set<ErrorClass>([
  "rate_limited",
  "overloaded",
  "server_error",
  "timeout",
  "connection",
  "malformed_response",
]);

/**
 * isRetryable tells whether another attempt (on this deployment after a
 * backoff, or on another one) may succeed. context_length_exceeded is not
 * retryable as such: the router may still move to a larger window.
 */
export function isRetryable(errorClass: ErrorClass): boolean {
  return retryableClasses.has(errorClass);
}

/** GatewayErrorOptions are the optional parts of a GatewayError. */
export interface GatewayErrorOptions {
  /** param names the offending request field, such as "messages[2].role". */
  param?: string;
  /** retryAfterMs tells the caller when to try again (rate limits, budgets). */
  retryAfterMs?: number;
  /** type overrides the OpenAI error type on the REST shim. */
  openaiType?: string;
  /** openaiCode sets the OpenAI error code on the REST shim. */
  openaiCode?: string;
  /** cause is the underlying error, for logs only. */
  cause?: unknown;
}

/** GatewayError is an error meant for the caller, with a clear message. */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly param?: string;
  readonly retryAfterMs?: number;
  readonly openaiType?: string;
  readonly openaiCode?: string;
  /** trace is the route trace of a request that failed after routing. */
  trace?: unknown;

  constructor(code: ErrorCode, message: string, options: GatewayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "GatewayError";
    this.code = code;
    this.param = options.param;
    this.retryAfterMs = options.retryAfterMs;
    this.openaiType = options.openaiType;
    this.openaiCode = options.openaiCode;
  }
}

/** invalidArgument is a GatewayError for a bad request field. */
export function invalidArgument(param: string, message: string): GatewayError {
  return new GatewayError("invalid_argument", `${param}: ${message}`, { param });
}

/** UpstreamErrorOptions are the optional parts of an UpstreamError. */
export interface UpstreamErrorOptions {
  /** status is the upstream HTTP status, 0 when none was received. */
  status?: number;
  /** retryAfterMs is the provider's retry hint. */
  retryAfterMs?: number;
  /** cause is the underlying error, for logs only. */
  cause?: unknown;
}

/**
 * UpstreamError is a classified provider failure. Its message is already
 * sanitized: adapters must never put a key or a credentialed URL in it.
 */
export class UpstreamError extends Error {
  readonly errorClass: ErrorClass;
  readonly status: number;
  readonly retryAfterMs?: number;

  constructor(errorClass: ErrorClass, message: string, options: UpstreamErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "UpstreamError";
    this.errorClass = errorClass;
    this.status = options.status ?? 0;
    this.retryAfterMs = options.retryAfterMs;
  }

  /** retryable tells whether another attempt may succeed. */
  get retryable(): boolean {
    return isRetryable(this.errorClass);
  }
}
