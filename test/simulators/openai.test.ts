import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { answerText, countTokens } from "./harness.js";
import { startOpenAISimulator, type OpenAISimulator } from "./openai.js";

const KEY = "sk-sim-key-123456";

interface Reply {
  status: number;
  headers: Headers;
  json: any;
  text: string;
}

async function post(sim: OpenAISimulator, body: unknown, options: { path?: string; key?: string | null; raw?: string } = {}): Promise<Reply> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  const key = options.key === undefined ? KEY : options.key;
  if (key !== null) headers.authorization = `Bearer ${key}`;
  const res = await fetch(`${sim.url}${options.path ?? "/v1/chat/completions"}`, { method: "POST", headers, body: options.raw ?? JSON.stringify(body) });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json, text };
}

/** sse splits a stream body into its events: data payloads and comments. */
function sse(text: string): { data: string[]; comments: string[] } {
  const data: string[] = [];
  const comments: string[] = [];
  for (const block of text.split("\n\n")) {
    if (block.startsWith(":")) comments.push(block);
    else if (block.startsWith("data: ")) data.push(block.slice(6));
  }
  return { data, comments };
}

function msgs(text: string): unknown[] {
  return [{ role: "user", content: text }];
}

const tools = ["get_weather", "get_time"].map((name) => ({ type: "function", function: { name, parameters: { type: "object" } } }));

describe("OpenAI simulator (openai flavour)", () => {
  let sim: OpenAISimulator;

  before(async () => {
    sim = await startOpenAISimulator({ apiKey: KEY, models: ["gpt-4o", "gpt-4o-mini"] });
  });
  after(async () => {
    await sim.close();
  });

  it("answers by the rules: echo text, usage, finish", async () => {
    const r = await post(sim, { model: "gpt-4o", messages: [{ role: "system", content: "Be brief." }, ...msgs("Hello there")] });
    assert.equal(r.status, 200);
    assert.equal(r.json.object, "chat.completion");
    assert.equal(r.json.choices[0].message.content, answerText("Hello there", 12));
    assert.equal(r.json.choices[0].finish_reason, "stop");
    assert.equal(r.json.usage.prompt_tokens, countTokens("Be brief. Hello there"));
    assert.equal(r.json.usage.completion_tokens, 12);
    assert.equal(r.json.usage.total_tokens, r.json.usage.prompt_tokens + 12);
    assert.equal(sim.hits(), 1);
  });

  it("applies max tokens, stop sequences, content filter, reasoning and caching", async () => {
    const cut = await post(sim, { model: "gpt-4o", messages: msgs("Hello there"), max_completion_tokens: 2 });
    assert.equal(cut.json.choices[0].message.content, "Echo: Hello");
    assert.equal(cut.json.choices[0].finish_reason, "length");
    const stopped = await post(sim, { model: "gpt-4o", messages: msgs("Hello there"), stop: "there" });
    assert.equal(stopped.json.choices[0].message.content, "Echo: Hello ");
    assert.equal(stopped.json.choices[0].finish_reason, "stop");
    const blocked = await post(sim, { model: "gpt-4o", messages: msgs("BLOCKME please") });
    assert.equal(blocked.json.choices[0].finish_reason, "content_filter");
    assert.equal(blocked.json.choices[0].message.content, "");
    assert.equal(blocked.json.usage.completion_tokens, 0);
    const thought = await post(sim, { model: "gpt-4o", messages: msgs("THINK CACHED about it") });
    const reasoning = "Thinking about: THINK CACHED about it";
    assert.equal(thought.json.choices[0].message.reasoning_content, reasoning);
    assert.equal(thought.json.usage.completion_tokens_details.reasoning_tokens, countTokens(reasoning));
    assert.equal(thought.json.usage.completion_tokens, 12 + countTokens(reasoning));
    assert.equal(thought.json.usage.prompt_tokens_details.cached_tokens, Math.floor(countTokens("THINK CACHED about it") / 2));
  });

  it("calls the tools named in the prompt, then answers their results", async () => {
    const prompt = "call get_time please";
    const r = await post(sim, { model: "gpt-4o", messages: msgs(prompt), tools });
    const message = r.json.choices[0].message;
    assert.equal(r.json.choices[0].finish_reason, "tool_calls");
    assert.equal(message.content, null);
    assert.deepEqual(message.tool_calls, [{ id: "call_0", type: "function", function: { name: "get_time", arguments: JSON.stringify({ q: prompt }) } }]);
    const results = await post(sim, { model: "gpt-4o", tools, messages: [...msgs(prompt), message, { role: "tool", tool_call_id: "call_0", content: "noon" }] });
    assert.equal(results.json.choices[0].message.content, "Results: noon");
    const none = await post(sim, { model: "gpt-4o", messages: msgs(prompt), tools, tool_choice: "none" });
    assert.equal(none.json.choices[0].finish_reason, "stop");
    const forced = await post(sim, { model: "gpt-4o", messages: msgs("no names here"), tools, tool_choice: "required" });
    assert.equal(forced.json.choices[0].message.tool_calls[0].function.name, "get_weather");
  });

  it("streams in chunk format: role first, one id, finish on the last content chunk, usage only when asked", async () => {
    const r = await post(sim, { model: "gpt-4o", messages: msgs("Stream this please"), stream: true, stream_options: { include_usage: true } });
    assert.equal(r.status, 200);
    assert.match(r.headers.get("content-type") ?? "", /^text\/event-stream/);
    const { data } = sse(r.text);
    assert.equal(data.at(-1), "[DONE]");
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
    assert.deepEqual(chunks[0].choices[0].delta, { role: "assistant", content: "" });
    assert.equal(new Set(chunks.map((c) => c.id)).size, 1);
    assert.ok(chunks.every((c) => c.object === "chat.completion.chunk"));
    const usageChunk = chunks.at(-1);
    assert.deepEqual(usageChunk.choices, []);
    assert.equal(usageChunk.usage.completion_tokens, 12);
    const content = chunks.slice(0, -1);
    assert.ok(content.every((c) => c.usage === null));
    assert.equal(content.map((c) => c.choices[0].delta.content ?? "").join(""), answerText("Stream this please", 12));
    assert.equal(content.at(-1).choices[0].finish_reason, "stop");
    assert.equal(content.at(-1).choices[0].delta.content, " w11");
    assert.ok(content.slice(0, -1).every((c) => c.choices[0].finish_reason === null));

    const quiet = await post(sim, { model: "gpt-4o", messages: msgs("Stream this please"), stream: true });
    const quietChunks = sse(quiet.text).data.slice(0, -1).map((d) => JSON.parse(d));
    assert.ok(quietChunks.every((c) => c.usage === undefined && c.choices.length === 1));
  });

  it("streams tool-call arguments in two fragments", async () => {
    const r = await post(sim, { model: "gpt-4o", messages: msgs("call get_weather now"), tools, stream: true });
    const chunks = sse(r.text).data.slice(0, -1).map((d) => JSON.parse(d));
    const calls = chunks.flatMap((c) => c.choices[0].delta.tool_calls ?? []);
    assert.equal(calls.length, 3);
    assert.deepEqual(calls[0], { index: 0, id: "call_0", type: "function", function: { name: "get_weather", arguments: "" } });
    assert.equal(calls[1].function.arguments + calls[2].function.arguments, JSON.stringify({ q: "call get_weather now" }));
    assert.equal(chunks.at(-1).choices[0].finish_reason, "tool_calls");
  });

  it("serves GET /v1/models and answers without the /v1 prefix", async () => {
    const res = await fetch(`${sim.url}/v1/models`, { headers: { authorization: `Bearer ${KEY}` } });
    const list = (await res.json()) as { object: string; data: Array<{ id: string; object: string }> };
    assert.equal(list.object, "list");
    assert.deepEqual(
      list.data.map((m) => m.id),
      ["gpt-4o", "gpt-4o-mini"],
    );
    const r = await post(sim, { model: "gpt-4o", messages: msgs("hi") }, { path: "/chat/completions" });
    assert.equal(r.status, 200);
    const unknown = await post(sim, {}, { path: "/v1/completions" });
    assert.equal(unknown.status, 404);
  });

  const rejections: Array<{ name: string; body?: unknown; raw?: string; key?: string | null; status: number; message: RegExp; code?: string | null; param?: string }> = [
    { name: "a missing key", body: { model: "gpt-4o", messages: msgs("x") }, key: null, status: 401, message: /didn't provide an API key/, code: null },
    { name: "a wrong key", body: { model: "gpt-4o", messages: msgs("x") }, key: "sk-wrong", status: 401, message: /Incorrect API key/, code: "invalid_api_key" },
    { name: "an unknown model", body: { model: "gpt-9", messages: msgs("x") }, status: 404, message: /does not exist/, code: "model_not_found" },
    { name: "malformed JSON", raw: '{"model": "gpt-4o",', status: 400, message: /could not parse the JSON body/ },
    { name: "a missing model", body: { messages: msgs("x") }, status: 400, message: /must provide a model/ },
    { name: "an unknown field", body: { model: "gpt-4o", messages: msgs("x"), top_k: 5 }, status: 400, message: /^Unrecognized request argument supplied: top_k$/ },
    { name: "missing messages", body: { model: "gpt-4o" }, status: 400, message: /expected an array/, param: "messages" },
    { name: "empty messages", body: { model: "gpt-4o", messages: [] }, status: 400, message: /too short/, param: "messages" },
    { name: "an unknown role", body: { model: "gpt-4o", messages: [{ role: "bot", content: "x" }] }, status: 400, message: /Invalid value: 'bot'/, param: "messages[0].role" },
    { name: "an unknown message key", body: { model: "gpt-4o", messages: [{ role: "user", content: "x", reasoning_content: "y" }] }, status: 400, message: /'reasoning_content' was unexpected/ },
    { name: "content of the wrong type", body: { model: "gpt-4o", messages: [{ role: "user", content: 42 }] }, status: 400, message: /expected a string or a non-empty array/, param: "messages[0].content" },
    {
      name: "an unknown content part",
      body: { model: "gpt-4o", messages: [{ role: "user", content: [{ type: "video", url: "x" }] }] },
      status: 400,
      message: /Invalid value: 'video'/,
      param: "messages[0].content[0].type",
    },
    {
      name: "a bad image URL",
      body: { model: "gpt-4o", messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "ftp://x/y.png" } }] }] },
      status: 400,
      message: /http\(s\) URL or a base64 data URL/,
    },
    {
      name: "a system message with an image",
      body: { model: "gpt-4o", messages: [{ role: "system", content: [{ type: "image_url", image_url: { url: "https://x/y.png" } }] }, ...msgs("x")] },
      status: 400,
      message: /only text content parts/,
    },
    {
      name: "a tool message answering no call",
      body: { model: "gpt-4o", messages: [...msgs("x"), { role: "tool", tool_call_id: "call_9", content: "r" }] },
      status: 400,
      message: /must be a response to a preceeding message with 'tool_calls'/,
    },
    {
      name: "tool calls left unanswered",
      body: {
        model: "gpt-4o",
        messages: [...msgs("x"), { role: "assistant", content: null, tool_calls: [{ id: "call_0", type: "function", function: { name: "f", arguments: "{}" } }] }, ...msgs("y")],
      },
      status: 400,
      message: /did not have response messages: call_0/,
    },
    {
      name: "arguments that are not a string",
      body: {
        model: "gpt-4o",
        messages: [...msgs("x"), { role: "assistant", content: null, tool_calls: [{ id: "call_0", type: "function", function: { name: "f", arguments: {} } }] }],
      },
      status: 400,
      message: /expected a string, but got an object/,
      param: "messages[1].tool_calls[0].function.arguments",
    },
    { name: "an assistant turn with no content", body: { model: "gpt-4o", messages: [...msgs("x"), { role: "assistant" }] }, status: 400, message: /content is required/ },
    { name: "temperature above 2", body: { model: "gpt-4o", messages: msgs("x"), temperature: 2.5 }, status: 400, message: /Expected a value <= 2/, param: "temperature" },
    { name: "top_p above 1", body: { model: "gpt-4o", messages: msgs("x"), top_p: 1.5 }, status: 400, message: /Expected a value <= 1/, param: "top_p" },
    { name: "temperature as a string", body: { model: "gpt-4o", messages: msgs("x"), temperature: "hot" }, status: 400, message: /expected a number/, param: "temperature" },
    { name: "n above 1", body: { model: "gpt-4o", messages: msgs("x"), n: 2 }, status: 400, message: /Expected a value <= 1/, param: "n" },
    { name: "five stop sequences", body: { model: "gpt-4o", messages: msgs("x"), stop: ["a", "b", "c", "d", "e"] }, status: 400, message: /maximum length 4/, param: "stop" },
    { name: "max_tokens of 0", body: { model: "gpt-4o", messages: msgs("x"), max_tokens: 0 }, status: 400, message: /Expected a value >= 1/ },
    { name: "tool_choice without tools", body: { model: "gpt-4o", messages: msgs("x"), tool_choice: "auto" }, status: 400, message: /only allowed when 'tools' are specified/ },
    { name: "parallel_tool_calls without tools", body: { model: "gpt-4o", messages: msgs("x"), parallel_tool_calls: true }, status: 400, message: /only allowed when 'tools' are specified/ },
    { name: "tool_choice any (Mistral's word)", body: { model: "gpt-4o", messages: msgs("x"), tools, tool_choice: "any" }, status: 400, message: /Invalid value: 'any'/ },
    {
      name: "a forced tool that is not offered",
      body: { model: "gpt-4o", messages: msgs("x"), tools, tool_choice: { type: "function", function: { name: "nope" } } },
      status: 400,
      message: /not in the list of tools/,
    },
    { name: "a bad tool name", body: { model: "gpt-4o", messages: msgs("x"), tools: [{ type: "function", function: { name: "has space" } }] }, status: 400, message: /does not match pattern/ },
    { name: "json_object without the word json", body: { model: "gpt-4o", messages: msgs("x"), response_format: { type: "json_object" } }, status: 400, message: /must contain the word 'json'/ },
    {
      name: "json_schema without a name",
      body: { model: "gpt-4o", messages: msgs("x"), response_format: { type: "json_schema", json_schema: { schema: {} } } },
      status: 400,
      message: /matches the pattern/,
    },
    { name: "stream_options without stream", body: { model: "gpt-4o", messages: msgs("x"), stream_options: { include_usage: true } }, status: 400, message: /only allowed when 'stream' is enabled/ },
  ];
  for (const c of rejections) {
    it(`rejects ${c.name}`, async () => {
      const before = sim.requests.length;
      const r = await post(sim, c.body, { key: c.key, raw: c.raw });
      assert.equal(r.status, c.status, r.text);
      assert.match(r.json.error.message, c.message);
      assert.equal(typeof r.json.error.type, "string");
      if (c.code !== undefined) assert.equal(r.json.error.code, c.code);
      if (c.param !== undefined) assert.equal(r.json.error.param, c.param);
      assert.equal(sim.requests.length, before + 1);
    });
  }

  it("accepts the full valid shape: images, tools, names, response formats", async () => {
    const r = await post(sim, {
      model: "gpt-4o-mini",
      messages: [
        { role: "developer", content: [{ type: "text", text: "Reply in json." }] },
        {
          role: "user",
          name: "amy",
          content: [
            { type: "text", text: "look" },
            { type: "image_url", image_url: { url: "data:image/png;base64,iVBORw0KGgo=", detail: "high" } },
            { type: "image_url", image_url: { url: "https://example.com/a.jpg" } },
          ],
        },
      ],
      tools,
      tool_choice: "auto",
      parallel_tool_calls: false,
      response_format: { type: "json_object" },
      temperature: 0,
      top_p: 1,
      seed: 3,
      stop: ["zz"],
      user: "u",
      max_completion_tokens: 50,
      reasoning_effort: "low",
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.choices[0].message.content, answerText("look [image] [image]", 12));
  });
});

describe("OpenAI simulator faults", () => {
  let sim: OpenAISimulator;

  before(async () => {
    sim = await startOpenAISimulator();
  });
  after(async () => {
    await sim.close();
  });

  const ok = { model: "gpt-4o", messages: msgs("Hello there") };
  const streaming = { ...ok, stream: true, stream_options: { include_usage: true } };

  it("answers an injected status with the OpenAI error shape for it, and its headers", async () => {
    sim.faults.add({ status: 429, headers: { "retry-after": "7" } });
    const limited = await post(sim, ok);
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get("retry-after"), "7");
    assert.equal(limited.json.error.code, "rate_limit_exceeded");
    sim.faults.add({ status: 503 });
    assert.equal((await post(sim, ok)).json.error.type, "server_error");
    sim.faults.add({ status: 401 });
    assert.equal((await post(sim, ok)).json.error.code, "invalid_api_key");
    sim.faults.add({ status: 500, body: "plain text" });
    assert.equal((await post(sim, ok)).text, "plain text");
    assert.equal((await post(sim, ok)).status, 200);
  });

  it("applies a fault only to its model, as many times as asked", async () => {
    sim.faults.add({ model: "other", status: 500, times: 2 });
    assert.equal((await post(sim, ok)).status, 200);
    assert.equal((await post(sim, { ...ok, model: "other" })).status, 500);
    assert.equal((await post(sim, { ...ok, model: "other" })).status, 500);
    assert.equal((await post(sim, { ...ok, model: "other" })).status, 200);
  });

  it("validates before injecting: a bad request is refused and keeps the fault queued", async () => {
    sim.faults.add({ status: 500 });
    assert.equal((await post(sim, { ...ok, temperature: 9 })).status, 400);
    assert.equal((await post(sim, ok)).status, 500);
  });

  it("delays the first token", async () => {
    sim.faults.add({ firstTokenDelayMs: 150 });
    const started = Date.now();
    await post(sim, ok);
    assert.ok(Date.now() - started >= 140);
  });

  it("delays chunks", async () => {
    sim.faults.add({ chunkDelayMs: 20 });
    const started = Date.now();
    await post(sim, streaming);
    // 15 chunks (role, 12 words, usage, [DONE]) with a delay before each after the first.
    assert.ok(Date.now() - started >= 14 * 20 - 10);
  });

  it("cuts a stream after N chunks", async () => {
    sim.faults.add({ cutAfterChunks: 2 });
    const res = await fetch(`${sim.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(streaming) });
    assert.equal(res.status, 200);
    await assert.rejects(res.text());
  });

  it("resets the connection", async () => {
    sim.faults.add({ resetConnection: true });
    await assert.rejects(post(sim, ok));
  });

  it("sends a malformed chunk", async () => {
    sim.faults.add({ malformedChunkAt: 1 });
    const { data } = sse((await post(sim, streaming)).text);
    assert.equal(data[1], '{"broken":');
    assert.doesNotThrow(() => JSON.parse(data[2]!));
  });

  it("sends an in-stream error event, then ends", async () => {
    sim.faults.add({ errorEventAfterChunks: 2 });
    const { data } = sse((await post(sim, streaming)).text);
    assert.equal(data.length, 3);
    assert.equal(JSON.parse(data[2]!).error.type, "server_error");
  });

  it("counts clients that leave mid-stream", async () => {
    sim.faults.add({ chunkDelayMs: 30 });
    const controller = new AbortController();
    const res = await fetch(`${sim.url}/v1/chat/completions`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(streaming), signal: controller.signal });
    const reader = res.body!.getReader();
    await reader.read();
    controller.abort();
    const until = Date.now() + 1_000;
    while (sim.clientAborts() === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    assert.equal(sim.clientAborts(), 1);
  });
});

describe("OpenAI simulator (mistral flavour)", () => {
  let sim: OpenAISimulator;

  before(async () => {
    sim = await startOpenAISimulator({ flavor: "mistral" });
  });
  after(async () => {
    await sim.close();
  });

  it("rejects stream_options and seed with a 422 detail body", async () => {
    for (const [field, value] of [
      ["stream_options", { include_usage: true }],
      ["seed", 1],
      ["max_completion_tokens", 5],
      ["user", "u"],
    ] as const) {
      const r = await post(sim, { model: "mistral-small-latest", messages: msgs("x"), stream: true, [field]: value });
      assert.equal(r.status, 422, field);
      assert.deepEqual(r.json.detail[0].loc, ["body", field]);
      assert.equal(r.json.detail[0].type, "extra_forbidden");
    }
  });

  it("rejects message names and tool-call ids that are not nine letters and digits", async () => {
    const named = await post(sim, { model: "m", messages: [{ role: "user", content: "x", name: "amy" }] });
    assert.equal(named.status, 422);
    const longId = await post(sim, {
      model: "m",
      messages: [...msgs("x"), { role: "assistant", content: null, tool_calls: [{ id: "call_0", type: "function", function: { name: "f", arguments: "{}" } }] }, { role: "tool", tool_call_id: "call_0", content: "r" }],
    });
    assert.equal(longId.status, 400);
    assert.match(longId.json.message, /must be a-z, A-Z, 0-9, with a length of 9/);
  });

  it("accepts random_seed and tool_choice any, and puts usage on the last chunk unasked", async () => {
    const forced = await post(sim, { model: "m", messages: msgs("x"), random_seed: 4, tools, tool_choice: "any" });
    assert.equal(forced.status, 200, forced.text);
    assert.equal(forced.json.choices[0].finish_reason, "tool_calls");
    const r = await post(sim, { model: "m", messages: msgs("Stream this please"), stream: true });
    const chunks = sse(r.text).data.slice(0, -1).map((d) => JSON.parse(d));
    assert.equal(chunks.at(-1).choices[0].finish_reason, "stop");
    assert.equal(chunks.at(-1).usage.completion_tokens, 12);
    assert.ok(chunks.slice(0, -1).every((c) => c.usage === undefined));
  });
});

describe("OpenAI simulator (deepseek flavour)", () => {
  let sim: OpenAISimulator;

  before(async () => {
    sim = await startOpenAISimulator({ flavor: "deepseek" });
  });
  after(async () => {
    await sim.close();
  });

  it("reports cache hits its own way and ignores unknown fields", async () => {
    const r = await post(sim, { model: "deepseek-chat", messages: msgs("CACHED one two three"), some_future_field: 1 }, { path: "/chat/completions" });
    assert.equal(r.status, 200, r.text);
    const input = countTokens("CACHED one two three");
    assert.equal(r.json.usage.prompt_cache_hit_tokens, Math.floor(input / 2));
    assert.equal(r.json.usage.prompt_cache_miss_tokens, input - Math.floor(input / 2));
  });

  it("honours only max_tokens", async () => {
    const ignored = await post(sim, { model: "deepseek-chat", messages: msgs("Hello there"), max_completion_tokens: 2 });
    assert.equal(ignored.json.choices[0].finish_reason, "stop");
    const cut = await post(sim, { model: "deepseek-chat", messages: msgs("Hello there"), max_tokens: 2 });
    assert.equal(cut.json.choices[0].finish_reason, "length");
  });

  it("sends keep-alive comments first and streams reasoning_content", async () => {
    const r = await post(sim, { model: "deepseek-reasoner", messages: msgs("THINK hard"), stream: true });
    assert.ok(r.text.startsWith(": keep-alive\n\n"));
    const chunks = sse(r.text).data.slice(0, -1).map((d) => JSON.parse(d));
    const reasoning = chunks.map((c) => c.choices[0].delta.reasoning_content ?? "").join("");
    assert.equal(reasoning, "Thinking about: THINK hard");
  });

  it("rejects json_schema, which DeepSeek does not support", async () => {
    const r = await post(sim, { model: "deepseek-chat", messages: msgs("x"), response_format: { type: "json_schema", json_schema: { name: "a" } } });
    assert.equal(r.status, 400);
  });
});
