import type { ChatRequest } from "../core/chat.js";
import type { Deployment } from "../core/runtime.js";
import { allOf } from "../state/all-of.js";
import { leasesOf } from "../state/leases.js";
import type { StateStore } from "../state/store.js";
import type { Wakeup } from "./wait.js";

/**
 * Rate limits per provider and per deployment (`limits: { rpm, tpm }` on
 * a provider and, optionally, on a model), as sliding windows of one
 * minute in the shared store, so N replicas on one Redis admit the limit
 * once, not N times.
 *
 * A request takes one unit of every RPM window on its way and reserves its
 * estimated tokens (prompt estimate + its output bound) in every TPM
 * window before it is sent; when it ends, the reservation is reconciled
 * with the tokens actually used (windowAdjust), and capacity given back
 * wakes this replica's waiting batch requests at once. With Redis, most
 * requests are admitted from this replica's quota lease of the windows,
 * without a round trip (state/leases.ts).
 */

/** LIMIT_WINDOW_MS is the span of an rpm/tpm window. */
export const LIMIT_WINDOW_MS = 60_000;

/** RESERVE_OUTPUT_CAP bounds the output reserved for a request that sets no max_output_tokens. */
export const RESERVE_OUTPUT_CAP = 4096;

interface LimitEntry {
  key: string;
  limit: number;
  tokens: boolean;
  label: string;
}

/** DeploymentLimits are a deployment's windows, and the same split by store group (the provider's, the deployment's). */
interface DeploymentLimits {
  entries: LimitEntry[];
  groups: LimitEntry[][];
}

const limitsCache = new WeakMap<Deployment, DeploymentLimits>();

/** limitsOf lists the windows a deployment's requests count against (cached per deployment). */
function limitsOf(d: Deployment): DeploymentLimits {
  let cached = limitsCache.get(d);
  if (cached !== undefined) return cached;
  const provider: LimitEntry[] = [];
  const p = d.provider.limits;
  if (p?.rpm !== undefined) provider.push({ key: `ratelimit:provider:${d.provider.id}:rpm`, limit: p.rpm, tokens: false, label: `provider ${d.provider.id} rpm ${p.rpm}` });
  if (p?.tpm !== undefined) provider.push({ key: `ratelimit:provider:${d.provider.id}:tpm`, limit: p.tpm, tokens: true, label: `provider ${d.provider.id} tpm ${p.tpm}` });
  const deployment: LimitEntry[] = [];
  const m = d.model.limits;
  if (m?.rpm !== undefined) deployment.push({ key: `ratelimit:deployment:${d.id}:rpm`, limit: m.rpm, tokens: false, label: `${d.id} rpm ${m.rpm}` });
  if (m?.tpm !== undefined) deployment.push({ key: `ratelimit:deployment:${d.id}:tpm`, limit: m.tpm, tokens: true, label: `${d.id} tpm ${m.tpm}` });
  // Each group's keys differ only in their last segment: one store group, taken in one call.
  const groups = [provider, deployment].filter((g) => g.length > 0);
  cached = { entries: groups.flat(), groups };
  limitsCache.set(d, cached);
  return cached;
}

/** hasLimits tells whether a deployment has any rpm/tpm limit (no store round trip otherwise). */
export function hasLimits(d: Deployment): boolean {
  return limitsOf(d).entries.length > 0;
}

/** limitKeys lists the store keys of a deployment's limit windows (capacity waiters subscribe to them). */
export function limitKeys(d: Deployment): string[] {
  return limitsOf(d).entries.map((e) => e.key);
}

/** reservationTokens is what a request reserves against TPM: its prompt estimate plus its output bound. */
export function reservationTokens(d: Deployment, request: ChatRequest, promptTokens: number): number {
  const output = request.sampling.maxOutputTokens ?? Math.min(d.model.max_output_tokens, RESERVE_OUTPUT_CAP);
  return promptTokens + Math.min(output, d.model.max_output_tokens);
}

/** CapacityLease is admitted capacity; settle it exactly once when the attempt ends. */
export interface CapacityLease {
  /** tokens is what was reserved against TPM. */
  readonly tokens: number;
  /** settle reconciles the TPM reservation with the tokens actually used (0 when nothing was consumed). */
  settle(actualTokens: number): Promise<void>;
  /**
   * release gives back everything the lease took, request unit included,
   * as if it had never been acquired: for capacity taken ahead of time
   * (see the executor's prefetch) that no call ended up using. Only the
   * first of settle and release counts.
   */
  release(): Promise<void>;
}

/** CapacityResult is an admission, or why not and when to try again. */
export type CapacityResult =
  | { ok: true; lease: CapacityLease }
  | { ok: false; reason: string; retryAfterMs: number; /** never is true when the request can never fit (more tokens than the limit). */ never: boolean };

/** NO_LEASE is the lease of a deployment without limits: nothing to reconcile. */
export const NO_LEASE: CapacityLease = { tokens: 0, settle: () => Promise.resolve(), release: () => Promise.resolve() };

/**
 * WindowTotals remembers, per limit window, the total this replica last saw
 * (from the windows' own answers to acquires), so capacityLikely can tell
 * a window with room to spare from one near its limit without asking the
 * store.
 */
export type WindowTotals = Map<string, number>;

/**
 * capacityLikely tells whether every limit window of d had room for
 * `tokens` with half its limit to spare when this replica last acquired
 * from it. Taking capacity before knowing whether the request will use it
 * (and giving it back if not) is harmless then: the brief hold cannot push
 * another request over the limit. A window never seen is not assumed to
 * have room.
 */
export function capacityLikely(totals: WindowTotals, d: Deployment, tokens: number): boolean {
  for (const e of limitsOf(d).entries) {
    const used = totals.get(e.key);
    if (used === undefined || used + (e.tokens ? tokens : 1) > e.limit / 2) return false;
  }
  return true;
}

/**
 * acquireCapacity admits one request of `tokens` estimated tokens to a
 * deployment, against every limit on its way, in one batch of store calls:
 * one per group (the provider's windows, the deployment's), each all or
 * nothing. If one group refuses, what the other admitted is given back.
 */
export async function acquireCapacity(store: StateStore, wakeup: Wakeup, d: Deployment, tokens: number, totals?: WindowTotals): Promise<CapacityResult> {
  const { entries, groups } = limitsOf(d);
  if (entries.length === 0) return { ok: true, lease: NO_LEASE };
  for (const e of entries) {
    if (e.tokens && tokens > e.limit) {
      return { ok: false, reason: `needs ~${tokens} tokens, more than ${e.label} allows`, retryAfterMs: 0, never: true };
    }
  }
  // The provider's windows and the deployment's are two groups, each taken all or nothing, both in one round trip (or none, from leases).
  const leases = leasesOf(store);
  const admissions = await allOf(groups, (g) => leases.acquireWindows(g.map((e) => ({ key: e.key, amount: e.tokens ? tokens : 1, limit: e.limit })), LIMIT_WINDOW_MS));
  // Totals are only a hint here (capacityLikely): a lease's view will do.
  if (totals !== undefined) groups.forEach((g, i) => g.forEach((e, j) => totals.set(e.key, admissions[i]!.result.windows[j]!.used)));
  // adjustAll changes what each window took by delta(e): all of it back, or a TPM reservation reconciled.
  // Usually one window changes (a TPM reconcile): its promise is returned as it is, without Promise.all.
  const adjustAll = (delta: (e: LimitEntry) => number): Promise<unknown> => {
    let one: Promise<void> | undefined;
    let many: Array<Promise<void>> | undefined;
    for (let i = 0; i < groups.length; i++) {
      const taken = admissions[i]!.taken;
      if (taken === undefined) continue;
      const g = groups[i]!;
      for (let j = 0; j < g.length; j++) {
        const d = delta(g[j]!);
        if (d === 0) continue;
        const p = taken.adjust(j, d);
        if (one === undefined) one = p;
        else (many ??= [one]).push(p);
      }
    }
    return many !== undefined ? Promise.all(many) : (one ?? Promise.resolve());
  };
  if (admissions.some((a) => !a.result.allowed)) {
    let retryAfterMs = 0;
    const labels: string[] = [];
    groups.forEach((g, i) => {
      const r = admissions[i]!.result;
      g.forEach((e, j) => {
        const w = r.windows[j]!;
        if (!r.allowed && !w.allowed) {
          retryAfterMs = Math.max(retryAfterMs, w.retryAfterMs);
          labels.push(e.label);
        }
      });
    });
    await adjustAll((e) => -(e.tokens ? tokens : 1));
    return { ok: false, reason: `rate limit reached: ${labels.join(", ")}`, retryAfterMs: Math.max(1, retryAfterMs), never: false };
  }
  let settled = false;
  return {
    ok: true,
    lease: {
      tokens,
      async settle(actualTokens) {
        if (settled) return;
        settled = true;
        const delta = Math.round(actualTokens) - tokens;
        if (delta === 0) return;
        await adjustAll((e) => (e.tokens ? delta : 0));
        // Capacity came back: waiting batch requests on this replica try again now.
        if (delta < 0) for (const e of entries) if (e.tokens) wakeup.wake(e.key);
      },
      async release() {
        if (settled) return;
        settled = true;
        await adjustAll((e) => -(e.tokens ? tokens : 1));
        for (const e of entries) wakeup.wake(e.key);
      },
    },
  };
}
