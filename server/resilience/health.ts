import type { Deployment } from "../core/runtime.js";
import { keyNamer } from "../state/key-names.js";
import type { LatencyStats, StateStore } from "../state/store.js";
import { breakerKey, type BreakerDoc } from "./breaker.js";
import { learnedKey, type LearnedLimits } from "./rate-headers.js";

/**
 * One batched read of what the router must know about its candidates
 * before it calls any: each deployment's breaker and learned rate limits,
 * each provider's availability mark (set after quota_exhausted), and —
 * for `fastest` tiers only — the decayed latency statistics. Every read is
 * issued at once, so with Redis the whole snapshot costs one round trip at
 * most, and usually none: the Redis store serves the JSON documents from
 * its tracked cache (state/read-cache.ts) until Redis says they changed.
 */

/** ProviderMark says a provider is left out of routing until `until` (epoch ms). */
export interface ProviderMark {
  until: number;
  reason: string;
}

/** DEFAULT_QUOTA_COOLDOWN_MS is how long a provider that reported quota_exhausted is left out by default. */
export const DEFAULT_QUOTA_COOLDOWN_MS = 300_000;

/** DeploymentHealth is the snapshot of one deployment. */
export interface DeploymentHealth {
  breaker: BreakerDoc | undefined;
  learned: LearnedLimits | undefined;
  provider: ProviderMark | undefined;
  /** latency is read only for deployments in `fastest` tiers. */
  latency: LatencyStats | undefined;
}

/** providerMarkKey is the store key of a provider's availability mark. */
export const providerMarkKey: (providerId: string) => string = keyNamer("provider:", ":unavailable");

/** latencyKey is the store key of a deployment's latency statistics. */
export const latencyKey: (deploymentId: string) => string = keyNamer("latency:");

/** markProviderUnavailable leaves a provider out of routing on every replica for ms. */
export async function markProviderUnavailable(store: StateStore, providerId: string, ms: number, reason: string, now: number): Promise<void> {
  await store.setJson<ProviderMark>(providerMarkKey(providerId), { until: now + ms, reason }, Math.max(1, Math.ceil(ms)));
}

const none = Promise.resolve(undefined);

/**
 * readHealth reads the snapshot of every deployment; withLatency names
 * those whose latency is needed, withBreaker those that have a breaker.
 */
export async function readHealth(
  store: StateStore,
  deployments: readonly Deployment[],
  withLatency: ReadonlySet<string>,
  withBreaker: ReadonlySet<string>,
): Promise<Map<string, DeploymentHealth>> {
  // Few candidates, fewer providers: a list is cheaper than a Set.
  const providers: string[] = [];
  const reads: Array<Promise<unknown>> = [];
  for (const d of deployments) {
    reads.push(withBreaker.has(d.id) ? store.getJson<BreakerDoc>(breakerKey(d.id)) : none, store.getJson<LearnedLimits>(learnedKey(d.id)));
    reads.push(withLatency.has(d.id) ? store.readLatency(latencyKey(d.id)) : none);
    if (!providers.includes(d.provider.id)) providers.push(d.provider.id);
  }
  for (const p of providers) reads.push(store.getJson<ProviderMark>(providerMarkKey(p)));
  const values = await Promise.all(reads);
  const out = new Map<string, DeploymentHealth>();
  for (let i = 0; i < deployments.length; i++) {
    const d = deployments[i]!;
    out.set(d.id, {
      breaker: values[i * 3] as BreakerDoc | undefined,
      learned: values[i * 3 + 1] as LearnedLimits | undefined,
      latency: values[i * 3 + 2] as LatencyStats | undefined,
      provider: values[deployments.length * 3 + providers.indexOf(d.provider.id)] as ProviderMark | undefined,
    });
  }
  return out;
}
