import type { ChatRequest, Usage } from "../core/chat.js";
import type { PricingConfig } from "../config/schema.js";
import { decimalToScaled } from "./decimal.js";

/**
 * Exact cost arithmetic. Prices are kept as integer nano-USD per million
 * tokens and costs as integer nano-USD (bigint), so nothing drifts the way
 * floats do when thousands of requests are summed. Estimates and bills go
 * through the same function: an estimate is a bill for predicted usage.
 */

/** Rates is one price level in nano-USD per million tokens. */
export interface Rates {
  input: bigint;
  output: bigint;
  cachedInput: bigint;
  cacheWrite: bigint;
}

/** Price is a model's compiled pricing. */
export interface Price {
  base: Rates;
  /** tiers are ordered by threshold, ascending; the highest one exceeded applies to the whole request. */
  tiers: Array<{ aboveInputTokens: number; rates: Rates }>;
  /** batchMultiplierPpm is the batch price as parts per million of the list price (1e6 = no discount). */
  batchMultiplierPpm: bigint;
  /** requestFee is a fixed fee per request in nano-USD. */
  requestFee: bigint;
}

/** CostBreakdown is a cost in integer nano-USD. */
export interface CostBreakdown {
  input: bigint;
  cachedInput: bigint;
  cacheWrite: bigint;
  output: bigint;
  requestFee: bigint;
  total: bigint;
}

const MILLION = 1_000_000n;

/**
 * usdToNano converts a USD amount (as written in config) to integer
 * nano-USD, exactly: the number's decimal text is scaled with integer
 * arithmetic (0.075 * 1e9 in floats is 75000000.00000001), and anything
 * below a nano-dollar is rounded half up.
 */
export function usdToNano(usd: number | string): bigint {
  return decimalToScaled(usd, 9).value;
}

/** nanoToUsdString renders nano-USD as a decimal USD string with 9 places, e.g. "0.000012500". */
export function nanoToUsdString(nano: bigint): string {
  const sign = nano < 0n ? "-" : "";
  const abs = nano < 0n ? -nano : nano;
  const whole = abs / 1_000_000_000n;
  const frac = (abs % 1_000_000_000n).toString().padStart(9, "0");
  return `${sign}${whole}.${frac}`;
}

/** compilePrice turns a model's USD-per-million pricing into exact integer rates. */
export function compilePrice(pricing: PricingConfig | undefined): Price {
  if (pricing === undefined) {
    const zero: Rates = { input: 0n, output: 0n, cachedInput: 0n, cacheWrite: 0n };
    return { base: zero, tiers: [], batchMultiplierPpm: MILLION, requestFee: 0n };
  }
  const rates = (p: { input: number; output: number; cached_input?: number; cache_write?: number }): Rates => ({
    input: usdToNano(p.input),
    output: usdToNano(p.output),
    // A provider without a separate cached rate bills cached tokens at the input rate.
    cachedInput: usdToNano(p.cached_input ?? p.input),
    cacheWrite: usdToNano(p.cache_write ?? p.input),
  });
  return {
    base: rates(pricing),
    tiers: (pricing.tiers ?? [])
      .map((t) => ({ aboveInputTokens: t.above_input_tokens, rates: rates(t) }))
      .sort((a, b) => a.aboveInputTokens - b.aboveInputTokens),
    batchMultiplierPpm: decimalToScaled(pricing.batch_multiplier ?? 1, 6).value,
    requestFee: usdToNano(pricing.request_fee ?? 0),
  };
}

/** ratesFor picks the price level for a prompt of this size (the tier applies to the whole request). */
export function ratesFor(price: Price, inputTokens: number): Rates {
  let rates = price.base;
  for (const tier of price.tiers) {
    if (inputTokens > tier.aboveInputTokens) rates = tier.rates;
  }
  return rates;
}

// Per million tokens, and the multiplier in parts per million: the divisor of a charge, and half of it for rounding.
const CHARGE_DIVISOR = MILLION * MILLION;
const CHARGE_HALF = CHARGE_DIVISOR / 2n;

// tokens × nano-USD-per-million, rounded half up to a whole nano-USD.
function charge(tokens: number, perMillion: bigint, multiplierPpm: bigint): bigint {
  if (tokens <= 0 || perMillion === 0n) return 0n;
  return (BigInt(tokens) * perMillion * multiplierPpm + CHARGE_HALF) / CHARGE_DIVISOR;
}

/** CostOptions modify how a request is billed. */
export interface CostOptions {
  /** batch applies the model's batch discount. */
  batch?: boolean;
}

/**
 * costOptionsFor is how a request is billed: batch priority gets the batch
 * price. Estimates, reservations and bills all take their options from
 * here, so they cannot disagree about a discount.
 */
export function costOptionsFor(request: Pick<ChatRequest, "routing">): CostOptions {
  return { batch: request.routing.priority === "batch" };
}

/**
 * computeCost prices a usage. Cached and cache-written tokens are part of
 * usage.inputTokens and are charged at their own rates only (never again at
 * the full rate); reasoning tokens are part of outputTokens and priced as
 * output.
 */
export function computeCost(usage: Usage, price: Price, options: CostOptions = {}): CostBreakdown {
  const rates = ratesFor(price, usage.inputTokens);
  const m = options.batch === true ? price.batchMultiplierPpm : MILLION;
  const cached = Math.min(usage.cachedInputTokens, usage.inputTokens);
  const written = Math.min(usage.cacheWriteInputTokens, usage.inputTokens - cached);
  const uncached = usage.inputTokens - cached - written;
  const input = charge(uncached, rates.input, m);
  const cachedInput = charge(cached, rates.cachedInput, m);
  const cacheWrite = charge(written, rates.cacheWrite, m);
  const output = charge(usage.outputTokens, rates.output, m);
  const requestFee = price.requestFee;
  return { input, cachedInput, cacheWrite, output, requestFee, total: input + cachedInput + cacheWrite + output + requestFee };
}

/** zeroCost is a CostBreakdown of nothing. */
export function zeroCost(): CostBreakdown {
  return { input: 0n, cachedInput: 0n, cacheWrite: 0n, output: 0n, requestFee: 0n, total: 0n };
}

/** addCost sums two breakdowns (attempts that each consumed tokens). */
export function addCost(a: CostBreakdown, b: CostBreakdown): CostBreakdown {
  return {
    input: a.input + b.input,
    cachedInput: a.cachedInput + b.cachedInput,
    cacheWrite: a.cacheWrite + b.cacheWrite,
    output: a.output + b.output,
    requestFee: a.requestFee + b.requestFee,
    total: a.total + b.total,
  };
}
