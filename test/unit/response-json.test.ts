import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ChunkEncoder, completionToOpenAI, gatewayJson, traceJson, usageJson } from "../../server/openai/response.js";
import type { RouteTraceRecord } from "../../server/core/trace.js";
import type { Usage } from "../../server/core/chat.js";

// The REST shim writes its answers as JSON text field by field; these check
// that text against JSON.stringify of the objects it stands for.

const usage: Usage = { inputTokens: 42, outputTokens: 7, cachedInputTokens: 3, cacheWriteInputTokens: 2, reasoningTokens: 5 };

const trace: RouteTraceRecord = {
  route: 'r"1',
  strategy: "priority>weighted",
  reason: "tier 1 weighted random order (a×2, b×1); kept for last: b (provider \\ unavailable)\n",
  attempts: [
    { provider: "p1", model: "m/1", outcome: "failed", errorClass: "rate_limited", errorMessage: 'p1: "slow down" \u2028 😀', latencyMs: 12, httpStatus: 429, retryAfterMs: 1500, hedged: false },
    { provider: "p2", model: "m/2", outcome: "succeeded", latencyMs: 30, timeToFirstTokenMs: 9, httpStatus: 200, hedged: true },
  ],
  skipped: [{ model: "m/3", reason: "context window 100 < 200 tokens needed" }],
};

describe("REST response JSON text", () => {
  it("usageJson is OpenAI's usage object", () => {
    assert.deepEqual(JSON.parse(usageJson(usage)), {
      prompt_tokens: 42,
      completion_tokens: 7,
      total_tokens: 49,
      prompt_tokens_details: { cached_tokens: 3, cache_write_tokens: 2 },
      completion_tokens_details: { reasoning_tokens: 5 },
    });
  });

  it("traceJson is the trace's JSON.stringify value, optional fields and escapes included", () => {
    assert.deepEqual(JSON.parse(traceJson(trace)), JSON.parse(JSON.stringify(trace)));
    const empty: RouteTraceRecord = { route: "", strategy: "direct", reason: "model named directly", attempts: [], skipped: [] };
    assert.deepEqual(JSON.parse(traceJson(empty)), empty);
  });

  it("gatewayJson carries the cost in USD and nano-USD with the route", () => {
    assert.deepEqual(JSON.parse(gatewayJson("p2", "m/2", { total: 2_665_000n } as never, trace)), {
      provider: "p2",
      model: "m/2",
      cost_usd: "0.002665000",
      cost_nano_usd: "2665000",
      attempts: 2,
      route: JSON.parse(JSON.stringify(trace)),
    });
  });

  it("completionToOpenAI renders text, refusal, reasoning and tool calls as a chat.completion", () => {
    const gw = gatewayJson("p2", "m/2", { total: 1n } as never, trace);
    const text = 'He said "hi"\n\ttab \\ back \u0001 ctl \ud800 lone 汉字 😀';
    const whole = JSON.parse(
      completionToOpenAI({ id: "x1", created: 1700000000, model: "m/2", output: { text, toolCalls: [], reasoning: "think", refusal: "no" }, finishReason: "length", usage, gateway: gw }),
    );
    assert.deepEqual(whole, {
      id: "chatcmpl-x1",
      object: "chat.completion",
      created: 1700000000,
      model: "m/2",
      choices: [{ index: 0, message: { role: "assistant", content: text, refusal: "no", reasoning_content: "think" }, logprobs: null, finish_reason: "length" }],
      usage: JSON.parse(usageJson(usage)),
      x_gateway: JSON.parse(gw),
    });
    const tools = JSON.parse(
      completionToOpenAI({
        id: "x2",
        created: 1,
        model: "m",
        output: { text: "", toolCalls: [{ id: "c1", name: "f", arguments: '{"a":1}' }], reasoning: "", refusal: "" },
        finishReason: "tool_calls",
        usage,
        gateway: gw,
      }),
    );
    assert.deepEqual(tools.choices[0].message, {
      role: "assistant",
      content: null,
      refusal: null,
      tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: '{"a":1}' } }],
    });
    assert.equal(tools.choices[0].finish_reason, "tool_calls");
  });

  it("completionToOpenAI writes the provider's literal of the text, and only while it is the text's", () => {
    const gw = gatewayJson("p2", "m/2", { total: 1n } as never, trace);
    const render = (output: Parameters<typeof completionToOpenAI>[0]["output"]) =>
      completionToOpenAI({ id: "x3", created: 1, model: "m", output, finishReason: "stop", usage, gateway: gw });
    // The source escaped "/" and "é": the literal is written as it came, and still decodes to the text.
    const text = "a/b é";
    const body = '{"message":{"content":"a\\/b \\u00e9"}}';
    const kept = render({ text, toolCalls: [], reasoning: "", refusal: "", openaiSource: { text, body } });
    assert.ok(kept.includes('"content":"a\\/b \\u00e9"'), kept);
    assert.equal(JSON.parse(kept).choices[0].message.content, text);
    // Text changed after parsing (a literal of another text): the text is escaped afresh.
    const changed = render({ text: "a/b [redacted]", toolCalls: [], reasoning: "", refusal: "", openaiSource: { text, body } });
    assert.equal(JSON.parse(changed).choices[0].message.content, "a/b [redacted]");
  });

  it("the stream's usage chunk carries the same usage and x_gateway", () => {
    const gw = gatewayJson("p2", "m/2", { total: 5n } as never, trace);
    const chunk = JSON.parse(new ChunkEncoder("s1", 1, "m/2").usage(usage, gw));
    assert.deepEqual(chunk, { id: "chatcmpl-s1", object: "chat.completion.chunk", created: 1, model: "m/2", choices: [], usage: JSON.parse(usageJson(usage)), x_gateway: JSON.parse(gw) });
  });
});
