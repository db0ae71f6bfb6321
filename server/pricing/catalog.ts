import { statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { GatewayConfig, ProviderType } from "../config/schema.js";
import { findMapEntry, loadPricingMap, mapPricingToConfig, modelUpstream, PricingMapError, type PricingMap } from "./litellm.js";

/**
 * The pricing catalog: each model's `pricing` block in gateway.yaml, filled
 * in from a LiteLLM-format map when the configuration names one
 * (`pricing: { litellm_map: <path>, prefer: config | map }`). With
 * `prefer: config` (the default) the map prices only the models that have
 * no `pricing` block; with `prefer: map` it prices every model it lists,
 * and the file's own prices remain for the rest. Map prices carry a
 * `checked` date: `pricing.checked`, else the map file's modification date.
 * The map is read when the configuration is loaded, so a refreshed map
 * takes effect on the next reload (SIGHUP or a change to gateway.yaml).
 */

/** CatalogOutcome is what applying a price map did. */
export interface CatalogOutcome {
  /** issues are errors (the map cannot be read); the configuration is then invalid. */
  issues: string[];
  /** warnings are facts an operator should know (models the map does not list). */
  warnings: string[];
  /** pricedFromMap lists the model ids whose pricing now comes from the map. */
  pricedFromMap: string[];
}

/** resolveMapPath resolves `pricing.litellm_map` against the directory of the configuration file. */
export function resolveMapPath(mapPath: string, configSource: string): string {
  return resolve(dirname(configSource), mapPath);
}

function fileDate(path: string): string | undefined {
  try {
    return statSync(path).mtime.toISOString().slice(0, 10);
  } catch {
    return undefined;
  }
}

/**
 * applyPricingMap prices config.models from a loaded map, in place, per
 * `prefer`; providerTypes gives each provider id's type (the map is
 * searched only among entries of that provider).
 */
export function applyPricingMap(config: GatewayConfig, map: PricingMap, prefer: "config" | "map", checked: string | undefined): CatalogOutcome {
  const types = new Map<string, ProviderType>(config.providers.map((p) => [p.id, p.type]));
  const outcome: CatalogOutcome = { issues: [], warnings: [], pricedFromMap: [] };
  const unlisted: string[] = [];
  for (const model of config.models) {
    if (prefer === "config" && model.pricing !== undefined) continue;
    const type = types.get(model.provider);
    if (type === undefined || type === "simulated") continue;
    const entry = findMapEntry(map, modelUpstream(model), type);
    if (entry?.pricing === undefined) {
      if (model.pricing === undefined) unlisted.push(model.id);
      continue;
    }
    model.pricing = mapPricingToConfig(entry.pricing, checked);
    outcome.pricedFromMap.push(model.id);
  }
  if (unlisted.length > 0) {
    outcome.warnings.push(`pricing map ${map.source} does not price ${unlisted.length} model(s) that have no pricing block (billed as free): ${unlisted.join(", ")}`);
  }
  return outcome;
}

/**
 * applyPricingSource loads the map named by config.pricing (if any) and
 * applies it; configSource is the configuration's path, for relative map
 * paths and messages.
 */
export function applyPricingSource(config: GatewayConfig, configSource: string): CatalogOutcome {
  const source = config.pricing;
  if (source === undefined) return { issues: [], warnings: [], pricedFromMap: [] };
  const path = resolveMapPath(source.litellm_map, configSource);
  let map: PricingMap;
  try {
    map = loadPricingMap(path);
  } catch (err) {
    if (!(err instanceof PricingMapError)) throw err;
    return { issues: [`pricing.litellm_map: ${err.message}`], warnings: [], pricedFromMap: [] };
  }
  return applyPricingMap(config, map, source.prefer, source.checked ?? fileDate(path));
}
