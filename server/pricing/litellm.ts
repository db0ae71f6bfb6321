import { readFileSync } from "node:fs";
import type { ModelConfig, PricingConfig, ProviderType } from "../config/schema.js";
import { decimalToScaled, formatScaled, parseDecimal, scaleDecimal } from "./decimal.js";

/**
 * Price maps in the LiteLLM format (model_prices_and_context_window.json):
 * one object keyed by model name, prices in USD per token. The loader reads
 * the whole file, keeps the text-generation entries (mode "chat" or
 * "responses") and counts what it skips by mode. Prices become integer
 * nano-USD per million tokens without passing through float arithmetic
 * (see decimal.ts), so "2.5e-07 per token" is exactly 250,000,000 nano-USD
 * per million.
 *
 * What is read, per entry:
 * - input_cost_per_token, output_cost_per_token, cache_read_input_token_cost,
 *   cache_creation_input_token_cost (the 5-minute write; the 1-hour write
 *   `_above_1hr` is a different product and is not read);
 * - prompt-size tiers: every `<field>_above_<N>k_tokens` (N × 1000 tokens,
 *   whole-request), and `tiered_pricing` ranges (Qwen); a tier that omits a
 *   field keeps the base rate for it, as LiteLLM's own cost code does;
 * - batch: input_cost_per_token_batches / output_cost_per_token_batches as a
 *   multiplier of the list price (when the two ratios differ the larger is
 *   used, so batch is never under-priced, and the entry is flagged);
 * - input_cost_per_request as a per-request fee;
 * - max_input_tokens (else max_tokens) as the context window,
 *   max_output_tokens as the output limit.
 * Priority/flex service tiers, audio, image and per-second prices are not
 * modeled and are ignored.
 */

/** MapPricing is a map entry's prices, exact, in nano-USD per million tokens (requestFee in nano-USD). */
export interface MapPricing {
  input: bigint;
  output: bigint;
  cachedInput?: bigint;
  cacheWrite?: bigint;
  tiers: Array<{ aboveInputTokens: number; input: bigint; output: bigint; cachedInput?: bigint; cacheWrite?: bigint }>;
  /** batchMultiplierPpm is the batch price in parts per million of the list price. */
  batchMultiplierPpm?: bigint;
  requestFee?: bigint;
  /** reasoningOutput is set when the map prices reasoning tokens differently from output (not billed separately here). */
  reasoningOutput?: bigint;
  /** notes say where a price was approximated or rounded. */
  notes: string[];
}

/** MapEntry is one text-generation model of a map. */
export interface MapEntry {
  /** key is the map's name for the model, such as "gemini/gemini-2.5-pro". */
  key: string;
  /** provider is the entry's litellm_provider. */
  provider: string;
  mode: string;
  contextWindow?: number;
  maxOutputTokens?: number;
  /** pricing is undefined when the entry has no per-token prices. */
  pricing?: MapPricing;
}

/** PricingMap is a loaded map. */
export interface PricingMap {
  /** source names the map, usually its path. */
  source: string;
  /** entries are the text-generation models, by key. */
  entries: ReadonlyMap<string, MapEntry>;
  /** total is how many entries the file has. */
  total: number;
  /** skippedByMode counts the entries that are not text generation, by mode ("(none)" when unset). */
  skippedByMode: Readonly<Record<string, number>>;
  /** skipped is the sum of skippedByMode. */
  skipped: number;
  /** priced is how many entries have per-token prices. */
  priced: number;
}

/** PricingMapError is a map that cannot be read at all (not JSON, not an object). */
export class PricingMapError extends Error {
  constructor(source: string, why: string) {
    super(`${source}: ${why}`);
    this.name = "PricingMapError";
  }
}

const textModes = new Set(["chat", "responses"]);
// USD per token → nano-USD per million tokens: × 1e6 tokens × 1e9 nano.
const PER_TOKEN_TO_NANO_PER_M = 15;

function perToken(value: unknown, field: string, notes: string[]): bigint | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" && typeof value !== "string") {
    notes.push(`${field}: not a number, ignored`);
    return undefined;
  }
  const d = parseDecimal(value);
  if (d === undefined || d.mantissa < 0n) {
    notes.push(`${field}: ${JSON.stringify(value)} is not a price, ignored`);
    return undefined;
  }
  const scaled = scaleDecimal(d, PER_TOKEN_TO_NANO_PER_M);
  if (!scaled.exact) notes.push(`${field}: ${String(value)} per token rounded to ${scaled.value} nano-USD per million`);
  return scaled.value;
}

function tokenCount(value: unknown): number | undefined {
  const n = typeof value === "string" ? Number(value) : value;
  return typeof n === "number" && Number.isInteger(n) && n > 0 ? n : undefined;
}

const tierField = /^(input_cost_per_token|output_cost_per_token|cache_read_input_token_cost|cache_creation_input_token_cost)_above_(\d+)k_tokens$/;

type TierRates = MapPricing["tiers"][number];

function readPricing(raw: Record<string, unknown>): MapPricing | undefined {
  const notes: string[] = [];
  let input = perToken(raw.input_cost_per_token, "input_cost_per_token", notes);
  let output = perToken(raw.output_cost_per_token, "output_cost_per_token", notes);
  let cachedInput = perToken(raw.cache_read_input_token_cost, "cache_read_input_token_cost", notes);
  const cacheWrite = perToken(raw.cache_creation_input_token_cost, "cache_creation_input_token_cost", notes);
  const tiers = new Map<number, Partial<TierRates>>();
  const tier = (above: number) => {
    let t = tiers.get(above);
    if (t === undefined) tiers.set(above, (t = {}));
    return t;
  };

  for (const [field, value] of Object.entries(raw)) {
    const m = tierField.exec(field);
    if (m === null) continue;
    const price = perToken(value, field, notes);
    if (price === undefined) continue;
    const t = tier(Number(m[2]) * 1000);
    if (m[1] === "input_cost_per_token") t.input = price;
    else if (m[1] === "output_cost_per_token") t.output = price;
    else if (m[1] === "cache_read_input_token_cost") t.cachedInput = price;
    else t.cacheWrite = price;
  }

  if (Array.isArray(raw.tiered_pricing)) {
    const ranges = raw.tiered_pricing
      .filter((r): r is Record<string, unknown> => r !== null && typeof r === "object")
      .map((r) => ({ r, from: Array.isArray(r.range) ? Number(r.range[0]) : NaN }))
      .filter((x) => Number.isFinite(x.from))
      .sort((a, b) => a.from - b.from);
    for (const { r, from } of ranges) {
      const i = perToken(r.input_cost_per_token, "tiered_pricing.input_cost_per_token", notes);
      const o = perToken(r.output_cost_per_token, "tiered_pricing.output_cost_per_token", notes);
      const c = perToken(r.cache_read_input_token_cost, "tiered_pricing.cache_read_input_token_cost", notes);
      if (from <= 0) {
        // The first range is the base price when the entry has no flat one.
        input ??= i;
        output ??= o;
        cachedInput ??= c;
      } else {
        const t = tier(Math.round(from));
        if (i !== undefined) t.input = i;
        if (o !== undefined) t.output = o;
        if (c !== undefined) t.cachedInput = c;
      }
    }
  }

  if (input === undefined && output === undefined) return undefined;
  input ??= 0n;
  output ??= 0n;
  const pricing: MapPricing = { input, output, tiers: [], notes };
  if (cachedInput !== undefined) pricing.cachedInput = cachedInput;
  if (cacheWrite !== undefined) pricing.cacheWrite = cacheWrite;
  for (const [above, t] of [...tiers.entries()].sort((a, b) => a[0] - b[0])) {
    const rates: TierRates = { aboveInputTokens: above, input: t.input ?? input, output: t.output ?? output };
    const c = t.cachedInput ?? cachedInput;
    const w = t.cacheWrite ?? cacheWrite;
    if (c !== undefined) rates.cachedInput = c;
    if (w !== undefined) rates.cacheWrite = w;
    pricing.tiers.push(rates);
  }

  const batchIn = perToken(raw.input_cost_per_token_batches, "input_cost_per_token_batches", notes);
  const batchOut = perToken(raw.output_cost_per_token_batches, "output_cost_per_token_batches", notes);
  const ratios: bigint[] = [];
  // ppm = batch × 1e6 / list, rounded up so the batch price is never under-stated.
  const ppm = (batch: bigint, list: bigint) => (batch * 1_000_000n + list - 1n) / list;
  if (batchIn !== undefined && input > 0n) ratios.push(ppm(batchIn, input));
  if (batchOut !== undefined && output > 0n) ratios.push(ppm(batchOut, output));
  if (ratios.length > 0) {
    const max = ratios.reduce((a, b) => (b > a ? b : a));
    if (ratios.some((r) => r !== max)) notes.push(`batch: input and output discounts differ (${ratios.join(" vs ")} ppm); using ${max} ppm`);
    if (max > 0n && max <= 1_000_000n) pricing.batchMultiplierPpm = max;
  }

  if (raw.input_cost_per_request !== undefined) {
    const fee = parseDecimal(raw.input_cost_per_request as string | number);
    if (fee !== undefined && fee.mantissa >= 0n) pricing.requestFee = scaleDecimal(fee, 9).value;
  }
  const reasoning = perToken(raw.output_cost_per_reasoning_token, "output_cost_per_reasoning_token", notes);
  if (reasoning !== undefined && reasoning !== output) {
    pricing.reasoningOutput = reasoning;
    notes.push(`reasoning tokens are listed at ${formatScaled(reasoning, 9)} USD/M but billed as output (${formatScaled(output, 9)} USD/M)`);
  }
  return pricing;
}

/**
 * parsePricingMap reads a map's JSON text. It never fails on an entry:
 * entries that are not text-generation models are counted by mode, and
 * entries whose prices cannot be read are kept unpriced. It throws a
 * PricingMapError only when the text is not a JSON object.
 */
export function parsePricingMap(text: string, source: string): PricingMap {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new PricingMapError(source, `not valid JSON: ${(err as Error).message}`);
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw new PricingMapError(source, "expected a JSON object keyed by model name");
  const entries = new Map<string, MapEntry>();
  const skippedByMode: Record<string, number> = {};
  let total = 0;
  let priced = 0;
  for (const [key, value] of Object.entries(raw as Record<string, unknown>)) {
    total++;
    const entry = value !== null && typeof value === "object" && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
    const mode = typeof entry?.mode === "string" ? entry.mode : "(none)";
    // sample_spec documents the format; its "mode" is prose.
    if (entry === undefined || !textModes.has(mode) || key === "sample_spec") {
      const label = entry === undefined ? "(not an object)" : /^[\w-]+$|^\(none\)$/.test(mode) ? mode : "(invalid)";
      skippedByMode[label] = (skippedByMode[label] ?? 0) + 1;
      continue;
    }
    const pricing = readPricing(entry);
    if (pricing !== undefined) priced++;
    const e: MapEntry = {
      key,
      provider: typeof entry.litellm_provider === "string" ? entry.litellm_provider : "",
      mode,
      contextWindow: tokenCount(entry.max_input_tokens) ?? tokenCount(entry.max_tokens),
      maxOutputTokens: tokenCount(entry.max_output_tokens) ?? tokenCount(entry.max_tokens),
    };
    if (pricing !== undefined) e.pricing = pricing;
    entries.set(key, e);
  }
  const skipped = Object.values(skippedByMode).reduce((a, b) => a + b, 0);
  return { source, entries, total, skippedByMode, skipped, priced };
}

/** loadPricingMap reads and parses a map file; it throws a PricingMapError naming the file. */
export function loadPricingMap(path: string): PricingMap {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new PricingMapError(path, e.code === "ENOENT" ? "no such file" : `cannot read: ${e.message}`);
  }
  return parsePricingMap(text, path);
}

/** litellmProviders are the litellm_provider values that serve each provider type. */
const litellmProviders: Record<ProviderType, readonly string[]> = {
  openai: ["openai", "text-completion-openai"],
  anthropic: ["anthropic"],
  gemini: ["gemini"],
  deepseek: ["deepseek"],
  mistral: ["mistral"],
  qwen: ["dashscope"],
  ollama: ["ollama"],
  vllm: ["hosted_vllm", "vllm"],
  simulated: [],
};

/** mapProvidersFor lists the litellm_provider values of a provider type. */
export function mapProvidersFor(type: ProviderType): readonly string[] {
  return litellmProviders[type];
}

/** mapKeysFor lists the map keys a model may be filed under, most specific first. */
export function mapKeysFor(upstream: string, providerType: ProviderType): string[] {
  const keys: string[] = [];
  for (const p of litellmProviders[providerType]) keys.push(`${p}/${upstream}`);
  keys.push(upstream);
  return [...new Set(keys)];
}

/**
 * findMapEntry finds a model's map entry by its upstream name, only among
 * entries of the provider that serves it (so an Azure or Bedrock listing
 * of the same model never prices an OpenAI or Anthropic deployment).
 */
export function findMapEntry(map: PricingMap, upstream: string, providerType: ProviderType): MapEntry | undefined {
  const allowed = litellmProviders[providerType];
  for (const key of mapKeysFor(upstream, providerType)) {
    const e = map.entries.get(key);
    if (e !== undefined && allowed.includes(e.provider)) return e;
  }
  return undefined;
}

// nano-USD per million → the USD-per-million number config holds (exact for every realistic price; see decimal.ts).
function usdPerMillion(nano: bigint): number {
  return Number(formatScaled(nano, 9));
}

/** mapPricingToConfig renders a map entry's prices as a model's `pricing` block. */
export function mapPricingToConfig(p: MapPricing, checked?: string): PricingConfig {
  const out: PricingConfig = { input: usdPerMillion(p.input), output: usdPerMillion(p.output) };
  if (p.cachedInput !== undefined) out.cached_input = usdPerMillion(p.cachedInput);
  if (p.cacheWrite !== undefined) out.cache_write = usdPerMillion(p.cacheWrite);
  if (p.tiers.length > 0) {
    out.tiers = p.tiers.map((t) => {
      const tier: NonNullable<PricingConfig["tiers"]>[number] = {
        above_input_tokens: t.aboveInputTokens,
        input: usdPerMillion(t.input),
        output: usdPerMillion(t.output),
      };
      if (t.cachedInput !== undefined) tier.cached_input = usdPerMillion(t.cachedInput);
      if (t.cacheWrite !== undefined) tier.cache_write = usdPerMillion(t.cacheWrite);
      return tier;
    });
  }
  if (p.batchMultiplierPpm !== undefined && p.batchMultiplierPpm !== 1_000_000n) out.batch_multiplier = Number(formatScaled(p.batchMultiplierPpm, 6));
  if (p.requestFee !== undefined && p.requestFee > 0n) out.request_fee = usdPerMillion(p.requestFee);
  if (checked !== undefined) out.checked = checked;
  return out;
}

/** modelUpstream is the name a map lists a configured model under: `upstream`, else its id after the first "/". */
export function modelUpstream(model: Pick<ModelConfig, "id" | "upstream">): string {
  if (model.upstream !== undefined) return model.upstream;
  const slash = model.id.indexOf("/");
  return slash >= 0 ? model.id.slice(slash + 1) : model.id;
}

/** perTokenToNanoPerMillion converts one per-token USD price (text or number) exactly; exported for tests and tools. */
export function perTokenToNanoPerMillion(value: string | number): bigint {
  return decimalToScaled(value, PER_TOKEN_TO_NANO_PER_M).value;
}
