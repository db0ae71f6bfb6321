import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { ChatMessage, ChatRequest, StreamChunk, ToolDefinition, Usage } from "../../server/core/chat.js";
import { UpstreamError } from "../../server/core/errors.js";
import type { ModelConfig, ProviderConfig } from "../../server/config/schema.js";
import type { AdapterCall, ProviderAdapter } from "../../server/providers/adapter.js";
import { createAnthropicAdapter } from "../../server/providers/anthropic.js";
import { startAnthropicSimulator, type AnthropicSimulator } from "../simulators/anthropic.js";

const KEY = "sk-ant-test-0123456789abcdef";
const MODEL = "claude-sim";

const modelConfig: ModelConfig = {
  id: "anthropic/claude-sim",
  provider: "anthropic",
  upstream: MODEL,
  context_window: 200_000,
  max_output_tokens: 4096,
  capabilities: ["tools", "vision", "reasoning"],
};

function providerConfig(url: string, apiKey = KEY): ProviderConfig {
  return {
    id: "anthropic",
    type: "anthropic",
    base_url: url,
    api_key: apiKey,
    timeout_ms: 10_000,
    connect_timeout_ms: 2_000,
    idle_timeout_ms: 5_000,
    max_connections: 16,
  };
}

const user = (text: string): ChatMessage => ({ role: "user", content: [{ type: "text", text }] });
const system = (text: string): ChatMessage => ({ role: "system", content: [{ type: "text", text }] });
const assistant = (text: string): ChatMessage => ({ role: "assistant", content: [{ type: "text", text }] });

function chat(messages: ChatMessage[], extra: Partial<ChatRequest> = {}): ChatRequest {
  return { model: "anthropic/claude-sim", messages, sampling: {}, routing: {}, metadata: {}, ...extra };
}

function call(request: ChatRequest, signal: AbortSignal = new AbortController().signal): AdapterCall {
  return { request, model: modelConfig, upstreamModel: MODEL, signal };
}

const tools: ToolDefinition[] = [
  { name: "get_weather", description: "Weather in a city", parameters: { type: "object", properties: { q: { type: "string" } }, required: ["q"] } },
  { name: "get_time", parameters: { type: "object", properties: { q: { type: "string" } } } },
];

interface Collected {
  text: string;
  reasoning: string;
  toolCalls: Array<{ id?: string; name?: string; arguments: string }>;
  finishes: string[];
  usages: Usage[];
  chunks: number;
}

async function collect(stream: AsyncIterable<StreamChunk>): Promise<Collected> {
  const out: Collected = { text: "", reasoning: "", toolCalls: [], finishes: [], usages: [], chunks: 0 };
  for await (const chunk of stream) {
    out.chunks++;
    assert.equal(chunk.openaiTail, undefined, "Anthropic chunks carry no OpenAI JSON");
    for (const e of chunk.events) {
      if (e.type === "text") out.text += e.text;
      else if (e.type === "reasoning") out.reasoning += e.text;
      else if (e.type === "finish") out.finishes.push(e.finishReason);
      else if (e.type === "usage") out.usages.push(e.usage);
      else {
        const tc = (out.toolCalls[e.index] ??= { arguments: "" });
        if (e.id !== undefined) tc.id = e.id;
        if (e.name !== undefined) tc.name = e.name;
        tc.arguments += e.argumentsDelta;
      }
    }
  }
  return out;
}

async function rejection(promise: Promise<unknown>): Promise<UpstreamError> {
  try {
    await promise;
  } catch (err) {
    assert.ok(err instanceof UpstreamError, `expected an UpstreamError, got ${String(err)}`);
    return err;
  }
  assert.fail("expected a rejection");
}

function usage(inputTokens: number, outputTokens: number, cachedInputTokens = 0): Usage {
  return { inputTokens, outputTokens, cachedInputTokens, cacheWriteInputTokens: 0, reasoningTokens: 0 };
}

function lastBody(sim: AnthropicSimulator): Record<string, any> {
  return sim.requests[sim.requests.length - 1]!.body as Record<string, any>;
}

describe("anthropic adapter against the simulator", () => {
  let sim: AnthropicSimulator;
  let adapter: ProviderAdapter;

  before(async () => {
    sim = await startAnthropicSimulator({ apiKey: KEY, models: [MODEL] });
    adapter = createAnthropicAdapter(providerConfig(sim.url));
  });
  after(async () => {
    await adapter.close();
    await sim.close();
  });

  test("plain answer: text, stop, usage, headers and max_tokens from the model config", async () => {
    const result = await adapter.complete(call(chat([user("hello there")])));
    assert.equal(result.output.text, "Echo: hello there w3 w4 w5 w6 w7 w8 w9 w10 w11");
    assert.equal(result.finishReason, "stop");
    assert.deepEqual(result.usage, usage(2, 12));
    assert.match(result.upstreamId ?? "", /^msg_sim_/);
    const req = sim.requests[sim.requests.length - 1]!;
    assert.equal(req.path, "/v1/messages");
    assert.equal(req.headers["x-api-key"], KEY);
    assert.equal(req.headers["anthropic-version"], "2023-06-01");
    assert.equal((req.body as Record<string, unknown>).max_tokens, 4096);
  });

  test("multi-turn with a system prompt; consecutive user turns are merged", async () => {
    const result = await adapter.complete(
      call(chat([system("Be brief."), user("first question"), assistant("first answer"), user("second"), user("question")])),
    );
    assert.equal(result.output.text, "Echo: second question w3 w4 w5 w6 w7 w8 w9 w10 w11");
    assert.equal(result.usage.inputTokens, 8);
    const body = lastBody(sim);
    assert.equal(body.system, "Be brief.");
    assert.deepEqual(
      body.messages.map((m: { role: string }) => m.role),
      ["user", "assistant", "user"],
    );
    assert.equal(body.messages[2].content.length, 2);
  });

  test("tool call round trip with two parallel calls fed back as results", async () => {
    const ask = user("call get_weather and get_time for Paris");
    const first = await adapter.complete(call(chat([ask], { tools })));
    assert.equal(first.finishReason, "tool_calls");
    const args = JSON.stringify({ q: "call get_weather and get_time for Paris" });
    assert.deepEqual(first.output.toolCalls, [
      { id: "toolu_0", name: "get_weather", arguments: args },
      { id: "toolu_1", name: "get_time", arguments: args },
    ]);
    assert.equal(first.usage.outputTokens, 12);

    const second = await adapter.complete(
      call(
        chat(
          [
            ask,
            { role: "assistant", content: [], toolCalls: first.output.toolCalls },
            { role: "tool", toolCallId: "toolu_0", content: [{ type: "text", text: "sunny" }] },
            { role: "tool", toolCallId: "toolu_1", content: [{ type: "text", text: "noon" }] },
          ],
          { tools },
        ),
      ),
    );
    assert.equal(second.output.text, "Results: sunny; noon");
    assert.equal(second.finishReason, "stop");
    const body = lastBody(sim);
    assert.equal(body.messages.length, 3, "both results travel in one user turn");
    assert.deepEqual(body.messages[1].content[0].input, { q: "call get_weather and get_time for Paris" });
    assert.deepEqual(
      body.messages[2].content.map((b: { type: string; tool_use_id: string }) => [b.type, b.tool_use_id]),
      [
        ["tool_result", "toolu_0"],
        ["tool_result", "toolu_1"],
      ],
    );
  });

  test("tool choice, parallel tool calls and invalid replayed arguments map to Anthropic's fields", async () => {
    const result = await adapter.complete(
      call(
        chat(
          [
            user("first"),
            { role: "assistant", content: [], toolCalls: [{ id: "toolu_x", name: "get_time", arguments: "not json" }] },
            { role: "tool", toolCallId: "toolu_x", content: [{ type: "text", text: "ok" }] },
            user("weather please"),
          ],
          { tools, toolChoice: { function: "get_weather" }, parallelToolCalls: false },
        ),
      ),
    );
    assert.deepEqual(result.output.toolCalls.map((c) => c.name), ["get_weather"]);
    const body = lastBody(sim);
    assert.deepEqual(body.tool_choice, { type: "tool", name: "get_weather", disable_parallel_tool_use: true });
    assert.deepEqual(body.messages[1].content[0].input, { _raw_arguments: "not json" });
    assert.equal(body.messages[2].content[0].type, "tool_result", "tool results come before the user's text");
  });

  test("image input: inline base64 and URL images", async () => {
    const png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
    const result = await adapter.complete(
      call(
        chat([
          {
            role: "user",
            content: [
              { type: "text", text: "what is this" },
              { type: "image", base64: png },
              { type: "image", url: "https://example.com/cat.jpg" },
            ],
          },
        ]),
      ),
    );
    assert.equal(result.output.text, "Echo: what is this [image] [image] w6 w7 w8 w9 w10 w11");
    const blocks = lastBody(sim).messages[0].content;
    assert.deepEqual(blocks[1].source, { type: "base64", media_type: "image/png", data: png });
    assert.deepEqual(blocks[2].source, { type: "url", url: "https://example.com/cat.jpg" });
  });

  test("stop sequence cuts the answer and finishes with stop", async () => {
    const result = await adapter.complete(call(chat([user("alpha beta gamma")], { sampling: { stop: ["gamma", " "] } })));
    assert.equal(result.output.text, "Echo: alpha beta ");
    assert.equal(result.finishReason, "stop");
    assert.deepEqual(lastBody(sim).stop_sequences, ["gamma"], "whitespace-only stop sequences are not sent");
  });

  test("max output tokens cut: finish length", async () => {
    const result = await adapter.complete(call(chat([user("alpha beta gamma")], { sampling: { maxOutputTokens: 3 } })));
    assert.equal(result.output.text, "Echo: alpha beta");
    assert.equal(result.finishReason, "length");
    assert.equal(result.usage.outputTokens, 3);
  });

  test("refusal is content_filter", async () => {
    const result = await adapter.complete(call(chat([user("please BLOCKME now")])));
    assert.equal(result.finishReason, "content_filter");
    assert.equal(result.output.text, "");
    assert.deepEqual(result.usage, usage(3, 0));
  });

  test("thinking and cached usage: cache reads are part of the input", async () => {
    const result = await adapter.complete(call(chat([system("THINK CACHED"), user("deep question")])));
    assert.equal(result.output.reasoning, "Thinking about: deep question");
    assert.equal(result.output.text, "Echo: deep question w3 w4 w5 w6 w7 w8 w9 w10 w11");
    assert.deepEqual(result.usage, usage(4, 16, 2));
  });

  test("sampling: temperature clamped to 0–1, top_p, top_k, end user, JSON instruction", async () => {
    await adapter.complete(
      call(
        chat([system("sys"), user("hi")], {
          sampling: { temperature: 1.7, topP: 0.5, topK: 20, seed: 7 },
          metadata: { endUser: "user-42" },
          responseFormat: { type: "json_object" },
        }),
      ),
    );
    const body = lastBody(sim);
    assert.equal(body.temperature, 1);
    assert.equal(body.top_p, 0.5);
    assert.equal(body.top_k, 20);
    assert.equal(body.seed, undefined);
    assert.deepEqual(body.metadata, { user_id: "user-42" });
    assert.match(body.system, /^sys\n\nRespond with a single valid JSON object/);
  });

  test("streaming text: deltas concatenate to the answer, usage is not double counted", async () => {
    const whole = await adapter.complete(call(chat([system("THINK CACHED"), user("stream me")])));
    const streamed = await collect(adapter.stream(call(chat([system("THINK CACHED"), user("stream me")]))));
    assert.equal(streamed.text, whole.output.text);
    assert.equal(streamed.reasoning, whole.output.reasoning);
    assert.deepEqual(streamed.finishes, ["stop"]);
    assert.deepEqual(streamed.usages, [whole.usage]);
    assert.ok(streamed.chunks >= 12, "one word per chunk");
  });

  test("streaming tool calls: ids, names and arguments reassemble, numbered by call", async () => {
    const streamed = await collect(adapter.stream(call(chat([system("THINK"), user("call get_time and get_weather")], { tools }))));
    const args = JSON.stringify({ q: "call get_time and get_weather" });
    assert.deepEqual(streamed.toolCalls, [
      { id: "toolu_0", name: "get_weather", arguments: args },
      { id: "toolu_1", name: "get_time", arguments: args },
    ]);
    assert.deepEqual(streamed.finishes, ["tool_calls"]);
    assert.equal(streamed.usages.length, 1);
  });

  test("streaming stop sequence and length", async () => {
    const stopped = await collect(adapter.stream(call(chat([user("alpha beta gamma")], { sampling: { stop: ["beta"] } }))));
    assert.equal(stopped.text, "Echo: alpha ");
    assert.deepEqual(stopped.finishes, ["stop"]);
    const cut = await collect(adapter.stream(call(chat([user("alpha beta gamma")], { sampling: { maxOutputTokens: 2 } }))));
    assert.equal(cut.text, "Echo: alpha");
    assert.deepEqual(cut.finishes, ["length"]);
  });

  test("mid-stream error event is a classified UpstreamError after the text so far", async () => {
    sim.faults.add({ errorEventAfterChunks: 5 });
    const seen: string[] = [];
    const err = await rejection(
      (async () => {
        for await (const chunk of adapter.stream(call(chat([user("hello")])))) {
          for (const e of chunk.events) if (e.type === "text") seen.push(e.text);
        }
      })(),
    );
    assert.equal(err.errorClass, "overloaded");
    assert.equal(err.message, "anthropic: Overloaded");
    assert.ok(seen.length > 0);
  });

  test("cut stream and malformed chunk", async () => {
    sim.faults.add({ cutAfterChunks: 5 });
    assert.equal((await rejection(collect(adapter.stream(call(chat([user("hello")])))))).errorClass, "connection");
    sim.faults.add({ malformedChunkAt: 3 });
    assert.equal((await rejection(collect(adapter.stream(call(chat([user("hello")])))))).errorClass, "malformed_response");
    sim.faults.add({ resetConnection: true });
    assert.equal((await rejection(adapter.complete(call(chat([user("hello")]))))).errorClass, "connection");
  });

  const statusCases: Array<{ status: number; body?: unknown; headers?: Record<string, string>; errorClass: string; retryAfterMs?: number }> = [
    { status: 529, errorClass: "overloaded" },
    { status: 429, headers: { "retry-after": "7" }, errorClass: "rate_limited", retryAfterMs: 7000 },
    { status: 401, errorClass: "auth" },
    { status: 402, errorClass: "quota_exhausted" },
    { status: 403, errorClass: "auth" },
    { status: 404, errorClass: "not_found" },
    { status: 413, errorClass: "context_length_exceeded" },
    { status: 400, errorClass: "invalid_request" },
    {
      status: 400,
      body: { type: "error", error: { type: "invalid_request_error", message: "prompt is too long: 210000 tokens > 200000 maximum" } },
      errorClass: "context_length_exceeded",
    },
    { status: 500, errorClass: "server_error" },
    { status: 504, errorClass: "timeout" },
    { status: 502, body: "<html>bad gateway</html>", errorClass: "server_error" },
  ];
  for (const c of statusCases) {
    test(`HTTP ${c.status}${c.body !== undefined ? " (custom body)" : ""} → ${c.errorClass}`, async () => {
      const fault = { status: c.status, ...(c.body !== undefined ? { body: c.body } : {}), ...(c.headers !== undefined ? { headers: c.headers } : {}) };
      sim.faults.add(fault);
      const err = await rejection(adapter.complete(call(chat([user("hi")]))));
      assert.equal(err.errorClass, c.errorClass);
      assert.equal(err.status, c.status);
      assert.equal(err.retryAfterMs, c.retryAfterMs);
      assert.match(err.message, /^anthropic: /);
      // The same failure before the first streamed chunk rejects the stream the same way.
      sim.faults.add(fault);
      assert.equal((await rejection(collect(adapter.stream(call(chat([user("hi")])))))).errorClass, c.errorClass);
    });
  }

  test("a wrong key is auth, and no key ever appears in an error message", async () => {
    const wrong = createAnthropicAdapter(providerConfig(sim.url, "sk-ant-wrong-key-987654321"));
    try {
      const err = await rejection(wrong.complete(call(chat([user("hi")]))));
      assert.equal(err.errorClass, "auth");
    } finally {
      await wrong.close();
    }
    sim.faults.add({
      status: 401,
      body: {
        type: "error",
        error: {
          type: "authentication_error",
          message: `bad key ${KEY} (also sk-ant-other-1234567890, Bearer abc.def-ghi, https://user:hunter2@proxy.example/ and ?key=AIzaSyA1234567890abcdefghij)`,
        },
      },
    });
    const err = await rejection(adapter.complete(call(chat([user("hi")]))));
    for (const secret of [KEY, "sk-ant-other", "abc.def-ghi", "hunter2", "AIzaSy", sim.url]) assert.ok(!err.message.includes(secret), `${secret} leaked: ${err.message}`);
    assert.match(err.message, /^anthropic: bad key \[redacted\]/);
  });

  test("invalid input is rejected before any HTTP call", async () => {
    const hits = sim.hits();
    const err = await rejection(adapter.complete(call(chat([user("a"), { role: "tool", content: [{ type: "text", text: "x" }] }]))));
    assert.equal(err.errorClass, "invalid_request");
    assert.equal(sim.hits(), hits);
  });

  test("aborting cancels the upstream stream", async () => {
    sim.faults.add({ chunkDelayMs: 80 });
    const controller = new AbortController();
    const started = Date.now();
    const err = await rejection(
      (async () => {
        for await (const chunk of adapter.stream(call(chat([user("slow one")]), controller.signal))) {
          if (chunk.events.some((e) => e.type === "text")) controller.abort();
        }
      })(),
    );
    assert.equal(err.errorClass, "cancelled");
    assert.ok(Date.now() - started < 1000, "did not wait for the whole stream");
    await waitFor(() => sim.openStreams() === 0);
    assert.equal(sim.requests[sim.requests.length - 1]!.closedEarly, true, "the upstream saw the client go away");

    // Breaking out of the iteration closes the upstream request too.
    sim.faults.add({ chunkDelayMs: 80 });
    for await (const chunk of adapter.stream(call(chat([user("slow two")])))) {
      if (chunk.events.some((e) => e.type === "text")) break;
    }
    await waitFor(() => sim.openStreams() === 0);
    assert.equal(sim.requests[sim.requests.length - 1]!.closedEarly, true, "the upstream saw the client go away");

    sim.faults.add({ firstTokenDelayMs: 600 });
    const unary = new AbortController();
    setTimeout(() => unary.abort(), 50);
    const t0 = Date.now();
    assert.equal((await rejection(adapter.complete(call(chat([user("hi")]), unary.signal)))).errorClass, "cancelled");
    assert.ok(Date.now() - t0 < 400, "did not wait for the response");
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 1000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}
