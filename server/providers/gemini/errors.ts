import { UpstreamError, type ErrorClass } from "../../core/errors.js";
import { upstreamErrorMessage } from "../error-message.js";
import { isObject, parseJsonOrUndefined, type HeaderBag } from "../json-upstream.js";
import { parseDurationMs, retryAfterMs } from "../retry-hints.js";

/**
 * Gemini errors → the gateway's error classes. The body is
 * `{"error":{code,message,status,details}}` (an array of one such object on
 * some endpoints). Two traps: a bad API key is a 400 INVALID_ARGUMENT whose
 * details say API_KEY_INVALID (it is auth, not a bad request), and the retry
 * hint of a 429 is `details[].retryDelay` ("34s"), not a header.
 */

interface GeminiErrorBody {
  code?: number;
  message?: string;
  status?: string;
  details: Array<Record<string, unknown>>;
}

function errorBody(body: unknown): GeminiErrorBody | undefined {
  const outer = Array.isArray(body) ? body[0] : body;
  if (!isObject(outer) || !isObject(outer.error)) return undefined;
  const e = outer.error;
  const parsed: GeminiErrorBody = { details: Array.isArray(e.details) ? e.details.filter(isObject) : [] };
  if (typeof e.code === "number") parsed.code = e.code;
  if (typeof e.message === "string") parsed.message = e.message;
  if (typeof e.status === "string") parsed.status = e.status;
  return parsed;
}

const authReasons = new Set(["API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED", "ACCESS_TOKEN_EXPIRED"]);
// "The input token count (1048577) exceeds the maximum number of tokens allowed (1048576)."
const contextTooLong = /input token count.*exceeds|exceeds the maximum number of tokens|too many tokens/i;

function classify(status: number, e: GeminiErrorBody | undefined): ErrorClass {
  const reasons = (e?.details ?? []).map((d) => d.reason).filter((r): r is string => typeof r === "string");
  if (reasons.some((r) => authReasons.has(r)) || /API key not valid|API key expired/i.test(e?.message ?? "")) return "auth";
  const code = status !== 200 && status !== 0 ? status : (e?.code ?? 0);
  const grpcStatus = e?.status ?? "";
  if (code === 400 || grpcStatus === "INVALID_ARGUMENT" || grpcStatus === "FAILED_PRECONDITION") {
    return contextTooLong.test(e?.message ?? "") ? "context_length_exceeded" : "invalid_request";
  }
  if (code === 401 || code === 403 || grpcStatus === "UNAUTHENTICATED" || grpcStatus === "PERMISSION_DENIED") return "auth";
  if (code === 404 || grpcStatus === "NOT_FOUND") return "not_found";
  // Daily and per-minute quotas both come back as 429 RESOURCE_EXHAUSTED with a retryDelay;
  // the delay tells the router how long to stay away, so both are rate_limited.
  if (code === 429 || grpcStatus === "RESOURCE_EXHAUSTED") return "rate_limited";
  if (code === 503 || grpcStatus === "UNAVAILABLE") return "overloaded";
  if (code === 504 || code === 408 || grpcStatus === "DEADLINE_EXCEEDED") return "timeout";
  if (code >= 500 || grpcStatus === "INTERNAL") return "server_error";
  return code >= 400 ? "invalid_request" : "server_error";
}

function retryDelayMs(e: GeminiErrorBody | undefined): number | undefined {
  for (const d of e?.details ?? []) {
    if (typeof d.retryDelay === "string") {
      const ms = parseDurationMs(d.retryDelay);
      if (ms !== undefined) return ms;
    }
  }
  return undefined;
}

/**
 * geminiBodyError classifies a parsed Gemini error body, from an HTTP error
 * or a streamed event (status 200). The message is the upstream one,
 * redacted (the key among `secrets`, any `?key=`) and cut; never the URL.
 */
export function geminiBodyError(
  providerId: string,
  body: unknown,
  status: number,
  secrets: ReadonlyArray<string | undefined>,
  headers: HeaderBag = {},
  fallbackText = "",
): UpstreamError {
  const e = errorBody(body);
  const errorClass = classify(status, e);
  const message = e?.message ?? (fallbackText.trim() !== "" ? fallbackText : `HTTP ${status}`);
  const options: { status: number; retryAfterMs?: number } = { status };
  const retry = retryDelayMs(e) ?? retryAfterMs(headers);
  if (retry !== undefined) options.retryAfterMs = retry;
  return new UpstreamError(errorClass, upstreamErrorMessage(providerId, message, secrets), options);
}

/** geminiHttpError classifies a non-2xx response from its status, headers and body text. */
export function geminiHttpError(
  providerId: string,
  status: number,
  headers: HeaderBag,
  bodyText: string,
  secrets: ReadonlyArray<string | undefined>,
): UpstreamError {
  const body = parseJsonOrUndefined(bodyText);
  return geminiBodyError(providerId, body, status, secrets, headers, body === undefined ? bodyText : "");
}
