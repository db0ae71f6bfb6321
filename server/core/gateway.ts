import type { Logger } from "pino";
import type { Caller } from "../auth/keys.js";
import { computeCost, type CostBreakdown } from "../pricing/cost.js";
import { executeComplete, executeStream, type StreamOutcome } from "../router/execute.js";
import { resolveRoute } from "../router/resolve.js";
import type { ChatRequest, ChatResult, FinishReason, StreamChunk, Usage } from "./chat.js";
import { GatewayError, type UpstreamError } from "./errors.js";
import { newId } from "./ids.js";
import type { Deployment, Runtime } from "./runtime.js";
import type { RouteTraceRecord } from "./trace.js";
import type { GatewayMetrics } from "../telemetry/metrics.js";

/**
 * The gateway core: the one pipeline both edges call. It resolves the
 * route, executes it with failover, prices the result, and writes one log
 * line per request. The edges only translate wire formats to and from it.
 */

/** RequestContext is what an edge knows about a request before the core sees it. */
export interface RequestContext {
  requestId: string;
  /** edge is which protocol the request came in on. */
  edge: "rpc" | "rest";
  caller: Caller;
  /** signal aborts when the caller leaves or its deadline passes. */
  signal: AbortSignal;
  /** startedAt is performance.now() when the request arrived. */
  startedAt: number;
}

/** CompleteOutcome is a whole answer, priced and traced. */
export interface CompleteOutcome {
  id: string;
  result: ChatResult;
  deployment: Deployment;
  trace: RouteTraceRecord;
  cost: CostBreakdown;
}

/** GatewayStreamEvent is what a streamed request yields to an edge. */
export type GatewayStreamEvent =
  | { type: "start"; id: string; deployment: Deployment; attempts: number }
  | { type: "chunk"; chunk: StreamChunk }
  | {
      type: "end";
      finishReason: FinishReason;
      usage: Usage;
      cost: CostBreakdown;
      trace: RouteTraceRecord;
      /** error is set when the upstream failed after the stream started. */
      error?: UpstreamError;
    };

/** Gateway is the core pipeline. */
export interface Gateway {
  /** runtime is the configuration in force now. */
  runtime(): Runtime;
  /** swap puts a new runtime in force and retires the old one once its requests finish. */
  swap(next: Runtime): void;
  /** authenticate checks an Authorization header against the current keys. */
  authenticate(authorization: string | undefined): Caller;
  /** complete answers a request whole. */
  complete(request: ChatRequest, ctx: RequestContext): Promise<CompleteOutcome>;
  /** stream answers a request as a stream; the first next() rejects if nothing could start. */
  stream(request: ChatRequest, ctx: RequestContext): AsyncGenerator<GatewayStreamEvent>;
}

/** withBudget bounds a request's signal by its latency budget, if it has one. */
function withBudget(signal: AbortSignal, request: ChatRequest): AbortSignal {
  const budget = request.routing.latencyBudgetMs;
  return budget === undefined ? signal : AbortSignal.any([signal, AbortSignal.timeout(budget)]);
}

/** createGateway builds the core around an initial runtime; metrics, when given, get one observation per request. */
export function createGateway(initial: Runtime, logger: Logger, metrics?: GatewayMetrics): Gateway {
  let current = initial;

  function logRequest(
    ctx: RequestContext,
    request: ChatRequest,
    fields: {
      status: string;
      deployment?: Deployment;
      trace?: RouteTraceRecord;
      usage?: Usage;
      cost?: CostBreakdown;
      ttftMs?: number;
      error?: string;
      stream: boolean;
    },
  ): void {
    const u = fields.usage;
    const durationMs = performance.now() - ctx.startedAt;
    metrics?.observeRequest({
      edge: ctx.edge,
      keyId: ctx.caller.keyId,
      // Label only configured ids: a caller must not be able to mint label values (cardinality).
      model: fields.deployment?.id ?? (current.deployments.has(request.model) || current.routes.has(request.model) ? request.model : "(unknown)"),
      provider: fields.deployment?.provider.id ?? "",
      status: fields.status,
      stream: fields.stream,
      durationMs,
      ttftMs: fields.ttftMs,
      inputTokens: u?.inputTokens,
      outputTokens: u?.outputTokens,
      cachedInputTokens: u?.cachedInputTokens,
      reasoningTokens: u?.reasoningTokens,
      costNanoUsd: fields.cost?.total,
      attempts: fields.trace?.attempts ?? [],
    });
    if (!logger.isLevelEnabled("info")) return;
    logger.info(
      {
        requestId: ctx.requestId,
        edge: ctx.edge,
        keyId: ctx.caller.keyId,
        stream: fields.stream,
        model: request.model,
        resolvedModel: fields.deployment?.id,
        provider: fields.deployment?.provider.id,
        attempts: fields.trace?.attempts.length ?? 0,
        status: fields.status,
        latencyMs: Math.round(durationMs),
        ttftMs: fields.ttftMs,
        inputTokens: u?.inputTokens,
        outputTokens: u?.outputTokens,
        cachedInputTokens: u?.cachedInputTokens,
        reasoningTokens: u?.reasoningTokens,
        costNanoUsd: fields.cost?.total.toString(),
        error: fields.error,
      },
      "request",
    );
  }

  function errorStatus(err: unknown): string {
    return err instanceof GatewayError ? err.code : "internal";
  }

  return {
    runtime: () => current,

    swap(next) {
      const old = current;
      current = next;
      void old.retire();
    },

    authenticate: (authorization) => current.auth.authenticate(authorization),

    async complete(request, ctx) {
      const rt = current;
      const release = rt.acquire();
      const signal = withBudget(ctx.signal, request);
      try {
        const plan = resolveRoute(rt, request, ctx.caller);
        const { result, deployment, trace } = await executeComplete(plan, request, signal);
        const cost = computeCost(result.usage, deployment.price, { batch: request.routing.priority === "batch" });
        logRequest(ctx, request, { status: "ok", deployment, trace, usage: result.usage, cost, stream: false });
        return { id: newId(), result, deployment, trace, cost };
      } catch (err) {
        logRequest(ctx, request, {
          status: errorStatus(err),
          trace: (err as GatewayError).trace as RouteTraceRecord | undefined,
          error: (err as Error).message,
          stream: false,
        });
        throw err;
      } finally {
        release();
      }
    },

    async *stream(request, ctx) {
      const rt = current;
      const release = rt.acquire();
      const signal = withBudget(ctx.signal, request);
      let logged = false;
      try {
        const plan = resolveRoute(rt, request, ctx.caller);
        const id = newId();
        const settle = (o: StreamOutcome): CostBreakdown => {
          const cost = computeCost(o.usage, o.deployment.price, { batch: request.routing.priority === "batch" });
          logRequest(ctx, request, {
            status: o.error === undefined ? "ok" : o.error.errorClass === "cancelled" ? "canceled" : `upstream_${o.error.errorClass}`,
            deployment: o.deployment,
            trace: o.trace,
            usage: o.usage,
            cost,
            ttftMs: o.timeToFirstTokenMs,
            error: o.error?.message,
            stream: true,
          });
          logged = true;
          return cost;
        };
        for await (const e of executeStream(plan, request, signal, ctx.startedAt, settle)) {
          if (e.type === "start") {
            yield { type: "start", id, deployment: e.deployment, attempts: e.attempts };
          } else if (e.type === "chunk") {
            yield e;
          } else {
            const o = e.outcome;
            const cost = settle(o);
            yield { type: "end", finishReason: o.finishReason, usage: o.usage, cost, trace: o.trace, error: o.error };
          }
        }
      } catch (err) {
        logRequest(ctx, request, {
          status: errorStatus(err),
          trace: (err as GatewayError).trace as RouteTraceRecord | undefined,
          error: (err as Error).message,
          stream: true,
        });
        logged = true;
        throw err;
      } finally {
        if (!logged) logRequest(ctx, request, { status: "canceled", stream: true });
        release();
      }
    },
  };
}
