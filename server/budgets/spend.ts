import type { Caller } from "../auth/keys.js";
import type { DegradeInfo } from "./admission.js";
import type { GatewayConfig } from "../config/schema.js";
import { nanoToUsdString } from "../pricing/cost.js";
import type { StateStore } from "../state/store.js";
import { budgetScopes, teamOf, type BudgetLedger, type BudgetStatus } from "./ledger.js";
import { limitScopes, limitUsage, type LimitUsage } from "./limits.js";

/**
 * Spend visibility: a key's and its team's current spend, what is left,
 * when the period resets, and how much of the rate limits the last minute
 * used. Served as `GET /v1/spend` (spendToJson is the JSON, documented
 * there); a key sees only itself and its own team.
 */

/** SpendEntry is one key's or team's view. */
export interface SpendEntry {
  kind: "key" | "team";
  id: string;
  budget?: BudgetStatus;
  limits?: LimitUsage;
}

/** SpendReport is a caller's spend: its key, and its team when the key has one. */
export interface SpendReport {
  /** at is when the figures were read (epoch ms, the budget clock). */
  at: number;
  key: SpendEntry;
  team?: SpendEntry;
}

/** spendReport reads a caller's spend from the state store. */
export async function spendReport(store: StateStore, ledger: BudgetLedger, config: GatewayConfig, caller: Caller): Promise<SpendReport> {
  const [budgets, limits] = await Promise.all([
    ledger.status(store, budgetScopes(config, caller)),
    limitUsage(store, limitScopes(config, caller)),
  ]);
  const entry = (kind: "key" | "team", id: string): SpendEntry => {
    const e: SpendEntry = { kind, id };
    const b = budgets.find((s) => s.scope.kind === kind);
    const l = limits.find((u) => u.scope.kind === kind);
    if (b !== undefined) e.budget = b;
    if (l !== undefined) e.limits = l;
    return e;
  };
  const report: SpendReport = { at: ledger.now(), key: entry("key", caller.keyId) };
  const team = teamOf(config, caller);
  if (team !== undefined) report.team = entry("team", team.id);
  else if (caller.team !== undefined) report.team = { kind: "team", id: caller.team };
  return report;
}

function budgetJson(b: BudgetStatus, at: number): Record<string, unknown> {
  const s = b.scope;
  const spentAndHeld = b.committedNano + b.reservedNano;
  return {
    period: s.budget.period,
    period_id: b.window.id,
    limit_usd: nanoToUsdString(s.limitNano),
    spent_usd: nanoToUsdString(b.committedNano),
    reserved_usd: nanoToUsdString(b.reservedNano),
    remaining_usd: nanoToUsdString(b.remainingNano),
    limit_nano_usd: s.limitNano.toString(),
    spent_nano_usd: b.committedNano.toString(),
    reserved_nano_usd: b.reservedNano.toString(),
    remaining_nano_usd: b.remainingNano.toString(),
    soft_limit_usd: s.softNano === undefined ? null : nanoToUsdString(s.softNano),
    degrade_to: s.budget.degrade_to ?? null,
    degraded: s.softNano !== undefined && s.budget.degrade_to !== undefined && b.committedNano >= s.softNano,
    exhausted: b.committedNano >= s.limitNano || spentAndHeld >= s.limitNano,
    period_start: new Date(b.window.startMs).toISOString(),
    resets_at: new Date(b.window.endMs).toISOString(),
    resets_in_seconds: Math.max(0, Math.ceil((b.window.endMs - at) / 1000)),
  };
}

function limitsJson(l: LimitUsage): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (l.scope.limits.rpm !== undefined) out.rpm = { limit: l.scope.limits.rpm, used: l.rpmUsed ?? 0 };
  if (l.scope.limits.tpm !== undefined) out.tpm = { limit: l.scope.limits.tpm, used: l.tpmUsed ?? 0 };
  return out;
}

function entryJson(e: SpendEntry, at: number): Record<string, unknown> {
  return {
    id: e.id,
    budget: e.budget === undefined ? null : budgetJson(e.budget, at),
    limits: e.limits === undefined ? null : limitsJson(e.limits),
  };
}

/**
 * spendToJson renders a report as the `GET /v1/spend` body:
 *
 *     {
 *       "object": "spend",
 *       "as_of": "2026-11-21T10:00:00.000Z",
 *       "key":  { "id": "support-bot", "budget": Budget | null, "limits": Limits | null },
 *       "team": { "id": "support", "budget": Budget | null, "limits": Limits | null } | null
 *     }
 *
 * Budget: period ("day" | "week" | "month"), period_id ("2026-11-21",
 * "2026-W47", "2026-11"), limit/spent/reserved/remaining as exact decimal USD
 * strings (`*_usd`, 9 places) and integer nano-USD strings (`*_nano_usd`),
 * soft_limit_usd (or null), degrade_to (or null), degraded (settled spend is
 * past the soft limit), exhausted, period_start, resets_at (ISO 8601, UTC)
 * and resets_in_seconds. `reserved` is what requests in flight hold at
 * their worst case. Limits: { rpm: { limit, used }, tpm: { limit, used } }
 * over the last minute.
 */
export function spendToJson(report: SpendReport): string {
  return JSON.stringify({
    object: "spend",
    as_of: new Date(report.at).toISOString(),
    key: entryJson(report.key, report.at),
    team: report.team === undefined ? null : entryJson(report.team, report.at),
  });
}

/**
 * budgetHeaders are the response headers a chat completion gets from the
 * budget checks: `x-gateway-degraded: budget` when a soft limit re-routed
 * it, and `x-gateway-budget-remaining-usd` (the least left across the
 * caller's key and team budgets) when the caller has a budget.
 */
export function budgetHeaders(out: { degraded?: DegradeInfo; budgetRemainingNano?: bigint }): Record<string, string> {
  const h: Record<string, string> = {};
  if (out.degraded !== undefined) {
    h["x-gateway-degraded"] = out.degraded.reason;
    h["x-gateway-degraded-from"] = out.degraded.from;
  }
  if (out.budgetRemainingNano !== undefined) h["x-gateway-budget-remaining-usd"] = nanoToUsdString(out.budgetRemainingNano);
  return h;
}

/** remainingOf is the least budget left across a report's key and team budgets; undefined when neither has one. */
export function remainingOf(report: SpendReport): bigint | undefined {
  const left = [report.key.budget, report.team?.budget].filter((b): b is BudgetStatus => b !== undefined).map((b) => b.remainingNano);
  return left.length === 0 ? undefined : left.reduce((a, b) => (b < a ? b : a));
}
