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

const NANO_PER_USD = 1_000_000_000;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** nanoToUsdString renders nano-USD as a decimal USD string with 9 places, e.g. "0.000012500". */
export function nanoToUsdString(nano: bigint): string {
  const sign = nano < 0n ? "-" : "";
  const abs = nano < 0n ? -nano : nano;
  // Below 2^53 (about 9 million USD) a double holds the amount exactly, and its division and
  // remainder are exact too: every cost and most budgets, rendered on every request without bigint division.
  if (abs <= MAX_SAFE) {
    const n = Number(abs);
    const frac = n % NANO_PER_USD;
    return `${sign}${(n - frac) / NANO_PER_USD}.${String(frac).padStart(9, "0")}`;
  }
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
// Products up to this leave room for the rounding half and the quotient check below 2^53.
const SAFE_PRODUCT = Number.MAX_SAFE_INTEGER - 2_000_000;

// tokens × nano-USD-per-million, rounded half up to a whole nano-USD.
function charge(tokens: number, perMillion: bigint, multiplierPpm: bigint): bigint {
  if (tokens <= 0 || perMillion === 0n) return 0n;
  // At list price (the multiplier is exactly one million) the charge is tokens × rate / 1e6. While
  // that product stays below 2^53 doubles compute it exactly, and the usual request (hundreds of
  // tokens at dollars per million) is priced with one bigint conversion instead of four bigint operations.
  if (multiplierPpm === MILLION && Number.isSafeInteger(tokens)) {
    const product = tokens * Number(perMillion);
    if (product <= SAFE_PRODUCT) return BigInt(roundedQuotient(product, 1_000_000));
  }
  return (BigInt(tokens) * perMillion * multiplierPpm + CHARGE_HALF) / CHARGE_DIVISOR;
}

/**
 * roundedQuotient is n / d rounded half up, for safe non-negative integers
 * n and even d: the floating-point quotient is corrected by the exact
 * integer remainder, so a quotient that rounds across an integer cannot
 * make it off by one.
 */
function roundedQuotient(n: number, d: number): number {
  const shifted = n + d / 2;
  let q = Math.floor(shifted / d);
  const r = shifted - q * d;
  if (r < 0) q -= 1;
  else if (r >= d) q += 1;
  return q;
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
