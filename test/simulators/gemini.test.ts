import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startGeminiSimulator, type GeminiSimulator } from "./gemini.js";

const KEY = "AIzaSim-key-123";
const MODEL = "gemini-sim";

type Json = Record<string, any>;

function valid(extra: Json = {}): Json {
  return { contents: [{ role: "user", parts: [{ text: "hello" }] }], ...extra };
}

describe("gemini simulator", () => {
  let sim: GeminiSimulator;

  before(async () => {
    sim = await startGeminiSimulator({ apiKey: KEY, models: [MODEL] });
  });
  after(() => sim.close());

  async function post(
    body: unknown,
    options: { key?: string | null; method?: string; model?: string; query?: string } = {},
  ): Promise<{ status: number; body: Json; text: string }> {
    const h: Record<string, string> = { "content-type": "application/json" };
    if (options.key !== null) h["x-goog-api-key"] = options.key ?? KEY;
    const url = `${sim.url}/v1beta/models/${options.model ?? MODEL}:${options.method ?? "generateContent"}${options.query ?? ""}`;
    const res = await fetch(url, { method: "POST", headers: h, body: typeof body === "string" ? body : JSON.stringify(body) });
    const text = await res.text();
    let parsed: Json = {};
    try {
      parsed = JSON.parse(text) as Json;
    } catch {
      // a stream
    }
    return { status: res.status, body: parsed, text };
  }

  async function rejects(body: unknown, status: number, message: RegExp, options: Parameters<typeof post>[1] = {}): Promise<Json> {
    const res = await post(body, options);
    assert.equal(res.status, status, res.text);
    assert.equal(res.body.error.code, status);
    assert.match(res.body.error.message, message);
    return res.body.error as Json;
  }

  test("answers a valid request as a GenerateContentResponse", async () => {
    const res = await post(valid({ systemInstruction: { parts: [{ text: "THINK" }] } }));
    assert.equal(res.status, 200, res.text);
    const candidate = res.body.candidates[0];
    assert.deepEqual(candidate.content.parts, [{ text: "Thinking about: hello", thought: true }, { text: "Echo: hello w2 w3 w4 w5 w6 w7 w8 w9 w10 w11" }]);
    assert.equal(candidate.finishReason, "STOP");
    assert.deepEqual(res.body.usageMetadata, { promptTokenCount: 2, candidatesTokenCount: 12, totalTokenCount: 17, thoughtsTokenCount: 3 });
  });

  test("a wrong or missing key is 400 API_KEY_INVALID; ?key= is accepted", async () => {
    for (const key of ["AIzaWrong", null]) {
      const error = await rejects(valid(), 400, /API key not valid/, { key });
      assert.equal(error.status, "INVALID_ARGUMENT");
      assert.equal(error.details[0].reason, "API_KEY_INVALID");
    }
    assert.equal((await post(valid(), { key: null, query: `?key=${KEY}` })).status, 200);
  });

  test("rejects unknown roles, unknown fields, unknown models and malformed JSON", async () => {
    await rejects({ contents: [{ role: "assistant", parts: [{ text: "hi" }] }] }, 400, /valid role: user, model/);
    await rejects(valid({ temperature: 0.5 }), 400, /Unknown name "temperature"/);
    await rejects(valid(), 404, /models\/gemini-nope is not found/, { model: "gemini-nope" });
    await rejects("{oops", 400, /Invalid JSON payload/);
    await rejects({ contents: [] }, 400, /contents is not specified/);
  });

  test("rejects a functionResponse without a name", async () => {
    await rejects(
      {
        contents: [
          { role: "user", parts: [{ text: "hi" }] },
          { role: "model", parts: [{ functionCall: { name: "f", args: {} } }] },
          { role: "user", parts: [{ functionResponse: { response: { content: "x" } } }] },
        ],
      },
      400,
      /function_response\.name: Name cannot be empty/,
    );
  });

  test("rejects JSON Schema keywords outside Gemini's subset", async () => {
    const declare = (parameters: Json): Json => valid({ tools: [{ functionDeclarations: [{ name: "f", parameters }] }] });
    await rejects(declare({ type: "object", properties: { a: { type: "string" } }, additionalProperties: false }), 400, /Unknown name "additionalProperties"/);
    await rejects(declare({ $schema: "x", type: "object", properties: { a: { type: "string" } } }), 400, /Unknown name "\$schema"/);
    await rejects(declare({ type: "object", properties: { a: { type: "string", default: "x" } } }), 400, /Unknown name "default"/);
    await rejects(declare({ type: "object", properties: { a: { type: "string", format: "uri" } } }), 400, /format/);
    await rejects(declare({ type: "object", properties: {} }), 400, /should be non-empty for OBJECT type/);
    const ok = await post(declare({ type: "object", properties: { a: { type: "string", nullable: true, enum: ["x"] } }, required: ["a"] }));
    assert.equal(ok.status, 200, ok.text);
  });

  test("rejects badly typed generationConfig", async () => {
    await rejects(valid({ generationConfig: { temperature: "hot" } }), 400, /generation_config\.temperature/);
    await rejects(valid({ generationConfig: { maxOutputTokens: 1.5 } }), 400, /generation_config\.maxOutputTokens/);
    await rejects(valid({ generationConfig: { max_tokens: 5 } }), 400, /Unknown name "max_tokens"/);
    await rejects(valid({ generationConfig: { temperature: 3 } }), 400, /temperature/);
  });

  test("answers function calls, function results, blocks and MALFORMED by the rules", async () => {
    const tools = [{ functionDeclarations: [{ name: "alpha" }, { name: "beta" }] }];
    const called = await post(valid({ tools, toolConfig: { functionCallingConfig: { mode: "ANY" } } }));
    assert.deepEqual(called.body.candidates[0].content.parts, [{ functionCall: { name: "alpha", args: { q: "hello" } } }]);
    assert.equal(called.body.candidates[0].finishReason, "STOP");
    const results = await post({
      contents: [
        { role: "user", parts: [{ text: "call alpha" }] },
        { role: "model", parts: [{ functionCall: { name: "alpha", args: { q: "call alpha" } } }] },
        { role: "user", parts: [{ functionResponse: { name: "alpha", response: { content: "sunny" } } }, { functionResponse: { name: "beta", response: { temp: 3 } } }] },
      ],
    });
    assert.equal(results.body.candidates[0].content.parts[0].text, 'Results: sunny; {"temp":3}');
    const blocked = await post(valid({ contents: [{ role: "user", parts: [{ text: "BLOCKME" }] }] }));
    assert.deepEqual(blocked.body.promptFeedback, { blockReason: "SAFETY" });
    assert.equal(blocked.body.candidates, undefined);
    const malformed = await post(valid({ contents: [{ role: "user", parts: [{ text: "MALFORMED" }] }] }));
    assert.equal(malformed.body.candidates[0].finishReason, "MALFORMED_FUNCTION_CALL");
    assert.equal(malformed.body.candidates[0].content.parts, undefined);
  });

  test("streams data events separated by \\r\\n\\r\\n with no [DONE]; the last carries finishReason and usage", async () => {
    const res = await post(valid(), { method: "streamGenerateContent", query: "?alt=sse" });
    assert.equal(res.status, 200);
    assert.ok(!res.text.includes("[DONE]"));
    const events = res.text
      .split("\r\n\r\n")
      .filter((e) => e !== "")
      .map((e) => JSON.parse(e.replace(/^data: /, "")) as Json);
    assert.equal(events.length, 12);
    const text = events.map((e) => e.candidates[0].content.parts.map((p: Json) => p.text).join("")).join("");
    assert.equal(text, "Echo: hello w2 w3 w4 w5 w6 w7 w8 w9 w10 w11");
    assert.ok(events.slice(0, -1).every((e) => e.candidates[0].finishReason === undefined && e.usageMetadata === undefined));
    assert.equal(events.at(-1)!.candidates[0].finishReason, "STOP");
    assert.equal(events.at(-1)!.usageMetadata.candidatesTokenCount, 12);
    await rejects(valid(), 400, /alt=sse/, { method: "streamGenerateContent" });
  });

  test("faults: default 429 body carries RetryInfo 34s", async () => {
    sim.faults.add({ status: 429 });
    const error = await rejects(valid(), 429, /quota/);
    assert.equal(error.status, "RESOURCE_EXHAUSTED");
    assert.deepEqual(error.details, [{ "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "34s" }]);
  });
});
