import { readFileSync } from "node:fs";
import { parseDocument } from "yaml";
import type { z } from "zod";
import { applyPricingSource } from "../pricing/catalog.js";
import { isOpenAIFamilyType, openaiPresetFor } from "../providers/openai-presets.js";
import { interpolateTree, type Env, type InterpolatedTree } from "./interpolate.js";
import { configSchema, routeTargetIds, type GatewayConfig, type ProviderType } from "./schema.js";

/**
 * Loading gateway.yaml: YAML → environment interpolation → shape validation
 * (schema.ts) → cross-reference checks. Every problem is reported at once,
 * each naming where it is (`models[3].pricing.input: expected a number, got
 * string`), so an operator fixes a file in one pass. Reloading (parse, reject
 * an invalid file, swap) is the server's job; this module never keeps state.
 */

/** ConfigError is an invalid configuration; issues lists every problem, each naming its path. */
export class ConfigError extends Error {
  /** source names the configuration, usually its file path. */
  readonly source: string;
  /** issues are the problems, one line each, such as `routes[0].targets[2]: unknown model "x/y" (known: …)`. */
  readonly issues: readonly string[];

  constructor(source: string, issues: readonly string[]) {
    const count = issues.length === 1 ? "1 problem" : `${issues.length} problems`;
    super(`${source}: invalid configuration (${count}):\n${issues.map((i) => `  - ${i}`).join("\n")}`);
    this.name = "ConfigError";
    this.source = source;
    this.issues = issues;
  }
}

/** ConfigInspection is a valid configuration and what an operator should know about it. */
export interface ConfigInspection {
  /** config is the validated configuration, defaults applied. */
  config: GatewayConfig;
  /**
   * warnings are legal but notable facts: providers disabled because their
   * key is empty (naming the unset variable), routes left with no usable
   * target, open mode (no gateway keys).
   */
  warnings: string[];
}

/**
 * inspectConfig parses and validates a configuration's text and also
 * returns warnings; it throws a ConfigError listing every problem.
 * `source` names the text in messages (a file path).
 */
export function inspectConfig(text: string, env: Env, source: string): ConfigInspection {
  const raw = parseYaml(text, source);
  const interpolated = interpolateTree(raw, env);
  const refs = new Map(interpolated.strings.map((s) => [pathKey(s.path), s]));
  const issues = interpolated.errors.map((e) => `${formatPath(e.path)}: ${e.message}`);

  const data = interpolated.value;
  const knownKeys = new Map<unknown, string[]>();
  const params = { error: errorMap(knownKeys), reportInput: true };
  let result = configSchema.safeParse(data, params);
  // `port: ${PORT:-8080}` interpolates to the string "8080": convert such
  // strings where the schema wants a number or boolean, and only those, so
  // `api_key: ${KEY}` stays a string even when the key is all digits.
  if (!result.success && coerceInterpolated(data, result.error.issues, refs)) {
    result = configSchema.safeParse(data, params);
  }
  if (!result.success) {
    issues.push(...formatIssues(result.error.issues, [], data, refs, knownKeys));
    throw new ConfigError(source, issues);
  }
  if (issues.length > 0) throw new ConfigError(source, issues);

  const config = result.data;
  const refIssues = checkReferences(config);
  if (refIssues.length > 0) throw new ConfigError(source, refIssues);
  // Prices from a LiteLLM-format map, when `pricing.litellm_map` names one (pricing/catalog.ts).
  const catalog = applyPricingSource(config, source);
  if (catalog.issues.length > 0) throw new ConfigError(source, catalog.issues);
  return { config, warnings: [...collectWarnings(config, refs), ...catalog.warnings] };
}

/**
 * parseConfig parses and validates a configuration's text; it throws a
 * ConfigError listing every problem. `source` names the text in messages.
 */
export function parseConfig(text: string, env: NodeJS.ProcessEnv, source: string): GatewayConfig {
  return inspectConfig(text, env, source).config;
}

/**
 * loadConfigFile reads, parses and validates a configuration file; it
 * throws a ConfigError (also when the file cannot be read).
 */
export function loadConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): GatewayConfig {
  return inspectConfig(readConfigText(path), env, path).config;
}

/** readConfigText reads a configuration file, turning a read failure into a ConfigError. */
export function readConfigText(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === "ENOENT" ? "no such file" : e.code === "EACCES" ? "permission denied" : e.message;
    throw new ConfigError(path, [`cannot read the file: ${why}`]);
  }
}

/** formatPath renders an issue path as in the file: `models[3].pricing.input`, `(top level)` for the root. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else {
      const key = String(part);
      out += /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? (out === "" ? key : `.${key}`) : `[${JSON.stringify(key)}]`;
    }
  }
  return out === "" ? "(top level)" : out;
}

// ---------------------------------------------------------------------------
// YAML

function parseYaml(text: string, source: string): unknown {
  // uniqueKeys: a repeated key is almost always a copy-paste mistake, and
  // silently keeping the last one hides it. merge: allow `<<: *anchor`.
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true, merge: true });
  if (doc.errors.length > 0) {
    const lines = text.split(/\r?\n/);
    // After the first syntax error the parser often reports every following
    // token; the first few are the useful ones.
    const shown = 5;
    const issues = doc.errors.slice(0, shown).map((e) => {
      const pos = e.linePos?.[0];
      // prettyErrors appends " at line L, column C:" and a code frame; keep the sentence.
      const message = e.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
      if (pos === undefined) return `YAML syntax error: ${message}`;
      // `{ key: ${VAR} }` is the classic trap: in flow collections "{" and "}" are syntax.
      const hint = lines[pos.line - 1]?.includes("${") ? ` (inside { } or [ ], quote values that use \${...}: "\${VAR}")` : "";
      return `YAML syntax error at ${pos.line}:${pos.col}: ${message}${hint}`;
    });
    if (doc.errors.length > shown) issues.push(`... and ${doc.errors.length - shown} more YAML errors after these`);
    throw new ConfigError(source, issues);
  }
  let value: unknown;
  try {
    value = doc.toJS();
  } catch (err) {
    // Unresolved aliases and alias bombs surface only when converting.
    throw new ConfigError(source, [`YAML error: ${(err as Error).message}`]);
  }
  // An empty file is refused rather than read as "no providers": during a
  // reload it is most likely a file caught halfway through being written.
  if (value === null || value === undefined) throw new ConfigError(source, ["the file is empty (no YAML document)"]);
  return value;
}

// ---------------------------------------------------------------------------
// Shape errors

type Issue = z.core.$ZodIssue;
type RawIssue = z.core.$ZodRawIssue;
type InterpolatedString = InterpolatedTree["strings"][number];

function pathKey(path: readonly PropertyKey[]): string {
  return JSON.stringify(path.map((p) => (typeof p === "symbol" ? String(p) : p)));
}

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let node = data;
  for (const part of path) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<PropertyKey, unknown>)[part];
  }
  return node;
}

function describeType(value: unknown): string {
  if (value === null) return "an empty value (null)";
  if (Array.isArray(value)) return "list";
  if (typeof value === "object") return "mapping";
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  return typeof value;
}

const expectedNames: Record<string, string> = {
  number: "a number",
  int: "an integer",
  string: "a string",
  boolean: "true or false",
  object: "a mapping",
  record: "a mapping",
  array: "a list",
};

function quote(value: unknown): string {
  const s = typeof value === "string" ? value : String(value);
  return JSON.stringify(s.length > 60 ? `${s.slice(0, 57)}...` : s);
}

/**
 * errorMap words the issues the schema leaves to zod's defaults (the
 * schema's own messages, such as "must be > 0", take precedence). It also
 * records the known keys of objects with unknown keys, for "did you mean".
 */
function errorMap(knownKeys: Map<unknown, string[]>): z.core.$ZodErrorMap {
  return (iss: RawIssue) => {
    switch (iss.code) {
      case "invalid_type": {
        const expected = expectedNames[iss.expected] ?? iss.expected;
        if (iss.input === undefined) return `required: expected ${expected}`;
        return `expected ${expected}, got ${describeType(iss.input)}`;
      }
      case "invalid_value": {
        const options = iss.values.map((v) => String(v));
        const hint = typeof iss.input === "string" ? suggestion(iss.input, options) : "";
        const got = typeof iss.input === "string" ? `"${iss.input}"` : describeType(iss.input);
        return options.length === 1
          ? `expected ${quote(options[0])}, got ${got}`
          : `expected one of ${options.join("|")}, got ${got}${hint}`;
      }
      case "unrecognized_keys": {
        const shape = (iss.inst as { _zod?: { def?: { shape?: Record<string, unknown> } } } | undefined)?._zod?.def?.shape;
        if (shape !== undefined) knownKeys.set(iss.input, Object.keys(shape));
        return `unknown key${iss.keys.length > 1 ? "s" : ""} ${iss.keys.map((k) => `"${k}"`).join(", ")}`;
      }
      case "too_small": {
        const n = Number(iss.minimum);
        if (iss.origin === "string") return n === 1 ? "must not be empty" : `must be at least ${n} characters`;
        if (iss.origin === "array") return `must have at least ${n} entr${n === 1 ? "y" : "ies"}`;
        return `must be ${iss.inclusive ? ">=" : ">"} ${n}`;
      }
      case "too_big": {
        const n = Number(iss.maximum);
        if (iss.origin === "string") return `must be at most ${n} characters`;
        if (iss.origin === "array") return `must have at most ${n} entries`;
        return `must be ${iss.inclusive ? "<=" : "<"} ${n}`;
      }
      case "invalid_format":
        return `expected ${iss.format === "regex" ? `a string matching ${iss.pattern}` : `a valid ${iss.format}`}`;
      default:
        return undefined;
    }
  };
}

/** formatIssues turns zod issues into `path: message` lines; base prefixes nested (union branch) paths. */
function formatIssues(
  issues: readonly Issue[],
  base: readonly PropertyKey[],
  data: unknown,
  refs: ReadonlyMap<string, InterpolatedString>,
  knownKeys: ReadonlyMap<unknown, string[]>,
): string[] {
  const out: string[] = [];
  for (const issue of issues) {
    const path = [...base, ...issue.path];
    const value = valueAt(data, path);
    if (issue.code === "unrecognized_keys") {
      // One line per key, naming the key itself: `providers[0].apikey: unknown key`.
      const known = knownKeys.get(value) ?? knownKeys.get(issue.input) ?? [];
      for (const key of issue.keys) {
        const hint = suggestion(key, known);
        const list = hint === "" && known.length > 0 ? ` (expected one of: ${known.join(", ")})` : hint;
        out.push(`${formatPath([...path, key])}: unknown key${list}`);
      }
      continue;
    }
    if (issue.code === "invalid_union") {
      out.push(...formatUnion(issue, path, value, data, refs, knownKeys));
      continue;
    }
    out.push(`${formatPath(path)}: ${issue.message}${origin(refs.get(pathKey(path)))}`);
  }
  return out;
}

function formatUnion(
  issue: Extract<Issue, { code: "invalid_union" }>,
  path: PropertyKey[],
  value: unknown,
  data: unknown,
  refs: ReadonlyMap<string, InterpolatedString>,
  knownKeys: ReadonlyMap<unknown, string[]>,
): string[] {
  const u = issue as typeof issue & { discriminator?: string; options?: unknown[] };
  if (u.discriminator !== undefined) {
    // A discriminated union (state.backend): zod points the path at the discriminator.
    const options = (u.options ?? []).map(String);
    const got = typeof value === "string" ? `"${value}"` : value === undefined ? "nothing" : describeType(value);
    const hint = typeof value === "string" ? suggestion(value, options) : "";
    return [`${formatPath(path)}: expected one of ${options.join("|")}, got ${got}${hint}`];
  }
  // A branch "applies" when the value had its basic type; report that
  // branch's problems, which are the ones the author can act on.
  const isTypeMiss = (branch: readonly Issue[]) =>
    branch.length === 1 && branch[0]!.code === "invalid_type" && branch[0]!.path.length === 0;
  const applicable = issue.errors.filter((branch) => !isTypeMiss(branch));
  if (applicable.length === 1) return formatIssues(applicable[0]!, path, data, refs, knownKeys);
  const expected = issue.errors
    .filter(isTypeMiss)
    .map((b) => {
      const e = b[0] as Extract<Issue, { code: "invalid_type" }>;
      return expectedNames[e.expected] ?? e.expected;
    });
  const what = expected.length > 0 ? `expected ${expected.join(" or ")}` : issue.message;
  return [`${formatPath(path)}: ${what}, got ${describeType(value)}${origin(refs.get(pathKey(path)))}`];
}

function origin(ref: InterpolatedString | undefined): string {
  if (ref === undefined) return "";
  const names = ref.variables.map((v) => `\${${v}}`).join(", ");
  const unset = ref.unset.length === 0 ? "" : `; unset: ${ref.unset.join(", ")}`;
  return ` (interpolated from ${names}${unset})`;
}

/** coerceInterpolated converts interpolated strings where a number or boolean is expected; true if it changed any. */
function coerceInterpolated(data: unknown, issues: readonly Issue[], refs: ReadonlyMap<string, InterpolatedString>): boolean {
  let changed = false;
  for (const issue of issues) {
    if (issue.code !== "invalid_type" || issue.path.length === 0) continue;
    if (!refs.has(pathKey(issue.path))) continue;
    const parent = valueAt(data, issue.path.slice(0, -1));
    const key = issue.path[issue.path.length - 1]!;
    if (parent === null || typeof parent !== "object") continue;
    const current = (parent as Record<PropertyKey, unknown>)[key];
    if (typeof current !== "string") continue;
    const text = current.trim();
    let next: number | boolean | undefined;
    if ((issue.expected === "number" || issue.expected === "int") && /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) next = Number(text);
    else if (issue.expected === "boolean" && (text === "true" || text === "false")) next = text === "true";
    if (next === undefined) continue;
    (parent as Record<PropertyKey, unknown>)[key] = next;
    changed = true;
  }
  return changed;
}

// ---------------------------------------------------------------------------
// Cross-references

/** checkReferences checks what the shape cannot: unique ids and that every name points at something. */
function checkReferences(config: GatewayConfig): string[] {
  const issues: string[] = [];
  const index = (items: ReadonlyArray<{ id: string }>, section: string) => {
    const seen = new Map<string, number>();
    items.forEach((item, i) => {
      const first = seen.get(item.id);
      if (first === undefined) seen.set(item.id, i);
      else issues.push(`${section}[${i}].id: duplicate id "${item.id}" (already used by ${section}[${first}])`);
    });
    return seen;
  };
  const providers = index(config.providers, "providers");
  const models = index(config.models, "models");
  const routes = index(config.routes, "routes");
  index(config.keys, "keys");
  const teams = index(config.teams, "teams");
  const providerIds = [...providers.keys()];
  const modelIds = [...models.keys()];
  const modelAndRouteIds = [...new Set([...modelIds, ...routes.keys()])];

  config.routes.forEach((route, i) => {
    const m = models.get(route.id);
    if (m !== undefined) {
      issues.push(`routes[${i}].id: "${route.id}" is also the id of models[${m}]; a request naming it would be ambiguous`);
    }
  });

  config.models.forEach((model, i) => {
    if (!providers.has(model.provider)) {
      issues.push(`models[${i}].provider: unknown provider "${model.provider}" ${known(model.provider, providerIds)}`);
    }
  });

  const checkModel = (id: string, where: string) => {
    if (models.has(id)) return;
    issues.push(
      routes.has(id) ? `${where}: "${id}" is a route; route targets must be model ids` : `${where}: unknown model "${id}" ${known(id, modelIds)}`,
    );
  };
  config.routes.forEach((route, i) => {
    // A model may appear once per route, across all its tiers: a second listing would never be tried.
    const seen = new Map<string, string>();
    const tiers = route.tiers === undefined ? [{ base: `routes[${i}]`, targets: route.targets ?? [] }] : route.tiers.map((t, k) => ({ base: `routes[${i}].tiers[${k}]`, targets: t.targets }));
    for (const { base, targets } of tiers) {
      targets.forEach((target, j) => {
        const isString = typeof target === "string";
        const id = isString ? target : target.model;
        const where = isString ? `${base}.targets[${j}]` : `${base}.targets[${j}].model`;
        checkModel(id, where);
        const first = seen.get(id);
        if (first !== undefined) issues.push(`${where}: "${id}" is listed twice (also ${first})`);
        else seen.set(id, route.tiers === undefined ? `targets[${j}]` : `${base.slice(base.indexOf(".") + 1)}.targets[${j}]`);
      });
    }
    for (const [cls, ids] of Object.entries(route.auto?.classes ?? {})) {
      ids.forEach((id, j) => checkModel(id, `routes[${i}].auto.classes.${cls}[${j}]`));
    }
  });
  for (const [cls, ids] of Object.entries(config.routing.auto?.classes ?? {})) {
    ids.forEach((id, j) => checkModel(id, `routing.auto.classes.${cls}[${j}]`));
  }

  const hashes = new Map<string, number>();
  config.keys.forEach((key, i) => {
    key.models.forEach((pattern, j) => {
      if (pattern === "*") return;
      if (pattern.endsWith("*")) {
        const prefix = pattern.slice(0, -1);
        if (!modelAndRouteIds.some((id) => id.startsWith(prefix))) {
          issues.push(`keys[${i}].models[${j}]: "${pattern}" matches no model or route ${known(prefix, providerIds.map((p) => `${p}/*`))}`);
        }
      } else if (!models.has(pattern) && !routes.has(pattern)) {
        issues.push(`keys[${i}].models[${j}]: unknown model or route "${pattern}" ${known(pattern, modelAndRouteIds)}`);
      }
    });
    if (key.team !== undefined && config.teams.length > 0 && !teams.has(key.team)) {
      issues.push(`keys[${i}].team: unknown team "${key.team}" ${known(key.team, [...teams.keys()])}`);
    }
    const degrade = key.budget?.degrade_to;
    if (degrade !== undefined && !models.has(degrade) && !routes.has(degrade)) {
      issues.push(`keys[${i}].budget.degrade_to: unknown model or route "${degrade}" ${known(degrade, modelAndRouteIds)}`);
    }
    const first = hashes.get(key.key_sha256);
    if (first !== undefined) {
      issues.push(`keys[${i}].key_sha256: same hash as keys[${first}] ("${config.keys[first]!.id}"); each key needs its own token`);
    } else hashes.set(key.key_sha256, i);
  });
  config.teams.forEach((team, i) => {
    const degrade = team.budget?.degrade_to;
    if (degrade !== undefined && !models.has(degrade) && !routes.has(degrade)) {
      issues.push(`teams[${i}].budget.degrade_to: unknown model or route "${degrade}" ${known(degrade, modelAndRouteIds)}`);
    }
  });
  return issues;
}

/** known renders "(did you mean …? known: a, b, … and N more)" for an unknown name. */
function known(name: string, candidates: readonly string[]): string {
  if (candidates.length === 0) return "(none are defined)";
  const limit = 12;
  const shown = candidates.slice(0, limit).join(", ");
  const more = candidates.length > limit ? `, … and ${candidates.length - limit} more` : "";
  const close = closest(name, candidates);
  return `(${close === undefined ? "" : `did you mean "${close}"? `}known: ${shown}${more})`;
}

/** suggestion renders ` (did you mean "x"?)` or "". */
function suggestion(name: string, candidates: readonly string[]): string {
  const close = closest(name, candidates);
  return close === undefined ? "" : ` (did you mean "${close}"?)`;
}

function closest(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  const lower = name.toLowerCase();
  for (const c of candidates) {
    const d = distance(lower, c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  // Close enough to be a typo: a few edits, relative to the name's length.
  return best !== undefined && bestDistance > 0 && bestDistance <= Math.max(2, Math.floor(name.length / 4)) ? best : undefined;
}

function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}

// ---------------------------------------------------------------------------
// Warnings

/**
 * needsKey tells whether a provider is disabled by an empty api_key: the
 * simulated provider never is, local OpenAI-family servers (Ollama, vLLM)
 * are not, per their preset; the check reads the same table the adapters do.
 */
function needsKey(type: ProviderType): boolean {
  if (type === "simulated") return false;
  return isOpenAIFamilyType(type) ? openaiPresetFor(type).requiresKey : true;
}

function collectWarnings(config: GatewayConfig, refs: ReadonlyMap<string, InterpolatedString>): string[] {
  const warnings: string[] = [];
  const disabled = new Set<string>();
  config.providers.forEach((provider, i) => {
    if (!needsKey(provider.type) || (provider.api_key ?? "") !== "") return;
    disabled.add(provider.id);
    const count = config.models.filter((m) => m.provider === provider.id).length;
    const ref = refs.get(pathKey(["providers", i, "api_key"]));
    const why = ref !== undefined && ref.unset.length > 0 ? `${ref.unset.join(", ")} is not set` : "api_key is empty";
    warnings.push(`provider "${provider.id}" disabled (${why}); its ${count} model${count === 1 ? "" : "s"} will not be used`);
  });
  const modelProvider = new Map(config.models.map((m) => [m.id, m.provider]));
  for (const route of config.routes) {
    const usable = routeTargetIds(route).some((id) => !disabled.has(modelProvider.get(id) ?? ""));
    if (!usable) warnings.push(`route "${route.id}" has no usable target: every target's provider is disabled`);
  }
  if (config.keys.length === 0) warnings.push("no gateway keys configured: open dev mode, anyone who can reach the gateway may use it");
  return warnings;
}
