import { ROOT_CONTEXT, SpanKind, SpanStatusCode, propagation, trace, type TextMapGetter } from "@opentelemetry/api";

/**
 * OpenTelemetry tracing: one SERVER span per request, parented by the
 * caller's W3C `traceparent`, with the GenAI semantic-convention attributes
 * and one event per upstream attempt. It goes through @opentelemetry/api
 * only: with no SDK registered (the default) every call is a no-op and the
 * span is never filled in; an operator who registers an SDK and exporter
 * (e.g. with `node --import` of their OTel setup) gets the spans.
 *
 * The span is recorded when the request ends, with its real start time, so
 * the request path carries no span object.
 */

const tracer = trace.getTracer("llm-gateway");

/** TraceHeaders are the caller's propagation headers. */
export interface TraceHeaders {
  traceparent?: string;
  tracestate?: string;
}

/** RequestSpan is what one finished request reports. */
export interface RequestSpan {
  headers?: TraceHeaders;
  /** startEpochMs is the wall-clock time the request arrived. */
  startEpochMs: number;
  edge: "rpc" | "rest";
  requestId: string;
  keyId: string;
  requestedModel: string;
  model?: string;
  provider?: string;
  stream: boolean;
  status: string;
  inputTokens?: number;
  outputTokens?: number;
  costNanoUsd?: bigint;
  error?: string;
  attempts: ReadonlyArray<{ provider: string; model: string; outcome: string; errorClass?: string; latencyMs: number }>;
}

const getter: TextMapGetter<TraceHeaders> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => (key === "traceparent" ? carrier.traceparent : key === "tracestate" ? carrier.tracestate : undefined),
};

/** recordRequestSpan records a finished request as a span (a no-op without an OTel SDK). */
export function recordRequestSpan(r: RequestSpan): void {
  const parent = r.headers?.traceparent === undefined ? ROOT_CONTEXT : propagation.extract(ROOT_CONTEXT, r.headers, getter);
  const span = tracer.startSpan(`chat ${r.requestedModel}`, { kind: SpanKind.SERVER, startTime: r.startEpochMs }, parent);
  if (!span.isRecording()) return;
  span.setAttributes({
    "gen_ai.operation.name": "chat",
    "gen_ai.request.model": r.requestedModel,
    "llm_gateway.request_id": r.requestId,
    "llm_gateway.edge": r.edge,
    "llm_gateway.key_id": r.keyId,
    "llm_gateway.stream": r.stream,
    "llm_gateway.status": r.status,
    "llm_gateway.attempts": r.attempts.length,
  });
  if (r.model !== undefined) span.setAttribute("gen_ai.response.model", r.model);
  if (r.provider !== undefined) span.setAttribute("gen_ai.provider.name", r.provider);
  if (r.inputTokens !== undefined) span.setAttribute("gen_ai.usage.input_tokens", r.inputTokens);
  if (r.outputTokens !== undefined) span.setAttribute("gen_ai.usage.output_tokens", r.outputTokens);
  if (r.costNanoUsd !== undefined) span.setAttribute("llm_gateway.cost_nano_usd", Number(r.costNanoUsd));
  for (const a of r.attempts) {
    span.addEvent("upstream attempt", {
      "gen_ai.provider.name": a.provider,
      "gen_ai.request.model": a.model,
      "llm_gateway.outcome": a.outcome,
      "llm_gateway.error_class": a.errorClass ?? "",
      "llm_gateway.latency_ms": a.latencyMs,
    });
  }
  if (r.status !== "ok") span.setStatus({ code: SpanStatusCode.ERROR, message: r.error ?? r.status });
  span.end();
}
