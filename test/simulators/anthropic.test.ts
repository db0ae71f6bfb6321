import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startAnthropicSimulator, type AnthropicSimulator } from "./anthropic.js";

const KEY = "sk-ant-sim-key";
const MODEL = "claude-sim";

type Json = Record<string, any>;

function headers(extra: Record<string, string> = {}): Record<string, string> {
  return { "content-type": "application/json", "x-api-key": KEY, "anthropic-version": "2023-06-01", ...extra };
}

function valid(extra: Json = {}): Json {
  return { model: MODEL, max_tokens: 100, messages: [{ role: "user", content: "hello" }], ...extra };
}

describe("anthropic simulator", () => {
  let sim: AnthropicSimulator;

  before(async () => {
    sim = await startAnthropicSimulator({ apiKey: KEY, models: [MODEL] });
  });
  after(() => sim.close());

  async function post(body: unknown, h: Record<string, string> = headers()): Promise<{ status: number; body: Json; text: string }> {
    const res = await fetch(`${sim.url}/v1/messages`, { method: "POST", headers: h, body: typeof body === "string" ? body : JSON.stringify(body) });
    const text = await res.text();
    let parsed: Json = {};
    try {
      parsed = JSON.parse(text) as Json;
    } catch {
      // a stream
    }
    return { status: res.status, body: parsed, text };
  }

  async function rejects(body: unknown, status: number, type: string, message: RegExp, h?: Record<string, string>): Promise<void> {
    const res = await post(body, h);
    assert.equal(res.status, status, res.text);
    assert.equal(res.body.type, "error");
    assert.equal(res.body.error.type, type);
    assert.match(res.body.error.message, message);
  }

  test("answers a valid request in the Messages format", async () => {
    const res = await post(valid({ system: "CACHED context", messages: [{ role: "user", content: [{ type: "text", text: "hello there" }] }] }));
    assert.equal(res.status, 200);
    assert.equal(res.body.type, "message");
    assert.deepEqual(res.body.content, [{ type: "text", text: "Echo: hello there w3 w4 w5 w6 w7 w8 w9 w10 w11" }]);
    assert.equal(res.body.stop_reason, "end_turn");
    assert.deepEqual(res.body.usage, { input_tokens: 2, cache_creation_input_tokens: 0, cache_read_input_tokens: 2, output_tokens: 12 });
  });

  test("accepts Authorization: Bearer instead of x-api-key", async () => {
    const h = headers();
    delete h["x-api-key"];
    assert.equal((await post(valid(), { ...h, authorization: `Bearer ${KEY}` })).status, 200);
  });

  test("rejects bad auth and a missing anthropic-version", async () => {
    const h = headers();
    delete h["x-api-key"];
    await rejects(valid(), 401, "authentication_error", /x-api-key/, h);
    await rejects(valid(), 401, "authentication_error", /x-api-key/, headers({ "x-api-key": "sk-ant-wrong" }));
    const noVersion = headers();
    delete noVersion["anthropic-version"];
    await rejects(valid(), 400, "invalid_request_error", /anthropic-version/, noVersion);
  });

  test("rejects malformed JSON, unknown fields and unknown models", async () => {
    await rejects("{not json", 400, "invalid_request_error", /JSON/);
    await rejects(valid({ frequency_penalty: 1 }), 400, "invalid_request_error", /frequency_penalty: Extra inputs/);
    await rejects(valid({ model: "claude-nope" }), 404, "not_found_error", /claude-nope/);
  });

  test("requires max_tokens and keeps temperature within 0–1", async () => {
    const body = valid();
    delete body.max_tokens;
    await rejects(body, 400, "invalid_request_error", /max_tokens: Field required/);
    await rejects(valid({ temperature: 1.5 }), 400, "invalid_request_error", /temperature/);
    await rejects(valid({ temperature: "hot" }), 400, "invalid_request_error", /temperature/);
  });

  test("rejects a system role, a first assistant turn and non-alternating roles", async () => {
    await rejects(valid({ messages: [{ role: "system", content: "be nice" }, { role: "user", content: "hi" }] }), 400, "invalid_request_error", /top-level `system`/);
    await rejects(valid({ messages: [{ role: "assistant", content: "hi" }] }), 400, "invalid_request_error", /first message/);
    await rejects(
      valid({ messages: [{ role: "user", content: "a" }, { role: "user", content: "b" }] }),
      400,
      "invalid_request_error",
      /alternate/,
    );
  });

  const toolUse = { role: "assistant", content: [{ type: "tool_use", id: "toolu_1", name: "f", input: { a: 1 } }] };

  test("rejects misplaced or unmatched tool results and non-object tool input", async () => {
    await rejects(
      valid({ messages: [{ role: "user", content: "hi" }, { role: "assistant", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: "x" }] }] }),
      400,
      "invalid_request_error",
      /tool_result blocks are only allowed in user messages/,
    );
    await rejects(
      valid({ messages: [{ role: "user", content: "hi" }, toolUse, { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_9", content: "x" }] }] }),
      400,
      "invalid_request_error",
      /tool_use_id/,
    );
    await rejects(
      valid({ messages: [{ role: "user", content: "hi" }, toolUse, { role: "user", content: "no results" }] }),
      400,
      "invalid_request_error",
      /without `tool_result`/,
    );
    await rejects(
      valid({ messages: [{ role: "user", content: "hi" }, { role: "assistant", content: [{ type: "tool_use", id: "t", name: "f", input: "{}" }] }] }),
      400,
      "invalid_request_error",
      /input: Input should be a valid dictionary/,
    );
    const ok = await post(
      valid({ messages: [{ role: "user", content: "hi" }, toolUse, { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_1", content: "42" }] }] }),
    );
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.body.content[0].text, "Results: 42");
  });

  test("answers tool calls, refusals, length cuts and stop sequences by the rules", async () => {
    const tools = [
      { name: "alpha", input_schema: { type: "object", properties: {} } },
      { name: "beta", input_schema: { type: "object", properties: {} } },
    ];
    const forced = await post(valid({ tools, tool_choice: { type: "tool", name: "beta" } }));
    assert.deepEqual(forced.body.content, [{ type: "tool_use", id: "toolu_0", name: "beta", input: { q: "hello" } }]);
    assert.equal(forced.body.stop_reason, "tool_use");
    const refused = await post(valid({ messages: [{ role: "user", content: "BLOCKME" }] }));
    assert.deepEqual([refused.body.content, refused.body.stop_reason, refused.body.usage.output_tokens], [[], "refusal", 0]);
    const cut = await post(valid({ max_tokens: 2 }));
    assert.deepEqual([cut.body.content[0].text, cut.body.stop_reason], ["Echo: hello", "max_tokens"]);
    const stopped = await post(valid({ stop_sequences: ["w4"] }));
    assert.deepEqual([stopped.body.content[0].text, stopped.body.stop_reason, stopped.body.stop_sequence], ["Echo: hello w2 w3 ", "stop_sequence", "w4"]);
  });

  test("streams the real event sequence with cumulative output usage", async () => {
    const res = await post(valid({ stream: true, system: "THINK" }));
    assert.equal(res.status, 200);
    const events = res.text
      .split("\n\n")
      .filter((e) => e !== "")
      .map((e) => {
        const [name, data] = e.split("\n");
        return { name: name!.replace("event: ", ""), data: JSON.parse(data!.replace("data: ", "")) as Json };
      });
    const names = events.map((e) => e.name);
    assert.deepEqual(names.slice(0, 3), ["message_start", "ping", "content_block_start"]);
    assert.deepEqual(names.slice(-2), ["message_delta", "message_stop"]);
    assert.ok(names.includes("content_block_stop"));
    for (const e of events) assert.equal(e.data.type, e.name);
    assert.equal(events[0]!.data.message.usage.output_tokens, 1);
    assert.equal(events.at(-2)!.data.usage.output_tokens, 12 + 3);
    const text = events.filter((e) => e.data.delta?.type === "text_delta").map((e) => e.data.delta.text).join("");
    assert.equal(text, "Echo: hello w2 w3 w4 w5 w6 w7 w8 w9 w10 w11");
  });

  test("faults: default 529 body, retry headers, in-stream error event, hits", async () => {
    const before = sim.hits();
    sim.faults.add({ status: 529 });
    await rejects(valid(), 529, "overloaded_error", /Overloaded/);
    sim.faults.add({ status: 429, headers: { "retry-after": "3" } });
    const limited = await fetch(`${sim.url}/v1/messages`, { method: "POST", headers: headers(), body: JSON.stringify(valid()) });
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get("retry-after"), "3");
    await limited.text();
    sim.faults.add({ errorEventAfterChunks: 2 });
    const res = await post(valid({ stream: true }));
    assert.match(res.text, /event: error\ndata: \{"type":"error","error":\{"type":"overloaded_error","message":"Overloaded"\}\}\n\n$/);
    assert.equal(sim.hits() - before, 3);
  });
});
