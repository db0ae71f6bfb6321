import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { before, describe, it } from "node:test";
import { compilePrice } from "../../server/pricing/cost.js";
import { findMapEntry, loadPricingMap, mapPricingToConfig, parsePricingMap, perTokenToNanoPerMillion, type PricingMap } from "../../server/pricing/litellm.js";
import { REAL_MAP, REAL_MAP_MISSING } from "../support/real-map.js";

// The LiteLLM price map: the real one must load whole, and known models must
// come out priced exactly as published.

describe("LiteLLM map loader, on the real map", { skip: REAL_MAP_MISSING }, () => {
  let map: PricingMap;
  let raw: Record<string, { mode?: string }>;
  before(() => {
    map = loadPricingMap(REAL_MAP);
    raw = JSON.parse(readFileSync(REAL_MAP, "utf8")) as Record<string, { mode?: string }>;
  });

  it("reads every entry: text models kept, every other entry counted by mode", () => {
    assert.equal(map.total, Object.keys(raw).length);
    assert.equal(map.entries.size + map.skipped, map.total);
    const chat = Object.entries(raw).filter(([k, v]) => k !== "sample_spec" && (v.mode === "chat" || v.mode === "responses")).length;
    assert.equal(map.entries.size, chat);
    const embeddings = Object.values(raw).filter((v) => v.mode === "embedding").length;
    assert.equal(map.skippedByMode.embedding, embeddings);
    assert.ok(map.priced > 2000, `priced ${map.priced}`);
  });

  it("prices gpt-5.5 with its 272k tier and batch discount", () => {
    const e = findMapEntry(map, "gpt-5.5", "openai")!;
    assert.equal(e.key, "gpt-5.5");
    assert.equal(e.contextWindow, 1_050_000);
    assert.equal(e.maxOutputTokens, 128_000);
    const p = e.pricing!;
    assert.equal(p.input, 5_000_000_000n);
    assert.equal(p.output, 30_000_000_000n);
    assert.equal(p.cachedInput, 500_000_000n);
    assert.equal(p.batchMultiplierPpm, 500_000n);
    assert.deepEqual(p.tiers, [{ aboveInputTokens: 272_000, input: 10_000_000_000n, output: 45_000_000_000n, cachedInput: 1_000_000_000n }]);
  });

  it("prices Claude Sonnet 4.5 with cache writes and the 200k tier, and ignores the 1-hour write", () => {
    const p = findMapEntry(map, "claude-sonnet-4-5", "anthropic")!.pricing!;
    assert.deepEqual(mapPricingToConfig(p), {
      input: 3,
      output: 15,
      cached_input: 0.3,
      cache_write: 3.75,
      tiers: [{ above_input_tokens: 200_000, input: 6, output: 22.5, cached_input: 0.6, cache_write: 7.5 }],
    });
  });

  it("finds provider-prefixed entries and only the serving provider's", () => {
    assert.equal(findMapEntry(map, "gemini-2.5-pro", "gemini")?.key, "gemini/gemini-2.5-pro");
    assert.equal(findMapEntry(map, "deepseek-chat", "deepseek")?.key, "deepseek/deepseek-chat");
    assert.equal(findMapEntry(map, "qwen3-max", "qwen")?.key, "dashscope/qwen3-max");
    // "gpt-4o" is also listed under azure/...; an Anthropic deployment named like an OpenAI model finds nothing.
    assert.equal(findMapEntry(map, "gpt-4o", "anthropic"), undefined);
  });

  it("turns Qwen's tiered_pricing ranges into whole-request tiers", () => {
    const p = findMapEntry(map, "qwen3-coder-plus", "qwen")!.pricing!;
    assert.deepEqual(mapPricingToConfig(p), {
      input: 1,
      output: 5,
      cached_input: 0.1,
      tiers: [
        { above_input_tokens: 32_000, input: 1.8, output: 9, cached_input: 0.18 },
        { above_input_tokens: 128_000, input: 3, output: 15, cached_input: 0.3 },
        { above_input_tokens: 256_000, input: 6, output: 60, cached_input: 0.6 },
      ],
    });
  });

  it("converts per-token prices to nano-USD per million exactly", () => {
    assert.equal(perTokenToNanoPerMillion(1.1e-6), 1_100_000_000n);
    assert.equal(perTokenToNanoPerMillion("2.8e-08"), 28_000_000n);
    assert.equal(perTokenToNanoPerMillion(3.625e-9), 3_625_000n);
    assert.equal(perTokenToNanoPerMillion("0.000015"), 15_000_000_000n);
    // A map price round-trips through config numbers to the same compiled rate.
    const p = findMapEntry(map, "deepseek-v4-pro", "deepseek")!.pricing!;
    assert.equal(compilePrice(mapPricingToConfig(p)).base.cachedInput, p.cachedInput);
  });

});

describe("LiteLLM map loader", () => {
  it("survives odd entries: keeps going, flags what it could not read", () => {
    const m = parsePricingMap(
      JSON.stringify({
        sample_spec: { mode: "one of: chat, embedding" },
        weird: 42,
        noprice: { mode: "chat", litellm_provider: "openai", max_input_tokens: "lots" },
        bad: { mode: "chat", litellm_provider: "openai", input_cost_per_token: "free", output_cost_per_token: 1e-6 },
        tiny: { mode: "chat", litellm_provider: "openai", input_cost_per_token: 1.23456e-16, output_cost_per_token: 0 },
        embed: { mode: "embedding", input_cost_per_token: 1e-7 },
        fee: { mode: "chat", litellm_provider: "openai", input_cost_per_token: 1e-6, output_cost_per_token: 2e-6, input_cost_per_request: 0.005 },
      }),
      "inline",
    );
    assert.equal(m.total, 7);
    assert.equal(m.entries.size, 4);
    assert.deepEqual(m.skippedByMode, { "(invalid)": 1, "(not an object)": 1, embedding: 1 });
    assert.equal(m.entries.get("noprice")!.pricing, undefined);
    assert.equal(m.entries.get("noprice")!.contextWindow, undefined);
    assert.equal(m.entries.get("bad")!.pricing!.input, 0n);
    assert.match(m.entries.get("bad")!.pricing!.notes[0]!, /input_cost_per_token: "free" is not a price/);
    assert.equal(m.entries.get("tiny")!.pricing!.input, 0n);
    assert.match(m.entries.get("tiny")!.pricing!.notes[0]!, /rounded/);
    assert.equal(m.entries.get("fee")!.pricing!.requestFee, 5_000_000n);
    assert.throws(() => parsePricingMap("[1,2]", "list.json"), /list.json: expected a JSON object/);
    assert.throws(() => parsePricingMap("{", "broken.json"), /broken.json: not valid JSON/);
  });
});
