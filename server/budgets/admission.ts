import type { Logger } from "pino";
import type { Caller } from "../auth/keys.js";
import type { ChatRequest, Usage } from "../core/chat.js";
import { GatewayError } from "../core/errors.js";
import { newId } from "../core/ids.js";
import type { Runtime } from "../core/runtime.js";
import { nanoToUsdString } from "../pricing/cost.js";
import { EXACT_WINDOW_MARGIN, measurePrompt, promptTokensFor, type PromptMeasure } from "../pricing/estimate.js";
import { candidateDeployments, candidateIds, candidateTokens, encodingsFor, familyOf, worstCaseOf, type CandidateTokens } from "../router/estimate.js";
import { resolveRoute, type RoutePlan } from "../router/resolve.js";
import { createMemoryStore } from "../state/memory-store.js";
import type { StateStore } from "../state/store.js";
import { budgetScopes, createBudgetLedger, type BudgetLedger, type BudgetScope, type BudgetStatus } from "./ledger.js";
import { acquireLimits, limitScopes, type LimitTicket } from "./limits.js";
import { spendReport, type SpendReport } from "./spend.js";

/**
 * Admission: everything between authentication and the first upstream
 * call. In order:
 *
 * 1. measure the prompt (fast; exactly when a candidate's window is close)
 *    and resolve the route;
 * 2. take the request from the caller's RPM/TPM windows (key and team);
 * 3. at the same time, reserve the request's maximum cost — the worst case over its
 *    candidates, as EstimateCost reports it — in the caller's budgets (key
 *    and team), atomically against each limit. Past a budget's soft limit
 *    (settled spend ≥ soft_limit × usd) the request is re-routed to the
 *    budget's `degrade_to` and the route trace says so; when the worst
 *    case does not fit, a budget with `degrade_to` is tried with the
 *    cheaper route first, and otherwise the request is refused with
 *    ResourceExhausted and a retry-after until the period resets.
 *
 * Steps 2 and 3 are issued together (with Redis, one round trip), and an
 * onPlan hook lets the caller start its own reads of the plan's state in
 * the same batch. A refusal by either gives back what the other took, so
 * a request refused at any step never reaches a provider and holds
 * nothing afterwards; while the two are in flight, a request one of them
 * refuses briefly holds what the other took, which can only refuse others
 * (a budget's refusal then says in-flight requests hold it), never admit
 * too many. The returned Admission's settle() records the actual cost and
 * tokens; the gateway calls it exactly once, also for failed and abandoned
 * streams.
 */

/** DegradeInfo says that a budget re-routed the request. */
export interface DegradeInfo {
  reason: "budget";
  /** from is the model or route the caller asked for. */
  from: string;
  /** to is the budget's degrade_to. */
  to: string;
  /** scope names the budget: "key support-bot" or "team support". */
  scope: string;
}

/** Admission is an admitted request. */
export interface Admission {
  plan: RoutePlan;
  /** request is what to execute: the caller's, or a copy naming degrade_to. */
  request: ChatRequest;
  degraded?: DegradeInfo;
  /** reservedNano is the worst-case cost held in the budgets (0 when the caller has none). */
  reservedNano: bigint;
  /** budgetRemainingNano is the least budget left across the caller's budgets after this reservation; unset without budgets. */
  budgetRemainingNano?: bigint;
  /** settle records the actual cost and usage; it never throws, and only its first call counts. */
  settle(costNano: bigint, usage: Usage | undefined): Promise<void>;
}

/** AdmissionOptions configure admission control. */
export interface AdmissionOptions {
  /** now is the clock for budget periods (default Date.now). */
  now?: () => number;
  /** logger records state-store failures during settlement. */
  logger?: Logger;
}

/** AdmissionControl admits requests and reports spend. */
export interface AdmissionControl {
  readonly ledger: BudgetLedger;
  /**
   * admit runs the checks above and returns the plan to execute, or throws
   * the caller's error. onPlan, when given, is called with the resolved plan
   * just before the checks' store calls are issued (a budget may still
   * re-route: compare it with the Admission's plan).
   */
  admit(rt: Runtime, request: ChatRequest, caller: Caller, onPlan?: (plan: RoutePlan) => void): Promise<Admission>;
  /** budgets reads the caller's budgets (for EstimateCost). */
  budgets(rt: Runtime, caller: Caller): Promise<BudgetStatus[]>;
  /** spend reports the caller's and its team's spend, remaining budget, reset times and limit usage. */
  spend(rt: Runtime, caller: Caller): Promise<SpendReport>;
}

/** tokensOf is what a usage counts against a TPM limit: input plus output. */
function tokensOf(usage: Usage | undefined): number {
  return usage === undefined ? 0 : usage.inputTokens + usage.outputTokens;
}

/** RoutingMeasure is a prompt measured for admission, and the router's figure for it. */
export interface RoutingMeasure {
  measure: PromptMeasure;
  /** promptTokens is what the router filters by (RoutePlan.promptTokens). */
  promptTokens: number;
}

/**
 * measureForRouting measures the prompt for the hot path and gives the
 * router's figure: the fast approximation, or the exact o200k count when a
 * candidate's context window is within EXACT_WINDOW_MARGIN of it.
 */
export function measureForRouting(rt: Runtime, request: ChatRequest): RoutingMeasure {
  const measure = measurePrompt(request);
  // An unknown id is the router's to report (it names the ids this caller may use).
  const known = rt.routes.has(request.model) || rt.deployments.has(request.model);
  const deployments = known ? candidateDeployments(rt, request.model) : [];
  const output = request.sampling.maxOutputTokens ?? 0;
  for (const d of deployments) {
    const input = promptTokensFor(measure, familyOf(d), d.upstreamModel);
    if (input * (1 + EXACT_WINDOW_MARGIN) + Math.min(output, d.model.max_output_tokens) >= d.model.context_window) {
      const exact = measurePrompt(request, { exact: encodingsFor(deployments) });
      return { measure: exact, promptTokens: promptTokensFor(exact, "o200k") };
    }
  }
  return { measure, promptTokens: promptTokensFor(measure, "simulated") };
}

/** sizesOf sizes the request on each of the plan's candidates, once for both the budget and the TPM limits. */
function sizesOf(plan: RoutePlan, measure: PromptMeasure, request: ChatRequest): CandidateTokens[] {
  return plan.candidates.map((d) => candidateTokens(d, measure, request));
}

/**
 * maxCostOf is the most a request can cost: the worst case of its most
 * expensive candidate, or, for a hedged route (up to hedge.max extra
 * attempts running at once, each billed), the sum of that many most
 * expensive worst cases. sizes are the candidates' (sizesOf).
 */
function maxCostOf(plan: RoutePlan, sizes: readonly CandidateTokens[], request: ChatRequest): bigint {
  const concurrent = 1 + (plan.hedge?.max ?? 0);
  if (concurrent === 1) {
    // Without hedging only one attempt runs at a time: the single most expensive worst case.
    let max = 0n;
    for (let i = 0; i < plan.candidates.length; i++) {
      const c = worstCaseOf(plan.candidates[i]!, sizes[i]!, request);
      if (c > max) max = c;
    }
    return max;
  }
  const costs = plan.candidates.map((d, i) => worstCaseOf(d, sizes[i]!, request)).sort((a, b) => (a > b ? -1 : a < b ? 1 : 0));
  return costs.slice(0, concurrent).reduce((sum, c) => sum + c, 0n);
}

function tpmTokensOf(sizes: readonly CandidateTokens[]): number {
  let max = 0;
  for (const c of sizes) max = Math.max(max, c.inputTokens + c.expectedOutputTokens);
  return max;
}

// Long enough for the slowest allowed call (streams included); a crashed replica's hold lapses after it.
function reservationTtlMs(plan: RoutePlan): number {
  let max = 60_000;
  for (const d of plan.candidates) max = Math.max(max, d.provider.timeout_ms);
  return 2 * max + 60_000;
}

const scopeName = (s: BudgetScope) => `${s.kind} "${s.id}"`;
const usd = (nano: bigint) => `$${nanoToUsdString(nano).replace(/\.?0+$/, "")}`;

function exhausted(status: BudgetStatus, amount: bigint, now: number): GatewayError {
  const s = status.scope;
  const period = `$${s.budget.usd} ${s.budget.period} budget (${status.window.id})`;
  const resets = new Date(status.window.endMs).toISOString();
  if (status.committedNano + amount <= s.limitNano) {
    // Only in-flight reservations are in the way: they settle (usually for less) within moments.
    return new GatewayError(
      "resource_exhausted",
      `budget: ${scopeName(s)} has ${usd(s.limitNano - status.committedNano)} left of its ${period}, but requests in flight hold ${usd(status.reservedNano)} ` +
        `and this request could cost up to ${usd(amount)}; retry shortly, or lower max_tokens to lower its worst case`,
      { retryAfterMs: 1000, openaiCode: "insufficient_quota" },
    );
  }
  return new GatewayError(
    "resource_exhausted",
    `budget exhausted: ${scopeName(s)} has spent ${usd(status.committedNano)} of its ${period}; this request could cost up to ${usd(amount)}` +
      `${amount > 0n ? " (lower max_tokens to lower its worst case)" : ""}; the budget resets at ${resets}`,
    { retryAfterMs: Math.max(1000, status.window.endMs - now), openaiCode: "insufficient_quota" },
  );
}

/** withDegradeAllowed lets a caller use its budget's degrade_to target even if its allow-list does not name it: the operator chose it. */
function withDegradeAllowed(rt: Runtime, caller: Caller, target: string): Caller {
  const ids = new Set([target, ...candidateIds(rt, target)]);
  return { ...caller, mayUse: (id) => ids.has(id) || caller.mayUse(id) };
}

const settleNothing = (): Promise<void> => Promise.resolve();

/** createAdmissionControl builds admission control with its own budget ledger. */
export function createAdmissionControl(options: AdmissionOptions = {}): AdmissionControl {
  const ledger = createBudgetLedger({ now: options.now });
  let local: StateStore | undefined;
  // A runtime built without a store (unit tests) still enforces limits, per process.
  const storeOf = (rt: Runtime): StateStore => rt.state ?? (local ??= createMemoryStore());

  async function reserveBudget(
    rt: Runtime,
    store: StateStore,
    scopes: readonly BudgetScope[],
    request: ChatRequest,
    caller: Caller,
    plan: RoutePlan,
    sizes: readonly CandidateTokens[],
  ): Promise<{ plan: RoutePlan; request: ChatRequest; degraded?: DegradeInfo; amount: bigint; release: (n: bigint) => Promise<void>; statuses: BudgetStatus[] }> {
    const id = newId();
    let amount = maxCostOf(plan, sizes, request);
    let r = await ledger.reserve(store, scopes, id, amount, reservationTtlMs(plan));
    // Past a soft limit, or when the worst case does not fit, a budget with degrade_to re-routes.
    const trigger = r.ok
      ? r.statuses.find((s) => s.scope.softNano !== undefined && s.committedNano >= s.scope.softNano && s.scope.budget.degrade_to !== undefined)
      : r.refused.find((s) => s.scope.budget.degrade_to !== undefined);
    const target = trigger?.scope.budget.degrade_to;
    if (trigger === undefined || target === undefined || target === request.model) {
      if (!r.ok) throw exhausted(r.refused[0]!, amount, ledger.now());
      return { plan, request, amount, release: r.release, statuses: r.statuses };
    }
    if (r.ok) await r.release(0n);
    const s = trigger.scope;
    const degradedRequest: ChatRequest = { ...request, model: target };
    const degraded = measureForRouting(rt, degradedRequest);
    const degradedPlan = resolveRoute(rt, degradedRequest, withDegradeAllowed(rt, caller, target), { promptTokens: degraded.promptTokens });
    const why = r.ok
      ? `${scopeName(s)} has spent ${usd(trigger.committedNano)} of its $${s.budget.usd} ${s.budget.period} budget (soft limit ${Math.round(s.budget.soft_limit! * 1000) / 10}%)`
      : `the worst case of "${request.model}" (${usd(amount)}) does not fit in what is left of ${scopeName(s)}'s $${s.budget.usd} ${s.budget.period} budget`;
    degradedPlan.reason = `degraded from "${request.model}" to "${target}" by budget: ${why}; ${degradedPlan.reason}`;
    amount = maxCostOf(degradedPlan, sizesOf(degradedPlan, degraded.measure, degradedRequest), degradedRequest);
    r = await ledger.reserve(store, scopes, id, amount, reservationTtlMs(degradedPlan));
    if (!r.ok) throw exhausted(r.refused[0]!, amount, ledger.now());
    return {
      plan: degradedPlan,
      request: degradedRequest,
      degraded: { reason: "budget", from: request.model, to: target, scope: `${s.kind} ${s.id}` },
      amount,
      release: r.release,
      statuses: r.statuses,
    };
  }

  return {
    ledger,

    async admit(rt, request, caller, onPlan) {
      const { measure, promptTokens } = measureForRouting(rt, request);
      const plan = resolveRoute(rt, request, caller, { promptTokens });
      onPlan?.(plan);
      const budgets = budgetScopes(rt.config, caller);
      const limits = limitScopes(rt.config, caller);
      if (budgets.length === 0 && limits.length === 0) {
        return { plan, request, reservedNano: 0n, settle: settleNothing };
      }
      const store = storeOf(rt);
      // Both are issued before either is awaited (with Redis, one round trip).
      const sizes = sizesOf(plan, measure, request);
      const limiting = acquireLimits(store, limits, tpmTokensOf(sizes));
      const reserving = budgets.length === 0 ? undefined : reserveBudget(rt, store, budgets, request, caller, plan, sizes);
      // A refusal by the limits is answered before the reservation is looked at: it must not go unhandled meanwhile.
      reserving?.catch(() => undefined);
      let ticket: LimitTicket;
      try {
        ticket = await limiting;
      } catch (err) {
        // The limit's refusal is the answer; a reservation made beside it is released.
        const made = await reserving?.catch(() => undefined);
        await made?.release(0n);
        throw err;
      }
      let held: Awaited<typeof reserving>;
      try {
        held = await reserving;
      } catch (err) {
        // Refused: the request used no tokens.
        await ticket.reconcile(0);
        throw err;
      }
      let settled = false;
      const admission: Admission = {
        plan: held?.plan ?? plan,
        request: held?.request ?? request,
        reservedNano: held?.amount ?? 0n,
        async settle(costNano, usage) {
          if (settled) return;
          settled = true;
          try {
            await Promise.all([held?.release(costNano), ticket.reconcile(tokensOf(usage))]);
          } catch (err) {
            options.logger?.error({ err, keyId: caller.keyId }, "could not settle a request's budget and limits in the state store");
          }
        },
      };
      if (held?.degraded !== undefined) admission.degraded = held.degraded;
      if (held !== undefined) admission.budgetRemainingNano = held.statuses.reduce((min, s) => (s.remainingNano < min ? s.remainingNano : min), held.statuses[0]!.remainingNano);
      return admission;
    },

    budgets: (rt, caller) => ledger.status(storeOf(rt), budgetScopes(rt.config, caller)),

    spend: (rt, caller) => spendReport(storeOf(rt), ledger, rt.config, caller),
  };
}
