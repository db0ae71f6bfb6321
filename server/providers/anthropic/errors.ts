import { UpstreamError, type ErrorClass } from "../../core/errors.js";
import { upstreamErrorMessage } from "../error-message.js";
import { isObject, parseJsonOrUndefined, type HeaderBag } from "../json-upstream.js";
import { retryAfterMs } from "../retry-hints.js";

/**
 * Anthropic errors → the gateway's error classes. The body is
 * `{"type":"error","error":{"type","message"}}`, both as an HTTP error and as
 * an `event: error` after a 200; the error type decides, the status is the
 * fallback for bodies that are not Anthropic's (a proxy's page).
 */

const classByType: Record<string, ErrorClass> = {
  invalid_request_error: "invalid_request",
  authentication_error: "auth",
  permission_error: "auth",
  billing_error: "quota_exhausted",
  not_found_error: "not_found",
  request_too_large: "context_length_exceeded",
  rate_limit_error: "rate_limited",
  api_error: "server_error",
  timeout_error: "timeout",
  overloaded_error: "overloaded",
};

/** classByStatus is the class of an HTTP status when the body does not say. */
function classByStatus(status: number): ErrorClass {
  if (status === 400 || status === 422) return "invalid_request";
  if (status === 401 || status === 403) return "auth";
  if (status === 402) return "quota_exhausted";
  if (status === 404) return "not_found";
  if (status === 408 || status === 504) return "timeout";
  if (status === 413) return "context_length_exceeded";
  if (status === 429) return "rate_limited";
  if (status === 503 || status === 529) return "overloaded";
  if (status >= 500) return "server_error";
  return "invalid_request";
}

// "prompt is too long: 210000 tokens > 200000 maximum", "input length and `max_tokens` exceed context limit".
const contextTooLong = /prompt is too long|exceed(s|ed)? (the )?context (limit|window)|too many (input )?tokens/i;

/** AnthropicErrorInfo is the type and message of an Anthropic error body. */
export interface AnthropicErrorInfo {
  type?: string;
  message?: string;
}

/** errorInfo extracts the error type and message from a parsed Anthropic error body. */
export function errorInfo(body: unknown): AnthropicErrorInfo {
  if (!isObject(body) || !isObject(body.error)) return {};
  const info: AnthropicErrorInfo = {};
  if (typeof body.error.type === "string") info.type = body.error.type;
  if (typeof body.error.message === "string") info.message = body.error.message;
  return info;
}

/** classifyAnthropicError picks the class of an Anthropic error from its type, message and status. */
export function classifyAnthropicError(info: AnthropicErrorInfo, status: number): ErrorClass {
  let errorClass = (info.type !== undefined ? classByType[info.type] : undefined) ?? classByStatus(status);
  if (errorClass === "invalid_request" && contextTooLong.test(info.message ?? "")) errorClass = "context_length_exceeded";
  return errorClass;
}

/**
 * anthropicHttpError classifies a non-2xx response. The message is the
 * upstream one, redacted (the key among `secrets`) and cut; the URL is never
 * part of it.
 */
export function anthropicHttpError(
  providerId: string,
  status: number,
  headers: HeaderBag,
  bodyText: string,
  secrets: ReadonlyArray<string | undefined>,
): UpstreamError {
  const body = parseJsonOrUndefined(bodyText);
  const info = errorInfo(body);
  const errorClass = classifyAnthropicError(info, status);
  const message = info.message ?? (bodyText.trim() !== "" && body === undefined ? bodyText : `HTTP ${status}`);
  const options: { status: number; retryAfterMs?: number } = { status };
  const retry = retryAfterMs(headers);
  if (retry !== undefined) options.retryAfterMs = retry;
  return new UpstreamError(errorClass, upstreamErrorMessage(providerId, message, secrets), options);
}

/** anthropicStreamError classifies an `event: error` that arrived after the 200. */
export function anthropicStreamError(providerId: string, body: unknown, secrets: ReadonlyArray<string | undefined>): UpstreamError {
  const info = errorInfo(body);
  // An unknown type mid-stream is the provider failing, not the request being wrong.
  const known = info.type !== undefined && Object.hasOwn(classByType, info.type);
  const errorClass = known ? classifyAnthropicError(info, 0) : "server_error";
  return new UpstreamError(errorClass, upstreamErrorMessage(providerId, info.message ?? "the stream reported an error", secrets), {
    status: 200,
  });
}
