import assert from "node:assert/strict";
import { describe, it } from "node:test";
import pino from "pino";
import { isoTimeAt, writeInfoLine } from "../../server/telemetry/logger.js";
import { requestLineJson } from "../../server/telemetry/request-line.js";
import { createRequestMetrics, LATENCY_BUCKETS } from "../../server/telemetry/request-metrics.js";

// The request log line and the per-request metrics are built by hand for speed; these pin their output.

describe("log timestamps", () => {
  it("render every millisecond as pino's isoTime does, across second, day and year boundaries", () => {
    const starts = [Date.UTC(2026, 10, 21, 11, 13, 38), Date.UTC(2026, 11, 31, 23, 59, 59), Date.UTC(2027, 1, 28, 23, 59, 59), 0];
    for (const start of starts) {
      for (let ms = start - 3; ms < start + 1_003; ms++) {
        assert.equal(isoTimeAt(ms), `,"time":"${new Date(ms).toISOString()}"`, String(ms));
      }
    }
  });
});

describe("request log line", () => {
  it("is the line logger.info would write, with unset fields left out and strings escaped", () => {
    const lines: string[] = [];
    const logger = pino({ level: "info", base: { service: "llm-gateway" }, timestamp: pino.stdTimeFunctions.isoTime }, { write: (s: string) => void lines.push(s) });
    const child = logger.child({ worker: 2 });
    const fields = {
      requestId: 'r"1\n',
      edge: "rest" as const,
      keyId: "k",
      stream: true,
      model: "bad\\model",
      attempts: 2,
      status: "upstream_rate_limited",
      latencyMs: 12,
      inputTokens: 5,
      costNanoUsd: 12345678901234567890n,
      usageEstimated: true,
      error: "quota \u0001 exceeded",
    };
    writeInfoLine(child, requestLineJson(fields), "request");
    child.info({ ...fields, costNanoUsd: fields.costNanoUsd.toString() }, "request");
    assert.equal(lines.length, 2);
    const [fast, slow] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    delete fast!.time;
    delete slow!.time;
    assert.deepEqual(fast, slow);
    assert.equal(fast!.costNanoUsd, "12345678901234567890");
    assert.equal(fast!.worker, 2);
    assert.ok(!("resolvedModel" in fast!) && !("ttftMs" in fast!));
    assert.ok(lines[0]!.endsWith("}\n"));
  });

  it("writes nothing when info is off", () => {
    const lines: string[] = [];
    const logger = pino({ level: "warn" }, { write: (s: string) => void lines.push(s) });
    writeInfoLine(logger, `"a":1`, "request");
    assert.equal(lines.length, 0);
  });
});

describe("request metrics", () => {
  const sample = (over: Partial<Parameters<ReturnType<typeof createRequestMetrics>["observe"]>[0]> = {}) => ({
    edge: "rest",
    keyId: "team-a",
    model: "m1",
    provider: "p1",
    status: "ok",
    stream: false,
    durationMs: 30,
    inputTokens: 10,
    outputTokens: 4,
    costNanoUsd: 1_500_000_000n,
    attempts: [{ provider: "p1", model: "m1", outcome: "succeeded" }],
    ...over,
  });

  it("renders counters, cumulative histograms and exact cost per label set", () => {
    const m = createRequestMetrics();
    m.observe(sample());
    m.observe(sample({ durationMs: 700, keyId: "team-b", costNanoUsd: 1n }));
    m.observe(sample({ stream: true, ttftMs: 4, durationMs: 200_000, status: "upstream_timeout", outputTokens: 0, attempts: [{ provider: "p1", model: "m1", outcome: "failed", errorClass: "timeout" }] }));
    const text = m.render();
    const value = (line: string): number => {
      const hit = text.split("\n").find((l) => l.startsWith(`${line} `));
      assert.ok(hit !== undefined, `missing ${line}\n${text}`);
      return Number(hit.slice(line.length + 1));
    };
    assert.equal(value('llm_gateway_requests_total{edge="rest",model="m1",provider="p1",status="ok",stream="false"}'), 2);
    assert.equal(value('llm_gateway_requests_total{edge="rest",model="m1",provider="p1",status="upstream_timeout",stream="true"}'), 1);
    const dur = 'llm_gateway_request_duration_seconds_bucket{edge="rest",model="m1",provider="p1",le=';
    assert.equal(value(`${dur}"0.025"}`), 0);
    assert.equal(value(`${dur}"0.05"}`), 1);
    assert.equal(value(`${dur}"1"}`), 2);
    assert.equal(value(`${dur}"120"}`), 2);
    assert.equal(value(`${dur}"+Inf"}`), 3);
    assert.equal(value('llm_gateway_request_duration_seconds_count{edge="rest",model="m1",provider="p1"}'), 3);
    assert.equal(value('llm_gateway_request_duration_seconds_sum{edge="rest",model="m1",provider="p1"}'), 200.73);
    assert.equal(value('llm_gateway_time_to_first_token_seconds_bucket{model="m1",provider="p1",le="0.005"}'), 1);
    assert.equal(value('llm_gateway_tokens_total{model="m1",provider="p1",kind="input"}'), 30);
    assert.equal(value('llm_gateway_tokens_total{model="m1",provider="p1",kind="output"}'), 8);
    assert.ok(!text.includes('kind="reasoning"'), "kinds never seen are not rendered");
    assert.ok(text.includes('llm_gateway_cost_usd_total{key="team-a",model="m1",provider="p1"} 3.000000000'));
    assert.ok(text.includes('llm_gateway_cost_usd_total{key="team-b",model="m1",provider="p1"} 0.000000001'));
    assert.equal(value('llm_gateway_upstream_attempts_total{provider="p1",model="m1",outcome="failed",error_class="timeout"}'), 1);
    assert.equal(value('llm_gateway_upstream_attempts_total{provider="p1",model="m1",outcome="succeeded",error_class=""}'), 2);
    assert.equal(text.split("\n").filter((l) => l.startsWith("# TYPE llm_gateway_request_duration_seconds histogram")).length, 1);
    assert.equal(LATENCY_BUCKETS.length + 1, text.split("\n").filter((l) => l.startsWith(dur)).length);
  });

  it("escapes label values", () => {
    const m = createRequestMetrics();
    m.observe(sample({ model: 'a"b\\c\nd', attempts: [] }));
    assert.ok(m.render().includes('model="a\\"b\\\\c\\nd"'));
  });
});
