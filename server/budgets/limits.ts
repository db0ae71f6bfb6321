import type { Caller } from "../auth/keys.js";
import type { GatewayConfig, LimitsConfig } from "../config/schema.js";
import { GatewayError } from "../core/errors.js";
import type { StateStore, WindowRequest } from "../state/store.js";
import { teamOf } from "./ledger.js";

/**
 * Per-key and per-team request (RPM) and token (TPM) limits over a sliding
 * minute, in the shared state store (so a limit of 60 rpm admits 60 across
 * all replicas). A request takes 1 from each RPM window and its estimated
 * tokens (prompt plus expected output) from each TPM window before it is
 * routed; after the call the TPM windows are reconciled with the tokens the
 * provider reported. A scope's windows are taken all or nothing; a request
 * a limit refuses never reaches a provider, and what it took from the
 * other scope's windows is given back.
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

/** limitScopes lists the limits that apply to a caller: its key's, then its team's. */
export function limitScopes(config: GatewayConfig, caller: Caller): LimitScope[] {
  const scopes: LimitScope[] = [];
  const keyLimits = caller.key?.limits;
  if (keyLimits?.rpm !== undefined || keyLimits?.tpm !== undefined) scopes.push({ kind: "key", id: caller.keyId, limits: keyLimits! });
  const team = teamOf(config, caller);
  if (team?.limits?.rpm !== undefined || team?.limits?.tpm !== undefined) scopes.push({ kind: "team", id: team!.id, limits: team!.limits! });
  return scopes;
}

/** limitStateKey is where a scope's window lives in the state store. */
export function limitStateKey(scope: Pick<LimitScope, "kind" | "id">, unit: "rpm" | "tpm"): string {
  return `ratelimit:${scope.kind}:${scope.id}:${unit}`;
}

const noTicket: LimitTicket = { reconcile: async () => {} };

/**
 * acquireLimits takes one request and `tokens` tokens from every window
 * that applies, or nothing: it throws ResourceExhausted (with retry-after)
 * naming the limit that refused.
 */
export async function acquireLimits(store: StateStore, scopes: readonly LimitScope[], tokens: number): Promise<LimitTicket> {
  if (scopes.length === 0) return noTicket;
  const groups: Array<Array<WindowRequest & { scope: LimitScope; unit: "rpm" | "tpm" }>> = [];
  // The TPM windows, reconciled with the actual tokens once the request ends.
  const tpm: Array<(typeof groups)[number][number]> = [];
  for (const scope of scopes) {
    const group: (typeof groups)[number] = [];
    for (const unit of ["rpm", "tpm"] as const) {
      const limit = scope.limits[unit];
      if (limit === undefined) continue;
      // A prompt larger than a whole minute's tokens may still run when the window is empty (then it is the only one).
      const amount = unit === "rpm" ? 1 : Math.min(Math.max(1, Math.ceil(tokens)), limit);
      const w = { key: limitStateKey(scope, unit), amount, limit, scope, unit };
      group.push(w);
      if (unit === "tpm") tpm.push(w);
    }
    groups.push(group);
  }
  // A scope's windows are taken all or nothing, and all scopes at once (one round trip under Redis);
  // a scope's refusal gives back what the other scopes took.
  const results = await Promise.all(groups.map((g) => store.windowsAcquire(g, WINDOW_MS)));
  const refused = results.findIndex((r) => !r.allowed);
  if (refused >= 0) {
    const taken = groups.filter((_, i) => results[i]!.allowed).flat();
    await Promise.all(taken.map((t) => store.windowAdjust(t.key, -t.amount, WINDOW_MS)));
    const full = results[refused]!.windows.findIndex((w) => !w.allowed);
    const w = groups[refused]![full]!;
    const r = results[refused]!.windows[full]!;
    const what = w.unit === "rpm" ? `${w.limit} requests per minute` : `${w.limit} tokens per minute (this request needs about ${w.amount})`;
    const retry = Math.max(1, Math.ceil(r.retryAfterMs / 1000));
    throw new GatewayError("resource_exhausted", `rate limit: ${w.scope.kind} "${w.scope.id}" is limited to ${what}; retry in ${retry}s`, {
      retryAfterMs: Math.max(1, Math.ceil(r.retryAfterMs)),
      openaiCode: "rate_limit_exceeded",
    });
  }
  let reconciled = false;
  return {
    async reconcile(actualTokens) {
      if (reconciled) return;
      reconciled = true;
      await Promise.all(
        tpm.map((t) => {
          const delta = Math.max(0, Math.round(actualTokens)) - t.amount;
          return delta === 0 ? undefined : store.windowAdjust(t.key, delta, WINDOW_MS);
        }),
      );
    },
  };
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
