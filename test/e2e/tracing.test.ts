import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  propagation,
  trace,
  type Attributes,
  type Context,
  type Span,
  type SpanContext,
  type SpanOptions,
  type SpanStatus,
  type TextMapPropagator,
  type Tracer,
  type TracerProvider,
} from "@opentelemetry/api";
import { createGatewayClient, userText } from "../../clients/index.js";
import { simulatedProvider, startTestGateway, type TestGateway } from "../support/gateway.js";

// With an OpenTelemetry SDK registered, every request becomes a SERVER span
// parented by the caller's traceparent. The test registers a minimal
// recording provider and W3C propagator through the public API (what an SDK
// does), so no exporter or collector is involved.

interface Recorded {
  name: string;
  parent?: SpanContext;
  attributes: Attributes;
  events: Array<{ name: string; attributes?: Attributes }>;
  status?: SpanStatus;
  ended: boolean;
}

const recorded: Recorded[] = [];

function recordingSpan(r: Recorded): Span {
  const ctx: SpanContext = { traceId: r.parent?.traceId ?? "1".repeat(32), spanId: "2".repeat(16), traceFlags: 1 };
  const span: Span = {
    spanContext: () => ctx,
    setAttribute: (k, v) => ((r.attributes[k] = v), span),
    setAttributes: (a) => (Object.assign(r.attributes, a), span),
    addEvent: (name, attributes) => (r.events.push({ name, attributes: attributes as Attributes | undefined }), span),
    addLink: () => span,
    addLinks: () => span,
    setStatus: (s) => ((r.status = s), span),
    updateName: (n) => ((r.name = n), span),
    end: () => void (r.ended = true),
    isRecording: () => true,
    recordException: () => undefined,
  };
  return span;
}

const tracer: Tracer = {
  startSpan(name: string, _options?: SpanOptions, context?: Context): Span {
    const r: Recorded = { name, parent: context === undefined ? undefined : trace.getSpanContext(context), attributes: {}, events: [], ended: false };
    recorded.push(r);
    return recordingSpan(r);
  },
  startActiveSpan: (() => {
    throw new Error("not used by the gateway");
  }) as Tracer["startActiveSpan"],
};
const provider: TracerProvider = { getTracer: () => tracer };

// The W3C traceparent format: version-traceid-spanid-flags.
const w3c: TextMapPropagator = {
  inject: () => undefined,
  extract(context, carrier, getter) {
    const value = getter.get(carrier, "traceparent");
    const m = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/.exec(String(value ?? ""));
    if (m === null) return context;
    return trace.setSpanContext(context, { traceId: m[1]!, spanId: m[2]!, traceFlags: parseInt(m[3]!, 16), isRemote: true });
  },
  fields: () => ["traceparent", "tracestate"],
};

describe("OpenTelemetry spans", () => {
  let gw: TestGateway;
  before(async () => {
    trace.setGlobalTracerProvider(provider);
    propagation.setGlobalPropagator(w3c);
    gw = await startTestGateway({
      providers: [simulatedProvider("sim")],
      models: [{ id: "sim/echo", provider: "sim", context_window: 8000, max_output_tokens: 100 }],
    });
  });
  after(async () => {
    await gw.close();
    trace.disable();
    propagation.disable();
  });

  const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";

  it("records a SERVER span per REST request, parented by the caller's traceparent", async () => {
    recorded.length = 0;
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json", traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
      body: JSON.stringify({ model: "sim/echo", messages: [{ role: "user", content: "trace me" }] }),
    });
    assert.equal(res.status, 200);
    const [span] = recorded;
    assert.equal(recorded.length, 1);
    assert.equal(span!.name, "chat sim/echo");
    assert.equal(span!.parent?.traceId, traceId);
    assert.equal(span!.parent?.spanId, "00f067aa0ba902b7");
    assert.equal(span!.attributes["gen_ai.request.model"], "sim/echo");
    assert.equal(span!.attributes["gen_ai.response.model"], "sim/echo");
    assert.equal(span!.attributes["gen_ai.provider.name"], "sim");
    assert.equal(span!.attributes["gen_ai.usage.output_tokens"], 12);
    assert.deepEqual(span!.events.map((e) => [e.name, e.attributes?.["llm_gateway.outcome"]]), [["upstream attempt", "succeeded"]]);
    assert.equal(span!.status, undefined);
    assert.equal(span!.ended, true);
  });

  it("marks a failed RPC's span as an error", async () => {
    recorded.length = 0;
    const client = createGatewayClient({ baseUrl: gw.url, interceptors: [(next) => (req) => (req.header.set("traceparent", `00-${traceId}-00f067aa0ba902b8-01`), next(req))] });
    await assert.rejects(client.complete({ model: "nope", messages: [userText("x")] }));
    assert.equal(recorded.length, 1);
    assert.equal(recorded[0]!.parent?.spanId, "00f067aa0ba902b8");
    assert.equal(recorded[0]!.attributes["llm_gateway.status"], "not_found");
    assert.equal(recorded[0]!.status?.code, 2);
  });
});
