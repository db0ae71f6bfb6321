import type { ChatRequest, ChatResult, FinishReason, StreamChunk, Usage } from "../core/chat.js";
import { emptyUsage } from "../core/chat.js";
import { GatewayError, UpstreamError, type ErrorClass } from "../core/errors.js";
import type { Deployment } from "../core/runtime.js";
import type { AttemptRecord, RouteTraceRecord } from "../core/trace.js";
import { toUpstreamError } from "../providers/http.js";
import type { RoutePlan } from "./resolve.js";

/**
 * The executor walks a RoutePlan: it calls each candidate in turn and fails
 * over on retryable failures (rate limits, overload, 5xx, timeouts,
 * connection errors), never on the caller's own mistakes (400, auth, 404).
 * A prompt too long for one model moves on to a candidate with a larger
 * window. Streams fail over only until the first chunk arrives; after that
 * a failure ends the stream with the partial usage, never a duplicate.
 */

/** Completion is a successful non-streaming execution. */
export interface Completion {
  result: ChatResult;
  deployment: Deployment;
  trace: RouteTraceRecord;
}

/** ExecStreamEvent is what a streaming execution yields. */
export type ExecStreamEvent =
  | { type: "start"; deployment: Deployment; attempts: number }
  | { type: "chunk"; chunk: StreamChunk }
  | { type: "end"; outcome: StreamOutcome };

/** StreamOutcome is how a started stream ended. */
export interface StreamOutcome {
  deployment: Deployment;
  finishReason: FinishReason;
  usage: Usage;
  /** usageReported is false when the upstream never reported usage (cut streams). */
  usageReported: boolean;
  trace: RouteTraceRecord;
  /** timeToFirstTokenMs is when the first chunk arrived, from the request's start. */
  timeToFirstTokenMs?: number;
  /** error is set when the upstream failed after the stream started. */
  error?: UpstreamError;
}

function newTrace(plan: RoutePlan): RouteTraceRecord {
  return { route: plan.route, strategy: plan.strategy, reason: plan.reason, attempts: [], skipped: [...plan.skipped] };
}

function failedAttempt(d: Deployment, err: UpstreamError, started: number): AttemptRecord {
  return {
    provider: d.provider.id,
    model: d.id,
    outcome: err.errorClass === "cancelled" ? "cancelled" : "failed",
    errorClass: err.errorClass,
    errorMessage: err.message,
    latencyMs: Math.round(performance.now() - started),
    httpStatus: err.status,
    retryAfterMs: err.retryAfterMs,
    hedged: false,
  };
}

// Why a candidate is passed over: a window no larger than one that already overflowed.
function tooSmall(d: Deployment, overflowedWindow: number | undefined): boolean {
  return overflowedWindow !== undefined && d.model.context_window <= overflowedWindow;
}

/** callerError maps a non-retryable upstream failure to what the caller sees. */
function nonRetryableError(err: UpstreamError): GatewayError {
  const byClass: Partial<Record<ErrorClass, GatewayError["code"]>> = {
    invalid_request: "invalid_argument",
    context_length_exceeded: "invalid_argument",
    content_filtered: "invalid_argument",
    not_found: "not_found",
  };
  const code = byClass[err.errorClass] ?? "unavailable";
  const openaiCode =
    err.errorClass === "context_length_exceeded" ? "context_length_exceeded" : err.errorClass === "content_filtered" ? "content_filter" : undefined;
  return new GatewayError(code, err.message, { openaiCode, cause: err });
}

/**
 * failure builds the error for a request that produced no answer: the
 * caller's cancellation or deadline, a non-retryable upstream verdict, or
 * every candidate failing (ResourceExhausted when all were rate limits).
 */
function failure(trace: RouteTraceRecord, signal: AbortSignal, last: UpstreamError | undefined): GatewayError {
  let err: GatewayError;
  if (signal.aborted) {
    const timedOut = (signal.reason as { name?: string } | undefined)?.name === "TimeoutError";
    err = timedOut
      ? new GatewayError("deadline_exceeded", "the request's deadline passed before any provider answered")
      : new GatewayError("canceled", "the caller cancelled the request");
  } else if (last !== undefined && !last.retryable && last.errorClass !== "context_length_exceeded") {
    err = nonRetryableError(last);
  } else {
    const failed = trace.attempts.filter((a) => a.outcome === "failed");
    const summary = failed.map((a) => `${a.model}: ${a.errorClass} (${a.errorMessage ?? ""})`).join("; ");
    const allRateLimited = failed.length > 0 && failed.every((a) => a.errorClass === "rate_limited");
    if (last?.errorClass === "context_length_exceeded") {
      err = nonRetryableError(last);
    } else if (allRateLimited) {
      const hints = failed.map((a) => a.retryAfterMs).filter((h): h is number => h !== undefined);
      err = new GatewayError("resource_exhausted", `every candidate is rate limited: ${summary}`, {
        retryAfterMs: hints.length > 0 ? Math.min(...hints) : 1000,
        openaiCode: "rate_limit_exceeded",
      });
    } else {
      err = new GatewayError("unavailable", `all ${failed.length} attempt(s) failed: ${summary}`);
    }
  }
  err.trace = trace;
  return err;
}

/** executeComplete runs a non-streaming request through its plan. */
export async function executeComplete(plan: RoutePlan, request: ChatRequest, signal: AbortSignal): Promise<Completion> {
  const trace = newTrace(plan);
  let last: UpstreamError | undefined;
  let overflowed: number | undefined;
  for (const d of plan.candidates) {
    if (signal.aborted) break;
    if (tooSmall(d, overflowed)) {
      trace.skipped.push({ model: d.id, reason: `context window ${d.model.context_window} too small (a smaller-or-equal window overflowed)` });
      continue;
    }
    const started = performance.now();
    try {
      const result = await d.adapter.complete({ request, model: d.model, upstreamModel: d.upstreamModel, signal });
      const latencyMs = Math.round(performance.now() - started);
      trace.attempts.push({ provider: d.provider.id, model: d.id, outcome: "succeeded", latencyMs, httpStatus: 200, hedged: false });
      return { result, deployment: d, trace };
    } catch (e) {
      last = toUpstreamError(e, signal);
      trace.attempts.push(failedAttempt(d, last, started));
      if (signal.aborted) break;
      if (last.errorClass === "context_length_exceeded") overflowed = d.model.context_window;
      else if (!last.retryable) break;
    }
  }
  throw failure(trace, signal, last);
}

/**
 * executeStream runs a streaming request through its plan. The first
 * next() rejects with a GatewayError when no candidate could start; after
 * "start" the generator always finishes with an "end" event (carrying the
 * error, if the upstream failed mid-stream). Returning early (the caller
 * left) cancels the upstream request and reports what was consumed so far
 * through onAbandoned, so partial usage is still accounted.
 */
export async function* executeStream(
  plan: RoutePlan,
  request: ChatRequest,
  signal: AbortSignal,
  requestStart: number,
  onAbandoned: (outcome: StreamOutcome) => void,
): AsyncGenerator<ExecStreamEvent> {
  const trace = newTrace(plan);
  let last: UpstreamError | undefined;
  let overflowed: number | undefined;
  for (const d of plan.candidates) {
    if (signal.aborted) break;
    if (tooSmall(d, overflowed)) {
      trace.skipped.push({ model: d.id, reason: `context window ${d.model.context_window} too small (a smaller-or-equal window overflowed)` });
      continue;
    }
    const started = performance.now();
    const upstream = d.adapter.stream({ request, model: d.model, upstreamModel: d.upstreamModel, signal })[Symbol.asyncIterator]();
    let first: IteratorResult<StreamChunk>;
    try {
      first = await upstream.next();
    } catch (e) {
      last = toUpstreamError(e, signal);
      trace.attempts.push(failedAttempt(d, last, started));
      if (signal.aborted) break;
      if (last.errorClass === "context_length_exceeded") overflowed = d.model.context_window;
      else if (!last.retryable) break;
      continue;
    }
    const ttft = performance.now();
    const attempt: AttemptRecord = {
      provider: d.provider.id,
      model: d.id,
      outcome: "succeeded",
      latencyMs: 0,
      timeToFirstTokenMs: Math.round(ttft - started),
      httpStatus: 200,
      hedged: false,
    };
    trace.attempts.push(attempt);
    const outcome: StreamOutcome = {
      deployment: d,
      finishReason: "stop",
      usage: emptyUsage(),
      usageReported: false,
      trace,
      timeToFirstTokenMs: Math.round(ttft - requestStart),
    };
    let finished = false;
    const scan = (chunk: StreamChunk) => {
      for (const e of chunk.events) {
        if (e.type === "usage") {
          outcome.usage = e.usage;
          outcome.usageReported = true;
        } else if (e.type === "finish") {
          outcome.finishReason = e.finishReason;
          finished = true;
        }
      }
    };
    yield { type: "start", deployment: d, attempts: trace.attempts.length };
    let ended = false;
    try {
      if (first.done !== true) {
        scan(first.value);
        yield { type: "chunk", chunk: first.value };
        for (;;) {
          const next = await upstream.next();
          if (next.done === true) break;
          scan(next.value);
          yield { type: "chunk", chunk: next.value };
        }
      }
      if (!finished) throw new UpstreamError("connection", "the provider's stream ended before it finished");
      ended = true;
    } catch (e) {
      const err = toUpstreamError(e, signal);
      attempt.outcome = err.errorClass === "cancelled" ? "cancelled" : "failed";
      attempt.errorClass = err.errorClass;
      attempt.errorMessage = err.message;
      outcome.finishReason = "error";
      outcome.error = err;
      ended = true;
    } finally {
      attempt.latencyMs = Math.round(performance.now() - started);
      if (!ended) {
        // The consumer stopped early (the caller left): cancel upstream, account what was used.
        attempt.outcome = "cancelled";
        attempt.errorClass = "cancelled";
        outcome.finishReason = "error";
        outcome.error = new UpstreamError("cancelled", "the caller cancelled the stream");
        await upstream.return?.(undefined);
        onAbandoned(outcome);
      }
    }
    yield { type: "end", outcome };
    return;
  }
  throw failure(trace, signal, last);
}
