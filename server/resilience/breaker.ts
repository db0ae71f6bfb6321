import type { BreakerConfig, ProviderConfig, RoutingConfig } from "../config/schema.js";
import type { ErrorClass } from "../core/errors.js";
import type { StateStore, WindowResult } from "../state/store.js";
import { keyNamer } from "../state/key-names.js";

/**
 * Circuit breakers, one per deployment (provider + model), kept in the
 * shared store so every replica sees the same state.
 *
 * The breaker is one small JSON document under `breaker:<deployment>`:
 * absent or `closed` admits traffic; `open` rejects it until `until`; after
 * that the first request to win a compare-and-set from that exact open
 * document to `half_open` is the single probe, across all replicas. The
 * probe's success closes the breaker, its failure re-opens it for another
 * cooldown. A probe that never reports (its replica died) goes stale after
 * PROBE_STALE_MS and the next request may claim a new one.
 *
 * Counting uses sliding windows in the store, under a generation number
 * (`epoch`, the time the breaker last closed), so closing the breaker
 * starts fresh counts without deleting anything:
 *   - consecutive health failures (reset by a success),
 *   - failures and requests in window_ms (failure rate once min_requests),
 * and the p95 latency rule reads this replica's recent samples.
 *
 * Only upstream-health failures count (5xx, overload, timeouts, broken
 * connections, malformed answers, a rejected provider key, an unknown
 * upstream model); a caller's bad request, its cancellation and rate
 * limits (handled by the rate limiter) do not.
 *
 * A deployment has a breaker when its provider has a `breaker` block or
 * `routing.breaker` sets one for all (the shipped gateway.yaml does);
 * without either, failures still fail over but nothing is shut off.
 */

/** DEFAULT_BREAKER is what `breaker: {}` means (the schema's defaults), for code that builds policies by hand. */
export const DEFAULT_BREAKER: Readonly<BreakerConfig> = Object.freeze({
  consecutive_failures: 5,
  failure_rate: 0.5,
  min_requests: 20,
  window_ms: 60_000,
  cooldown_ms: 30_000,
});

/** PROBE_STALE_MS is how long a half-open probe may go unreported before another may be claimed. */
export const PROBE_STALE_MS = 60_000;

/** SLOW_STREAK_TO_OPEN is how many consecutive requests with p95 above the threshold open the breaker. */
export const SLOW_STREAK_TO_OPEN = 3;

/** BreakerState is a breaker's state. */
export type BreakerState = "closed" | "open" | "half_open";

/** BreakerDoc is the stored breaker document. */
export interface BreakerDoc {
  state: BreakerState;
  /** epoch names the generation of the failure counters (the time the breaker last closed; 0 before). */
  epoch: number;
  /** since is when the state began (epoch ms). */
  since: number;
  /** until is when an open breaker admits a probe (epoch ms); 0 otherwise. */
  until: number;
  /** reason says why the breaker is in this state. */
  reason: string;
}

/** BreakerVerdict is what a breaker document means for a request now. */
export type BreakerVerdict =
  | { kind: "closed"; epoch: number }
  | { kind: "open"; until: number; reason: string }
  | { kind: "probe"; doc: BreakerDoc }
  | { kind: "probing"; reason: string };

const healthClasses: ReadonlySet<ErrorClass> = new Set<ErrorClass>([
  "overloaded",
  "server_error",
  "timeout",
  "connection",
  "malformed_response",
  "auth",
  "not_found",
]);

/** countsAgainstHealth tells whether a failure class says something about the deployment's health. */
export function countsAgainstHealth(errorClass: ErrorClass): boolean {
  return healthClasses.has(errorClass);
}

/**
 * breakerPolicy is a provider's breaker: its own block, else the routing
 * default, else none (undefined: its deployments have no breaker).
 */
export function breakerPolicy(provider: ProviderConfig, routing: Pick<RoutingConfig, "breaker">): Readonly<BreakerConfig> | undefined {
  return provider.breaker ?? routing.breaker;
}

/** breakerKey is the store key of a deployment's breaker document. */
export const breakerKey: (deploymentId: string) => string = keyNamer("breaker:");

const MAX_COUNT = Number.MAX_SAFE_INTEGER;

function docTtl(policy: Readonly<BreakerConfig>): number {
  // Long enough that an open or half-open document never expires before it is acted on,
  // and a closed one outlives its counters (window_ms) many times over.
  return Math.max(policy.cooldown_ms + PROBE_STALE_MS, policy.window_ms) * 10;
}

/** judgeBreaker reads a breaker document at time now (epoch ms). */
export function judgeBreaker(doc: BreakerDoc | undefined, now: number): BreakerVerdict {
  if (doc === undefined || doc.state === "closed") return { kind: "closed", epoch: doc?.epoch ?? 0 };
  if (doc.state === "open") return now < doc.until ? { kind: "open", until: doc.until, reason: doc.reason } : { kind: "probe", doc };
  // Half-open: one probe is out; a stale one (its replica gone) may be replaced.
  return now - doc.since >= PROBE_STALE_MS ? { kind: "probe", doc } : { kind: "probing", reason: doc.reason };
}

/** stateOf is the state a breaker document shows to ListModels at time now. */
export function stateOf(doc: BreakerDoc | undefined, now: number): BreakerState {
  const v = judgeBreaker(doc, now);
  return v.kind === "closed" ? "closed" : v.kind === "open" ? "open" : "half_open";
}

/**
 * claimProbe tries to become the one half-open probe of a breaker whose
 * verdict was "probe"; it returns the half-open document it wrote, or
 * undefined when another request (on any replica) claimed it first.
 */
export async function claimProbe(store: StateStore, deploymentId: string, doc: BreakerDoc, policy: Readonly<BreakerConfig>, now: number): Promise<BreakerDoc | undefined> {
  const probe: BreakerDoc = { state: "half_open", epoch: doc.epoch, since: now, until: 0, reason: `half-open: probing after "${doc.reason}"` };
  return (await store.casJson(breakerKey(deploymentId), doc, probe, docTtl(policy))) ? probe : undefined;
}

/**
 * settleProbe resolves a probe: "success" closes the breaker (fresh
 * counters), "failure" re-opens it for a cooldown, "neutral" (the probe
 * proved nothing: cancelled, the caller's bad request, a rate limit) hands
 * the probe to the next request at once.
 */
export async function settleProbe(
  store: StateStore,
  deploymentId: string,
  probe: BreakerDoc,
  result: "success" | "failure" | "neutral",
  policy: Readonly<BreakerConfig>,
  now: number,
  detail = "",
): Promise<void> {
  const next: BreakerDoc =
    result === "success"
      ? { state: "closed", epoch: now, since: now, until: 0, reason: "the half-open probe succeeded" }
      : result === "failure"
        ? { state: "open", epoch: probe.epoch, since: now, until: now + policy.cooldown_ms, reason: `the half-open probe failed: ${detail}` }
        : { state: "open", epoch: probe.epoch, since: probe.since, until: now, reason: "a probe was cancelled; the next request probes" };
  await store.casJson(breakerKey(deploymentId), probe, next, docTtl(policy));
}

/**
 * openBreaker opens a breaker whose document was `current` (undefined when
 * absent); it returns whether this call opened it (false when another
 * request changed the document first — then that one decided).
 */
export async function openBreaker(
  store: StateStore,
  deploymentId: string,
  current: BreakerDoc | undefined,
  reason: string,
  policy: Readonly<BreakerConfig>,
  now: number,
): Promise<boolean> {
  const epoch = current?.epoch ?? 0;
  const next: BreakerDoc = { state: "open", epoch, since: now, until: now + policy.cooldown_ms, reason };
  return store.casJson(breakerKey(deploymentId), current, next, docTtl(policy));
}

function counterKey(deploymentId: string, epoch: number, name: string): string {
  return `breaker:${deploymentId}:${epoch}:${name}`;
}

/**
 * recordHealthFailure counts one upstream-health failure of a closed
 * breaker (generation `current`) and opens it when a threshold is crossed;
 * it returns the reason when this call opened it.
 */
export async function recordHealthFailure(
  store: StateStore,
  deploymentId: string,
  current: BreakerDoc | undefined,
  detail: string,
  policy: Readonly<BreakerConfig>,
  now: number,
): Promise<string | undefined> {
  const epoch = current?.epoch ?? 0;
  const w = policy.window_ms;
  // The three counters share a group: one store call (no limit to refuse, so it always counts).
  const counted = await store.windowsAcquire(
    [
      { key: counterKey(deploymentId, epoch, "fail"), amount: 1, limit: MAX_COUNT },
      { key: counterKey(deploymentId, epoch, "req"), amount: 1, limit: MAX_COUNT },
      { key: counterKey(deploymentId, epoch, "consec"), amount: 1, limit: MAX_COUNT },
    ],
    w,
  );
  const [failures, requests, consecutive] = counted.windows as [WindowResult, WindowResult, WindowResult];
  let reason: string | undefined;
  if (consecutive.used >= policy.consecutive_failures) {
    reason = `${consecutive.used} consecutive failures (last: ${detail})`;
  } else if (requests.used >= policy.min_requests && failures.used / requests.used >= policy.failure_rate) {
    reason = `${failures.used} of ${requests.used} requests failed in ${w} ms (last: ${detail})`;
  }
  if (reason === undefined) return undefined;
  return (await openBreaker(store, deploymentId, current, reason, policy, now)) ? reason : undefined;
}

/** recordHealthSuccess counts one healthy answer: a request in the window, and the end of any failure streak. */
export async function recordHealthSuccess(store: StateStore, deploymentId: string, epoch: number, policy: Readonly<BreakerConfig>): Promise<void> {
  const w = policy.window_ms;
  const consecutiveKey = counterKey(deploymentId, epoch, "consec");
  // Counting the request and reading the streak (an amount of 0 counts nothing) is one store call.
  const counted = await store.windowsAcquire(
    [
      { key: counterKey(deploymentId, epoch, "req"), amount: 1, limit: MAX_COUNT },
      { key: consecutiveKey, amount: 0, limit: MAX_COUNT },
    ],
    w,
  );
  const streak = counted.windows[1]!.used;
  if (streak > 0) await store.windowAdjust(consecutiveKey, -streak, w);
}

/**
 * readBreakerStates reads the breaker state of many deployments in one
 * batch (ListModels); a deployment without a breaker is always closed.
 */
export async function readBreakerStates(
  store: StateStore,
  deployments: ReadonlyArray<{ id: string; provider: ProviderConfig }>,
  routing: Pick<RoutingConfig, "breaker">,
  now: number = Date.now(),
): Promise<Map<string, BreakerState>> {
  const guarded = deployments.filter((d) => breakerPolicy(d.provider, routing) !== undefined);
  const docs = await Promise.all(guarded.map((d) => store.getJson<BreakerDoc>(breakerKey(d.id))));
  const out = new Map<string, BreakerState>(deployments.map((d) => [d.id, "closed"]));
  guarded.forEach((d, i) => out.set(d.id, stateOf(docs[i], now)));
  return out;
}
