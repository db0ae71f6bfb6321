import { z } from "zod";

/**
 * The schema of gateway.yaml. Keys are snake_case as written in the file;
 * validation errors name the path (`models[3].pricing.input: expected a
 * number`). Cross-references (a model's provider, a route's targets) are
 * checked in load.ts after the shape is known to be right.
 */

const id = z.string().min(1, "must not be empty");
const positiveInt = z.number().int("expected an integer").positive("must be > 0");
const nonNegative = z.number().nonnegative("must be >= 0");

/** limitsSchema is a requests- and tokens-per-minute limit. */
const limitsSchema = z.strictObject({
  rpm: positiveInt.optional(),
  tpm: positiveInt.optional(),
});

/** ProviderTypes are the wire protocols, and the presets of the OpenAI protocol. */
export const providerTypes = [
  "openai",
  "deepseek",
  "mistral",
  "qwen",
  "ollama",
  "vllm",
  "anthropic",
  "gemini",
  "simulated",
] as const;

/** ProviderType is a wire protocol or an OpenAI-compatible preset. */
export type ProviderType = (typeof providerTypes)[number];

const simulatedSchema = z.strictObject({
  /** latency before the first token, in ms */
  first_token_ms: nonNegative.default(0),
  /** output speed; 0 means as fast as possible */
  tokens_per_second: nonNegative.default(0),
  /** how many tokens an answer has unless max_output_tokens is smaller */
  answer_tokens: positiveInt.default(48),
});

/** retrySchema is a provider's backoff: jittered exponential, honouring the provider's retry hints. */
const retrySchema = z.strictObject({
  /** the first backoff, in ms; each retry doubles it */
  base_ms: positiveInt.default(1000),
  /** the longest computed backoff, in ms (a provider's own retry hint is honoured as given) */
  cap_ms: positiveInt.default(30_000),
  /** retries of the same deployment within one request, after failing over found no better candidate */
  max_retries: z.number().int("expected an integer").nonnegative("must be >= 0").default(0),
});

/**
 * breakerSchema is a deployment's circuit breaker (per provider + model,
 * shared by every replica). Writing the block (even `breaker: {}`) turns
 * breakers on for the provider's models; `routing.breaker` does it for all.
 */
const breakerSchema = z.strictObject({
  /** open after this many upstream-health failures in a row */
  consecutive_failures: positiveInt.default(5),
  /** open when failures / requests in window_ms reach this fraction... */
  failure_rate: z.number().gt(0).lte(1).default(0.5),
  /** ...and at least this many requests were seen in the window */
  min_requests: positiveInt.default(20),
  window_ms: positiveInt.default(60_000),
  /** open when the observed p95 latency (time to first token for streams) exceeds this for 3 requests in a row */
  latency_p95_ms: positiveInt.optional(),
  /** how long an open breaker rejects traffic before admitting one half-open probe */
  cooldown_ms: positiveInt.default(30_000),
});

const providerSchema = z.strictObject({
  id,
  type: z.enum(providerTypes),
  base_url: z.url({ error: "expected an absolute URL" }).optional(),
  /** api_key may be empty: the provider is then disabled, unless it needs no key */
  api_key: z.string().optional(),
  /** extra headers sent on every upstream request */
  headers: z.record(z.string(), z.string()).optional(),
  limits: limitsSchema.optional(),
  timeout_ms: positiveInt.default(600_000),
  connect_timeout_ms: positiveInt.default(10_000),
  /** the longest silence allowed between two streamed chunks */
  idle_timeout_ms: positiveInt.default(120_000),
  /** the longest wait for a stream's first token (default: timeout_ms) */
  first_token_timeout_ms: positiveInt.optional(),
  /** the longest one attempt may take in all, streams included (default: unbounded but for the request's deadline) */
  total_timeout_ms: positiveInt.optional(),
  retry: retrySchema.optional(),
  breaker: breakerSchema.optional(),
  /** how long a provider that reported quota_exhausted is left out of routing (unless it gave a retry hint) */
  quota_cooldown_ms: positiveInt.optional(),
  /** the most pooled upstream connections per origin */
  max_connections: positiveInt.default(256),
  simulated: simulatedSchema.optional(),
});

const pricingTierSchema = z.strictObject({
  /** the tier applies to the whole request when its prompt exceeds this many tokens */
  above_input_tokens: positiveInt,
  input: nonNegative,
  output: nonNegative,
  cached_input: nonNegative.optional(),
  cache_write: nonNegative.optional(),
});

/** pricingSchema is a price in USD per million tokens, as providers publish it. */
const pricingSchema = z.strictObject({
  input: nonNegative,
  output: nonNegative,
  cached_input: nonNegative.optional(),
  cache_write: nonNegative.optional(),
  tiers: z.array(pricingTierSchema).optional(),
  /** fraction of the price charged for batch-priority requests, such as 0.5 */
  batch_multiplier: z.number().gt(0).lte(1).optional(),
  /** a fixed fee per request in USD */
  request_fee: nonNegative.optional(),
  /** when the prices were last checked against the provider's page (YYYY-MM-DD) */
  checked: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "expected a date YYYY-MM-DD").optional(),
});

/** capabilities a model can declare */
export const capabilityNames = ["tools", "vision", "json", "json_schema", "reasoning"] as const;

const modelSchema = z.strictObject({
  id,
  provider: id,
  /** the provider's name for the model; defaults to the id after its first "/" */
  upstream: z.string().min(1).optional(),
  context_window: positiveInt,
  max_output_tokens: positiveInt,
  capabilities: z.array(z.enum(capabilityNames)).default([]),
  pricing: pricingSchema.optional(),
  /** this deployment's own rpm/tpm, enforced besides its provider's */
  limits: limitsSchema.optional(),
});

const routeTargetSchema = z.union([
  id,
  z.strictObject({ model: id, weight: z.number().positive("must be > 0").default(1) }),
]);

/** routeStrategies are how a tier orders its targets. */
export const routeStrategies = ["fallback", "weighted", "cheapest", "fastest", "auto"] as const;

/** taskClasses are the kinds of request the `auto` strategy tells apart (router/classify.ts). */
export const taskClasses = ["code", "math", "long_document", "translation", "extraction", "chat"] as const;

const strategySchema = z.enum(routeStrategies);

const tierSchema = z.strictObject({
  strategy: strategySchema.default("fallback"),
  targets: z.array(routeTargetSchema).min(1, "a tier needs at least one target"),
});

/** autoTableSchema maps each task class to model ids ranked best first. */
const autoTableSchema = z.strictObject({
  classes: z.partialRecord(z.enum(taskClasses), z.array(id).min(1, "a class needs at least one model")),
});

const hedgeSchema = z.strictObject({
  /** start the next candidate when the running one has no first token after this many ms, or after its observed p95 */
  after_ms: z.union([positiveInt, z.literal("p95")]),
  /** the most extra attempts started as hedges */
  max: positiveInt.default(1),
  /** the threshold used for "p95" until enough latencies were observed */
  p95_fallback_ms: positiveInt.default(2000),
});

const routeRetrySchema = z.strictObject({
  /** attempts on one deployment within a request (default: its provider's retry.max_retries + 1) */
  max_attempts_per_target: positiveInt.optional(),
  /** the longest single backoff wait an interactive request accepts (default: routing.max_retry_wait_ms) */
  max_wait_ms: positiveInt.optional(),
});

const routeSchema = z
  .strictObject({
    id,
    /** the strategy of the one tier written as `targets` */
    strategy: strategySchema.default("fallback"),
    targets: z.array(routeTargetSchema).min(1, "a route needs at least one target").optional(),
    /** an ordered list of tiers; failover walks the rest of a tier, then the next tier */
    tiers: z.array(tierSchema).min(1, "a route needs at least one tier").optional(),
    hedge: hedgeSchema.optional(),
    retry: routeRetrySchema.optional(),
    /** this route's own `auto` table (default: routing.auto) */
    auto: autoTableSchema.optional(),
  })
  .superRefine((route, ctx) => {
    if (route.targets === undefined && route.tiers === undefined) {
      ctx.addIssue({ code: "custom", path: ["targets"], message: "required: a route needs `targets` (one tier) or `tiers`" });
    } else if (route.targets !== undefined && route.tiers !== undefined) {
      ctx.addIssue({ code: "custom", path: ["tiers"], message: "give either `targets` (one tier) or `tiers`, not both" });
    }
  });

/** routingSchema holds the router's defaults. */
const routingSchema = z.strictObject({
  /** the default `auto` table: task class → model ids, best first */
  auto: autoTableSchema.optional(),
  /** the longest single backoff wait an interactive request accepts; longer hints fail over or fail at once */
  max_retry_wait_ms: positiveInt.default(10_000),
  /** the longest a batch-priority request waits for rate-limit capacity (its deadline bounds it too) */
  batch_max_wait_ms: positiveInt.default(120_000),
  /** the half-life of the latency statistics the `fastest` strategy reads */
  latency_half_life_ms: positiveInt.default(300_000),
  /** the circuit breaker of every provider without its own `breaker` block; unset: only those blocks enable breakers */
  breaker: breakerSchema.optional(),
});

const budgetSchema = z.strictObject({
  usd: z.number().positive("must be > 0"),
  period: z.enum(["day", "week", "month"]),
  /** fraction of the budget after which requests degrade to degrade_to */
  soft_limit: z.number().gt(0).lte(1).optional(),
  degrade_to: id.optional(),
});

/** teamSchema is a group of keys sharing one budget and one set of limits (keys name it in `team`). */
const teamSchema = z.strictObject({
  id,
  limits: limitsSchema.optional(),
  budget: budgetSchema.optional(),
});

/** pricingSourceSchema points the catalog at a LiteLLM-format price map. */
const pricingSourceSchema = z.strictObject({
  /** path of a model_prices_and_context_window.json-format map, relative to this file */
  litellm_map: z.string().min(1, "must not be empty"),
  /** config: the map prices only models without a `pricing` block; map: the map wins wherever it lists the model */
  prefer: z.enum(["config", "map"]).default("config"),
  /** when the map was last refreshed (YYYY-MM-DD); map prices carry it as `checked` (default: the file's date) */
  checked: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "expected a date YYYY-MM-DD").optional(),
});

const keySchema = z.strictObject({
  id,
  key_sha256: z.string().regex(/^[0-9a-f]{64}$/, "expected 64 lowercase hex characters (sha256 of the bearer token)"),
  /** model and route ids this key may use; "*" and "provider/*" wildcards allowed; empty = all */
  models: z.array(id).default([]),
  team: id.optional(),
  limits: limitsSchema.optional(),
  budget: budgetSchema.optional(),
});

const serverSchema = z.strictObject({
  host: z.string().min(1).default("127.0.0.1"),
  port: z.number().int().min(0).max(65535).default(8080),
  /** how long shutdown waits for in-flight requests before closing them */
  drain_timeout_ms: positiveInt.default(30_000),
  /** the largest request body accepted on the REST shim and RPCs */
  max_body_bytes: positiveInt.default(8 * 1024 * 1024),
  log_level: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
  /** log prompt and completion text; off by default because it is user data */
  log_content: z.boolean().default(false),
  /** after a burst, collect garbage once the gateway has been quiet this long (0 = never); the next burst pays a warm-up, so keep it above the gaps between bursts; read at startup */
  idle_gc_ms: z.number().int().min(0).default(30_000),
});

const stateSchema = z.discriminatedUnion("backend", [
  z.strictObject({ backend: z.literal("memory") }),
  z.strictObject({
    backend: z.literal("redis"),
    url: z.string().regex(/^rediss?:\/\//, "expected a redis:// or rediss:// URL"),
    /** prefix of every key, so several gateways can share one Redis */
    key_prefix: z.string().default("llmgw"),
    /** how long one Redis command may take before the call is served from local state */
    command_timeout_ms: positiveInt.optional(),
    /** how long a replica may hold rate-limit and budget capacity it took ahead of use (quota leases), so most requests need no Redis round trip; 0 = ask Redis on every request */
    lease_ms: z.number().int().min(0).max(10_000).optional(),
  }),
]);

/** configSchema is the whole of gateway.yaml. */
export const configSchema = z.strictObject({
  server: serverSchema.default(serverSchema.parse({})),
  state: stateSchema.default({ backend: "memory" }),
  providers: z.array(providerSchema).default([]),
  models: z.array(modelSchema).default([]),
  routes: z.array(routeSchema).default([]),
  routing: routingSchema.default(routingSchema.parse({})),
  keys: z.array(keySchema).default([]),
  teams: z.array(teamSchema).default([]),
  pricing: pricingSourceSchema.optional(),
});

/** GatewayConfig is a validated gateway.yaml. */
export type GatewayConfig = z.infer<typeof configSchema>;
/** ProviderConfig is one entry of `providers`. */
export type ProviderConfig = GatewayConfig["providers"][number];
/** ModelConfig is one entry of `models`. */
export type ModelConfig = GatewayConfig["models"][number];
/** RouteConfig is one entry of `routes`. */
export type RouteConfig = GatewayConfig["routes"][number];
/** KeyConfig is one entry of `keys`. */
export type KeyConfig = GatewayConfig["keys"][number];
/** PricingConfig is a model's price in USD per million tokens. */
export type PricingConfig = NonNullable<ModelConfig["pricing"]>;
/** TeamConfig is one entry of `teams`. */
export type TeamConfig = GatewayConfig["teams"][number];
/** BudgetConfig is a key's or team's budget. */
export type BudgetConfig = z.infer<typeof budgetSchema>;
/** RoutingConfig is the router's defaults (`routing`). */
export type RoutingConfig = GatewayConfig["routing"];
/** RouteTargetConfig is one target of a route or tier: a model id, or a model with a weight. */
export type RouteTargetConfig = z.infer<typeof routeTargetSchema>;
/** RouteStrategy is how a tier orders its targets. */
export type RouteStrategy = (typeof routeStrategies)[number];
/** TaskClass is a kind of request the `auto` strategy tells apart. */
export type TaskClass = (typeof taskClasses)[number];
/** AutoTableConfig maps task classes to ranked model ids. */
export type AutoTableConfig = z.infer<typeof autoTableSchema>;
/** RetryConfig is a provider's backoff. */
export type RetryConfig = z.infer<typeof retrySchema>;
/** BreakerConfig is a provider's circuit-breaker thresholds. */
export type BreakerConfig = z.infer<typeof breakerSchema>;
/** LimitsConfig is an rpm/tpm pair. */
export type LimitsConfig = z.infer<typeof limitsSchema>;

/** RouteTierConfig is one tier of a route, normalized: a strategy and its targets. */
export interface RouteTierConfig {
  strategy: RouteStrategy;
  targets: RouteTargetConfig[];
}

/** routeTiers normalizes a route to its tiers: `targets` is one tier with the route's strategy. */
export function routeTiers(route: RouteConfig): RouteTierConfig[] {
  return route.tiers ?? [{ strategy: route.strategy, targets: route.targets ?? [] }];
}

/** routeTargetIds lists a route's model ids, tier by tier, each once. */
export function routeTargetIds(route: RouteConfig): string[] {
  const ids = new Set<string>();
  for (const tier of routeTiers(route)) for (const t of tier.targets) ids.add(typeof t === "string" ? t : t.model);
  return [...ids];
}
