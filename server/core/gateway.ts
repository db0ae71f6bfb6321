import type { Logger } from "pino";
import type { Caller } from "../auth/keys.js";
import { createAdmissionControl, type Admission, type DegradeInfo } from "../budgets/admission.js";
import type { SpendReport } from "../budgets/spend.js";
import { addCost, computeCost, costOptionsFor, type CostBreakdown } from "../pricing/cost.js";
import { estimateCandidates, type CandidateEstimate } from "../router/estimate.js";
import {
  afterAnswer,
  executeComplete,
  executeStream,
  latencyReaders,
  prefetchRoute,
  type ExecOptions,
  type ExecStreamEvent,
  type ExtraUsage,
  type RoutePrefetch,
  type StreamOutcome,
} from "../router/execute.js";
import type { ChatRequest, ChatResult, FinishReason, StreamChunk, Usage } from "./chat.js";
import { withTimeout, type Bounded, type Cancellation } from "./cancel.js";
import { SteppedIterator } from "./stepped-iterator.js";
import { GatewayError, type UpstreamError } from "./errors.js";
import { newId } from "./ids.js";
import type { Deployment, Runtime } from "./runtime.js";
import type { RouteTraceRecord } from "./trace.js";
import type { GatewayMetrics } from "../telemetry/metrics.js";
import { recordRequestSpan, type TraceHeaders } from "../telemetry/tracing.js";
import { writeInfoLine } from "../telemetry/logger.js";
import { requestLineJson } from "../telemetry/request-line.js";

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
  signal: Cancellation;
  /** startedAt is performance.now() when the request arrived. */
  startedAt: number;
  /** deadlineAt is performance.now() when the caller's own deadline (an RPC deadline) passes, if it set one. */
  deadlineAt?: number;
  /** traceHeaders are the caller's W3C trace-context headers, to parent the request's span. */
  traceHeaders?: TraceHeaders;
}

/** CompleteOutcome is a whole answer, priced and traced. */
export interface CompleteOutcome {
  id: string;
  result: ChatResult;
  deployment: Deployment;
  trace: RouteTraceRecord;
  cost: CostBreakdown;
  /** degraded is set when a budget's soft limit re-routed the request. */
  degraded?: DegradeInfo;
  /** budgetRemainingNano is the least budget left across the caller's budgets, as of this request; unset without budgets. */
  budgetRemainingNano?: bigint;
}

/** GatewayStreamEvent is what a streamed request yields to an edge. */
export type GatewayStreamEvent =
  | { type: "start"; id: string; deployment: Deployment; attempts: number; degraded?: DegradeInfo; budgetRemainingNano?: bigint }
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

/** StreamEvents are a streamed request's events; an edge that leaves early calls return(), which cancels and bills it. */
export interface StreamEvents extends AsyncIterableIterator<GatewayStreamEvent> {
  return(): Promise<IteratorResult<GatewayStreamEvent, undefined>>;
}

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
  stream(request: ChatRequest, ctx: RequestContext): StreamEvents;
  /** estimate prices a request on every candidate (EstimateCost), marking those the caller's budget cannot afford. */
  estimate(request: ChatRequest, caller: Caller): Promise<CandidateEstimate[]>;
  /** spend reports the caller's and its team's budgets and limit usage. */
  spend(caller: Caller): Promise<SpendReport>;
}

/** GatewayOptions are the core's optional settings. */
export interface GatewayOptions {
  /** now is the clock budget periods follow (default Date.now); tests inject one. */
  now?: () => number;
}

/** withBudget bounds a request's signal by its latency budget; undefined when it has none (the caller's signal serves as is). */
function withBudget(signal: Cancellation, request: ChatRequest): Bounded | undefined {
  const budget = request.routing.latencyBudgetMs;
  return budget === undefined ? undefined : withTimeout(signal, budget);
}

/**
 * priceAttempts prices the answer plus what other attempts consumed (a
 * hedge that lost still used its provider's tokens).
 */
function priceAttempts(usage: Usage, deployment: Deployment, extra: readonly ExtraUsage[], request: ChatRequest): CostBreakdown {
  const options = costOptionsFor(request);
  let cost = computeCost(usage, deployment.price, options);
  for (const x of extra) cost = addCost(cost, computeCost(x.usage, x.deployment.price, options));
  return cost;
}

/** createGateway builds the core around an initial runtime; metrics, when given, get one observation per request. */
export function createGateway(initial: Runtime, logger: Logger, metrics?: GatewayMetrics, options: GatewayOptions = {}): Gateway {
  let current = initial;
  // Budgets and per-key limits: checked and reserved before routing, settled after (budgets/admission.ts).
  const admission = createAdmissionControl({ now: options.now, logger });

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
      degraded?: DegradeInfo;
      /** usageEstimated is true when the upstream never reported usage and the gateway billed its estimate. */
      usageEstimated?: boolean;
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
    recordRequestSpan({
      headers: ctx.traceHeaders,
      startEpochMs: Date.now() - durationMs,
      edge: ctx.edge,
      requestId: ctx.requestId,
      keyId: ctx.caller.keyId,
      requestedModel: request.model,
      model: fields.deployment?.id,
      provider: fields.deployment?.provider.id,
      stream: fields.stream,
      status: fields.status,
      inputTokens: u?.inputTokens,
      outputTokens: u?.outputTokens,
      costNanoUsd: fields.cost?.total,
      error: fields.error,
      attempts: fields.trace?.attempts ?? [],
    });
    if (!logger.isLevelEnabled("info")) return;
    writeInfoLine(
      logger,
      requestLineJson({
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
        usageEstimated: fields.usageEstimated,
        costNanoUsd: fields.cost?.total,
        degradedTo: fields.degraded?.to,
        error: fields.error,
      }),
      "request",
    );
  }

  /**
   * settleAndLog settles a request and writes its request line and metrics
   * once the answer is on its way (afterAnswer), so neither delays it. A
   * failure to log is reported, never allowed to skip the settlement or
   * the runtime's release that waits on it.
   */
  function settleAndLog(settle: () => Promise<void>, log: () => void): Promise<void> {
    return afterAnswer(() => {
      const settling = settle();
      try {
        log();
      } catch (err) {
        logger.error({ err }, "could not write a request's log line or metrics");
      }
      return settling;
    });
  }

  const onStateError = (err: unknown) => logger.warn({ err }, "state store bookkeeping failed (routing continues)");

  /**
   * execOptions tells the executor the request's start and its deadline (the
   * latency budget or the caller's, whichever is first), the reads started
   * beside admission, and whose latency any route reads.
   */
  function execOptions(ctx: RequestContext, request: ChatRequest, rt: Runtime, prefetch: RoutePrefetch | undefined): ExecOptions {
    const budget = request.routing.latencyBudgetMs;
    const deadlineAt = Math.min(ctx.deadlineAt ?? Infinity, budget === undefined ? Infinity : ctx.startedAt + budget);
    return { startedAt: ctx.startedAt, deadlineAt, onStateError, prefetch, sharedLatency: latencyReaders(rt.config) };
  }

  function errorStatus(err: unknown): string {
    return err instanceof GatewayError ? err.code : "internal";
  }

  /**
   * GatewayStream is one streamed request: admission, then the executor's
   * events, mapped for the edge, with the request settled and logged
   * exactly once however it ends (finished, failed, refused or abandoned).
   * A SteppedIterator: its chunk state runs once per streamed chunk.
   */
  class GatewayStream extends SteppedIterator<GatewayStreamEvent> implements StreamEvents {
    /** new: not begun; open: admitted, events flowing; done: over (release below has run). */
    private phase: "new" | "open" | "done" = "new";
    private release: () => void = () => {};
    private bounded: Bounded | undefined;
    private admitted: Admission | undefined;
    private prefetch: RoutePrefetch | undefined;
    private exec: AsyncIterableIterator<ExecStreamEvent> | undefined;
    private id = "";
    private logged = false;
    private settling: Promise<void> | undefined;

    constructor(
      private readonly request: ChatRequest,
      private readonly ctx: RequestContext,
    ) {
      super();
    }

    protected async step(): Promise<IteratorResult<GatewayStreamEvent, undefined>> {
      if (this.phase === "done") return { value: undefined, done: true };
      try {
        if (this.phase === "new") await this.open();
        const r = await this.exec!.next();
        if (r.done === true) {
          this.finish();
          return r;
        }
        const e = r.value;
        // A chunk event passes as it is (the two types share its shape).
        if (e.type === "chunk") return r as IteratorResult<GatewayStreamEvent, undefined>;
        if (e.type === "start") {
          const start: GatewayStreamEvent = { type: "start", id: this.id, deployment: e.deployment, attempts: e.attempts };
          const held = this.admitted!;
          if (held.degraded !== undefined) start.degraded = held.degraded;
          if (held.budgetRemainingNano !== undefined) start.budgetRemainingNano = held.budgetRemainingNano;
          return { value: start, done: false };
        }
        const o = e.outcome;
        // Settled right after the end is handed over (the next request through this replica sees it).
        const cost = this.settle(o);
        return { value: { type: "end", finishReason: o.finishReason, usage: o.usage, cost, trace: o.trace, error: o.error }, done: false };
      } catch (err) {
        if (this.admitted === undefined) await this.prefetch?.discard();
        logRequest(this.ctx, this.request, {
          status: errorStatus(err),
          trace: (err as GatewayError).trace as RouteTraceRecord | undefined,
          error: (err as Error).message,
          stream: true,
        });
        this.logged = true;
        this.finish();
        throw err;
      }
    }

    /** open admits the request and starts its execution. */
    private async open(): Promise<void> {
      const { request, ctx } = this;
      const rt = current;
      this.release = rt.acquire();
      this.phase = "open";
      this.bounded = withBudget(ctx.signal, request);
      const signal = this.bounded?.signal ?? ctx.signal;
      const admitted = await admission.admit(rt, request, ctx.caller, (plan) => (this.prefetch = prefetchRoute(plan, request)));
      this.admitted = admitted;
      this.id = newId();
      // settle is called once: at the end, or when the caller abandons the stream (partial usage is still billed).
      this.exec = executeStream(admitted.plan, admitted.request, signal, ctx.startedAt, (o) => void this.settle(o), execOptions(ctx, request, rt, this.prefetch));
    }

    /** settle prices, settles and logs the stream's outcome. */
    private settle(o: StreamOutcome): CostBreakdown {
      const held = this.admitted!;
      const cost = priceAttempts(o.usage, o.deployment, o.extraUsage, this.request);
      const fields = {
        status: o.error === undefined ? "ok" : o.error.errorClass === "cancelled" ? "canceled" : `upstream_${o.error.errorClass}`,
        deployment: o.deployment,
        trace: o.trace,
        usage: o.usage,
        usageEstimated: !o.usageReported,
        cost,
        ttftMs: o.timeToFirstTokenMs,
        error: o.error?.message,
        stream: true,
        degraded: held.degraded,
      };
      this.settling = settleAndLog(
        () => held.settle(cost.total, o.usage),
        () => logRequest(this.ctx, this.request, fields),
      );
      this.logged = true;
      return cost;
    }

    /** leave is the edge leaving early: the execution is abandoned (and billed for what it used). */
    protected async leave(): Promise<void> {
      if (this.phase === "open") {
        try {
          await this.exec?.return?.(undefined);
        } finally {
          this.finish();
        }
      }
      this.phase = "done";
    }

    /** finish ends the request once: a request not logged yet was cancelled, and the runtime is released after settlement. */
    private finish(): void {
      if (this.phase !== "open") {
        this.phase = "done";
        return;
      }
      this.phase = "done";
      this.bounded?.dispose();
      if (!this.logged) logRequest(this.ctx, this.request, { status: "canceled", stream: true });
      // Settled by now unless nothing started (refused, failed or cancelled before the first chunk): release the hold.
      const settled = this.settling ?? this.admitted?.settle(0n, undefined);
      if (settled === undefined) this.release();
      else void settled.then(this.release);
    }
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
      const bounded = withBudget(ctx.signal, request);
      const signal = bounded?.signal ?? ctx.signal;
      let admitted: Admission | undefined;
      let prefetch: RoutePrefetch | undefined;
      // Settlement is issued right after the answer is handed over (afterAnswer); the runtime stays in use until it completes.
      let settled: Promise<void> | undefined;
      try {
        // The executor's pre-call reads start beside admission's checks: one round trip with Redis.
        admitted = await admission.admit(rt, request, ctx.caller, (plan) => (prefetch = prefetchRoute(plan, request)));
        const { plan, degraded } = admitted;
        const { result, deployment, trace, extraUsage } = await executeComplete(plan, admitted.request, signal, execOptions(ctx, request, rt, prefetch));
        const cost = priceAttempts(result.usage, deployment, extraUsage, request);
        const held = admitted;
        settled = settleAndLog(
          () => held.settle(cost.total, result.usage),
          () => logRequest(ctx, request, { status: "ok", deployment, trace, usage: result.usage, cost, stream: false, degraded }),
        );
        const out: CompleteOutcome = { id: newId(), result, deployment, trace, cost };
        if (degraded !== undefined) out.degraded = degraded;
        if (admitted.budgetRemainingNano !== undefined) out.budgetRemainingNano = remainingAfter(admitted, cost.total);
        return out;
      } catch (err) {
        // Refused by admission: what was taken ahead of time for the plan is given back before the refusal is answered.
        if (admitted === undefined) await prefetch?.discard();
        // No answer: nothing was billed (execute reports no usage for failed whole requests).
        settled = admitted?.settle(0n, undefined);
        logRequest(ctx, request, {
          status: errorStatus(err),
          trace: (err as GatewayError).trace as RouteTraceRecord | undefined,
          error: (err as Error).message,
          stream: false,
        });
        throw err;
      } finally {
        bounded?.dispose();
        if (settled === undefined) release();
        else void settled.then(release);
      }
    },

    stream: (request, ctx) => new GatewayStream(request, ctx),

    async estimate(request, caller) {
      const rt = current;
      const budgets = await admission.budgets(rt, caller);
      return estimateCandidates(rt, request, caller, { budgets });
    },

    spend: (caller) => admission.spend(current, caller),
  };
}

/** remainingAfter is the budget left once this request's hold is replaced by its actual cost. */
function remainingAfter(admitted: Admission, costNano: bigint): bigint {
  const left = admitted.budgetRemainingNano! + admitted.reservedNano - costNano;
  return left > 0n ? left : 0n;
}
