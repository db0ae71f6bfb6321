import type { Caller } from "../auth/keys.js";
import type { ChatRequest } from "../core/chat.js";
import { GatewayError } from "../core/errors.js";
import type { Runtime } from "../core/runtime.js";
import { computeCost } from "../pricing/cost.js";
import { estimatePromptTokens } from "../pricing/estimate.js";
import { ineligibleReason, requiredCapabilities } from "./resolve.js";

/**
 * Cost estimates before a call: every candidate of a model or route with
 * its estimated prompt size, expected and worst-case output, the cost of
 * each, and whether the router could use it. Prices go through the same
 * computeCost as bills, so an estimate and the bill for the same token
 * counts agree to the nano-dollar.
 */

/** CandidateEstimate is one candidate's estimate. */
export interface CandidateEstimate {
  model: string;
  provider: string;
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

/** estimateCandidates prices a request on every candidate, cheapest expected cost first. */
export function estimateCandidates(runtime: Runtime, request: ChatRequest, caller: Caller): CandidateEstimate[] {
  const route = runtime.routes.get(request.model);
  const ids = route !== undefined ? route.targets.map((t) => (typeof t === "string" ? t : t.model)) : [request.model];
  if (route === undefined && !runtime.deployments.has(request.model)) {
    throw new GatewayError("not_found", `unknown model "${request.model}"`, { param: "model", openaiCode: "model_not_found" });
  }
  if (!caller.mayUse(request.model)) {
    throw new GatewayError("permission_denied", `key ${caller.keyId} is not allowed to use "${request.model}"`, { param: "model" });
  }
  const promptTokens = estimatePromptTokens(request);
  const needs = requiredCapabilities(request);
  const batch = request.routing.priority === "batch";
  const out: CandidateEstimate[] = [];
  for (const id of ids) {
    const d = runtime.deployments.get(id);
    if (d === undefined) continue;
    const maxOut = Math.min(request.sampling.maxOutputTokens ?? d.model.max_output_tokens, d.model.max_output_tokens);
    const expectedOut = Math.min(maxOut, TYPICAL_OUTPUT_TOKENS);
    const usage = (outputTokens: number) => ({ inputTokens: promptTokens, outputTokens, cachedInputTokens: 0, cacheWriteInputTokens: 0, reasoningTokens: 0 });
    const why = ineligibleReason(d, request, needs, promptTokens, caller);
    out.push({
      model: d.id,
      provider: d.provider.id,
      inputTokens: promptTokens,
      expectedOutputTokens: expectedOut,
      maxOutputTokens: maxOut,
      expectedCostNanoUsd: computeCost(usage(expectedOut), d.price, { batch }).total,
      maxCostNanoUsd: computeCost(usage(maxOut), d.price, { batch }).total,
      eligible: why === undefined,
      ineligibleReason: why?.reason ?? "",
    });
  }
  return out.sort((a, b) => (a.expectedCostNanoUsd < b.expectedCostNanoUsd ? -1 : a.expectedCostNanoUsd > b.expectedCostNanoUsd ? 1 : 0));
}
