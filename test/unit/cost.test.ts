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
    assert.equal(nanoToUsdString(0n), "0.000000000");
    assert.equal(nanoToUsdString(-1n), "-0.000000001");
  });

  it("renders every amount as bigint division would, on both sides of 2^53", () => {
    const byBigint = (n: bigint) => {
      const abs = n < 0n ? -n : n;
      return `${n < 0n ? "-" : ""}${abs / 1_000_000_000n}.${(abs % 1_000_000_000n).toString().padStart(9, "0")}`;
    };
    const max = BigInt(Number.MAX_SAFE_INTEGER);
    const edges = [max - 1n, max, max + 1n, max + 999_999_999n, 10n ** 30n + 7n, 999_999_999n, 1_000_000_000n];
    let seed = 7;
    const random = () => ((seed = (seed * 48271) % 2147483647), seed);
    const randoms = Array.from({ length: 2000 }, () => BigInt(random()) * BigInt(random()) * BigInt(random() % 8));
    for (const n of [...edges, ...randoms]) {
      assert.equal(nanoToUsdString(n), byBigint(n), String(n));
      assert.equal(nanoToUsdString(-n), byBigint(-n), String(-n));
    }
  });

  it("charges exactly what bigint arithmetic gives, for small and huge products alike", () => {
    // The formula every charge follows: tokens × rate × multiplier / 1e12, rounded half up.
    const exact = (tokens: number, perMillion: bigint, ppm: bigint) =>
      tokens <= 0 ? 0n : (BigInt(tokens) * perMillion * ppm + 500_000_000_000n) / 1_000_000_000_000n;
    let seed = 11;
    const random = () => ((seed = (seed * 48271) % 2147483647), seed);
    const rates = [0.0000001, 0.075, 0.5, 1, 2.5, 10, 60, 150, 600, 12_345.678, 9_000_000];
    for (let i = 0; i < 3000; i++) {
      const usd = rates[i % rates.length]!;
      // Token counts from 1 to a billion, so products cross 2^53 from both sides.
      const tokens = (random() % 10 ** (1 + (i % 9))) + 1;
      const price = compilePrice({ input: usd, output: usd });
      const perMillion = price.base.output;
      const got = computeCost(usage(0, tokens), price).output;
      assert.equal(got, exact(tokens, perMillion, 1_000_000n), `${tokens} tokens at $${usd}/M`);
      const batch = compilePrice({ input: usd, output: usd, batch_multiplier: 0.5 });
      assert.equal(computeCost(usage(0, tokens), batch, { batch: true }).output, exact(tokens, perMillion, 500_000n), `batch: ${tokens} tokens at $${usd}/M`);
    }
    // Exactly half a nano-dollar rounds up, on the fast path too: 1 token at 0.5 nano-USD per token.
    assert.equal(computeCost(usage(0, 1), compilePrice({ input: 0.0005, output: 0.0005 })).output, 1n);
  });
});

describe("computeCost on published prices (hand-computed)", () => {
  // Claude Sonnet 4.5: $3 in, $15 out, $0.30 cache read, $3.75 cache write; above 200k
  // prompt tokens the whole request is $6 / $22.50 / $0.60 / $7.50.
  const sonnet = compilePrice({
    input: 3,
    output: 15,
    cached_input: 0.3,
    cache_write: 3.75,
    batch_multiplier: 0.5,
    tiers: [{ above_input_tokens: 200_000, input: 6, output: 22.5, cached_input: 0.6, cache_write: 7.5 }],
  });

  it("a cached Claude request below the tier", () => {
    // 120,000 in: 100,000 read from cache, 15,000 written, 5,000 plain; 2,000 out.
    // 5,000 × 3 = 15,000,000; 100,000 × 0.3 = 30,000,000; 15,000 × 3.75 = 56,250,000; 2,000 × 15 = 30,000,000 (nano-USD).
    const c = computeCost(usage(120_000, 2000, 100_000, 15_000), sonnet);
    assert.deepEqual(
      [c.input, c.cachedInput, c.cacheWrite, c.output, c.total],
      [15_000_000n, 30_000_000n, 56_250_000n, 30_000_000n, 131_250_000n],
    );
  });

  it("a cached Claude request past the 200k tier re-prices every token, cached ones included", () => {
    // 250,000 in: 200,000 cached at $0.60, 50,000 plain at $6; 1,000 out at $22.50.
    // 50,000 × 6 = 300,000,000; 200,000 × 0.6 = 120,000,000; 1,000 × 22.5 = 22,500,000.
    const c = computeCost(usage(250_000, 1000, 200_000), sonnet);
    assert.equal(c.input, 300_000_000n);
    assert.equal(c.cachedInput, 120_000_000n);
    assert.equal(c.output, 22_500_000n);
    assert.equal(c.total, 442_500_000n);
  });

  it("batch halves every part, tier included", () => {
    const c = computeCost(usage(250_000, 1000, 200_000), sonnet, { batch: true });
    assert.equal(c.total, 221_250_000n);
  });

  it("reasoning tokens are output: an o4-mini answer with 3,000 reasoning of 3,500 output", () => {
    // o4-mini: $1.10 in, $4.40 out, $0.275 cached. 10,000 in (4,000 cached), 3,500 out.
    // 6,000 × 1.1 = 6,600,000; 4,000 × 0.275 = 1,100,000; 3,500 × 4.4 = 15,400,000.
    const c = computeCost(usage(10_000, 3500, 4000, 0, 3000), compilePrice({ input: 1.1, output: 4.4, cached_input: 0.275 }));
    assert.equal(c.total, 23_100_000n);
  });

  it("picks the highest tier exceeded among several (Qwen3-Coder-Plus)", () => {
    const qwen = compilePrice({
      input: 1,
      output: 5,
      cached_input: 0.1,
      tiers: [
        { above_input_tokens: 32_000, input: 1.8, output: 9, cached_input: 0.18 },
        { above_input_tokens: 128_000, input: 3, output: 15, cached_input: 0.3 },
        { above_input_tokens: 256_000, input: 6, output: 60, cached_input: 0.6 },
      ],
    });
    // 32,000 exactly is still the base tier; 32,001 is the second; 300,000 the last.
    assert.equal(computeCost(usage(32_000, 0), qwen).total, 32_000_000n);
    assert.equal(computeCost(usage(32_001, 0), qwen).total, 57_601_800n);
    assert.equal(computeCost(usage(300_000, 100, 100_000), qwen).total, 200_000n * 6000n + 100_000n * 600n + 100n * 60_000n);
  });

  it("never charges more cached or written tokens than the input holds", () => {
    // A provider that over-reports cached tokens: they are capped at the input count.
    const c = computeCost(usage(1000, 0, 5000, 5000), compilePrice({ input: 3, output: 15, cached_input: 0.3, cache_write: 3.75 }));
    assert.equal(c.cachedInput, 300_000n);
    assert.equal(c.input + c.cacheWrite, 0n);
  });

  it("reads prices from their decimal text, without float drift", () => {
    assert.equal(usdToNano(1.1), 1_100_000_000n);
    assert.equal(usdToNano(0.003625), 3_625_000n);
    assert.equal(usdToNano("0.0000000015"), 2n);
    assert.equal(usdToNano(1e-7), 100n);
    // 1.1 × 1e9 in floats is 1100000000.0000002; the decimal path is exact for prices of any size.
    assert.equal(usdToNano(123456.789012345), 123_456_789_012_345n);
    assert.equal(compilePrice({ input: 1, output: 1, batch_multiplier: 0.3 }).batchMultiplierPpm, 300_000n);
  });
});
