import type { Caller } from "../auth/keys.js";
import { routeTargetIds } from "../config/schema.js";
import type { BudgetStatus } from "../budgets/ledger.js";
import type { ChatRequest, Usage } from "../core/chat.js";
import { GatewayError } from "../core/errors.js";
import type { Deployment, Runtime } from "../core/runtime.js";
import { computeCost, costOptionsFor, nanoToUsdString } from "../pricing/cost.js";
import { measurePrompt, promptTokensFor, type PromptMeasure } from "../pricing/estimate.js";
import { tokenizerFamily, type TokenizerFamily } from "../pricing/families.js";
import type { Encoding } from "../pricing/text-tokens.js";
import { ineligibleReason, requiredCapabilities } from "./resolve.js";

/**
 * Cost estimates before a call: every candidate of a model or route with
 * its estimated prompt size (counted the way that candidate's provider
 * counts), expected and worst-case output, the cost of each, and whether
 * the router could use it and why not. Costs go through computeCost, the
 * function that bills responses, with the same options (costOptionsFor):
 * an estimate is the bill for its token counts, to the nano-dollar. The
 * gateway's budget reservation uses candidateCost too, so the worst case
 * EstimateCost shows is exactly what a request reserves.
 */

/** CandidateEstimate is one candidate's estimate. */
export interface CandidateEstimate {
  model: string;
  provider: string;
  /** tokenizer is the tokenizer family the input was counted for. */
  tokenizer: TokenizerFamily;
  inputTokens: number;
  expectedOutputTokens: number;
  maxOutputTokens: number;
  expectedCostNanoUsd: bigint;
  maxCostNanoUsd: bigint;
  eligible: boolean;
  ineligibleReason: string;
}

/** TYPICAL_OUTPUT_TOKENS is the expected answer size when the request does not bound it lower. */
export const TYPICAL_OUTPUT_TOKENS = 512;

/**
 * reasoningAllowance is the extra output expected from a reasoning model,
 * by effort (its reasoning tokens are billed as output); "medium" when the
 * request does not say. These are planning figures, not provider limits.
 */
export const reasoningAllowance: Readonly<Record<"minimal" | "low" | "medium" | "high", number>> = {
  minimal: 0,
  low: 1024,
  medium: 4096,
  high: 16384,
};

/** CandidateCost is a request priced on one deployment. */
export interface CandidateCost {
  tokenizer: TokenizerFamily;
  inputTokens: number;
  expectedOutputTokens: number;
  maxOutputTokens: number;
  expectedCostNanoUsd: bigint;
  maxCostNanoUsd: bigint;
}

function usage(inputTokens: number, outputTokens: number): Usage {
  return { inputTokens, outputTokens, cachedInputTokens: 0, cacheWriteInputTokens: 0, reasoningTokens: 0 };
}

/** CandidateTokens is a request's token counts on one deployment (CandidateCost without the prices). */
export type CandidateTokens = Omit<CandidateCost, "expectedCostNanoUsd" | "maxCostNanoUsd">;

const families = new WeakMap<Deployment, TokenizerFamily>();

/** familyOf is the tokenizer family that counts a deployment's tokens (worked out once per deployment). */
export function familyOf(d: Deployment): TokenizerFamily {
  let family = families.get(d);
  if (family === undefined) {
    family = tokenizerFamily(d.provider.type, d.upstreamModel);
    families.set(d, family);
  }
  return family;
}

/**
 * candidateTokens sizes a measured request on a deployment: its prompt as
 * that deployment's tokenizer counts it, the most output the request
 * allows (max_output_tokens, else the model's limit), and a typical answer
 * (plus reasoning for reasoning models).
 */
export function candidateTokens(d: Deployment, measure: PromptMeasure, request: ChatRequest): CandidateTokens {
  const tokenizer = familyOf(d);
  const inputTokens = promptTokensFor(measure, tokenizer, d.upstreamModel);
  const maxOut = Math.min(request.sampling.maxOutputTokens ?? d.model.max_output_tokens, d.model.max_output_tokens);
  const reasoning = d.model.capabilities.includes("reasoning") ? reasoningAllowance[request.sampling.reasoningEffort ?? "medium"] : 0;
  return { tokenizer, inputTokens, expectedOutputTokens: Math.min(maxOut, TYPICAL_OUTPUT_TOKENS + reasoning), maxOutputTokens: maxOut };
}

/**
 * worstCaseOf prices a request's worst case on a deployment: its whole
 * prompt and the most output it allows, with no cache hits assumed. It is
 * candidateCost's maxCostNanoUsd, without pricing the expected case.
 */
export function worstCaseOf(d: Deployment, t: CandidateTokens, request: ChatRequest): bigint {
  return computeCost(usage(t.inputTokens, t.maxOutputTokens), d.price, costOptionsFor(request)).total;
}

/**
 * candidateCost prices a measured request on a deployment: worst case with
 * the most output the request allows, expected case with a typical answer
 * (candidateTokens). No cache hits are assumed, so the estimate is an upper
 * bound for the input side.
 */
export function candidateCost(d: Deployment, measure: PromptMeasure, request: ChatRequest): CandidateCost {
  const t = candidateTokens(d, measure, request);
  return {
    ...t,
    expectedCostNanoUsd: computeCost(usage(t.inputTokens, t.expectedOutputTokens), d.price, costOptionsFor(request)).total,
    maxCostNanoUsd: worstCaseOf(d, t, request),
  };
}

/** encodingsFor lists the exact encodings worth counting for a set of deployments (o200k always: it is the base for the others). */
export function encodingsFor(deployments: Iterable<Deployment>): Encoding[] {
  const out = new Set<Encoding>(["o200k_base"]);
  for (const d of deployments) if (familyOf(d) === "cl100k") out.add("cl100k_base");
  return [...out];
}

/** EstimateOptions add what only the gateway knows. */
export interface EstimateOptions {
  /** budgets are the caller's budgets now; a candidate whose worst case exceeds what remains is ineligible. */
  budgets?: readonly BudgetStatus[];
}

/** candidateIds lists a model's or route's candidate ids; it throws NotFound for an unknown id. */
export function candidateIds(runtime: Runtime, model: string): string[] {
  const route = runtime.routes.get(model);
  if (route !== undefined) return routeTargetIds(route);
  if (runtime.deployments.has(model)) return [model];
  const known = [...runtime.routes.keys(), ...runtime.deployments.keys()];
  const shown = known.slice(0, 20).join(", ") + (known.length > 20 ? `, … (${known.length} in all; see /v1/models)` : "");
  throw new GatewayError("not_found", `unknown model "${model}"; known models and routes: ${shown}`, { param: "model", openaiCode: "model_not_found" });
}

const candidatesOf = new WeakMap<Runtime, Map<string, readonly Deployment[]>>();

/**
 * candidateDeployments lists the configured deployments a model id or route
 * may use (candidateIds, resolved). A runtime never changes, so the list is
 * built once per id; an unknown id throws NotFound as candidateIds does.
 */
export function candidateDeployments(runtime: Runtime, model: string): readonly Deployment[] {
  let byModel = candidatesOf.get(runtime);
  if (byModel === undefined) {
    byModel = new Map();
    candidatesOf.set(runtime, byModel);
  }
  let list = byModel.get(model);
  if (list === undefined) {
    list = candidateIds(runtime, model)
      .map((id) => runtime.deployments.get(id))
      .filter((d): d is Deployment => d !== undefined);
    byModel.set(model, list);
  }
  return list;
}

function budgetReason(maxCost: bigint, budgets: readonly BudgetStatus[]): string | undefined {
  for (const b of budgets) {
    if (maxCost > b.remainingNano) {
      const s = b.scope;
      return (
        `budget: worst-case cost $${nanoToUsdString(maxCost)} exceeds the $${nanoToUsdString(b.remainingNano)} left in ${s.kind} "${s.id}"'s ` +
        `$${s.budget.usd} ${s.budget.period} budget (resets ${new Date(b.window.endMs).toISOString()})`
      );
    }
  }
  return undefined;
}

/**
 * estimateCandidates prices a request on every candidate, cheapest
 * expected cost first (then cheapest worst case). The prompt is counted
 * with the real tokenizer (see pricing/estimate.ts). A model or route the
 * key may not use is still estimated, each candidate marked ineligible.
 */
export function estimateCandidates(runtime: Runtime, request: ChatRequest, caller: Caller, options: EstimateOptions = {}): CandidateEstimate[] {
  const deployments = candidateDeployments(runtime, request.model);
  const measure = measurePrompt(request, { exact: encodingsFor(deployments) });
  const needs = requiredCapabilities(request);
  const allowed = caller.mayUse(request.model);
  const out: CandidateEstimate[] = [];
  for (const d of deployments) {
    const c = candidateCost(d, measure, request);
    let why: string | undefined = allowed ? undefined : `key ${caller.keyId} is not allowed to use "${request.model}"`;
    why ??= ineligibleReason(d, request, needs, c.inputTokens, caller)?.reason;
    why ??= budgetReason(c.maxCostNanoUsd, options.budgets ?? []);
    out.push({
      model: d.id,
      provider: d.provider.id,
      ...c,
      eligible: why === undefined,
      ineligibleReason: why ?? "",
    });
  }
  const cmp = (a: bigint, b: bigint) => (a < b ? -1 : a > b ? 1 : 0);
  return out.sort((a, b) => cmp(a.expectedCostNanoUsd, b.expectedCostNanoUsd) || cmp(a.maxCostNanoUsd, b.maxCostNanoUsd));
}
