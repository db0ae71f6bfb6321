import type { Caller } from "../auth/keys.js";
import type { GatewayConfig, LimitsConfig } from "../config/schema.js";
import { GatewayError } from "../core/errors.js";
import { allOf } from "../state/all-of.js";
import { leasesOf, type WindowsAdmission } from "../state/leases.js";
import type { StateStore, WindowRequest, WindowsResult } from "../state/store.js";
import { teamOf } from "./ledger.js";

/**
 * Per-key and per-team request (RPM) and token (TPM) limits over a sliding
 * minute, in the shared state store (so a limit of 60 rpm admits 60 across
 * all replicas). A request takes 1 from each RPM window and its estimated
 * tokens (prompt plus expected output) from each TPM window before it is
 * routed; after the call the TPM windows are reconciled with the tokens the
 * provider reported. A scope's windows are taken all or nothing; a request
 * a limit refuses never reaches a provider, and what it took from the
 * other scope's windows is given back. With Redis, most requests are
 * admitted from this replica's quota lease of a scope's windows, without
 * a round trip (state/leases.ts).
 */

/** WINDOW_MS is the limit window: one minute. */
export const WINDOW_MS = 60_000;

/** LimitScope is one limited identity. */
export interface LimitScope {
  kind: "key" | "team";
  id: string;
  limits: LimitsConfig;
}

/** LimitTicket is what a request took from the limit windows. */
export interface LimitTicket {
  /** reconcile replaces the estimated tokens by the actual ones (call once, when the request ends). */
  reconcile(actualTokens: number): Promise<void>;
}

// Limits belong to one key or team and never change (a reload builds new objects), so a scope is built once per limits object.
const scopeCache = new WeakMap<LimitsConfig, LimitScope>();

function scopeOf(kind: LimitScope["kind"], id: string, limits: LimitsConfig): LimitScope {
  const known = scopeCache.get(limits);
  if (known !== undefined && known.kind === kind && known.id === id) return known;
  const scope: LimitScope = { kind, id, limits };
  scopeCache.set(limits, scope);
  return scope;
}

/** limitScopes lists the limits that apply to a caller: its key's, then its team's. */
export function limitScopes(config: GatewayConfig, caller: Caller): LimitScope[] {
  const scopes: LimitScope[] = [];
  const keyLimits = caller.key?.limits;
  if (keyLimits !== undefined && (keyLimits.rpm !== undefined || keyLimits.tpm !== undefined)) scopes.push(scopeOf("key", caller.keyId, keyLimits));
  const team = teamOf(config, caller);
  const teamLimits = team?.limits;
  if (teamLimits !== undefined && (teamLimits.rpm !== undefined || teamLimits.tpm !== undefined)) scopes.push(scopeOf("team", team!.id, teamLimits));
  return scopes;
}

/** limitStateKey is where a scope's window lives in the state store. */
export function limitStateKey(scope: Pick<LimitScope, "kind" | "id">, unit: "rpm" | "tpm"): string {
  return `ratelimit:${scope.kind}:${scope.id}:${unit}`;
}

const noTicket: LimitTicket = { reconcile: async () => {} };

/** ScopeWindows are a scope's windows' store keys, built once per scope. */
interface ScopeWindows {
  rpmKey: string;
  tpmKey: string;
}

const windowKeys = new WeakMap<LimitScope, ScopeWindows>();

function windowsOf(scope: LimitScope): ScopeWindows {
  let keys = windowKeys.get(scope);
  if (keys === undefined) {
    keys = { rpmKey: limitStateKey(scope, "rpm"), tpmKey: limitStateKey(scope, "tpm") };
    windowKeys.set(scope, keys);
  }
  return keys;
}

/** groupOf lists a scope's windows and what this request takes from each. */
function groupOf(scope: LimitScope, tokens: number): WindowRequest[] {
  const keys = windowsOf(scope);
  const { rpm, tpm } = scope.limits;
  const group: WindowRequest[] = [];
  if (rpm !== undefined) group.push({ key: keys.rpmKey, amount: 1, limit: rpm });
  // A prompt larger than a whole minute's tokens may still run when the window is empty (then it is the only one).
  if (tpm !== undefined) group.push({ key: keys.tpmKey, amount: Math.min(Math.max(1, Math.ceil(tokens)), tpm), limit: tpm });
  return group;
}

/** refusalOf is the error for the first window of a refused scope that had no room. */
function refusalOf(scope: LimitScope, group: readonly WindowRequest[], result: WindowsResult): GatewayError {
  const full = result.windows.findIndex((w) => !w.allowed);
  const w = group[full]!;
  const r = result.windows[full]!;
  const what = w.key === windowsOf(scope).rpmKey ? `${w.limit} requests per minute` : `${w.limit} tokens per minute (this request needs about ${w.amount})`;
  const retry = Math.max(1, Math.ceil(r.retryAfterMs / 1000));
  return new GatewayError("resource_exhausted", `rate limit: ${scope.kind} "${scope.id}" is limited to ${what}; retry in ${retry}s`, {
    retryAfterMs: Math.max(1, Math.ceil(r.retryAfterMs)),
    openaiCode: "rate_limit_exceeded",
  });
}

/** ticketFor reconciles the TPM windows taken (the groups' last windows when they are TPM windows), where they were counted. */
function ticketFor(scopes: readonly LimitScope[], groups: readonly WindowRequest[][], admissions: readonly WindowsAdmission[]): LimitTicket {
  const tpm: Array<{ admission: WindowsAdmission; index: number; amount: number }> = [];
  for (let i = 0; i < groups.length; i++) {
    const index = groups[i]!.length - 1;
    if (scopes[i]!.limits.tpm !== undefined) tpm.push({ admission: admissions[i]!, index, amount: groups[i]![index]!.amount });
  }
  if (tpm.length === 0) return noTicket;
  let reconciled = false;
  return {
    async reconcile(actualTokens) {
      if (reconciled) return;
      reconciled = true;
      const actual = Math.max(0, Math.round(actualTokens));
      await allOf(tpm, (t) => (actual === t.amount ? undefined : t.admission.taken!.adjust(t.index, actual - t.amount)));
    },
  };
}

/**
 * acquireLimits takes one request and `tokens` tokens from every window
 * that applies, or nothing: it throws ResourceExhausted (with retry-after)
 * naming the limit that refused.
 */
export async function acquireLimits(store: StateStore, scopes: readonly LimitScope[], tokens: number): Promise<LimitTicket> {
  if (scopes.length === 0) return noTicket;
  const groups = scopes.map((scope) => groupOf(scope, tokens));
  // A scope's windows are taken all or nothing, and all scopes at once (one round trip under Redis, or none from a lease);
  // a scope's refusal gives back what the other scopes took.
  const leases = leasesOf(store);
  const admissions = await allOf(groups, (g) => leases.acquireWindows(g, WINDOW_MS));
  const refused = admissions.findIndex((a) => !a.result.allowed);
  if (refused < 0) return ticketFor(scopes, groups, admissions);
  const giveBacks: Array<Promise<void>> = [];
  admissions.forEach((a, i) => groups[i]!.forEach((w, j) => a.taken !== undefined && giveBacks.push(a.taken.adjust(j, -w.amount))));
  await Promise.all(giveBacks);
  throw refusalOf(scopes[refused]!, groups[refused]!, admissions[refused]!.result);
}

/** LimitUsage is a scope's current use of its windows. */
export interface LimitUsage {
  scope: LimitScope;
  rpmUsed?: number;
  tpmUsed?: number;
}

/** limitUsage reads the scopes' current window totals. */
export async function limitUsage(store: StateStore, scopes: readonly LimitScope[]): Promise<LimitUsage[]> {
  return Promise.all(
    scopes.map(async (scope) => {
      const u: LimitUsage = { scope };
      if (scope.limits.rpm !== undefined) u.rpmUsed = await store.windowUsage(limitStateKey(scope, "rpm"), WINDOW_MS);
      if (scope.limits.tpm !== undefined) u.tpmUsed = await store.windowUsage(limitStateKey(scope, "tpm"), WINDOW_MS);
      return u;
    }),
  );
}
