import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compilePrice, computeCost, nanoToUsdString, usdToNano } from "../../server/pricing/cost.js";

// Price arithmetic against hand-computed figures, in integer nano-USD.

const usage = (inputTokens: number, outputTokens: number, cachedInputTokens = 0, cacheWriteInputTokens = 0, reasoningTokens = 0) => ({
  inputTokens,
  outputTokens,
  cachedInputTokens,
  cacheWriteInputTokens,
  reasoningTokens,
});

describe("computeCost", () => {
  it("prices plain input and output", () => {
    // 1,000 in at $2.50/M = 2,500,000 nano; 500 out at $10/M = 5,000,000 nano.
    const c = computeCost(usage(1000, 500), compilePrice({ input: 2.5, output: 10 }));
    assert.equal(c.input, 2_500_000n);
    assert.equal(c.output, 5_000_000n);
    assert.equal(c.total, 7_500_000n);
  });

  it("prices cached tokens at the cached rate only, never again at the full rate", () => {
    // 10,000 in of which 8,000 cached: 2,000 × $3/M + 8,000 × $0.30/M = 6,000,000 + 2,400,000.
    const c = computeCost(usage(10_000, 0, 8000), compilePrice({ input: 3, output: 15, cached_input: 0.3 }));
    assert.equal(c.input, 6_000_000n);
    assert.equal(c.cachedInput, 2_400_000n);
    assert.equal(c.total, 8_400_000n);
  });

  it("prices cache writes at the write rate", () => {
    // Anthropic-style: 1,000 uncached, 4,000 written at $3.75/M, 5,000 read at $0.30/M.
    const c = computeCost(usage(10_000, 0, 5000, 4000), compilePrice({ input: 3, output: 15, cached_input: 0.3, cache_write: 3.75 }));
    assert.equal(c.input, 3_000_000n);
    assert.equal(c.cacheWrite, 15_000_000n);
    assert.equal(c.cachedInput, 1_500_000n);
  });

  it("prices reasoning tokens as output (they are part of output_tokens)", () => {
    const c = computeCost(usage(0, 1000, 0, 0, 900), compilePrice({ input: 1.1, output: 4.4 }));
    assert.equal(c.output, 4_400_000n);
  });

  it("applies a prompt-size tier to the whole request", () => {
    const price = compilePrice({ input: 1.25, output: 10, tiers: [{ above_input_tokens: 200_000, input: 2.5, output: 15 }] });
    assert.equal(computeCost(usage(200_000, 1000), price).total, 250_000_000n + 10_000_000n);
    assert.equal(computeCost(usage(200_001, 1000), price).total, 500_002_500n + 15_000_000n);
  });

  it("applies the batch multiplier only to batch requests", () => {
    const price = compilePrice({ input: 2, output: 8, batch_multiplier: 0.5 });
    assert.equal(computeCost(usage(1000, 1000), price).total, 10_000_000n);
    assert.equal(computeCost(usage(1000, 1000), price, { batch: true }).total, 5_000_000n);
  });

  it("rounds each part half up to a whole nano-dollar", () => {
    // $0.0004/M is 0.4 nano-USD a token: 1 token → 0.4 → 0; 2 → 0.8 → 1; 5 → 2.0 → 2; and $0.075/M is 75 a token.
    const price = compilePrice({ input: 0.0004, output: 0.075 });
    assert.equal(computeCost(usage(1, 0), price).total, 0n);
    assert.equal(computeCost(usage(2, 0), price).total, 1n);
    assert.equal(computeCost(usage(5, 0), price).total, 2n);
    assert.equal(computeCost(usage(0, 1), price).total, 75n);
  });

  it("adds a per-request fee", () => {
    assert.equal(computeCost(usage(0, 0), compilePrice({ input: 1, output: 1, request_fee: 0.001 })).total, 1_000_000n);
  });

  it("converts USD and renders nano-USD exactly", () => {
    assert.equal(usdToNano(0.075), 75_000_000n);
    assert.equal(nanoToUsdString(125_000n), "0.000125000");
    assert.equal(nanoToUsdString(12_345_678_901n), "12.345678901");
  });
});
