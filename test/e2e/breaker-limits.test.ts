import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import { createGatewayClient, userText, type GatewayClient } from "../../clients/index.js";
import { Priority } from "../../gen/llmgateway/v1/chat_pb.js";
import { BreakerState } from "../../gen/llmgateway/v1/gateway_service_pb.js";
import { startOpenAISimulator, type OpenAISimulator } from "../simulators/openai.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { attemptsOf, rpcFailure } from "../support/routing.js";

// Circuit breakers and rate limits through a real gateway: a 5xx storm
// opens the breaker and the failing simulator stops receiving traffic
// until the single half-open probe succeeds; a deployment out of capacity
// answers an interactive request with ResourceExhausted at once, while a
// batch request waits for capacity.

const COOLDOWN_MS = 400;

function model(id: string, provider: string) {
  return { id, provider, upstream: "gpt-4o", context_window: 128_000, max_output_tokens: 4096, pricing: { input: 1, output: 2 } };
}

async function breakerOf(client: GatewayClient, id: string): Promise<{ state: BreakerState; available: boolean }> {
  const m = (await client.listModels({})).models.find((x) => x.id === id)!;
  return { state: m.breaker, available: m.available };
}

describe("circuit breaker", () => {
  let a: OpenAISimulator;
  let b: OpenAISimulator;
  let gw: TestGateway;
  let client: GatewayClient;

  before(async () => {
    [a, b] = await Promise.all([startOpenAISimulator(), startOpenAISimulator()]);
    gw = await startTestGateway({
      providers: [
        { id: "pa", type: "openai", base_url: `${a.url}/v1`, api_key: "k", breaker: { consecutive_failures: 3, cooldown_ms: COOLDOWN_MS } },
        { id: "pb", type: "openai", base_url: `${b.url}/v1`, api_key: "k" },
      ],
      models: [model("pa/gpt-4o", "pa"), model("pb/gpt-4o", "pb")],
      routes: [{ id: "pair", targets: ["pa/gpt-4o", "pb/gpt-4o"] }],
    });
    client = createGatewayClient({ baseUrl: gw.url });
  });
  after(async () => {
    await gw.close();
    await Promise.all([a.close(), b.close()]);
  });

  it("a 5xx storm opens it: every request still succeeds, and the failing upstream stops receiving traffic", async () => {
    assert.deepEqual(await breakerOf(client, "pa/gpt-4o"), { state: BreakerState.CLOSED, available: true });
    a.faults.add({ model: "gpt-4o", status: 500, times: Infinity });
    const start = a.hits();
    for (let i = 0; i < 8; i++) {
      const res = await client.complete({ model: "pair", messages: [userText(`storm ${i}`)] });
      assert.equal(res.model, "pb/gpt-4o");
    }
    assert.equal(a.hits() - start, 3, "only the failures up to the threshold reached pa");
    assert.deepEqual(await breakerOf(client, "pa/gpt-4o"), { state: BreakerState.OPEN, available: false });
    const skipped = await client.complete({ model: "pair", messages: [userText("while open")] });
    assert.match(skipped.route!.skipped.find((s) => s.model === "pa/gpt-4o")!.reason, /circuit breaker open for another \d+ ms: 3 consecutive failures/);
    // A direct request to the open deployment fails fast, with a hint for when it may be tried again.
    const f = await rpcFailure(() => client.complete({ model: "pa/gpt-4o", messages: [userText("x")] }));
    assert.equal(f.code, Code.Unavailable);
    assert.ok(f.retryAfterMs !== undefined && f.retryAfterMs <= COOLDOWN_MS);
    assert.equal(a.hits() - start, 3);
  });

  it("after the cooldown a failed probe re-opens it; exactly one probe goes out", async () => {
    await waitFor(async () => (await breakerOf(client, "pa/gpt-4o")).state === BreakerState.HALF_OPEN);
    // A slow failing probe: the other requests arrive while it is out.
    a.faults.clear();
    a.faults.add({ model: "gpt-4o", status: 500, firstTokenDelayMs: 300, times: Infinity });
    const start = a.hits();
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) => client.complete({ model: "pair", messages: [userText(`probe ${i}`)] })));
    assert.ok(results.every((r) => r.model === "pb/gpt-4o"));
    assert.equal(a.hits() - start, 1, "one half-open probe");
    assert.equal((await breakerOf(client, "pa/gpt-4o")).state, BreakerState.OPEN);
  });

  it("a successful probe closes it and traffic returns", async () => {
    a.faults.clear();
    await waitFor(async () => (await breakerOf(client, "pa/gpt-4o")).state === BreakerState.HALF_OPEN);
    const probe = await client.complete({ model: "pair", messages: [userText("probe ok")] });
    assert.equal(probe.model, "pa/gpt-4o");
    assert.deepEqual(await breakerOf(client, "pa/gpt-4o"), { state: BreakerState.CLOSED, available: true });
    const next = await client.complete({ model: "pair", messages: [userText("back to normal")] });
    assert.equal(next.model, "pa/gpt-4o");
  });

  it("the caller's own mistakes never open it", async () => {
    a.faults.add({ model: "gpt-4o", status: 400, times: 5, body: { error: { message: "bad", type: "invalid_request_error", param: null, code: null } } });
    for (let i = 0; i < 5; i++) {
      const f = await rpcFailure(() => client.complete({ model: "pa/gpt-4o", messages: [userText("x")] }));
      assert.equal(f.code, Code.InvalidArgument);
    }
    assert.equal((await breakerOf(client, "pa/gpt-4o")).state, BreakerState.CLOSED);
  });
});

describe("circuit breaker on slow answers", () => {
  let sim: OpenAISimulator;
  let gw: TestGateway;
  let client: GatewayClient;

  before(async () => {
    sim = await startOpenAISimulator();
    gw = await startTestGateway({
      providers: [{ id: "ps", type: "openai", base_url: `${sim.url}/v1`, api_key: "k", breaker: { latency_p95_ms: 150, cooldown_ms: 60_000 } }],
      models: [model("ps/gpt-4o", "ps")],
    });
    client = createGatewayClient({ baseUrl: gw.url });
  });
  after(async () => {
    await gw.close();
    await sim.close();
  });

  it("opens when the p95 latency stays above latency_p95_ms for 3 requests in a row", async () => {
    sim.faults.add({ model: "gpt-4o", firstTokenDelayMs: 300, times: 3 });
    for (let i = 0; i < 3; i++) {
      assert.equal((await breakerOf(client, "ps/gpt-4o")).state, BreakerState.CLOSED, `before slow answer ${i + 1}`);
      await client.complete({ model: "ps/gpt-4o", messages: [userText(`slow ${i}`)] });
    }
    assert.deepEqual(await breakerOf(client, "ps/gpt-4o"), { state: BreakerState.OPEN, available: false });
    const f = await rpcFailure(() => client.complete({ model: "ps/gpt-4o", messages: [userText("x")] }));
    assert.match(f.message, /p95 latency \d+ ms > 150 ms for 3 requests in a row/);
  });
});

describe("rate limits: interactive and batch", () => {
  let sim: OpenAISimulator;
  let gw: TestGateway;
  let client: GatewayClient;

  before(async () => {
    sim = await startOpenAISimulator();
    gw = await startTestGateway({
      // 150 reserved tokens per request (max output 140 + the prompt estimate): one request at a time fits in 250.
      providers: [{ id: "pl", type: "openai", base_url: `${sim.url}/v1`, api_key: "k", limits: { tpm: 250 } }],
      models: [model("pl/gpt-4o", "pl")],
    });
    client = createGatewayClient({ baseUrl: gw.url });
  });
  after(async () => {
    await gw.close();
    await sim.close();
  });

  it("out of capacity, an interactive request gets ResourceExhausted with a hint at once; a batch request waits for capacity", async () => {
    sim.faults.add({ model: "gpt-4o", firstTokenDelayMs: 600 });
    const ask = (text: string, priority?: "batch") =>
      client.complete({ model: "pl/gpt-4o", messages: [userText(text)], sampling: { maxOutputTokens: 140 }, routing: priority === undefined ? {} : { priority: Priority.BATCH } });
    let firstDone = 0;
    const first = ask("hold the capacity").then((r) => ((firstDone = performance.now()), r));
    await waitFor(async () => sim.hits() === 1);

    const started = performance.now();
    const f = await rpcFailure(() => ask("interactive"));
    assert.ok(performance.now() - started < 500, "did not wait");
    assert.equal(f.code, Code.ResourceExhausted);
    assert.ok(f.retryAfterMs !== undefined && f.retryAfterMs > 0);
    assert.match(f.message, /no candidate has rate-limit capacity: pl\/gpt-4o: rate limit reached: provider pl tpm 250/);

    const batch = await ask("batch", "batch");
    assert.ok(firstDone > 0 && performance.now() >= firstDone, "the batch request was admitted once the first gave capacity back");
    assert.equal(batch.model, "pl/gpt-4o");
    assert.deepEqual(attemptsOf(batch.route).map((x) => x.outcome), ["succeeded"]);
    assert.match(batch.route!.skipped[0]!.reason, /rate limit reached/);
    await first;
    assert.equal(sim.hits(), 2, "the refused interactive request never reached the provider");
  });
});

async function waitFor(condition: () => Promise<boolean> | boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("timed out waiting for a condition");
    await new Promise((r) => setTimeout(r, 20));
  }
}
