import type { ProviderConfig } from "../config/schema.js";
import type { ProviderAdapter } from "./adapter.js";
import { createAnthropicAdapter } from "./anthropic.js";
import { createGeminiAdapter } from "./gemini.js";
import { createOpenAICompatibleAdapter } from "./openai-compatible.js";
import { openaiPresetFor } from "./openai-presets.js";
import { createSimulatedAdapter } from "./simulated.js";

/**
 * The provider registry: which adapter speaks for which provider type, and
 * whether a configured provider can be used (an unset key disables it).
 * Adding a provider that speaks an existing protocol is a preset in
 * openai-presets.ts, not code here.
 */

/** createAdapter builds the adapter for a provider's wire protocol. */
export function createAdapter(provider: ProviderConfig): ProviderAdapter {
  switch (provider.type) {
    case "anthropic":
      return createAnthropicAdapter(provider);
    case "gemini":
      return createGeminiAdapter(provider);
    case "simulated":
      return createSimulatedAdapter(provider);
    default:
      return createOpenAICompatibleAdapter(provider);
  }
}

/** providerStatus tells whether a provider is usable, and if not, why. */
export function providerStatus(provider: ProviderConfig): { enabled: boolean; reason?: string } {
  const hasKey = provider.api_key !== undefined && provider.api_key !== "";
  switch (provider.type) {
    case "simulated":
      return { enabled: true };
    case "anthropic":
    case "gemini":
      return hasKey ? { enabled: true } : { enabled: false, reason: "api_key is empty (set its environment variable)" };
    default: {
      const needsKey = openaiPresetFor(provider.type).requiresKey;
      return hasKey || !needsKey ? { enabled: true } : { enabled: false, reason: "api_key is empty (set its environment variable)" };
    }
  }
}
