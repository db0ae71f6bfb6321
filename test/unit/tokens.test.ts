import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import type { ChatRequest } from "../../server/core/chat.js";
import { estimatePromptTokens, measurePrompt, promptTokensFor } from "../../server/pricing/estimate.js";
import { tokenizerFamily } from "../../server/pricing/families.js";
import { claudeImageTokens, geminiImageTokens, imageSizeFromBase64, imageTokens, openaiImageTokens } from "../../server/pricing/images.js";
import { approxTextTokens, exactTextTokens, textFeatures } from "../../server/pricing/text-tokens.js";

// Token estimation: the one-pass approximation against the real o200k
// tokenizer on the calibration corpus, family framing, and image formulas.

const corpus = new URL("../fixtures/token-corpus/", import.meta.url);

function request(content: string, extra: Partial<ChatRequest> = {}): ChatRequest {
  return { model: "m", messages: [{ role: "user", content: [{ type: "text", text: content }] }], sampling: {}, routing: {}, metadata: {}, ...extra };
}

describe("character classes of the approximation", () => {
  it("count words, digit groups, indentation and scripts, each run ending at any other class", () => {
    const zero = { words: 0, letters: 0, digitGroups: 0, punctuation: 0, newlines: 0, indent: 0, cjk: 0, hangul: 0, otherLetters: 0, astral: 0 };
    // "12" ends at a letter, "3456" is two groups of up to three, and one run of two spaces is one indent.
    assert.deepEqual(textFeatures("ab12cd 3456  x"), { ...zero, words: 3, letters: 5, digitGroups: 3, indent: 1 });
    assert.deepEqual(textFeatures("a1b2c3"), { ...zero, words: 3, letters: 3, digitGroups: 3 });
    assert.deepEqual(textFeatures("def f(x):\n    return 1\t\tok"), { ...zero, words: 5, letters: 13, digitGroups: 1, punctuation: 3, newlines: 1, indent: 2 });
    // Control characters count as nothing; DEL is ASCII punctuation.
    assert.deepEqual(textFeatures("\u0001\u007f!"), { ...zero, punctuation: 2 });
    assert.deepEqual(textFeatures("日本語、한국어 😀 café"), { ...zero, words: 1, letters: 3, cjk: 4, hangul: 3, otherLetters: 1, astral: 1 });
    assert.deepEqual(textFeatures(""), zero);
  });
});

describe("approximate token counts vs o200k_base", () => {
  it("stay within 8% on every corpus file and 3% on average", () => {
    const files = readdirSync(corpus).sort();
    assert.ok(files.length >= 12);
    let sum = 0;
    for (const f of files) {
      const text = readFileSync(new URL(f, corpus), "utf8");
      const exact = exactTextTokens(text, "o200k_base");
      const error = (approxTextTokens(text) - exact) / exact;
      assert.ok(Math.abs(error) <= 0.08, `${f}: approx off by ${(error * 100).toFixed(1)}% (exact ${exact})`);
      sum += Math.abs(error);
    }
    assert.ok(sum / files.length <= 0.03, `mean error ${((sum / files.length) * 100).toFixed(1)}%`);
  });

  it("count special-token text as text instead of throwing", () => {
    assert.ok(exactTextTokens("before <|endoftext|> after", "o200k_base") > 3);
    assert.equal(exactTextTokens("", "o200k_base"), 0);
    assert.equal(approxTextTokens(""), 0);
  });
});

describe("tokenizer families", () => {
  it("picks the family from the provider type and model name", () => {
    assert.equal(tokenizerFamily("openai", "gpt-4o"), "o200k");
    assert.equal(tokenizerFamily("openai", "gpt-5.5"), "o200k");
    assert.equal(tokenizerFamily("openai", "gpt-4.1-mini"), "o200k");
    assert.equal(tokenizerFamily("openai", "gpt-4"), "cl100k");
    assert.equal(tokenizerFamily("openai", "gpt-4-turbo"), "cl100k");
    assert.equal(tokenizerFamily("openai", "gpt-3.5-turbo"), "cl100k");
    assert.equal(tokenizerFamily("anthropic", "claude-sonnet-4-5"), "claude");
    assert.equal(tokenizerFamily("ollama", "llama3.3"), "llama");
    assert.equal(tokenizerFamily("vllm", "Qwen/Qwen3-8B"), "qwen");
    assert.equal(tokenizerFamily("vllm", "openai/gpt-oss-20b"), "o200k");
    assert.equal(tokenizerFamily("ollama", "gemma3"), "gemini");
    assert.equal(tokenizerFamily("ollama", "phi4"), "generic");
    assert.equal(tokenizerFamily("simulated", "echo"), "simulated");
  });

  it("frames OpenAI messages as the cookbook does: 4 per message (with the role) and 3 for the reply", () => {
    const m = measurePrompt(request("Hello"), { exact: ["o200k_base"] });
    // "Hello" is one o200k token.
    assert.equal(promptTokensFor(m, "o200k"), 1 + 4 + 3);
  });

  it("counts a Claude prompt as o200k × 1.2 plus its framing, and tools with Anthropic's tool preamble", () => {
    const text = readFileSync(new URL("prose-en.txt", corpus), "utf8");
    const m = measurePrompt(request(text), { exact: ["o200k_base"] });
    const o200k = exactTextTokens(text, "o200k_base");
    assert.equal(promptTokensFor(m, "claude"), Math.ceil(o200k * 1.2 + 4 + 3));
    const withTool = measurePrompt(request("hi", { tools: [{ name: "lookup", parameters: { type: "object" } }] }));
    assert.ok(promptTokensFor(withTool, "claude") - promptTokensFor(measurePrompt(request("hi")), "claude") > 346);
  });

  it("counts Chinese for DeepSeek below o200k (its vocabulary is Chinese-heavy) and for cl100k above", () => {
    const text = readFileSync(new URL("cjk-zh.txt", corpus), "utf8");
    const m = measurePrompt(request(text), { exact: ["o200k_base", "cl100k_base"] });
    const o200k = promptTokensFor(m, "o200k");
    assert.ok(promptTokensFor(m, "deepseek") < o200k);
    assert.equal(promptTokensFor(m, "cl100k"), exactTextTokens(text, "cl100k_base") + 7);
  });

});

function png(width: number, height: number): string {
  const b = Buffer.alloc(33);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(b, 0);
  b.writeUInt32BE(13, 8);
  b.write("IHDR", 12, "latin1");
  b.writeUInt32BE(width, 16);
  b.writeUInt32BE(height, 20);
  return b.toString("base64");
}

function jpeg(width: number, height: number): string {
  // SOI, an APP0 segment of 16 bytes, then SOF0 with the frame size.
  const app0 = Buffer.concat([Buffer.from([0xff, 0xe0, 0x00, 0x10]), Buffer.alloc(14)]);
  const sof = Buffer.from([0xff, 0xc0, 0x00, 0x11, 0x08, height >> 8, height & 255, width >> 8, width & 255, 0x03]);
  return Buffer.concat([Buffer.from([0xff, 0xd8]), app0, sof, Buffer.alloc(40)]).toString("base64");
}

describe("image tokens", () => {
  it("reads PNG and JPEG dimensions from the data, not the whole file", () => {
    assert.deepEqual(imageSizeFromBase64(png(1920, 1080)), { width: 1920, height: 1080 });
    assert.deepEqual(imageSizeFromBase64(jpeg(640, 480)), { width: 640, height: 480 });
    assert.equal(imageSizeFromBase64(Buffer.from("not an image at all, really").toString("base64")), undefined);
  });

  it("applies OpenAI's tile formula (hand-computed)", () => {
    assert.equal(openaiImageTokens({ width: 1024, height: 1024 }, "high"), 85 + 170 * 4);
    assert.equal(openaiImageTokens({ width: 1024, height: 1024 }, "low"), 85);
    // 2048×4096 → fits 2048×2048 as 1024×2048 → short side 768: 768×1536 → 2×3 tiles.
    assert.equal(openaiImageTokens({ width: 2048, height: 4096 }, "auto"), 85 + 170 * 6);
    assert.equal(openaiImageTokens({ width: 512, height: 512 }, "high", true), 2833 + 5667);
  });

  it("applies Claude's and Gemini's formulas", () => {
    assert.equal(claudeImageTokens({ width: 1000, height: 1000 }), 1334);
    assert.equal(claudeImageTokens({ width: 4000, height: 3000 }), 1600);
    assert.equal(geminiImageTokens({ width: 300, height: 300 }), 258);
    assert.equal(geminiImageTokens({ width: 1920, height: 1080 }), 258 * 3 * 2);
  });

  it("prices an inline image by its size and a URL image by the documented default (1024×1024)", () => {
    const inline = request("look", {});
    inline.messages[0]!.content.push({ type: "image", base64: png(512, 512), mediaType: "image/png", detail: "high" });
    const byUrl = request("look", {});
    byUrl.messages[0]!.content.push({ type: "image", url: "https://example.com/cat.png" });
    const text = promptTokensFor(measurePrompt(request("look")), "o200k");
    assert.equal(promptTokensFor(measurePrompt(inline), "o200k") - text, 85 + 170);
    assert.equal(promptTokensFor(measurePrompt(byUrl), "o200k") - text, 765);
    assert.equal(imageTokens(undefined, "auto", "claude"), 1399);
  });
});

describe("routing near a context window", () => {
  it("re-counts with the real tokenizer when a candidate's window is within the margin, and hands the router that figure", async () => {
    const { buildRuntime } = await import("../../server/core/runtime.js");
    const { configSchema } = await import("../../server/config/schema.js");
    const { measureForRouting } = await import("../../server/budgets/admission.js");
    const { resolveRoute } = await import("../../server/router/resolve.js");
    const text = readFileSync(new URL("cjk-ja.txt", corpus), "utf8");
    const exact = promptTokensFor(measurePrompt(request(text), { exact: ["o200k_base"] }), "o200k");
    const approx = promptTokensFor(measurePrompt(request(text)), "simulated");
    assert.notEqual(exact, approx, "the corpus file should show the approximation's error");
    const runtimeWith = (window: number) =>
      buildRuntime(
        configSchema.parse({
          providers: [{ id: "oa", type: "openai", api_key: "x" }],
          models: [{ id: "oa/gpt-4o", provider: "oa", upstream: "gpt-4o", context_window: window, max_output_tokens: 100 }],
        }),
      );
    const near = runtimeWith(Math.round(approx * 1.1));
    const far = runtimeWith(approx * 10);
    try {
      const r = { ...request(text), model: "oa/gpt-4o" };
      assert.equal(estimatePromptTokens(r), approx);
      const nearFigure = measureForRouting(near, r).promptTokens;
      assert.equal(nearFigure, exact);
      assert.equal(measureForRouting(far, r).promptTokens, approx);
      // The router filters by the figure it is handed, and by the approximation without one.
      const caller = near.auth.authenticate(undefined);
      assert.equal(resolveRoute(near, r, caller, { promptTokens: nearFigure }).promptTokens, exact);
      assert.equal(resolveRoute(far, r, caller).promptTokens, approx);
    } finally {
      await near.retire();
      await far.retire();
    }
  });
});
