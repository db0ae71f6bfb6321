import type { Caller } from "../auth/keys.js";
import type { BudgetConfig, GatewayConfig, TeamConfig } from "../config/schema.js";
import { usdToNano } from "../pricing/cost.js";
import { allOf } from "../state/all-of.js";
import { leasesOf } from "../state/leases.js";
import type { StateStore } from "../state/store.js";
import { periodWindow, type PeriodWindow } from "./periods.js";

/**
 * Budget spend, kept in the shared state store so every replica sees the
 * same figure. Before a call the request's worst-case cost is reserved in
 * every budget that applies to it (its key's and its team's), atomically
 * against the limit (StateStore.reserve: a Lua script under Redis); after
 * the call the reservation is settled with the actual cost. Concurrent
 * requests on any number of replicas therefore never commit more than the
 * limit plus what the reservations under-estimated, and a request whose
 * worst case does not fit is refused before it reaches a provider.
 *
 * Spend lives under `budget:<kind>:<id>:<period>:<period id>` and expires a
 * while after its period ends; a reservation a crashed replica never
 * settled expires on its own after the reservation TTL.
 *
 * With Redis, a request is usually reserved from this replica's quota lease
 * of the budget (state/leases.ts), a reservation taken ahead while the
 * budget is far from its limit and under its soft limit; its settlement
 * still records the spend in Redis at once. Its statuses are then the
 * lease's view, at most the store's leaseMs old.
 */

/** BudgetScope is one budget that applies to a request. */
export interface BudgetScope {
  kind: "key" | "team";
  /** id is the key id or team id. */
  id: string;
  budget: BudgetConfig;
  /** limitNano is budget.usd in nano-USD. */
  limitNano: bigint;
  /** softNano is the soft limit in nano-USD, when one is configured. */
  softNano?: bigint;
}

/** BudgetStatus is a scope's spend in its current period. */
export interface BudgetStatus {
  scope: BudgetScope;
  window: PeriodWindow;
  /** committedNano is the settled spend this period. */
  committedNano: bigint;
  /** reservedNano is held by requests in flight. */
  reservedNano: bigint;
  /** remainingNano is limit − committed − reserved (never negative). */
  remainingNano: bigint;
}

/** BudgetLedgerOptions configure a ledger. */
export interface BudgetLedgerOptions {
  /** now is the clock (epoch ms); tests inject one to cross a period boundary. */
  now?: () => number;
}

/** ReserveOutcome is the result of reserving in every scope at once. */
export type ReserveOutcome =
  | { ok: true; statuses: BudgetStatus[]; release(actualNano: bigint): Promise<void> }
  | { ok: false; refused: BudgetStatus[] };

/** BudgetLedger reserves and settles budget spend. */
export interface BudgetLedger {
  /** now is the ledger's clock. */
  now(): number;
  /** reserve holds amountNano in every scope, or in none (a refusal releases the others). */
  reserve(store: StateStore, scopes: readonly BudgetScope[], reservationId: string, amountNano: bigint, reservationTtlMs: number): Promise<ReserveOutcome>;
  /** status reads the scopes' current spend. */
  status(store: StateStore, scopes: readonly BudgetScope[]): Promise<BudgetStatus[]>;
}

// Spend stays readable this long after its period ends (late settles, reporting).
const RETAIN_AFTER_PERIOD_MS = 7 * 86_400_000;

const teamIndex = new WeakMap<GatewayConfig, Map<string, TeamConfig>>();

/** teamOf finds the caller's team configuration, if its key names one that is configured. */
export function teamOf(config: GatewayConfig, caller: Caller): TeamConfig | undefined {
  if (caller.team === undefined) return undefined;
  let index = teamIndex.get(config);
  if (index === undefined) {
    index = new Map(config.teams.map((t) => [t.id, t]));
    teamIndex.set(config, index);
  }
  return index.get(caller.team);
}

// A budget's configuration belongs to one key or team and never changes (a reload builds new objects), so its scope is built once.
const scopes = new WeakMap<BudgetConfig, BudgetScope>();

function scope(kind: BudgetScope["kind"], id: string, budget: BudgetConfig): BudgetScope {
  const known = scopes.get(budget);
  if (known !== undefined && known.kind === kind && known.id === id) return known;
  const limitNano = usdToNano(budget.usd);
  const s: BudgetScope = { kind, id, budget, limitNano };
  // soft_limit is a fraction: scale it exactly (0.9 × limit), in parts per million.
  if (budget.soft_limit !== undefined) s.softNano = (limitNano * BigInt(Math.round(budget.soft_limit * 1e6))) / 1_000_000n;
  scopes.set(budget, s);
  return s;
}

/** budgetScopes lists the budgets that apply to a caller: its key's, then its team's. */
export function budgetScopes(config: GatewayConfig, caller: Caller): BudgetScope[] {
  const out: BudgetScope[] = [];
  if (caller.key?.budget !== undefined) out.push(scope("key", caller.keyId, caller.key.budget));
  const team = teamOf(config, caller);
  if (team?.budget !== undefined) out.push(scope("team", team.id, team.budget));
  return out;
}

/** budgetStateKey is where a scope's spend for a period lives in the state store. */
export function budgetStateKey(s: BudgetScope, window: PeriodWindow): string {
  return `budget:${s.kind}:${s.id}:${s.budget.period}:${window.id}`;
}

// The key of a scope's current period: every request needs it, and it changes once a period.
const currentKeys = new WeakMap<BudgetScope, { window: PeriodWindow; key: string }>();

function currentKey(s: BudgetScope, window: PeriodWindow): string {
  const known = currentKeys.get(s);
  if (known !== undefined && known.window === window) return known.key;
  const key = budgetStateKey(s, window);
  currentKeys.set(s, { window, key });
  return key;
}

function statusOf(s: BudgetScope, window: PeriodWindow, committed: bigint, reserved: bigint): BudgetStatus {
  const left = s.limitNano - committed - reserved;
  return { scope: s, window, committedNano: committed, reservedNano: reserved, remainingNano: left > 0n ? left : 0n };
}

/** createBudgetLedger builds a ledger. */
export function createBudgetLedger(options: BudgetLedgerOptions = {}): BudgetLedger {
  const now = options.now ?? Date.now;
  return {
    now,

    async reserve(store, scopes, reservationId, amountNano, reservationTtlMs) {
      const at = now();
      const held = scopes.map((s) => {
        const window = periodWindow(s.budget.period, at);
        const ttlMs = Math.max(1, window.endMs - at) + RETAIN_AFTER_PERIOD_MS;
        return { s, window, key: currentKey(s, window), ttlMs };
      });
      const leases = leasesOf(store);
      const results = await allOf(held, (h) =>
        leases.reserve(h.key, reservationId, amountNano, h.s.limitNano, h.s.softNano ?? h.s.limitNano, h.ttlMs, reservationTtlMs),
      );
      const statuses = held.map((h, i) => statusOf(h.s, h.window, results[i]!.committed, results[i]!.reserved));
      const release = async (actualNano: bigint, which: (i: number) => boolean) => {
        await allOf(held, (_, i) => (which(i) ? results[i]!.settle(actualNano) : undefined));
      };
      if (results.every((r) => r.ok)) {
        let settled = false;
        return {
          ok: true,
          statuses,
          async release(actualNano) {
            if (settled) return;
            settled = true;
            await release(actualNano, () => true);
          },
        };
      }
      // All or nothing: give back what this request got in the scopes that admitted it.
      await release(0n, (i) => results[i]!.ok);
      return { ok: false, refused: statuses.filter((_, i) => !results[i]!.ok) };
    },

    async status(store, scopes) {
      const at = now();
      return Promise.all(
        scopes.map(async (s) => {
          const window = periodWindow(s.budget.period, at);
          const { committed, reserved } = await store.readReserve(currentKey(s, window));
          return statusOf(s, window, committed, reserved);
        }),
      );
    },
  };
}
