import type { Capability, ChatRequest } from "../core/chat.js";
import { routeTiers, type AutoTableConfig, type BreakerConfig, type RouteConfig, type RouteStrategy, type TaskClass } from "../config/schema.js";
import { GatewayError } from "../core/errors.js";
import type { Deployment, Runtime } from "../core/runtime.js";
import type { SkippedRecord } from "../core/trace.js";
import type { Caller } from "../auth/keys.js";
import { computeCost } from "../pricing/cost.js";
import { estimatePromptTokens } from "../pricing/estimate.js";
import { createMemoryStore } from "../state/memory-store.js";
import type { StateStore } from "../state/store.js";
import { classifyTask, type TaskVerdict } from "./classify.js";

/**
 * Candidate resolution: turn the requested model or route into the
 * ordered tiers of deployments to try, dropping those that cannot serve
 * this request (disabled provider, missing capability, window too small,
 * provider not allowed, over the cost cap, not allowed for the key) and
 * recording why.
 *
 * A route is an ordered list of tiers; within a tier a strategy orders the
 * targets: `fallback` as listed, `weighted` by a weighted random
 * permutation, `cheapest` by the worst-case cost of this request, `auto`
 * by the task classifier's table (the cheapest capable of the class's
 * ranked models first, then the rest by rank, then the tier's own
 * targets), and `fastest` as listed here — the executor orders it by the
 * latency statistics it reads from the shared store with the rest of the
 * candidates' health, in the same round trip. This module is pure and
 * synchronous: everything that changes from one request to the next
 * (breakers, rate limits, latencies) is the executor's.
 */

/** PlanTier is one tier of a plan: its strategy and its candidates in order. */
export interface PlanTier {
  strategy: RouteStrategy | "direct";
  candidates: Deployment[];
}

/** HedgePlan is a route's hedging: after how long without a first token the next candidate starts. */
export interface HedgePlan {
  /** afterMs is a fixed threshold, or "p95" for the running deployment's observed p95. */
  afterMs: number | "p95";
  /** max is the most hedges started for one request. */
  max: number;
  /** p95FallbackMs is the threshold while too little was observed for a p95. */
  p95FallbackMs: number;
}

/** RoutePlan is what the executor walks. */
export interface RoutePlan {
  /** route is the route id, or "" when a model was named. */
  route: string;
  /** strategy names the tiers' strategies, joined by ">" ("direct" for a model). */
  strategy: string;
  /** reason explains the order in words (the auto classifier's verdict included). */
  reason: string;
  /** candidates are every tier's candidates, in order. */
  candidates: Deployment[];
  tiers: PlanTier[];
  skipped: SkippedRecord[];
  /** promptTokens is the estimated prompt size used for filtering. */
  promptTokens: number;
  /** state is the shared state store (breakers, limits, latency). */
  state: StateStore;
  /** hedge is set when the route hedges. */
  hedge?: HedgePlan;
  /** maxAttemptsPerTarget overrides the providers' retry.max_retries + 1. */
  maxAttemptsPerTarget?: number;
  /** maxRetryWaitMs is the longest single backoff wait of an interactive request. */
  maxRetryWaitMs: number;
  /** batchMaxWaitMs is the longest a batch request waits for capacity. */
  batchMaxWaitMs: number;
  /** latencyHalfLifeMs is the half-life of recorded latency statistics. */
  latencyHalfLifeMs: number;
  /** taskClass is the auto classifier's verdict, when an auto tier ran it. */
  taskClass?: TaskClass;
  /** defaultBreaker is routing.breaker: the breaker of providers without their own block. */
  defaultBreaker?: Readonly<BreakerConfig>;
}

const localStates = new WeakMap<Runtime, StateStore>();

/** routingState is the runtime's shared state store, or, for a runtime built without one (tools, unit tests), an in-process one of its own. */
export function routingState(runtime: Runtime): StateStore {
  return runtime.state ?? localState(runtime);
}

function localState(runtime: Runtime): StateStore {
  let store = localStates.get(runtime);
  if (store === undefined) {
    // No sweep timer: keys expire when read, and the store goes away with its runtime.
    store = createMemoryStore({ sweepIntervalMs: 0 });
    localStates.set(runtime, store);
  }
  return store;
}

/** requiredCapabilities lists what the request needs from a model: asked for, and implied by its content. */
export function requiredCapabilities(request: ChatRequest): ReadonlySet<Capability> {
  const asked = request.routing.requiredCapabilities ?? [];
  const tools = (request.tools?.length ?? 0) > 0;
  const format = request.responseFormat?.type;
  const vision = request.messages.some((m) => m.content.some((p) => p.type === "image"));
  // A plain text request needs nothing: most requests share one empty set.
  if (asked.length === 0 && !tools && format !== "json_object" && format !== "json_schema" && !vision) return NO_NEEDS;
  const needs = new Set<Capability>(asked);
  if (tools) needs.add("tools");
  if (format === "json_object") needs.add("json");
  if (format === "json_schema") needs.add("json_schema");
  if (vision) needs.add("vision");
  return needs;
}

const NO_NEEDS: ReadonlySet<Capability> = new Set<Capability>();

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

function byCost(a: { cost: bigint }, b: { cost: bigint }): number {
  return a.cost < b.cost ? -1 : a.cost > b.cost ? 1 : 0;
}

/** Filtering state shared by every tier of one resolution. */
interface Filter {
  request: ChatRequest;
  caller: Caller;
  needs: ReadonlySet<Capability>;
  promptTokens: number;
  skipped: SkippedRecord[];
  /** placed holds ids already given a place (a model appears once per plan); judged caches each verdict. */
  placed: Set<string>;
  judged: Map<string, Ineligible | undefined>;
  unusable: number;
}

/** eligible returns the deployment of id when it may serve the request, recording the reason when not. */
function eligible(runtime: Runtime, f: Filter, id: string): Deployment | undefined {
  if (f.placed.has(id)) return undefined;
  const d = runtime.deployments.get(id);
  if (d === undefined) return undefined;
  if (!f.judged.has(id)) {
    const why = ineligibleReason(d, f.request, f.needs, f.promptTokens, f.caller);
    f.judged.set(id, why);
    if (why !== undefined) {
      f.skipped.push({ model: d.id, reason: why.reason });
      if (why.kind === "deployment") f.unusable++;
    }
  }
  return f.judged.get(id) === undefined ? d : undefined;
}

/** orderAuto orders an auto tier: the class's cheapest capable model, the rest of the class by rank, then the tier's targets. */
function orderAuto(
  runtime: Runtime,
  f: Filter,
  verdict: TaskVerdict,
  table: AutoTableConfig | undefined,
  tierTargets: string[],
): { candidates: Deployment[]; reason: string } {
  const ranked = table?.classes[verdict.taskClass] ?? [];
  const classPool = ranked.map((id) => eligible(runtime, f, id)).filter((d): d is Deployment => d !== undefined);
  const priced = classPool.map((d) => ({ d, cost: worstCaseCost(d, f.request, f.promptTokens) }));
  const head = `auto: task class "${verdict.taskClass}" (${verdict.reasons.join("; ")})`;
  const rest = (exclude: Set<string>) =>
    tierTargets
      .filter((id) => !exclude.has(id))
      .map((id) => eligible(runtime, f, id))
      .filter((d): d is Deployment => d !== undefined)
      .map((d) => ({ d, cost: worstCaseCost(d, f.request, f.promptTokens) }))
      .sort(byCost);
  if (priced.length === 0) {
    const fallback = rest(new Set());
    const why = ranked.length === 0 ? "no ranked models for this class" : `none of the class's models [${ranked.join(", ")}] is capable`;
    return {
      candidates: fallback.map((p) => p.d),
      reason: `${head}; ${why}: route targets cheapest first (${fallback.map((p) => `${p.d.id}=${p.cost}`).join(", ")})`,
    };
  }
  const cheapest = priced.reduce((best, p) => (p.cost < best.cost ? p : best));
  const ordered = [cheapest.d, ...classPool.filter((d) => d !== cheapest.d)];
  const seen = new Set(ordered.map((d) => d.id));
  const others = rest(seen);
  return {
    candidates: [...ordered, ...others.map((p) => p.d)],
    reason:
      `${head}; ranked [${ranked.join(", ")}]; chose ${cheapest.d.id}, the cheapest capable at ${cheapest.cost} nano-USD worst case ` +
      `(${priced.map((p) => `${p.d.id}=${p.cost}`).join(", ")})` +
      (others.length > 0 ? `; then route targets ${others.map((p) => p.d.id).join(", ")}` : ""),
  };
}

/** ResolveOptions are resolveRoute's optional inputs. */
export interface ResolveOptions {
  /** random drives weighted orders (tests seed it; default Math.random). */
  random?: () => number;
  /** promptTokens is the prompt's size as the gateway measured it (default: the fast approximation). */
  promptTokens?: number;
}

/**
 * resolveRoute builds the plan for a request. It throws NotFound for an
 * unknown id (naming the known ones), PermissionDenied when the key may not
 * use it, and InvalidArgument or Unavailable when every candidate was
 * filtered out (the request's fault, or the deployments').
 */
export function resolveRoute(runtime: Runtime, request: ChatRequest, caller: Caller, options: ResolveOptions = {}): RoutePlan {
  const random = options.random ?? Math.random;
  const id = request.model;
  const route: RouteConfig | undefined = runtime.routes.get(id);
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
  const promptTokens = options.promptTokens ?? estimatePromptTokens(request);
  const f: Filter = {
    request,
    caller,
    needs: requiredCapabilities(request),
    promptTokens,
    skipped: [],
    placed: new Set(),
    judged: new Map(),
    unusable: 0,
  };
  const tiers: PlanTier[] = [];
  const reasons: string[] = [];
  let verdict: TaskVerdict | undefined;
  if (route === undefined) {
    // A model named directly (most requests): one tier of one deployment, without a route's machinery.
    const d = eligible(runtime, f, id);
    tiers.push({ strategy: "direct", candidates: d === undefined ? [] : [d] });
    reasons.push("model named directly");
  }
  const tierConfigs = route === undefined ? [] : routeTiers(route);
  for (let k = 0; k < tierConfigs.length; k++) {
    const tier = tierConfigs[k]!;
    const targets = tier.targets.map((t) => (typeof t === "string" ? { model: t, weight: 1 } : { model: t.model, weight: t.weight }));
    let candidates: Deployment[];
    let reason: string;
    if (tier.strategy === "auto") {
      verdict ??= classifyTask(request, promptTokens);
      const table = route?.auto ?? runtime.config.routing.auto;
      ({ candidates, reason } = orderAuto(runtime, f, verdict, table, targets.map((t) => t.model)));
    } else {
      const pool: Array<{ item: Deployment; weight: number }> = [];
      for (const t of targets) {
        const d = eligible(runtime, f, t.model);
        if (d !== undefined) pool.push({ item: d, weight: t.weight });
      }
      switch (tier.strategy) {
        case "weighted":
          candidates = weightedOrder(pool, random);
          reason = `weighted random order (${targets.map((t) => `${t.model}×${t.weight}`).join(", ")})`;
          break;
        case "cheapest": {
          const priced = pool.map((e) => ({ d: e.item, cost: worstCaseCost(e.item, request, promptTokens) })).sort(byCost);
          candidates = priced.map((p) => p.d);
          reason = `cheapest first by worst-case cost: ${priced.map((p) => `${p.d.id}=${p.cost}`).join(", ")}`;
          break;
        }
        case "fastest":
          candidates = pool.map((e) => e.item);
          reason = "fastest first by observed latency";
          break;
        default:
          candidates = pool.map((e) => e.item);
          reason = `${tier.strategy}: targets in listed order`;
      }
    }
    for (const d of candidates) f.placed.add(d.id);
    tiers.push({ strategy: tier.strategy, candidates });
    reasons.push(tierConfigs.length > 1 ? `tier ${k + 1} ${reason}` : reason);
  }
  const strategy = tiers.length === 1 ? tiers[0]!.strategy : tiers.map((t) => t.strategy).join(">");
  const candidates = tiers.length === 1 ? tiers[0]!.candidates : tiers.flatMap((t) => t.candidates);
  if (candidates.length === 0) {
    const detail = f.skipped.map((s) => `${s.model}: ${s.reason}`).join("; ");
    // When the request itself rules out every candidate, it is the caller's to fix: say so with a 400.
    const callerFault = f.unusable === 0;
    const err = new GatewayError(callerFault ? "invalid_argument" : "unavailable", `no deployment of "${id}" can serve this request (${detail})`, {
      param: callerFault ? "messages" : undefined,
      openaiCode: f.skipped.every((s) => s.reason.startsWith("context window")) ? "context_length_exceeded" : undefined,
    });
    err.trace = { route: route?.id ?? "", strategy, reason: "every candidate was filtered out", attempts: [], skipped: f.skipped };
    throw err;
  }
  const routing = runtime.config.routing;
  const hedge = route?.hedge;
  return {
    route: route?.id ?? "",
    strategy,
    reason: reasons.join("; "),
    candidates,
    tiers,
    skipped: f.skipped,
    promptTokens,
    state: routingState(runtime),
    hedge: hedge === undefined ? undefined : { afterMs: hedge.after_ms, max: hedge.max, p95FallbackMs: hedge.p95_fallback_ms },
    maxAttemptsPerTarget: route?.retry?.max_attempts_per_target,
    maxRetryWaitMs: route?.retry?.max_wait_ms ?? routing.max_retry_wait_ms,
    batchMaxWaitMs: routing.batch_max_wait_ms,
    latencyHalfLifeMs: routing.latency_half_life_ms,
    taskClass: verdict?.taskClass,
    defaultBreaker: routing.breaker,
  };
}
