import type { Capability, ChatRequest } from "../core/chat.js";
import { GatewayError } from "../core/errors.js";
import type { Deployment, Runtime } from "../core/runtime.js";
import type { SkippedRecord } from "../core/trace.js";
import type { Caller } from "../auth/keys.js";
import { computeCost } from "../pricing/cost.js";
import { estimatePromptTokens } from "../pricing/estimate.js";

/**
 * Candidate resolution: turn the requested model or route into the ordered
 * list of deployments to try, dropping those that cannot serve this request
 * (disabled provider, missing capability, window too small, provider not
 * allowed, over the cost cap) and recording why.
 */

/** RoutePlan is what the executor walks. */
export interface RoutePlan {
  /** route is the route id, or "" when a model was named. */
  route: string;
  strategy: string;
  reason: string;
  candidates: Deployment[];
  skipped: SkippedRecord[];
  /** promptTokens is the estimated prompt size used for filtering. */
  promptTokens: number;
}

/** requiredCapabilities lists what the request needs from a model: asked for, and implied by its content. */
export function requiredCapabilities(request: ChatRequest): Set<Capability> {
  const needs = new Set<Capability>(request.routing.requiredCapabilities ?? []);
  if ((request.tools?.length ?? 0) > 0) needs.add("tools");
  if (request.responseFormat?.type === "json_object") needs.add("json");
  if (request.responseFormat?.type === "json_schema") needs.add("json_schema");
  if (request.messages.some((m) => m.content.some((p) => p.type === "image"))) needs.add("vision");
  return needs;
}

/**
 * Ineligible says why a deployment cannot serve a request. "request" means
 * the request itself rules it out (too long, needs a capability, over the
 * cost cap); "deployment" means the deployment is unusable right now.
 */
export interface Ineligible {
  reason: string;
  kind: "request" | "deployment";
}

/** ineligibleReason says why a deployment cannot serve the request, or undefined when it can. */
export function ineligibleReason(
  d: Deployment,
  request: ChatRequest,
  needs: ReadonlySet<Capability>,
  promptTokens: number,
  caller: Caller,
): Ineligible | undefined {
  const no = (reason: string, kind: Ineligible["kind"] = "request"): Ineligible => ({ reason, kind });
  if (!d.enabled) return no(`provider ${d.provider.id} disabled: ${d.disabledReason ?? "unknown"}`, "deployment");
  if (!caller.mayUse(d.id) && !caller.mayUse(request.model)) return no(`key ${caller.keyId} may not use ${d.id}`);
  const r = request.routing;
  if ((r.allowedProviders?.length ?? 0) > 0 && !r.allowedProviders!.includes(d.provider.id)) return no(`provider ${d.provider.id} not in allowed_providers`);
  if (r.deniedProviders?.includes(d.provider.id) === true) return no(`provider ${d.provider.id} is in denied_providers`);
  for (const c of needs) if (!d.model.capabilities.includes(c)) return no(`lacks capability ${c}`);
  const output = Math.min(request.sampling.maxOutputTokens ?? 0, d.model.max_output_tokens);
  if (promptTokens + output > d.model.context_window) {
    return no(`context window ${d.model.context_window} < ${promptTokens + output} tokens needed`);
  }
  if (request.sampling.maxOutputTokens !== undefined && request.sampling.maxOutputTokens > d.model.max_output_tokens) {
    return no(`max_output_tokens ${request.sampling.maxOutputTokens} > model limit ${d.model.max_output_tokens}`);
  }
  if (r.maxCostNanoUsd !== undefined) {
    const worst = worstCaseCost(d, request, promptTokens);
    if (worst > r.maxCostNanoUsd) return no(`worst-case cost ${worst} nano-USD > max_cost ${r.maxCostNanoUsd}`);
  }
  return undefined;
}

/** worstCaseCost prices the request with its largest possible output. */
export function worstCaseCost(d: Deployment, request: ChatRequest, promptTokens: number): bigint {
  const outputTokens = request.sampling.maxOutputTokens ?? d.model.max_output_tokens;
  return computeCost(
    { inputTokens: promptTokens, outputTokens, cachedInputTokens: 0, cacheWriteInputTokens: 0, reasoningTokens: 0 },
    d.price,
    { batch: request.routing.priority === "batch" },
  ).total;
}

function weightedOrder<T>(items: Array<{ item: T; weight: number }>, random: () => number): T[] {
  // Efraimidis–Spirakis: sort by u^(1/w), a weighted random permutation in one pass.
  return items
    .map(({ item, weight }) => ({ item, key: Math.pow(random(), 1 / weight) }))
    .sort((a, b) => b.key - a.key)
    .map((x) => x.item);
}

/**
 * resolveRoute builds the plan for a request. It throws NotFound for an
 * unknown id (naming the known ones), PermissionDenied when the key may not
 * use it, and Unavailable when every candidate was filtered out.
 */
export function resolveRoute(runtime: Runtime, request: ChatRequest, caller: Caller, random: () => number = Math.random): RoutePlan {
  const id = request.model;
  const route = runtime.routes.get(id);
  const deployment = runtime.deployments.get(id);
  if (route === undefined && deployment === undefined) {
    const known = [...runtime.routes.keys(), ...runtime.deployments.keys()].filter((k) => caller.mayUse(k));
    const shown = known.slice(0, 20).join(", ") + (known.length > 20 ? `, … (${known.length} in all; see /v1/models)` : "");
    throw new GatewayError("not_found", `unknown model "${id}"; known models and routes: ${shown}`, {
      param: "model",
      openaiCode: "model_not_found",
    });
  }
  if (!caller.mayUse(id)) {
    throw new GatewayError("permission_denied", `key ${caller.keyId} is not allowed to use "${id}"`, { param: "model" });
  }
  const promptTokens = estimatePromptTokens(request);
  const needs = requiredCapabilities(request);
  const targets =
    route === undefined
      ? [{ model: id, weight: 1 }]
      : route.targets.map((t) => (typeof t === "string" ? { model: t, weight: 1 } : { model: t.model, weight: t.weight }));
  const skipped: SkippedRecord[] = [];
  let unusable = 0;
  const eligible: Array<{ item: Deployment; weight: number }> = [];
  for (const t of targets) {
    const d = runtime.deployments.get(t.model);
    if (d === undefined) continue;
    const why = ineligibleReason(d, request, needs, promptTokens, caller);
    if (why === undefined) {
      eligible.push({ item: d, weight: t.weight });
    } else {
      skipped.push({ model: d.id, reason: why.reason });
      if (why.kind === "deployment") unusable++;
    }
  }
  const strategy = route?.strategy ?? "direct";
  let candidates: Deployment[];
  let reason: string;
  switch (strategy) {
    case "weighted":
      candidates = weightedOrder(eligible, random);
      reason = "weighted random order";
      break;
    case "cheapest": {
      const priced = eligible.map((e) => ({ d: e.item, cost: worstCaseCost(e.item, request, promptTokens) }));
      priced.sort((a, b) => (a.cost < b.cost ? -1 : a.cost > b.cost ? 1 : 0));
      candidates = priced.map((p) => p.d);
      reason = `cheapest first by worst-case cost: ${priced.map((p) => `${p.d.id}=${p.cost}`).join(", ")}`;
      break;
    }
    default:
      candidates = eligible.map((e) => e.item);
      reason = route === undefined ? "model named directly" : `${strategy}: targets in listed order`;
  }
  if (candidates.length === 0) {
    const detail = skipped.map((s) => `${s.model}: ${s.reason}`).join("; ");
    // When the request itself rules out every candidate, it is the caller's to fix: say so with a 400.
    const callerFault = unusable === 0;
    const err = new GatewayError(callerFault ? "invalid_argument" : "unavailable", `no deployment of "${id}" can serve this request (${detail})`, {
      param: callerFault ? "messages" : undefined,
      openaiCode: skipped.every((s) => s.reason.startsWith("context window")) ? "context_length_exceeded" : undefined,
    });
    err.trace = { route: route?.id ?? "", strategy, reason: "every candidate was filtered out", attempts: [], skipped };
    throw err;
  }
  return { route: route?.id ?? "", strategy, reason, candidates, skipped, promptTokens };
}
