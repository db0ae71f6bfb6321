import assert from "node:assert/strict";
import { sha256Hex as sha } from "../../server/auth/keys.js";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import { answerText, countTokens } from "../simulators/harness.js";
import { startOpenAISimulator } from "../simulators/openai.js";
import type { Simulator } from "../simulators/harness.js";
import { simulatedProvider, startTestGateway, type TestGateway } from "../support/gateway.js";

// The REST shim, driven by the official openai SDK against a strict
// OpenAI-protocol simulator on loopback: what a legacy service sees.

const UPSTREAM_KEY = "sk-upstream-secret-0123456789";

describe("REST shim with the official OpenAI SDK", () => {
  let sim: Simulator;
  let gw: TestGateway;
  let client: OpenAI;

  before(async () => {
    sim = await startOpenAISimulator({ apiKey: UPSTREAM_KEY });
    gw = await startTestGateway({
      providers: [
        { id: "up", type: "openai", base_url: `${sim.url}/v1`, api_key: UPSTREAM_KEY },
        simulatedProvider("sim"),
      ],
      models: [
        {
          id: "up/gpt-4o",
          provider: "up",
          upstream: "gpt-4o",
          context_window: 128000,
          max_output_tokens: 16384,
          capabilities: ["tools", "vision", "json", "json_schema"],
          pricing: { input: 2.5, output: 10, cached_input: 1.25 },
        },
        { id: "up/backup", provider: "up", upstream: "gpt-4o-mini", context_window: 128000, max_output_tokens: 16384, capabilities: ["tools"] },
        { id: "sim/echo", provider: "sim", context_window: 32000, max_output_tokens: 4096, capabilities: ["tools"], pricing: { input: 1, output: 2 } },
      ],
      routes: [{ id: "smart", targets: ["up/gpt-4o", "up/backup", "sim/echo"] }],
    });
    client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "not-needed-in-open-mode", maxRetries: 0 });
  });

  after(async () => {
    await gw.close();
    await sim.close();
  });

  it("answers a completion, maps the model name and injects the provider key", async () => {
    const { data, response } = await client.chat.completions
      .create({ model: "up/gpt-4o", messages: [{ role: "user", content: "Hello there" }] }, { headers: { "x-request-id": "req-abc-1" } })
      .withResponse();
    const expected = answerText("Hello there", 12);
    assert.equal(data.choices[0]?.message.content, expected);
    assert.equal(data.choices[0]?.finish_reason, "stop");
    assert.equal(data.model, "up/gpt-4o");
    assert.equal(data.usage?.prompt_tokens, countTokens("Hello there"));
    assert.equal(data.usage?.completion_tokens, 12);
    assert.equal(response.headers.get("x-request-id"), "req-abc-1");
    assert.equal(response.headers.get("x-gateway-provider"), "up");
    assert.equal(response.headers.get("x-gateway-model"), "up/gpt-4o");
    assert.equal(response.headers.get("x-gateway-attempts"), "1");
    // 2 prompt tokens at $2.50/M + 12 output tokens at $10/M = 5000 + 120000 nano-USD.
    assert.equal(response.headers.get("x-gateway-cost-usd"), "0.000125000");
    const upstream = sim.requests.at(-1)!;
    assert.equal(upstream.headers.authorization, `Bearer ${UPSTREAM_KEY}`);
    assert.equal((upstream.body as { model: string }).model, "gpt-4o");
  });

  it("streams with usage when the caller asks, and always asks the upstream for usage", async () => {
    const stream = await client.chat.completions.create({
      model: "up/gpt-4o",
      messages: [{ role: "user", content: "Stream this please" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let usage: OpenAI.CompletionUsage | undefined | null;
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    assert.equal(text, answerText("Stream this please", 12));
    assert.equal(finish, "stop");
    assert.equal(usage?.completion_tokens, 12);
    assert.equal(usage?.prompt_tokens, countTokens("Stream this please"));
  });

  it("sends no usage chunk when the caller did not ask, yet still accounts usage", async () => {
    const stream = await client.chat.completions.create({ model: "up/gpt-4o", messages: [{ role: "user", content: "quiet stream" }], stream: true });
    let sawUsage = false;
    for await (const chunk of stream) if (chunk.usage) sawUsage = true;
    assert.equal(sawUsage, false);
    const upstream = sim.requests.at(-1)!.body as { stream_options?: { include_usage?: boolean } };
    assert.equal(upstream.stream_options?.include_usage, true);
    const line = gw.logs.filter((l) => l.msg === "request").at(-1)!;
    assert.equal(line.outputTokens, 12);
    assert.equal(line.stream, true);
  });

  it("bills a stream cut mid-way by its estimate, since the upstream never reported usage", async () => {
    sim.faults.add({ model: "gpt-4o", cutAfterChunks: 4 });
    const stream = await client.chat.completions.create({ model: "up/gpt-4o", messages: [{ role: "user", content: "cut me short" }], stream: true });
    await assert.rejects(async () => {
      for await (const _ of stream);
    });
    const line = gw.logs.filter((l) => l.msg === "request").at(-1)!;
    assert.equal(line.usageEstimated, true);
    assert.ok((line.inputTokens as number) > 0);
    assert.ok((line.outputTokens as number) > 0, "the streamed words are billed");
    assert.ok(BigInt(line.costNanoUsd as string) > 0n);
  });

  it("round-trips two parallel tool calls", async () => {
    const tools: OpenAI.ChatCompletionTool[] = ["get_weather", "get_time"].map((name) => ({
      type: "function" as const,
      function: { name, description: `${name} for a city`, parameters: { type: "object", properties: { q: { type: "string" } } } },
    }));
    const first = await client.chat.completions.create({
      model: "up/gpt-4o",
      messages: [{ role: "user", content: "call get_weather and get_time for Paris" }],
      tools,
    });
    const msg = first.choices[0]!.message;
    assert.equal(first.choices[0]!.finish_reason, "tool_calls");
    assert.deepEqual(
      msg.tool_calls?.map((c) => (c.type === "function" ? c.function.name : "")),
      ["get_weather", "get_time"],
    );
    const second = await client.chat.completions.create({
      model: "up/gpt-4o",
      tools,
      messages: [
        { role: "user", content: "call get_weather and get_time for Paris" },
        msg,
        ...msg.tool_calls!.map((c, i) => ({ role: "tool" as const, tool_call_id: c.id, content: i === 0 ? "sunny" : "noon" })),
      ],
    });
    assert.equal(second.choices[0]!.message.content, "Results: sunny; noon");
  });

  it("fails over along a route on a retryable upstream error and says so", async () => {
    sim.faults.add({ model: "gpt-4o", status: 503 });
    const { data, response } = await client.chat.completions
      .create({ model: "smart", messages: [{ role: "user", content: "fail over please" }] })
      .withResponse();
    assert.equal(response.headers.get("x-gateway-model"), "up/backup");
    assert.equal(response.headers.get("x-gateway-attempts"), "2");
    const route = (data as unknown as { x_gateway: { route: { attempts: Array<{ outcome: string; errorClass?: string }> } } }).x_gateway.route;
    assert.deepEqual(
      route.attempts.map((a) => [a.outcome, a.errorClass]),
      [["failed", "overloaded"], ["succeeded", undefined]],
    );
  });

  it("does not fail over on a 400 from the upstream", async () => {
    sim.faults.add({ model: "gpt-4o", status: 400, body: { error: { message: "bad things", type: "invalid_request_error", param: null, code: null } } });
    const before = sim.hits();
    await assert.rejects(
      client.chat.completions.create({ model: "smart", messages: [{ role: "user", content: "no fail over" }] }),
      (err: unknown) => err instanceof OpenAI.BadRequestError && /bad things/.test(err.message),
    );
    assert.equal(sim.hits() - before, 1);
  });

  it("maps errors to the SDK's classes", async () => {
    await assert.rejects(
      client.chat.completions.create({ model: "up/gpt-4o", messages: [{ role: "user", content: "x" }], temperature: 5 }),
      (err: unknown) => err instanceof OpenAI.BadRequestError && err.param === "temperature",
    );
    await assert.rejects(
      client.chat.completions.create({ model: "nope/unknown", messages: [{ role: "user", content: "x" }] }),
      (err: unknown) => err instanceof OpenAI.NotFoundError && /known models and routes: .*smart/.test(err.message),
    );
    sim.faults.add({ model: "gpt-4o", status: 429, headers: { "retry-after": "30" } });
    await assert.rejects(
      client.chat.completions.create({ model: "up/gpt-4o", messages: [{ role: "user", content: "x" }] }),
      (err: unknown) => err instanceof OpenAI.RateLimitError && err.headers?.get("retry-after") === "30",
    );
    sim.faults.add({ model: "gpt-4o", status: 500 });
    await assert.rejects(
      client.chat.completions.create({ model: "up/gpt-4o", messages: [{ role: "user", content: "x" }] }),
      (err: unknown) => err instanceof OpenAI.InternalServerError && err.status === 503,
    );
  });

  it("never logs the provider key or the prompt, and logs one line per request", async () => {
    const secretPrompt = "my-secret-prompt-text-42";
    await client.chat.completions.create({ model: "up/gpt-4o", messages: [{ role: "user", content: secretPrompt }] });
    const raw = gw.rawLogs();
    assert.ok(!raw.includes(UPSTREAM_KEY));
    assert.ok(!raw.includes(secretPrompt));
    const line = gw.logs.filter((l) => l.msg === "request").at(-1)!;
    for (const field of ["requestId", "keyId", "model", "resolvedModel", "provider", "attempts", "status", "latencyMs", "inputTokens", "outputTokens", "costNanoUsd"]) {
      assert.ok(field in line, `log line lacks ${field}`);
    }
  });

  it("lists models and routes", async () => {
    const ids = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.deepEqual(ids.sort(), ["sim/echo", "smart", "up/backup", "up/gpt-4o"]);
    const one = await client.models.retrieve("up/gpt-4o");
    assert.equal(one.owned_by, "up");
  });
});

describe("gateway keys on the REST shim", () => {
  let gw: TestGateway;

  before(async () => {
    gw = await startTestGateway({
      providers: [simulatedProvider("sim")],
      models: [
        { id: "sim/echo", provider: "sim", context_window: 32000, max_output_tokens: 4096 },
        { id: "sim/other", provider: "sim", context_window: 32000, max_output_tokens: 4096 },
      ],
      keys: [{ id: "team-a", key_sha256: sha("gw-key-a"), models: ["sim/echo"] }],
    });
  });
  after(() => gw.close());

  it("rejects missing and wrong keys, and models the key may not use", async () => {
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: "user", content: "hi" }];
    const wrong = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "wrong", maxRetries: 0 });
    await assert.rejects(wrong.chat.completions.create({ model: "sim/echo", messages }), OpenAI.AuthenticationError);
    const right = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "gw-key-a", maxRetries: 0 });
    await assert.rejects(right.chat.completions.create({ model: "sim/other", messages }), OpenAI.PermissionDeniedError);
    const ok = await right.chat.completions.create({ model: "sim/echo", messages });
    assert.ok((ok.choices[0]?.message.content ?? "").length > 0);
    const listed = [];
    for await (const m of right.models.list()) listed.push(m.id);
    assert.deepEqual(listed, ["sim/echo"]);
    const line = gw.logs.filter((l) => l.msg === "request").at(-1)!;
    assert.equal(line.keyId, "team-a");
  });
});
