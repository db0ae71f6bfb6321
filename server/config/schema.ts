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
});

const routeTargetSchema = z.union([
  id,
  z.strictObject({ model: id, weight: z.number().positive("must be > 0").default(1) }),
]);

const routeSchema = z.strictObject({
  id,
  strategy: z.enum(["fallback", "weighted", "cheapest", "fastest", "auto"]).default("fallback"),
  targets: z.array(routeTargetSchema).min(1, "a route needs at least one target"),
});

const budgetSchema = z.strictObject({
  usd: z.number().positive("must be > 0"),
  period: z.enum(["day", "week", "month"]),
  /** fraction of the budget after which requests degrade to degrade_to */
  soft_limit: z.number().gt(0).lte(1).optional(),
  degrade_to: id.optional(),
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
});

const stateSchema = z.discriminatedUnion("backend", [
  z.strictObject({ backend: z.literal("memory") }),
  z.strictObject({
    backend: z.literal("redis"),
    url: z.string().regex(/^rediss?:\/\//, "expected a redis:// or rediss:// URL"),
    /** prefix of every key, so several gateways can share one Redis */
    key_prefix: z.string().default("llmgw"),
  }),
]);

/** configSchema is the whole of gateway.yaml. */
export const configSchema = z.strictObject({
  server: serverSchema.default(serverSchema.parse({})),
  state: stateSchema.default({ backend: "memory" }),
  providers: z.array(providerSchema).default([]),
  models: z.array(modelSchema).default([]),
  routes: z.array(routeSchema).default([]),
  keys: z.array(keySchema).default([]),
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
/** LimitsConfig is an rpm/tpm pair. */
export type LimitsConfig = z.infer<typeof limitsSchema>;
