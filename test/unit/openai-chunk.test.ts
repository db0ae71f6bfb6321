import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { chunkTail, plainTextChunk } from "../../server/providers/openai-chunk.js";

// The streaming fast path must read exactly what JSON.parse would, and must
// decline every chunk that carries more than text, or the finish reason,
// usage or tool calls would be lost.

const head = '{"id":"chatcmpl-9x","object":"chat.completion.chunk","created":1718000000,"model":"gpt-4o-mini-2024-07-18"';

/** chunk builds a compact chunk the way OpenAI's servers order its fields. */
function chunk(delta: Record<string, unknown>, extra: { fields?: Record<string, unknown>; after?: Record<string, unknown>; finish?: string | null } = {}): string {
  const choice = { index: 0, delta, logprobs: null, finish_reason: extra.finish ?? null };
  return JSON.stringify({
    id: "chatcmpl-9x",
    object: "chat.completion.chunk",
    created: 1718000000,
    model: "gpt-4o-mini-2024-07-18",
    ...extra.fields,
    choices: [choice],
    ...extra.after,
  });
}

/** expectPlain checks the fast path against JSON.parse of the same chunk. */
function expectPlain(data: string): void {
  const plain = plainTextChunk(data);
  assert.ok(plain !== undefined, `recognized: ${data}`);
  const parsed = JSON.parse(data) as { choices: Array<{ delta: { content: string } }> };
  assert.equal(plain.text, parsed.choices[0]!.delta.content);
  assert.equal(plain.tail, chunkTail(data));
  assert.equal(head + plain.tail, data);
}

describe("plainTextChunk", () => {
  it("reads the text of the chunks OpenAI-family servers send, as JSON.parse does", () => {
    expectPlain(chunk({ content: "Hello" }));
    expectPlain(chunk({ role: "assistant", content: "" }));
    expectPlain(chunk({ content: " world" }, { fields: { system_fingerprint: "fp_44709d6fcb" } }));
    expectPlain(chunk({ content: "x" }, { fields: { service_tier: "default", system_fingerprint: "fp_1" }, after: { usage: null, obfuscation: "Qz3" } }));
    expectPlain(chunk({ content: "x" }, { fields: { system_fingerprint: null } }));
    // vLLM and Ollama leave logprobs out.
    const noLogprobs = `${head},"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}`;
    expectPlain(noLogprobs);
  });

  it("decodes escapes, and passes other characters through untouched", () => {
    for (const text of ['say "hi"', "back\\slash\\", "line\nbreak\ttab", "é ✓ 😀", "\u2028\u2029", "ends with \\", '"},"finish_reason":"stop"}]}']) {
      expectPlain(chunk({ content: text }));
    }
    // Escaped forms a server may choose instead of the raw characters.
    expectPlain(`${head},"choices":[{"index":0,"delta":{"content":"\\u00e9\\ud83d\\ude00\\/"},"logprobs":null,"finish_reason":null}]}`);
  });

  it("declines every chunk that carries more than text", () => {
    const declined = [
      chunk({ content: "end" }, { finish: "stop" }),
      chunk({}, { finish: "length" }),
      chunk({ content: "x" }, { after: { usage: { prompt_tokens: 1, completion_tokens: 2, total_tokens: 3 } } }),
      chunk({ content: null, reasoning_content: "think" }),
      chunk({ reasoning_content: "think", content: "x" }),
      chunk({ content: "x", reasoning: "r" }),
      chunk({ role: "assistant", content: "", refusal: null }),
      chunk({ tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "f", arguments: "" } }] }),
      chunk({ content: [{ type: "text", text: "parts" }] }),
      chunk({ content: "x" }, { fields: { provider: "other" } }),
      chunk({ content: "x" }, { after: { error: { message: "boom" } } }),
      `${head},"choices":[]}`,
      `${head},"choices":[{"index":1,"delta":{"content":"other choice"},"finish_reason":null}]}`,
      `${head},"choices":[{"index":0,"delta":{"content":"a"},"finish_reason":null},{"index":1,"delta":{"content":"b"},"finish_reason":null}]}`,
      // Whitespace or another field order: left to JSON.parse.
      `${head}, "choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}`,
      `{"object":"chat.completion.chunk","id":"x","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}`,
      // Not JSON at all: a raw control character inside the string, a missing brace, trailing bytes.
      `${head},"choices":[{"index":0,"delta":{"content":"a\nb"},"finish_reason":null}]}`,
      `${head},"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]`,
      `${head},"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}}`,
    ];
    for (const data of declined) assert.equal(plainTextChunk(data), undefined, data);
  });

  it("throws on an invalid escape, as JSON.parse of the chunk would", () => {
    const bad = `${head},"choices":[{"index":0,"delta":{"content":"a\\qb"},"finish_reason":null}]}`;
    assert.throws(() => JSON.parse(bad), SyntaxError);
    assert.throws(() => plainTextChunk(bad), SyntaxError);
  });
});

describe("chunkTail", () => {
  it("splits off everything after id, object, created and model, whitespace and escapes included", () => {
    const tail = ',"system_fingerprint":"fp_x","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}';
    assert.equal(chunkTail(`{"id":"chatcmpl-up\\"9","object":"chat.completion.chunk","created":1690000000,"model":"gpt-4o-2024-08-06"${tail}`), tail);
    assert.equal(chunkTail(`{"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m"${tail}`), tail);
  });

  it("returns undefined when the head is in another order or is not a chunk's", () => {
    assert.equal(chunkTail('{"object":"chat.completion.chunk","id":"x","created":1,"model":"m","choices":[]}'), undefined);
    assert.equal(chunkTail('{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[]}'), undefined);
  });
});
