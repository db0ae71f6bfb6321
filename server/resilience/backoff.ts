import type { ProviderConfig, RetryConfig } from "../config/schema.js";

/**
 * Backoff between retries of one deployment: exponential from base_ms,
 * capped at cap_ms, with "equal jitter" (half fixed, half random) so many
 * callers retrying together spread out without any of them retrying at
 * once. A provider's own retry hint (retry-after and friends) wins: it
 * knows when it will have capacity again. The executor only waits when
 * retrying the same deployment is the best option left; failing over to
 * another candidate never waits.
 */

/** DEFAULT_RETRY is the backoff of a provider that configures none (same-deployment retries are opt-in). */
export const DEFAULT_RETRY: Readonly<RetryConfig> = Object.freeze({ base_ms: 1000, cap_ms: 30_000, max_retries: 0 });

/** retryPolicy is a provider's backoff with defaults applied. */
export function retryPolicy(provider: ProviderConfig): Readonly<RetryConfig> {
  return provider.retry ?? DEFAULT_RETRY;
}

/**
 * backoffMs is how long to wait before retry number `retry` (1 for the
 * first retry) of a deployment; hintMs is the provider's retry hint, if it
 * gave one.
 */
export function backoffMs(policy: Readonly<RetryConfig>, retry: number, hintMs: number | undefined, random: () => number): number {
  if (hintMs !== undefined) return Math.max(0, Math.round(hintMs));
  const ceiling = Math.min(policy.cap_ms, policy.base_ms * 2 ** Math.max(0, retry - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
