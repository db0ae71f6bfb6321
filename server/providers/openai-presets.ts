import type { ProviderConfig, ProviderType } from "../config/schema.js";

/**
 * The presets of the OpenAI Chat Completions family: every provider that
 * speaks the protocol, with the few ways it departs from OpenAI written down
 * as data. openai-compatible.ts reads these fields and never branches on a
 * provider's name, so adding an OpenAI-compatible provider is a row here.
 *
 * Quirks that are the same for every member are handled by the adapter, not
 * listed per preset: reasoning text is read from `reasoning_content`
 * (DeepSeek, Qwen) or `reasoning` (vLLM) for every provider, and cached
 * prompt tokens from `prompt_tokens_details.cached_tokens` or DeepSeek's
 * `prompt_cache_hit_tokens`, whichever is present.
 */

/** openaiFamilyTypes are the provider types served by the OpenAI-compatible adapter. */
export const openaiFamilyTypes = ["openai", "deepseek", "mistral", "qwen", "ollama", "vllm"] as const;

/** OpenAIFamilyType is a provider type served by the OpenAI-compatible adapter. */
export type OpenAIFamilyType = (typeof openaiFamilyTypes)[number];

/** OpenAIPreset is how one provider of the family differs from OpenAI on the wire. */
export interface OpenAIPreset {
  /** type is the provider type this preset describes. */
  readonly type: OpenAIFamilyType;
  /** defaultBaseUrl is used when the provider sets no base_url; `/chat/completions` is appended. */
  readonly defaultBaseUrl: string;
  /** requiresKey is false for local servers (Ollama, vLLM) that accept requests without a key. */
  readonly requiresKey: boolean;
  /**
   * maxTokensField carries the output token limit. OpenAI's o-series and
   * gpt-5 reject the deprecated `max_tokens`; the others only know it.
   */
  readonly maxTokensField: "max_completion_tokens" | "max_tokens";
  /** seedField carries the sampling seed (Mistral calls it `random_seed`). */
  readonly seedField: "seed" | "random_seed";
  /**
   * streamOptions is whether streams ask for usage with
   * `stream_options.include_usage`. Mistral rejects the field, and puts
   * usage on its last chunk without being asked.
   */
  readonly streamOptions: boolean;
  /** requiredToolChoice is the wire value of the "required" tool choice (Mistral's own is "any"). */
  readonly requiredToolChoice: "required" | "any";
  /** reasoningEffort is whether `reasoning_effort` is sent. */
  readonly reasoningEffort: boolean;
  /** topK is whether `top_k` is accepted as a top-level field. */
  readonly topK: boolean;
  /** messageNames is whether messages may carry a participant `name`. */
  readonly messageNames: boolean;
  /**
   * shortToolCallIds is whether tool-call ids must be nine letters and
   * digits (Mistral); other ids, such as OpenAI's `call_...` from an earlier
   * turn served elsewhere, are rewritten to such ids deterministically.
   */
  readonly shortToolCallIds: boolean;
  /**
   * droppedFields are top-level request fields the provider rejects; they
   * are never sent even when the request sets them.
   */
  readonly droppedFields: ReadonlySet<string>;
}

const none: ReadonlySet<string> = new Set();

const openaiDefaults = {
  requiresKey: true,
  maxTokensField: "max_tokens",
  seedField: "seed",
  streamOptions: true,
  requiredToolChoice: "required",
  reasoningEffort: false,
  topK: false,
  messageNames: true,
  shortToolCallIds: false,
  droppedFields: none,
} as const;

/** openaiPresets is the preset table, by provider type. */
export const openaiPresets: Readonly<Record<OpenAIFamilyType, OpenAIPreset>> = {
  openai: {
    ...openaiDefaults,
    type: "openai",
    defaultBaseUrl: "https://api.openai.com/v1",
    maxTokensField: "max_completion_tokens",
    reasoningEffort: true,
  },
  deepseek: {
    ...openaiDefaults,
    type: "deepseek",
    // DeepSeek's base URL has no /v1 (it also answers under /v1, but documents this one).
    defaultBaseUrl: "https://api.deepseek.com",
  },
  mistral: {
    ...openaiDefaults,
    type: "mistral",
    defaultBaseUrl: "https://api.mistral.ai/v1",
    seedField: "random_seed",
    streamOptions: false,
    requiredToolChoice: "any",
    // Mistral validates strictly (422 extra_forbidden): no `user`, no message names.
    messageNames: false,
    shortToolCallIds: true,
    droppedFields: new Set(["user"]),
  },
  qwen: {
    ...openaiDefaults,
    type: "qwen",
    defaultBaseUrl: "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
  },
  ollama: {
    ...openaiDefaults,
    type: "ollama",
    defaultBaseUrl: "http://localhost:11434/v1",
    requiresKey: false,
    droppedFields: new Set(["n"]),
  },
  vllm: {
    ...openaiDefaults,
    type: "vllm",
    defaultBaseUrl: "http://localhost:8000/v1",
    requiresKey: false,
    topK: true,
  },
};

/** isOpenAIFamilyType tells whether a provider type is served by the OpenAI-compatible adapter. */
export function isOpenAIFamilyType(type: ProviderType): type is OpenAIFamilyType {
  return (openaiFamilyTypes as readonly string[]).includes(type);
}

/** openaiPresetFor returns the preset of an OpenAI-family provider type. */
export function openaiPresetFor(type: OpenAIFamilyType): OpenAIPreset {
  return openaiPresets[type];
}

/** ResolvedOpenAIProvider is a configured provider with its preset applied. */
export interface ResolvedOpenAIProvider {
  /** preset is the provider type's preset. */
  preset: OpenAIPreset;
  /** baseUrl is base_url, or the preset's default, without a trailing slash. */
  baseUrl: string;
  /** enabled is true when a key is set or the provider needs none. */
  enabled: boolean;
  /** reason says why the provider is disabled. */
  reason?: string;
}

/**
 * resolveOpenAIProvider applies a provider's preset: its effective base URL
 * and whether it can be used. It throws when the type is not in the family.
 */
export function resolveOpenAIProvider(provider: ProviderConfig): ResolvedOpenAIProvider {
  if (!isOpenAIFamilyType(provider.type)) {
    throw new Error(`provider ${provider.id}: type ${provider.type} does not speak the OpenAI protocol`);
  }
  const preset = openaiPresets[provider.type];
  const baseUrl = (provider.base_url ?? preset.defaultBaseUrl).replace(/\/+$/, "");
  const hasKey = provider.api_key !== undefined && provider.api_key !== "";
  if (hasKey || !preset.requiresKey) return { preset, baseUrl, enabled: true };
  return { preset, baseUrl, enabled: false, reason: "api_key is empty (set its environment variable)" };
}
