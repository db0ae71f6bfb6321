import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { ChatMessage, ChatRequest, StreamChunk, ToolDefinition, Usage } from "../../server/core/chat.js";
import { UpstreamError } from "../../server/core/errors.js";
import type { ModelConfig, ProviderConfig } from "../../server/config/schema.js";
import type { AdapterCall, ProviderAdapter } from "../../server/providers/adapter.js";
import { createGeminiAdapter } from "../../server/providers/gemini.js";
import { cleanGeminiSchema } from "../../server/providers/gemini/schema.js";
import { startGeminiSimulator, type GeminiSimulator } from "../simulators/gemini.js";

const KEY = "AIzaSyTest-0123456789abcdefghijklmn";
const MODEL = "gemini-sim";

const modelConfig: ModelConfig = {
  id: "gemini/gemini-sim",
  provider: "gemini",
  upstream: MODEL,
  context_window: 1_000_000,
  max_output_tokens: 8192,
  capabilities: ["tools", "vision", "reasoning", "json"],
};

function providerConfig(url: string, apiKey = KEY): ProviderConfig {
  return {
    id: "gemini",
    type: "gemini",
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
  return { model: "gemini/gemini-sim", messages, sampling: {}, routing: {}, metadata: {}, ...extra };
}

function call(request: ChatRequest, signal: AbortSignal = new AbortController().signal): AdapterCall {
  return { request, model: modelConfig, upstreamModel: MODEL, signal };
}

// OpenAI-style schemas, with the keywords Gemini rejects: the adapter must clean them.
const tools: ToolDefinition[] = [
  {
    name: "get_weather",
    description: "Weather in a city",
    parameters: {
      $schema: "http://json-schema.org/draft-07/schema#",
      type: "object",
      additionalProperties: false,
      properties: { q: { type: "string", default: "Paris", format: "uri" }, unit: { type: ["string", "null"], enum: ["c", "f"] } },
      required: ["q", "missing"],
    },
    strict: true,
  },
  { name: "get_time", parameters: { type: "object", properties: { q: { $ref: "#/$defs/city" } }, $defs: { city: { type: "string", examples: ["Oslo"] } } } },
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
    assert.equal(chunk.openaiTail, undefined, "Gemini chunks carry no OpenAI JSON");
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

function usage(inputTokens: number, outputTokens: number, cachedInputTokens = 0, reasoningTokens = 0): Usage {
  return { inputTokens, outputTokens, cachedInputTokens, cacheWriteInputTokens: 0, reasoningTokens };
}

function lastBody(sim: GeminiSimulator): Record<string, any> {
  return sim.requests[sim.requests.length - 1]!.body as Record<string, any>;
}

async function waitFor(condition: () => boolean, timeoutMs = 1000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail("condition not met in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("gemini adapter against the simulator", () => {
  let sim: GeminiSimulator;
  let adapter: ProviderAdapter;

  before(async () => {
    sim = await startGeminiSimulator({ apiKey: KEY, models: [MODEL] });
    adapter = createGeminiAdapter(providerConfig(sim.url));
  });
  after(async () => {
    await adapter.close();
    await sim.close();
  });

  test("plain answer: text, stop, usage; the key travels in a header, never the URL", async () => {
    const result = await adapter.complete(call(chat([user("hello there")])));
    assert.equal(result.output.text, "Echo: hello there w3 w4 w5 w6 w7 w8 w9 w10 w11");
    assert.equal(result.finishReason, "stop");
    assert.deepEqual(result.usage, usage(2, 12));
    assert.match(result.upstreamId ?? "", /^sim-/);
    const req = sim.requests[sim.requests.length - 1]!;
    assert.equal(req.path, "/v1beta/models/gemini-sim:generateContent");
    assert.equal(req.headers["x-goog-api-key"], KEY);
    assert.equal((req.body as Record<string, unknown>).generationConfig, undefined, "nothing set, nothing sent");
  });

  test("multi-turn with a system instruction; roles user/model; same-role turns merged", async () => {
    const result = await adapter.complete(
      call(chat([system("Be brief."), user("first question"), assistant("first answer"), user("second"), user("question")])),
    );
    assert.equal(result.output.text, "Echo: second question w3 w4 w5 w6 w7 w8 w9 w10 w11");
    assert.equal(result.usage.inputTokens, 8);
    const body = lastBody(sim);
    assert.deepEqual(body.systemInstruction, { parts: [{ text: "Be brief." }] });
    assert.deepEqual(
      body.contents.map((c: { role: string }) => c.role),
      ["user", "model", "user"],
    );
    assert.equal(body.contents[2].parts.length, 2);
  });

  test("tool call round trip with two parallel calls fed back as results (schemas cleaned)", async () => {
    const ask = user("call get_weather and get_time for Paris");
    const first = await adapter.complete(call(chat([ask], { tools })));
    assert.equal(first.finishReason, "tool_calls");
    const args = JSON.stringify({ q: "call get_weather and get_time for Paris" });
    assert.deepEqual(first.output.toolCalls, [
      { id: "call_0", name: "get_weather", arguments: args },
      { id: "call_1", name: "get_time", arguments: args },
    ]);
    assert.equal(first.usage.outputTokens, 12);
    const declared = lastBody(sim).tools[0].functionDeclarations;
    assert.deepEqual(declared[0].parameters, {
      type: "object",
      properties: { q: { type: "string" }, unit: { type: "string", enum: ["c", "f"], nullable: true } },
      required: ["q"],
    });
    assert.deepEqual(declared[1].parameters, { type: "object", properties: { q: { type: "string" } } });

    const second = await adapter.complete(
      call(
        chat(
          [
            ask,
            { role: "assistant", content: [], toolCalls: first.output.toolCalls },
            { role: "tool", toolCallId: "call_0", content: [{ type: "text", text: "sunny" }] },
            { role: "tool", toolCallId: "call_1", content: [{ type: "text", text: "noon" }] },
          ],
          { tools },
        ),
      ),
    );
    assert.equal(second.output.text, "Results: sunny; noon");
    assert.equal(second.finishReason, "stop");
    const body = lastBody(sim);
    assert.equal(body.contents.length, 3, "both results travel in one user turn");
    assert.deepEqual(body.contents[1].parts[0], { functionCall: { name: "get_weather", args: { q: "call get_weather and get_time for Paris" } } });
    assert.deepEqual(body.contents[2], {
      role: "user",
      parts: [
        { functionResponse: { name: "get_weather", response: { content: "sunny" } } },
        { functionResponse: { name: "get_time", response: { content: "noon" } } },
      ],
    });
  });

  test("tool choice maps to functionCallingConfig", async () => {
    const named = await adapter.complete(call(chat([user("weather please")], { tools, toolChoice: { function: "get_time" } })));
    assert.deepEqual(named.output.toolCalls.map((c) => c.name), ["get_time"]);
    assert.deepEqual(lastBody(sim).toolConfig, { functionCallingConfig: { mode: "ANY", allowedFunctionNames: ["get_time"] } });
    const none = await adapter.complete(call(chat([user("call get_time")], { tools, toolChoice: { mode: "none" } })));
    assert.equal(none.finishReason, "stop");
    assert.deepEqual(lastBody(sim).toolConfig, { functionCallingConfig: { mode: "NONE" } });
  });

  test("image input: inline data, URL with a known type, URL without one rejected", async () => {
    const png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
    const result = await adapter.complete(
      call(
        chat([
          {
            role: "user",
            content: [
              { type: "text", text: "what is this" },
              { type: "image", base64: png, mediaType: "image/png" },
              { type: "image", url: "https://example.com/cat.jpg" },
            ],
          },
        ]),
      ),
    );
    assert.equal(result.output.text, "Echo: what is this [image] [image] w6 w7 w8 w9 w10 w11");
    const parts = lastBody(sim).contents[0].parts;
    assert.deepEqual(parts[1], { inlineData: { mimeType: "image/png", data: png } });
    assert.deepEqual(parts[2], { fileData: { mimeType: "image/jpeg", fileUri: "https://example.com/cat.jpg" } });

    const hits = sim.hits();
    const err = await rejection(adapter.complete(call(chat([{ role: "user", content: [{ type: "image", url: "https://example.com/img?id=1" }] }]))));
    assert.equal(err.errorClass, "invalid_request");
    assert.match(err.message, /^gemini: messages\[0\]: an image URL needs a media type/);
    assert.equal(sim.hits(), hits, "rejected before any HTTP call");
  });

  test("stop sequence, length cut, JSON mode and sampling in generationConfig", async () => {
    const stopped = await adapter.complete(call(chat([user("alpha beta gamma")], { sampling: { stop: ["gamma"], seed: 3, topK: 5 } })));
    assert.equal(stopped.output.text, "Echo: alpha beta ");
    assert.equal(stopped.finishReason, "stop");
    assert.deepEqual(lastBody(sim).generationConfig, { stopSequences: ["gamma"], seed: 3, topK: 5 });
    const cut = await adapter.complete(call(chat([user("alpha beta gamma")], { sampling: { maxOutputTokens: 3, temperature: 1.5 } })));
    assert.equal(cut.output.text, "Echo: alpha beta");
    assert.equal(cut.finishReason, "length");
    assert.equal(cut.usage.outputTokens, 3);
    await adapter.complete(
      call(chat([user("json")], { responseFormat: { type: "json_schema", name: "x", schema: { type: "object", additionalProperties: false, properties: { a: { type: "integer" } } } } })),
    );
    assert.deepEqual(lastBody(sim).generationConfig, { responseMimeType: "application/json", responseSchema: { type: "object", properties: { a: { type: "integer" } } } });
  });

  test("blocked prompt is content_filter", async () => {
    const result = await adapter.complete(call(chat([user("please BLOCKME now")])));
    assert.equal(result.finishReason, "content_filter");
    assert.equal(result.output.text, "");
    assert.deepEqual(result.usage, usage(3, 0));
    const streamed = await collect(adapter.stream(call(chat([user("please BLOCKME now")]))));
    assert.deepEqual(streamed.finishes, ["content_filter"]);
    assert.deepEqual(streamed.usages, [usage(3, 0)]);
  });

  test("MALFORMED_FUNCTION_CALL is malformed_tool_call, never stop", async () => {
    const result = await adapter.complete(call(chat([user("MALFORMED please")], { tools })));
    assert.equal(result.finishReason, "malformed_tool_call");
    const streamed = await collect(adapter.stream(call(chat([user("MALFORMED please")], { tools }))));
    assert.deepEqual(streamed.finishes, ["malformed_tool_call"]);
  });

  test("thoughts and cached usage: reasoning counted in output, cache inside input", async () => {
    const result = await adapter.complete(call(chat([system("THINK CACHED"), user("deep question")])));
    assert.equal(result.output.reasoning, "Thinking about: deep question");
    assert.equal(result.output.text, "Echo: deep question w3 w4 w5 w6 w7 w8 w9 w10 w11");
    assert.deepEqual(result.usage, usage(4, 16, 2, 4));
  });

  test("streaming text: deltas concatenate to the answer, usage once and equal to the unary one", async () => {
    const whole = await adapter.complete(call(chat([system("THINK CACHED"), user("stream me")])));
    const streamed = await collect(adapter.stream(call(chat([system("THINK CACHED"), user("stream me")]))));
    assert.equal(sim.requests[sim.requests.length - 1]!.path, "/v1beta/models/gemini-sim:streamGenerateContent?alt=sse");
    assert.equal(streamed.text, whole.output.text);
    assert.equal(streamed.reasoning, whole.output.reasoning);
    assert.deepEqual(streamed.finishes, ["stop"]);
    assert.deepEqual(streamed.usages, [whole.usage]);
    assert.ok(streamed.chunks >= 12, "one word per chunk");
  });

  test("streaming tool calls arrive whole with stable ids", async () => {
    const streamed = await collect(adapter.stream(call(chat([user("call get_time and get_weather")], { tools }))));
    const args = JSON.stringify({ q: "call get_time and get_weather" });
    assert.deepEqual(streamed.toolCalls, [
      { id: "call_0", name: "get_weather", arguments: args },
      { id: "call_1", name: "get_time", arguments: args },
    ]);
    assert.deepEqual(streamed.finishes, ["tool_calls"]);
  });

  test("streaming length cut", async () => {
    const cut = await collect(adapter.stream(call(chat([user("alpha beta gamma")], { sampling: { maxOutputTokens: 2 } }))));
    assert.equal(cut.text, "Echo: alpha");
    assert.deepEqual(cut.finishes, ["length"]);
  });

  test("a stream that ends without a finishReason, a cut, a malformed chunk, a reset", async () => {
    sim.faults.add({ errorEventAfterChunks: 3 });
    assert.equal((await rejection(collect(adapter.stream(call(chat([user("hello")])))))).errorClass, "connection");
    sim.faults.add({ cutAfterChunks: 5 });
    assert.equal((await rejection(collect(adapter.stream(call(chat([user("hello")])))))).errorClass, "connection");
    sim.faults.add({ malformedChunkAt: 2 });
    assert.equal((await rejection(collect(adapter.stream(call(chat([user("hello")])))))).errorClass, "malformed_response");
    sim.faults.add({ resetConnection: true });
    assert.equal((await rejection(adapter.complete(call(chat([user("hello")]))))).errorClass, "connection");
  });

  const statusCases: Array<{ status: number; body?: unknown; errorClass: string; retryAfterMs?: number }> = [
    { status: 429, errorClass: "rate_limited", retryAfterMs: 34_000 },
    { status: 400, errorClass: "invalid_request" },
    {
      status: 400,
      body: { error: { code: 400, message: "The input token count (2000000) exceeds the maximum number of tokens allowed (1048576).", status: "INVALID_ARGUMENT" } },
      errorClass: "context_length_exceeded",
    },
    { status: 403, errorClass: "auth" },
    { status: 404, errorClass: "not_found" },
    { status: 500, errorClass: "server_error" },
    { status: 503, errorClass: "overloaded" },
    { status: 504, errorClass: "timeout" },
  ];
  for (const c of statusCases) {
    test(`HTTP ${c.status}${c.body !== undefined ? " (custom body)" : ""} → ${c.errorClass}`, async () => {
      const fault = { status: c.status, ...(c.body !== undefined ? { body: c.body } : {}) };
      sim.faults.add(fault);
      const err = await rejection(adapter.complete(call(chat([user("hi")]))));
      assert.equal(err.errorClass, c.errorClass);
      assert.equal(err.status, c.status);
      assert.equal(err.retryAfterMs, c.retryAfterMs);
      assert.match(err.message, /^gemini: /);
      sim.faults.add(fault);
      assert.equal((await rejection(collect(adapter.stream(call(chat([user("hi")])))))).errorClass, c.errorClass);
    });
  }

  test("400 API_KEY_INVALID is auth, and no key ever appears in an error message", async () => {
    const wrong = createGeminiAdapter(providerConfig(sim.url, "AIzaSyWrong-9876543210zyxwvutsrq"));
    try {
      const err = await rejection(wrong.complete(call(chat([user("hi")]))));
      assert.equal(err.errorClass, "auth");
      assert.equal(err.status, 400);
    } finally {
      await wrong.close();
    }
    sim.faults.add({
      status: 400,
      body: {
        error: {
          code: 400,
          message: `API key not valid: ${KEY} at https://generativelanguage.googleapis.com/v1beta/models/x?key=${KEY}&alt=sse (Bearer ya29.token, sk-proj-abcdef123456)`,
          status: "INVALID_ARGUMENT",
        },
      },
    });
    const err = await rejection(adapter.complete(call(chat([user("hi")]))));
    assert.equal(err.errorClass, "auth");
    for (const secret of [KEY, "AIzaSy", "ya29.token", "sk-proj", sim.url]) assert.ok(!err.message.includes(secret), `${secret} leaked: ${err.message}`);
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
    assert.ok(Date.now() - started < 600, "did not wait for the whole stream");
    await waitFor(() => sim.openStreams() === 0);
    assert.equal(sim.requests[sim.requests.length - 1]!.closedEarly, true, "the upstream saw the client go away");

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

describe("cleanGeminiSchema", () => {
  test("drops unsupported keywords, keeps property names that look like keywords", () => {
    assert.deepEqual(
      cleanGeminiSchema({
        type: "object",
        properties: { default: { type: "string", pattern: "^a" }, type: { const: "x" } },
        patternProperties: { "^x": { type: "string" } },
        required: ["default"],
      }),
      { type: "object", properties: { default: { type: "string" }, type: { type: "string", enum: ["x"] } }, required: ["default"] },
    );
  });

  test("anyOf with null becomes nullable; allOf merges; recursive refs stop", () => {
    assert.deepEqual(cleanGeminiSchema({ anyOf: [{ type: "integer" }, { type: "null" }], description: "n" }), {
      type: "integer",
      description: "n",
      nullable: true,
    });
    assert.deepEqual(
      cleanGeminiSchema({ allOf: [{ type: "object", properties: { a: { type: "string" } }, required: ["a"] }, { properties: { b: { type: "number" } } }] }),
      { type: "object", properties: { a: { type: "string" }, b: { type: "number" } }, required: ["a"] },
    );
    const recursive = cleanGeminiSchema({ type: "object", properties: { child: { $ref: "#/$defs/node" } }, $defs: { node: { type: "object", properties: { next: { $ref: "#/$defs/node" } } } } });
    assert.equal(JSON.stringify(recursive).includes("$ref"), false);
  });
});
