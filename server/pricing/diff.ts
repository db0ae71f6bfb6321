import type { GatewayConfig, ProviderType } from "../config/schema.js";
import { compilePrice, type Price, type Rates } from "./cost.js";
import { formatScaled } from "./decimal.js";
import { findMapEntry, mapKeysFor, mapProvidersFor, mapPricingToConfig, modelUpstream, type PricingMap } from "./litellm.js";

/**
 * `llm-gateway pricing diff`: where the configured catalog and a
 * LiteLLM-format map disagree. Prices are compared as the gateway bills
 * them (compiled, exact nano-USD per million tokens, with the defaults
 * applied: a missing cached rate is the input rate), so a difference shown
 * is a difference in what a request would cost.
 */

/** ModelDiff is one configured model compared with the map. */
export interface ModelDiff {
  model: string;
  /** mapKey is the map entry compared against; undefined when the map does not list the model. */
  mapKey?: string;
  /** differences are "field: catalog X, map Y" lines; empty when they agree. */
  differences: string[];
  /** lookedUp lists the keys tried when the map does not list the model. */
  lookedUp: string[];
}

/** CatalogDiff is the whole comparison. */
export interface CatalogDiff {
  models: ModelDiff[];
  /** unlistedByProvider counts, per configured provider, the map's text models of that provider that the catalog lacks. */
  unlistedByProvider: Record<string, number>;
}

const usd = (nanoPerM: bigint) => formatScaled(nanoPerM, 9);
const rateFields: Array<[keyof Rates, string]> = [
  ["input", "input"],
  ["output", "output"],
  ["cachedInput", "cached_input"],
  ["cacheWrite", "cache_write"],
];

function compareRates(prefix: string, a: Rates, b: Rates, out: string[]): void {
  for (const [k, name] of rateFields) {
    if (a[k] !== b[k]) out.push(`${prefix}${name}: catalog ${usd(a[k])}, map ${usd(b[k])} USD/M`);
  }
}

function comparePrices(catalog: Price, map: Price, out: string[]): void {
  compareRates("", catalog.base, map.base, out);
  const thresholds = [...new Set([...catalog.tiers, ...map.tiers].map((t) => t.aboveInputTokens))].sort((x, y) => x - y);
  for (const above of thresholds) {
    const a = catalog.tiers.find((t) => t.aboveInputTokens === above);
    const b = map.tiers.find((t) => t.aboveInputTokens === above);
    if (a === undefined) out.push(`tier above ${above} tokens: only in the map`);
    else if (b === undefined) out.push(`tier above ${above} tokens: only in the catalog`);
    else compareRates(`tier>${above} `, a.rates, b.rates, out);
  }
  if (catalog.batchMultiplierPpm !== map.batchMultiplierPpm) {
    out.push(`batch_multiplier: catalog ${formatScaled(catalog.batchMultiplierPpm, 6)}, map ${formatScaled(map.batchMultiplierPpm, 6)}`);
  }
  if (catalog.requestFee !== map.requestFee) out.push(`request_fee: catalog ${usd(catalog.requestFee)}, map ${usd(map.requestFee)} USD`);
}

/** diffCatalog compares every configured model (except simulated ones) with the map. */
export function diffCatalog(config: GatewayConfig, map: PricingMap): CatalogDiff {
  const types = new Map<string, ProviderType>(config.providers.map((p) => [p.id, p.type]));
  const models: ModelDiff[] = [];
  const matched = new Set<string>();
  for (const model of config.models) {
    const type = types.get(model.provider);
    if (type === undefined || type === "simulated") continue;
    const upstream = modelUpstream(model);
    const entry = findMapEntry(map, upstream, type);
    if (entry === undefined) {
      models.push({ model: model.id, differences: [], lookedUp: mapKeysFor(upstream, type) });
      continue;
    }
    matched.add(entry.key);
    const differences: string[] = [];
    if (entry.pricing === undefined) differences.push("the map lists the model without per-token prices");
    else if (model.pricing === undefined) differences.push("no pricing in the catalog (billed as free); the map has one");
    else comparePrices(compilePrice(model.pricing), compilePrice(mapPricingToConfig(entry.pricing)), differences);
    if (entry.contextWindow !== undefined && entry.contextWindow !== model.context_window) {
      differences.push(`context_window: catalog ${model.context_window}, map ${entry.contextWindow}`);
    }
    if (entry.maxOutputTokens !== undefined && entry.maxOutputTokens !== model.max_output_tokens) {
      differences.push(`max_output_tokens: catalog ${model.max_output_tokens}, map ${entry.maxOutputTokens}`);
    }
    models.push({ model: model.id, mapKey: entry.key, differences, lookedUp: [] });
  }
  const unlistedByProvider: Record<string, number> = {};
  for (const provider of config.providers) {
    if (provider.type === "simulated") continue;
    const providers = mapProvidersFor(provider.type);
    let n = 0;
    for (const e of map.entries.values()) if (!matched.has(e.key) && providers.includes(e.provider)) n++;
    unlistedByProvider[provider.id] = (unlistedByProvider[provider.id] ?? 0) + n;
  }
  return { models, unlistedByProvider };
}

/** formatCatalogDiff renders a diff as lines for the terminal. */
export function formatCatalogDiff(diff: CatalogDiff, map: PricingMap): string[] {
  const lines: string[] = [];
  lines.push(
    `map ${map.source}: ${map.total} entries, ${map.entries.size} text-generation models (${map.priced} priced), ${map.skipped} other entries skipped`,
  );
  let agree = 0;
  let differ = 0;
  let missing = 0;
  for (const m of diff.models) {
    if (m.mapKey === undefined) {
      missing++;
      lines.push(`${m.model}: not in the map (looked up ${m.lookedUp.join(", ")})`);
    } else if (m.differences.length > 0) {
      differ++;
      lines.push(`${m.model} (map: ${m.mapKey}):`);
      for (const d of m.differences) lines.push(`  ${d}`);
    } else agree++;
  }
  const unlisted = Object.entries(diff.unlistedByProvider)
    .filter(([, n]) => n > 0)
    .map(([p, n]) => `${p} ${n}`);
  lines.push(`summary: ${diff.models.length} models compared: ${agree} agree, ${differ} differ, ${missing} not in the map`);
  if (unlisted.length > 0) lines.push(`map models of configured providers not in the catalog: ${unlisted.join(", ")}`);
  return lines;
}
