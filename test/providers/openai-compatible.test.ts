import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { ChatMessage, ChatRequest, StreamChunk, ToolDefinition } from "../../server/core/chat.js";
import { UpstreamError, type ErrorClass } from "../../server/core/errors.js";
import type { ModelConfig, ProviderConfig } from "../../server/config/schema.js";
import type { AdapterCall, ProviderAdapter } from "../../server/providers/adapter.js";
import {
  buildOpenAIChatBody,
  createOpenAICompatibleAdapter,
  normalizeOpenAIUsage,
  shortToolCallId,
} from "../../server/providers/openai-compatible.js";
import { openaiPresetFor, resolveOpenAIProvider } from "../../server/providers/openai-presets.js";
import { answerText, countTokens, type Fault } from "../simulators/harness.js";
import { startOpenAISimulator, type OpenAISimulator } from "../simulators/openai.js";

const KEY = "sk-test-0123456789abcdefSECRET";

const model: ModelConfig = { id: "up/gpt-4o", provider: "up", context_window: 128_000, max_output_tokens: 16_384, capabilities: [] };

function providerConfig(p: Partial<ProviderConfig> & Pick<ProviderConfig, "id" | "type">): ProviderConfig {
  return { timeout_ms: 5_000, connect_timeout_ms: 2_000, idle_timeout_ms: 5_000, max_connections: 8, ...p };
}

function user(text: string): ChatMessage {
  return { role: "user", content: [{ type: "text", text }] };
}

function request(messages: ChatMessage[], extra: Partial<ChatRequest> = {}): ChatRequest {
  return { model: "up/gpt-4o", messages, sampling: {}, routing: {}, metadata: {}, ...extra };
}

function call(req: ChatRequest, signal: AbortSignal = new AbortController().signal, upstreamModel = "gpt-4o"): AdapterCall {
  return { request: req, model, upstreamModel, signal };
}

async function collect(iterable: AsyncIterable<StreamChunk>): Promise<StreamChunk[]> {
  const out: StreamChunk[] = [];
  for await (const c of iterable) out.push(c);
  return out;
}

/** collectUntilError returns the chunks received before the stream failed, and the error. */
async function collectUntilError(iterable: AsyncIterable<StreamChunk>): Promise<{ chunks: StreamChunk[]; error: UpstreamError }> {
  const chunks: StreamChunk[] = [];
  try {
    for await (const c of iterable) chunks.push(c);
  } catch (err) {
    assert.ok(err instanceof UpstreamError, `expected an UpstreamError, got ${String(err)}`);
    return { chunks, error: err };
  }
  assert.fail("the stream should have failed");
}

function events(chunks: StreamChunk[]) {
  return chunks.flatMap((c) => c.events);
}

function streamedText(chunks: StreamChunk[]): string {
  return events(chunks)
    .map((e) => (e.type === "text" ? e.text : ""))
    .join("");
}

function isClass(errorClass: ErrorClass) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof UpstreamError, `expected an UpstreamError, got ${String(err)}`);
    assert.equal(err.errorClass, errorClass, err.message);
    return true;
  };
}

function lastBody(sim: OpenAISimulator): Record<string, unknown> {
  return sim.requests.at(-1)!.body as Record<string, unknown>;
}

async function eventually(check: () => boolean, ms = 1_000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) assert.fail("condition not reached in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

const weatherTools: ToolDefinition[] = ["get_weather", "get_time"].map((name) => ({
  name,
  description: `${name} for a city`,
  parameters: { type: "object", properties: { q: { type: "string" } } },
}));

describe("OpenAI-compatible adapter against the OpenAI simulator", () => {
  let sim: OpenAISimulator;
  let adapter: ProviderAdapter;

  before(async () => {
    sim = await startOpenAISimulator({ apiKey: KEY });
    adapter = createOpenAICompatibleAdapter(providerConfig({ id: "openai-test", type: "openai", base_url: `${sim.url}/v1`, api_key: KEY, headers: { "x-team": "core" } }));
  });
  after(async () => {
    await adapter.close();
    await sim.close();
  });

  it("answers a plain prompt with text, finish and usage", async () => {
    const result = await adapter.complete(call(request([user("Hello there")])));
    assert.equal(result.output.text, answerText("Hello there", 12));
    assert.equal(result.finishReason, "stop");
    assert.deepEqual(result.usage, { inputTokens: 2, outputTokens: 12, cachedInputTokens: 0, cacheWriteInputTokens: 0, reasoningTokens: 0 });
    assert.match(result.upstreamId ?? "", /^chatcmpl-/);
    const sent = sim.requests.at(-1)!;
    assert.equal(sent.path, "/v1/chat/completions");
    assert.equal(sent.headers.authorization, `Bearer ${KEY}`);
    assert.equal(sent.headers["x-team"], "core");
    assert.deepEqual(sent.body, { model: "gpt-4o", messages: [{ role: "user", content: "Hello there" }] });
  });

  it("sends a system prompt and earlier turns, all as string content", async () => {
    const result = await adapter.complete(
      call(
        request([
          { role: "system", content: [{ type: "text", text: "You are terse." }] },
          user("first question"),
          { role: "assistant", content: [{ type: "text", text: "first answer" }] },
          { ...user("second question here"), name: "alice" },
        ]),
      ),
    );
    assert.equal(result.output.text, answerText("second question here", 12));
    assert.equal(result.usage.inputTokens, countTokens("You are terse. first question first answer second question here"));
    assert.deepEqual(lastBody(sim).messages, [
      { role: "system", content: "You are terse." },
      { role: "user", content: "first question" },
      { role: "assistant", content: "first answer" },
      { role: "user", content: "second question here", name: "alice" },
    ]);
  });

  it("round-trips two parallel tool calls and their results", async () => {
    const prompt = "call get_weather and get_time for Paris";
    const first = await adapter.complete(call(request([user(prompt)], { tools: weatherTools, parallelToolCalls: true })));
    const args = JSON.stringify({ q: prompt });
    assert.equal(first.finishReason, "tool_calls");
    assert.equal(first.output.text, "");
    assert.deepEqual(first.output.toolCalls, [
      { id: "call_0", name: "get_weather", arguments: args },
      { id: "call_1", name: "get_time", arguments: args },
    ]);
    assert.equal(first.usage.outputTokens, 2 * countTokens(args));
    const sent = lastBody(sim);
    assert.equal(sent.parallel_tool_calls, true);
    assert.deepEqual((sent.tools as unknown[])[0], {
      type: "function",
      function: { name: "get_weather", description: "get_weather for a city", parameters: { type: "object", properties: { q: { type: "string" } } } },
    });

    const second = await adapter.complete(
      call(
        request(
          [
            user(prompt),
            { role: "assistant", content: [], toolCalls: first.output.toolCalls },
            { role: "tool", toolCallId: "call_0", content: [{ type: "text", text: "sunny" }] },
            { role: "tool", toolCallId: "call_1", content: [{ type: "text", text: "noon" }] },
          ],
          { tools: weatherTools },
        ),
      ),
    );
    assert.equal(second.output.text, "Results: sunny; noon");
    assert.equal(second.finishReason, "stop");
    const messages = lastBody(sim).messages as Array<Record<string, unknown>>;
    assert.equal(messages[1]!.content, null);
    assert.deepEqual(messages[1]!.tool_calls, [
      { id: "call_0", type: "function", function: { name: "get_weather", arguments: args } },
      { id: "call_1", type: "function", function: { name: "get_time", arguments: args } },
    ]);
    assert.deepEqual(messages[2], { role: "tool", tool_call_id: "call_0", content: "sunny" });
  });

  it("forces a named tool and streams its call as deltas", async () => {
    const chunks = await collect(adapter.stream(call(request([user("what time is it")], { tools: weatherTools, toolChoice: { function: "get_time" } }))));
    assert.deepEqual(lastBody(sim).tool_choice, { type: "function", function: { name: "get_time" } });
    const calls = events(chunks).filter((e) => e.type === "tool_call");
    assert.equal(calls[0]?.type === "tool_call" && calls[0].id, "call_0");
    assert.equal(calls[0]?.type === "tool_call" && calls[0].name, "get_time");
    const args = calls.map((e) => (e.type === "tool_call" ? e.argumentsDelta : "")).join("");
    assert.equal(args, JSON.stringify({ q: "what time is it" }));
    assert.deepEqual(
      events(chunks).filter((e) => e.type === "finish"),
      [{ type: "finish", finishReason: "tool_calls" }],
    );
  });

  it("sends images as image_url parts: inline as a data URL, by URL with its detail", async () => {
    const result = await adapter.complete(
      call(
        request([
          {
            role: "user",
            content: [
              { type: "text", text: "What is in these" },
              { type: "image", base64: "iVBORw0KGgo=", mediaType: "image/png" },
              { type: "image", url: "https://example.com/cat.jpg", detail: "low" },
            ],
          },
        ]),
      ),
    );
    assert.equal(result.output.text, answerText("What is in these [image] [image]", 12));
    assert.deepEqual((lastBody(sim).messages as Array<{ content: unknown }>)[0]!.content, [
      { type: "text", text: "What is in these" },
      { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=" } },
      { type: "image_url", image_url: { url: "https://example.com/cat.jpg", detail: "low" } },
    ]);
  });

  it("cuts the answer at a stop sequence", async () => {
    const full = answerText("Hello there", 12);
    const result = await adapter.complete(call(request([user("Hello there")], { sampling: { stop: ["w5"] } })));
    assert.equal(result.output.text, full.slice(0, full.indexOf("w5")));
    assert.equal(result.finishReason, "stop");
    assert.deepEqual(lastBody(sim).stop, ["w5"]);
  });

  it("reports length when max tokens cut the answer, sent as max_completion_tokens", async () => {
    const result = await adapter.complete(call(request([user("Hello there")], { sampling: { maxOutputTokens: 3, temperature: 0.2, topP: 0.9, seed: 7 } })));
    assert.equal(result.output.text, "Echo: Hello there");
    assert.equal(result.finishReason, "length");
    assert.equal(result.usage.outputTokens, 3);
    const sent = lastBody(sim);
    assert.equal(sent.max_completion_tokens, 3);
    assert.equal(sent.max_tokens, undefined);
    assert.equal(sent.temperature, 0.2);
    assert.equal(sent.top_p, 0.9);
    assert.equal(sent.seed, 7);
  });

  it("reports a content filter", async () => {
    const result = await adapter.complete(call(request([user("please BLOCKME now")])));
    assert.equal(result.finishReason, "content_filter");
    assert.equal(result.output.text, "");
    assert.equal(result.usage.outputTokens, 0);
  });

  it("sends response_format json_schema, reasoning_effort and the end user", async () => {
    const result = await adapter.complete(
      call(
        request([user("answer in JSON")], {
          responseFormat: { type: "json_schema", name: "answer", schema: { type: "object" }, strict: true },
          sampling: { reasoningEffort: "low" },
          metadata: { endUser: "user-42" },
        }),
      ),
    );
    assert.equal(result.finishReason, "stop");
    const sent = lastBody(sim);
    assert.deepEqual(sent.response_format, { type: "json_schema", json_schema: { name: "answer", schema: { type: "object" }, strict: true } });
    assert.equal(sent.reasoning_effort, "low");
    assert.equal(sent.user, "user-42");
  });

  it("streams text deltas that concatenate to the answer, with usage and the raw chunk JSON", async () => {
    const chunks = await collect(adapter.stream(call(request([user("Stream this please")]))));
    assert.equal(streamedText(chunks), answerText("Stream this please", 12));
    const usage = events(chunks).filter((e) => e.type === "usage");
    assert.deepEqual(usage, [{ type: "usage", usage: { inputTokens: 3, outputTokens: 12, cachedInputTokens: 0, cacheWriteInputTokens: 0, reasoningTokens: 0 } }]);
    assert.deepEqual(
      events(chunks).filter((e) => e.type === "finish"),
      [{ type: "finish", finishReason: "stop" }],
    );
    // Every chunk's tail (all but id, object, created, model) is handed on verbatim; the first is role-only with no events.
    const head = '{"id":"gw","object":"chat.completion.chunk","created":1,"model":"m"';
    const raw = chunks.map((c) => {
      assert.ok(c.openaiTail !== undefined, "every chunk of an OpenAI stream has a tail");
      return JSON.parse(head + c.openaiTail) as { id: string; system_fingerprint: string; choices: Array<{ delta: { role?: string } }> };
    });
    assert.ok(raw.every((r) => r.id === "gw" && r.system_fingerprint === "fp_sim"));
    assert.equal(raw[0]!.choices[0]!.delta.role, "assistant");
    assert.deepEqual(chunks[0]!.events, []);
    assert.deepEqual(raw.at(-1)!.choices, []);
    const sent = sim.requests.at(-1)!;
    assert.equal(sent.headers.accept, "text/event-stream");
    assert.equal((sent.body as Record<string, unknown>).stream, true);
    assert.deepEqual((sent.body as Record<string, unknown>).stream_options, { include_usage: true });
  });

  it("fails mid-stream on an error event, classified from its body", async () => {
    sim.faults.add({ errorEventAfterChunks: 3 });
    const first = await collectUntilError(adapter.stream(call(request([user("Stream then fail")]))));
    assert.equal(first.chunks.length, 3);
    assert.equal(first.error.errorClass, "server_error");
    assert.match(first.error.message, /^openai-test: The server had an error/);

    sim.faults.add({ errorEventAfterChunks: 2, errorEvent: { error: { message: "Rate limit reached", type: "requests", code: "rate_limit_exceeded" } } });
    const second = await collectUntilError(adapter.stream(call(request([user("Stream then fail")]))));
    assert.equal(second.error.errorClass, "rate_limited");

    sim.faults.add({ errorEventAfterChunks: 1, errorEvent: { error: { message: "This model's maximum context length is 4096 tokens.", type: "invalid_request_error" } } });
    const third = await collectUntilError(adapter.stream(call(request([user("Stream then fail")]))));
    assert.equal(third.error.errorClass, "context_length_exceeded");

    // vLLM puts the HTTP status in the error's code.
    sim.faults.add({ errorEventAfterChunks: 1, errorEvent: { error: { object: "error", message: "busy", type: "ServiceUnavailableError", code: 503 } } });
    const fourth = await collectUntilError(adapter.stream(call(request([user("Stream then fail")]))));
    assert.equal(fourth.error.errorClass, "overloaded");
  });

  it("fails on a malformed chunk with malformed_response", async () => {
    sim.faults.add({ malformedChunkAt: 2 });
    const { chunks, error } = await collectUntilError(adapter.stream(call(request([user("Stream this please")]))));
    assert.equal(chunks.length, 2);
    assert.equal(error.errorClass, "malformed_response");
  });

  it("fails a cut stream with a connection error", async () => {
    sim.faults.add({ cutAfterChunks: 3 });
    const { chunks, error } = await collectUntilError(adapter.stream(call(request([user("Stream this please")]))));
    assert.equal(chunks.length, 3);
    assert.equal(error.errorClass, "connection");
    assert.match(error.message, /^openai-test: /);
  });

  it("fails a stream that ends without a finish reason", async () => {
    sim.faults.add({ errorEventAfterChunks: 2, errorEvent: "[DONE]" });
    const { chunks, error } = await collectUntilError(adapter.stream(call(request([user("Stream this please")]))));
    assert.equal(chunks.length, 2);
    assert.equal(error.errorClass, "connection");
    assert.match(error.message, /ended early/);
  });

  it("fails a reset connection with a connection error, streaming or not", async () => {
    sim.faults.add({ resetConnection: true, times: 2 });
    await assert.rejects(adapter.complete(call(request([user("reset me")]))), isClass("connection"));
    const { chunks, error } = await collectUntilError(adapter.stream(call(request([user("reset me")]))));
    assert.equal(chunks.length, 0);
    assert.equal(error.errorClass, "connection");
    assert.ok(!error.message.includes(sim.url.replace("http://", "")), "the error must not name the upstream address");
  });

  it("fails a cut or malformed non-streamed body", async () => {
    sim.faults.add({ cutAfterChunks: 0 });
    await assert.rejects(adapter.complete(call(request([user("cut me")]))), isClass("connection"));
    sim.faults.add({ malformedChunkAt: 0 });
    await assert.rejects(adapter.complete(call(request([user("break me")]))), isClass("malformed_response"));
  });

  const statusCases: Array<{ name: string; fault: Fault; errorClass: ErrorClass; retryAfterMs?: number; message?: RegExp }> = [
    { name: "400", fault: { status: 400 }, errorClass: "invalid_request", message: /^openai-test: Bad request \(simulated\)\.$/ },
    {
      name: "400 context_length_exceeded",
      fault: { status: 400, body: { error: { message: "too long", type: "invalid_request_error", param: "messages", code: "context_length_exceeded" } } },
      errorClass: "context_length_exceeded",
    },
    {
      name: "400 maximum context length message",
      fault: { status: 400, body: { error: { message: "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.", type: "invalid_request_error", param: null, code: null } } },
      errorClass: "context_length_exceeded",
    },
    {
      name: "400 content_policy_violation",
      fault: { status: 400, body: { error: { message: "Your request was rejected by the safety system.", type: "invalid_request_error", param: null, code: "content_policy_violation" } } },
      errorClass: "content_filtered",
    },
    { name: "401", fault: { status: 401 }, errorClass: "auth" },
    { name: "402", fault: { status: 402 }, errorClass: "quota_exhausted" },
    { name: "403", fault: { status: 403 }, errorClass: "auth" },
    { name: "404", fault: { status: 404 }, errorClass: "not_found", message: /does not exist/ },
    { name: "404 with Ollama's string error", fault: { status: 404, body: { error: 'model "llama9" not found, try pulling it first' } }, errorClass: "not_found", message: /^openai-test: model "llama9" not found/ },
    { name: "408", fault: { status: 408 }, errorClass: "timeout" },
    { name: "413", fault: { status: 413 }, errorClass: "invalid_request" },
    { name: "422", fault: { status: 422 }, errorClass: "invalid_request" },
    { name: "429 retry-after", fault: { status: 429, headers: { "retry-after": "2" } }, errorClass: "rate_limited", retryAfterMs: 2_000 },
    { name: "429 retry-after-ms", fault: { status: 429, headers: { "retry-after-ms": "150", "retry-after": "9" } }, errorClass: "rate_limited", retryAfterMs: 150 },
    {
      name: "429 insufficient_quota",
      fault: { status: 429, body: { error: { message: "You exceeded your current quota.", type: "insufficient_quota", param: null, code: "insufficient_quota" } } },
      errorClass: "quota_exhausted",
    },
    { name: "500", fault: { status: 500 }, errorClass: "server_error" },
    { name: "502 HTML", fault: { status: 502, body: "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>" }, errorClass: "server_error", message: /^openai-test: 502 Bad Gateway$/ },
    { name: "503", fault: { status: 503 }, errorClass: "overloaded" },
    { name: "504", fault: { status: 504 }, errorClass: "timeout" },
    { name: "529", fault: { status: 529 }, errorClass: "overloaded" },
    { name: "500 empty body", fault: { status: 500, body: "" }, errorClass: "server_error", message: /^openai-test: HTTP 500$/ },
  ];
  for (const c of statusCases) {
    it(`classifies HTTP ${c.name} as ${c.errorClass}`, async () => {
      sim.faults.add(c.fault);
      await assert.rejects(adapter.complete(call(request([user("x")]))), (err: unknown) => {
        isClass(c.errorClass)(err);
        const e = err as UpstreamError;
        assert.equal(e.status, c.fault.status);
        if (c.retryAfterMs !== undefined) assert.equal(e.retryAfterMs, c.retryAfterMs);
        if (c.message !== undefined) assert.match(e.message, c.message);
        return true;
      });
    });
  }

  it("fails a stream before its first chunk on an HTTP error", async () => {
    sim.faults.add({ status: 429, headers: { "retry-after": "1" } });
    const { chunks, error } = await collectUntilError(adapter.stream(call(request([user("x")]))));
    assert.equal(chunks.length, 0);
    assert.equal(error.errorClass, "rate_limited");
    assert.equal(error.retryAfterMs, 1_000);
  });

  it("never shows the provider key, other keys, tokens or URL credentials in errors", async () => {
    sim.faults.add({
      status: 401,
      body: {
        error: {
          message: `Incorrect API key provided: ${KEY}. Also sk-live-abcdefghijklmnop, Authorization: Bearer tok_123456789 and https://admin:hunter2@internal.example/v1?api_key=zzz123`,
          type: "invalid_request_error",
          param: null,
          code: "invalid_api_key",
        },
      },
    });
    await assert.rejects(adapter.complete(call(request([user("x")]))), (err: unknown) => {
      isClass("auth")(err);
      const message = (err as Error).message;
      for (const secret of [KEY, "abcdefghijklmnop", "tok_123456789", "hunter2", "zzz123", sim.url]) {
        assert.ok(!message.includes(secret), `${JSON.stringify(secret)} leaked into: ${message}`);
      }
      assert.match(message, /^openai-test: Incorrect API key provided: \[redacted\]/);
      return true;
    });
  });

  it("cuts long upstream messages to about 500 characters", async () => {
    sim.faults.add({ status: 400, body: { error: { message: "x".repeat(5_000), type: "invalid_request_error", param: null, code: null } } });
    await assert.rejects(adapter.complete(call(request([user("x")]))), (err: unknown) => {
      assert.ok((err as Error).message.length <= 520);
      return true;
    });
  });

  it("cancels the upstream request when the signal aborts mid-stream", async () => {
    sim.faults.add({ chunkDelayMs: 50 });
    const aborts = sim.clientAborts();
    const controller = new AbortController();
    const iterator = adapter.stream(call(request([user("Stream this please")]), controller.signal))[Symbol.asyncIterator]();
    const first = await iterator.next();
    assert.equal(first.done, false);
    controller.abort();
    await assert.rejects(iterator.next(), isClass("cancelled"));
    await eventually(() => sim.clientAborts() === aborts + 1);
  });

  it("cancels the upstream request when the consumer stops iterating", async () => {
    sim.faults.add({ chunkDelayMs: 50 });
    const aborts = sim.clientAborts();
    for await (const chunk of adapter.stream(call(request([user("Stream this please")])))) {
      assert.ok(chunk.openaiTail !== undefined);
      break;
    }
    await eventually(() => sim.clientAborts() === aborts + 1);
  });

  it("rejects at once when the signal is already aborted", async () => {
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(adapter.complete(call(request([user("x")]), controller.signal)), isClass("cancelled"));
  });

  it("is rejected by the upstream with the wrong key, as auth", async () => {
    const wrong = createOpenAICompatibleAdapter(providerConfig({ id: "wrong", type: "openai", base_url: `${sim.url}/v1`, api_key: "sk-wrong-key-000000" }));
    try {
      await assert.rejects(wrong.complete(call(request([user("x")]))), (err: unknown) => {
        isClass("auth")(err);
        assert.ok(!(err as Error).message.includes("sk-wrong-key-000000"));
        return true;
      });
    } finally {
      await wrong.close();
    }
  });
});

describe("OpenAI-compatible adapter timeouts", () => {
  let sim: OpenAISimulator;
  let adapter: ProviderAdapter;

  before(async () => {
    sim = await startOpenAISimulator();
    adapter = createOpenAICompatibleAdapter(providerConfig({ id: "slow", type: "openai", base_url: `${sim.url}/v1`, api_key: "k", timeout_ms: 100, idle_timeout_ms: 100 }));
  });
  after(async () => {
    await adapter.close();
    await sim.close();
  });

  // undici checks header and body timeouts on a coarse clock (about every 500 ms), so a
  // 100 ms timeout fires within about a second: the simulator's delays must be longer.
  it("times out when the first token is late", async () => {
    sim.faults.add({ firstTokenDelayMs: 1_500 });
    const started = Date.now();
    await assert.rejects(adapter.complete(call(request([user("slow")]))), isClass("timeout"));
    assert.ok(Date.now() - started < 1_400, "the timeout must fire before the answer arrives");
  });

  it("times out when a stream goes quiet mid-way", async () => {
    sim.faults.add({ chunkDelayMs: 1_500 });
    const { chunks, error } = await collectUntilError(adapter.stream(call(request([user("slow stream")]))));
    assert.equal(chunks.length, 1);
    assert.equal(error.errorClass, "timeout");
  });
});

describe("OpenAI-compatible adapter with the DeepSeek preset", () => {
  let sim: OpenAISimulator;
  let adapter: ProviderAdapter;

  before(async () => {
    sim = await startOpenAISimulator({ apiKey: KEY, flavor: "deepseek" });
    // DeepSeek's base URL has no /v1.
    adapter = createOpenAICompatibleAdapter(providerConfig({ id: "deepseek", type: "deepseek", base_url: sim.url, api_key: KEY }));
  });
  after(async () => {
    await adapter.close();
    await sim.close();
  });

  const messages: ChatMessage[] = [{ role: "system", content: [{ type: "text", text: "THINK CACHED" }] }, user("why is the sky blue")];
  const input = countTokens("THINK CACHED why is the sky blue");
  const reasoning = "Thinking about: why is the sky blue";

  it("returns reasoning and counts cached and reasoning tokens", async () => {
    const result = await adapter.complete(call(request(messages, { sampling: { maxOutputTokens: 100, reasoningEffort: "high" } }), undefined, "deepseek-chat"));
    assert.equal(sim.requests.at(-1)!.path, "/chat/completions");
    assert.equal(result.output.reasoning, reasoning);
    assert.equal(result.output.text, answerText("why is the sky blue", 12));
    assert.deepEqual(result.usage, {
      inputTokens: input,
      outputTokens: 12 + countTokens(reasoning),
      cachedInputTokens: Math.floor(input / 2),
      cacheWriteInputTokens: 0,
      reasoningTokens: countTokens(reasoning),
    });
    const sent = lastBody(sim);
    assert.equal(sent.max_tokens, 100);
    assert.equal(sent.max_completion_tokens, undefined);
    assert.equal(sent.reasoning_effort, undefined);
  });

  it("honours max tokens through max_tokens", async () => {
    const result = await adapter.complete(call(request([user("Hello there")], { sampling: { maxOutputTokens: 2 } }), undefined, "deepseek-chat"));
    assert.equal(result.finishReason, "length");
    assert.equal(result.output.text, "Echo: Hello");
  });

  it("streams reasoning before text past keep-alive comments, with cached usage", async () => {
    const chunks = await collect(adapter.stream(call(request(messages), undefined, "deepseek-chat")));
    const all = events(chunks);
    const reasoningText = all.map((e) => (e.type === "reasoning" ? e.text : "")).join("");
    assert.equal(reasoningText, reasoning);
    assert.ok(all.findIndex((e) => e.type === "reasoning") < all.findIndex((e) => e.type === "text"));
    assert.equal(streamedText(chunks), answerText("why is the sky blue", 12));
    const usage = all.find((e) => e.type === "usage");
    assert.equal(usage?.type === "usage" && usage.usage.cachedInputTokens, Math.floor(input / 2));
    assert.equal(usage?.type === "usage" && usage.usage.reasoningTokens, countTokens(reasoning));
  });
});

describe("OpenAI-compatible adapter with the Mistral preset", () => {
  let sim: OpenAISimulator;
  let adapter: ProviderAdapter;

  before(async () => {
    sim = await startOpenAISimulator({ apiKey: KEY, flavor: "mistral" });
    adapter = createOpenAICompatibleAdapter(providerConfig({ id: "mistral", type: "mistral", base_url: `${sim.url}/v1`, api_key: KEY }));
  });
  after(async () => {
    await adapter.close();
    await sim.close();
  });

  it("sends random_seed, no stream_options, no user or names, and still gets stream usage", async () => {
    const req = request([{ ...user("Stream this please"), name: "bob" }], { sampling: { seed: 42 }, metadata: { endUser: "u-1" } });
    const chunks = await collect(adapter.stream(call(req, undefined, "mistral-small-latest")));
    const sent = lastBody(sim);
    assert.equal(sent.random_seed, 42);
    assert.equal(sent.seed, undefined);
    assert.equal(sent.stream_options, undefined);
    assert.equal(sent.user, undefined);
    assert.deepEqual(sent.messages, [{ role: "user", content: "Stream this please" }]);
    assert.equal(streamedText(chunks), answerText("Stream this please", 12));
    const usage = events(chunks).filter((e) => e.type === "usage");
    assert.equal(usage.length, 1);
    assert.equal(usage[0]?.type === "usage" && usage[0].usage.outputTokens, 12);
  });

  it("maps the required tool choice to any and rewrites tool-call ids to nine characters", async () => {
    const first = await adapter.complete(call(request([user("weather please")], { tools: weatherTools, toolChoice: { mode: "required" } }), undefined, "mistral-small-latest"));
    assert.equal(lastBody(sim).tool_choice, "any");
    assert.equal(first.finishReason, "tool_calls");
    assert.equal(first.output.toolCalls.length, 1);
    const second = await adapter.complete(
      call(
        request(
          [
            user("weather please"),
            { role: "assistant", content: [], toolCalls: first.output.toolCalls },
            { role: "tool", toolCallId: first.output.toolCalls[0]!.id, content: [{ type: "text", text: "rainy" }] },
          ],
          { tools: weatherTools },
        ),
        undefined,
        "mistral-small-latest",
      ),
    );
    assert.equal(second.output.text, "Results: rainy");
    const messages = lastBody(sim).messages as Array<{ tool_calls?: Array<{ id: string }>; tool_call_id?: string }>;
    assert.match(messages[1]!.tool_calls![0]!.id, /^[a-zA-Z0-9]{9}$/);
    assert.equal(messages[2]!.tool_call_id, messages[1]!.tool_calls![0]!.id);
  });

  it("reads Mistral's 422 detail body", async () => {
    sim.faults.add({ status: 422 });
    await assert.rejects(adapter.complete(call(request([user("x")]), undefined, "mistral-small-latest")), (err: unknown) => {
      isClass("invalid_request")(err);
      assert.equal((err as Error).message, "mistral: body: Invalid request (simulated)");
      return true;
    });
  });
});

describe("OpenAI-compatible adapter for local servers", () => {
  let sim: OpenAISimulator;

  before(async () => {
    sim = await startOpenAISimulator();
  });
  after(async () => {
    await sim.close();
  });

  it("sends no Authorization header when no key is set (Ollama)", async () => {
    const adapter = createOpenAICompatibleAdapter(providerConfig({ id: "ollama", type: "ollama", base_url: `${sim.url}/v1` }));
    try {
      const result = await adapter.complete(call(request([user("Hello there")], { sampling: { maxOutputTokens: 5 } }), undefined, "llama3.2"));
      assert.equal(result.finishReason, "length");
      const sent = sim.requests.at(-1)!;
      assert.equal(sent.headers.authorization, undefined);
      assert.equal((sent.body as Record<string, unknown>).max_tokens, 5);
    } finally {
      await adapter.close();
    }
  });

  it("sends base URL credentials as Basic auth when no key is set", async () => {
    const base = sim.url.replace("http://", "http://proxy:p%40ss@");
    const adapter = createOpenAICompatibleAdapter(providerConfig({ id: "vllm", type: "vllm", base_url: `${base}/v1` }));
    try {
      await adapter.complete(call(request([user("Hello there")]), undefined, "served-model"));
      assert.equal(sim.requests.at(-1)!.headers.authorization, `Basic ${Buffer.from("proxy:p@ss").toString("base64")}`);
    } finally {
      await adapter.close();
    }
  });
});

describe("OpenAI presets and request encoding", () => {
  const base = request([user("hi")], { sampling: { topK: 40, seed: 1, reasoningEffort: "medium", maxOutputTokens: 10 } });

  it("resolves default base URLs and whether a key is needed", () => {
    const cases: Array<[ProviderConfig["type"], string, boolean]> = [
      ["openai", "https://api.openai.com/v1", false],
      ["deepseek", "https://api.deepseek.com", false],
      ["mistral", "https://api.mistral.ai/v1", false],
      ["qwen", "https://dashscope-intl.aliyuncs.com/compatible-mode/v1", false],
      ["ollama", "http://localhost:11434/v1", true],
      ["vllm", "http://localhost:8000/v1", true],
    ];
    for (const [type, url, enabledWithoutKey] of cases) {
      const resolved = resolveOpenAIProvider(providerConfig({ id: type, type }));
      assert.equal(resolved.baseUrl, url);
      assert.equal(resolved.enabled, enabledWithoutKey, type);
      assert.equal(resolveOpenAIProvider(providerConfig({ id: type, type, api_key: "k" })).enabled, true);
    }
    assert.equal(resolveOpenAIProvider(providerConfig({ id: "o", type: "openai", base_url: "http://h:1/v1/" })).baseUrl, "http://h:1/v1");
    assert.throws(() => resolveOpenAIProvider(providerConfig({ id: "a", type: "anthropic" })));
  });

  it("sends top_k only to vLLM and reasoning_effort only to OpenAI", () => {
    const vllm = JSON.parse(buildOpenAIChatBody(openaiPresetFor("vllm"), base, "m", false)) as Record<string, unknown>;
    assert.equal(vllm.top_k, 40);
    assert.equal(vllm.reasoning_effort, undefined);
    assert.equal(vllm.max_tokens, 10);
    const openai = JSON.parse(buildOpenAIChatBody(openaiPresetFor("openai"), base, "m", true)) as Record<string, unknown>;
    assert.equal(openai.top_k, undefined);
    assert.equal(openai.reasoning_effort, "medium");
    assert.equal(openai.max_completion_tokens, 10);
    assert.deepEqual(openai.stream_options, { include_usage: true });
    const qwen = JSON.parse(buildOpenAIChatBody(openaiPresetFor("qwen"), base, "m", true)) as Record<string, unknown>;
    assert.deepEqual(qwen.stream_options, { include_usage: true });
    assert.equal(qwen.seed, 1);
  });

  it("sends only what the request set, and tool settings only with tools", () => {
    const body = JSON.parse(buildOpenAIChatBody(openaiPresetFor("openai"), request([user("hi")], { toolChoice: { mode: "none" }, parallelToolCalls: false }), "m", false));
    assert.deepEqual(body, { model: "m", messages: [{ role: "user", content: "hi" }] });
  });

  it("reads usage from either cached-token field", () => {
    assert.deepEqual(normalizeOpenAIUsage({ prompt_tokens: 10, completion_tokens: 5, prompt_cache_hit_tokens: 4, prompt_cache_miss_tokens: 6 }), {
      inputTokens: 10,
      outputTokens: 5,
      cachedInputTokens: 4,
      cacheWriteInputTokens: 0,
      reasoningTokens: 0,
    });
    assert.equal(normalizeOpenAIUsage(null), undefined);
  });

  it("rewrites tool-call ids deterministically", () => {
    assert.equal(shortToolCallId("call_abc"), shortToolCallId("call_abc"));
    assert.notEqual(shortToolCallId("call_abc"), shortToolCallId("call_abd"));
    assert.match(shortToolCallId("call_0"), /^[a-zA-Z0-9]{9}$/);
    assert.equal(shortToolCallId("Ab3dE6gH9"), "Ab3dE6gH9");
  });

});
