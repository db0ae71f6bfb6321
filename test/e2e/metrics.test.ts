import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { simulatedProvider, startTestGateway, type TestGateway } from "../support/gateway.js";

// GET /metrics exposes per-request counters in Prometheus text format.

describe("/metrics", () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({
      providers: [simulatedProvider("sim")],
      models: [{ id: "sim/echo", provider: "sim", context_window: 8000, max_output_tokens: 100, pricing: { input: 1, output: 2 } }],
    });
  });
  after(() => gw.close());

  it("counts requests, tokens, cost and attempts by model and provider", async () => {
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${gw.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "sim/echo", messages: [{ role: "user", content: "count me" }] }),
      });
      assert.equal(res.status, 200);
    }
    await fetch(`${gw.url}/v1/chat/completions`, { method: "POST", body: JSON.stringify({ model: "nope", messages: [{ role: "user", content: "x" }] }) });
    const res = await fetch(`${gw.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /text\/plain/);
    const text = await res.text();
    assert.match(text, /llm_gateway_requests_total\{edge="rest",model="sim\/echo",provider="sim",status="ok",stream="false"\} 3/);
    assert.match(text, /llm_gateway_requests_total\{edge="rest",model="\(unknown\)",provider="",status="not_found",stream="false"\} 1/);
    assert.match(text, /llm_gateway_tokens_total\{model="sim\/echo",provider="sim",kind="output"\} 36/);
    assert.match(text, /llm_gateway_upstream_attempts_total\{provider="sim",model="sim\/echo",outcome="succeeded",error_class=""\} 3/);
    assert.match(text, /llm_gateway_state_healthy 1/);
    assert.match(text, /llm_gateway_cost_usd_total\{key="anonymous",model="sim\/echo",provider="sim"\} \d/);
  });
});
