import { create, type MessageInitShape } from "@bufbuild/protobuf";
import type { ConnectRouter, HandlerContext } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  BreakerState,
  type CompleteRequest,
  type CompleteResponse,
  CompleteResponseSchema,
  GatewayService,
  type StreamCompleteResponse,
  StreamCompleteResponseSchema,
} from "../../gen/llmgateway/v1/gateway_service_pb.js";
import { routeTargetIds, routeTiers } from "../config/schema.js";
import { type Gateway, type RequestContext } from "../core/gateway.js";
import { requestIdFrom } from "../core/ids.js";
import { readBreakerStates } from "../resilience/breaker.js";
import { routingState } from "../router/resolve.js";
import { budgetHeaders, remainingOf } from "../budgets/spend.js";
import { capabilityToProto, chatRequestFromProto, costToProto, errorClassToProto, finishReasonToProto, traceToProto, usageToProto } from "./convert.js";
import { toConnectError } from "./errors.js";
import type { Logger } from "pino";
import type { Cancellation } from "../core/cancel.js";

/**
 * The Connect/gRPC/gRPC-Web edge: GatewayService over the core. Each
 * handler authenticates from the `authorization` header, converts the
 * request, calls the core and converts back; errors become ConnectErrors.
 */

/**
 * RpcCall is what a handler needs from its transport: the request's
 * headers, the response's, cancellation and the caller's deadline. Connect
 * handlers get it from their HandlerContext (fromHandlerContext); the
 * direct unary path (direct-unary.ts) builds its own.
 */
export interface RpcCall {
  requestHeader(name: string): string | undefined;
  setResponseHeader(name: string, value: string): void;
  /** signal aborts when the caller leaves or its deadline passes. */
  signal: Cancellation;
  /**
   * deadlineAt is performance.now() when the caller's deadline passes, if it
   * set one: the same instant the transport's deadline timer fires, so the
   * core can tell a deadline from the caller leaving.
   */
  deadlineAt: number | undefined;
}

/** deadlineFrom turns a timeout from now into a deadline on performance.now()'s clock. */
export function deadlineFrom(timeoutMs: number | undefined): number | undefined {
  return timeoutMs === undefined ? undefined : performance.now() + timeoutMs;
}

/** fromHandlerContext adapts a Connect HandlerContext. */
export function fromHandlerContext(ctx: HandlerContext): RpcCall {
  return {
    requestHeader: (name) => ctx.requestHeader.get(name) ?? undefined,
    setResponseHeader: (name, value) => ctx.responseHeader.set(name, value),
    signal: ctx.signal,
    deadlineAt: deadlineFrom(ctx.timeoutMs()),
  };
}

function context(gateway: Gateway, call: RpcCall): RequestContext {
  const requestId = requestIdFrom(call.requestHeader("x-request-id"));
  call.setResponseHeader("x-request-id", requestId);
  const caller = gateway.authenticate(call.requestHeader("authorization"));
  const startedAt = performance.now();
  const traceparent = call.requestHeader("traceparent");
  return {
    requestId,
    edge: "rpc",
    caller,
    signal: call.signal,
    startedAt,
    deadlineAt: call.deadlineAt,
    traceHeaders: traceparent === undefined ? undefined : { traceparent, tracestate: call.requestHeader("tracestate") },
  };
}

/** completeRpc serves Complete over any transport. */
export async function completeRpc(gateway: Gateway, req: CompleteRequest, call: RpcCall): Promise<CompleteResponse> {
  const ctx = context(gateway, call);
  const out = await gateway.complete(chatRequestFromProto(req), ctx);
  const { output } = out.result;
  call.setResponseHeader("x-gateway-provider", out.deployment.provider.id);
  call.setResponseHeader("x-gateway-model", out.deployment.id);
  for (const [k, v] of Object.entries(budgetHeaders(out))) call.setResponseHeader(k, v);
  return create(CompleteResponseSchema, {
    id: out.id,
    message: { text: output.text, toolCalls: output.toolCalls, reasoning: output.reasoning, refusal: output.refusal },
    finishReason: finishReasonToProto(out.result.finishReason),
    usage: usageToProto(out.result.usage),
    cost: costToProto(out.cost),
    model: out.deployment.id,
    provider: out.deployment.provider.id,
    route: traceToProto(out.trace),
    requestId: ctx.requestId,
  });
}

/** rpcError converts anything a handler threw, logging what the gateway did not expect. */
export function rpcError(err: unknown, logger: Logger, what: string): ConnectError {
  const ce = toConnectError(err);
  if (ce.code === Code.Internal) logger.error({ err }, `unexpected error in ${what}`);
  return ce;
}

/** registerGatewayService adds GatewayService to a Connect router. */
export function registerGatewayService(router: ConnectRouter, gateway: Gateway, logger: Logger): void {
  const guard = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw rpcError(err, logger, "an RPC");
    }
  };

  router.service(GatewayService, {
    complete: (req, hctx) => guard(() => completeRpc(gateway, req, fromHandlerContext(hctx))),

    async *streamComplete(req, hctx) {
      let events: ReturnType<Gateway["stream"]> | undefined;
      try {
        const ctx = context(gateway, fromHandlerContext(hctx));
        events = gateway.stream(chatRequestFromProto(req), ctx);
        for await (const e of events) {
          if (e.type === "start") {
            yield msg({ case: "start", value: { id: e.id, model: e.deployment.id, provider: e.deployment.provider.id, requestId: ctx.requestId } });
          } else if (e.type === "chunk") {
            for (const ev of e.chunk.events) {
              if (ev.type === "text") yield msg({ case: "textDelta", value: { text: ev.text } });
              else if (ev.type === "reasoning") yield msg({ case: "reasoningDelta", value: { text: ev.text } });
              else if (ev.type === "tool_call") {
                yield msg({ case: "toolCallDelta", value: { index: ev.index, id: ev.id ?? "", name: ev.name ?? "", argumentsDelta: ev.argumentsDelta } });
              }
            }
          } else {
            yield msg({
              case: "finish",
              value: {
                finishReason: finishReasonToProto(e.finishReason),
                usage: usageToProto(e.usage),
                cost: costToProto(e.cost),
                route: traceToProto(e.trace),
                error: e.error === undefined ? undefined : { errorClass: errorClassToProto(e.error.errorClass), message: e.error.message },
              },
            });
            if (e.error !== undefined && e.error.errorClass !== "cancelled") {
              // The answer is incomplete: end the call with an error status too, after the partial usage.
              throw new ConnectError(`the provider failed mid-stream: ${e.error.message}`, Code.Unavailable);
            }
          }
        }
      } catch (err) {
        throw rpcError(err, logger, "StreamComplete");
      } finally {
        await events?.return();
      }
    },

    estimateCost: (req, hctx) =>
      guard(async () => {
        const ctx = context(gateway, fromHandlerContext(hctx));
        const request = chatRequestFromProto({ ...req, toolChoice: undefined, parallelToolCalls: undefined, metadata: undefined });
        const estimates = await gateway.estimate(request, ctx.caller);
        return {
          estimates: estimates.map((e) => ({
            model: e.model,
            provider: e.provider,
            inputTokens: e.inputTokens,
            expectedOutputTokens: e.expectedOutputTokens,
            maxOutputTokens: e.maxOutputTokens,
            expectedCostNanoUsd: e.expectedCostNanoUsd,
            maxCostNanoUsd: e.maxCostNanoUsd,
            eligible: e.eligible,
            ineligibleReason: e.ineligibleReason,
          })),
        };
      }),

    listModels: (req, hctx) =>
      guard(async () => {
        const ctx = context(gateway, fromHandlerContext(hctx));
        const rt = gateway.runtime();
        const shown = [...rt.deployments.values()].filter((d) => ctx.caller.mayUse(d.id) && (req.provider === "" || d.provider.id === req.provider));
        const breakers = await readBreakerStates(routingState(rt), shown, rt.config.routing);
        // The caller's budget rides along as metadata: ListModelsResponse has no field for it.
        for (const [k, v] of Object.entries(budgetHeaders({ budgetRemainingNano: remainingOf(await gateway.spend(ctx.caller)) }))) hctx.responseHeader.set(k, v);
        const models = shown.map((d) => {
          const breaker = breakers.get(d.id) ?? "closed";
          return {
            id: d.id,
            provider: d.provider.id,
            contextWindow: d.model.context_window,
            maxOutputTokens: d.model.max_output_tokens,
            capabilities: d.model.capabilities.map(capabilityToProto),
            pricing: {
              inputNanoUsdPerMtok: d.price.base.input,
              outputNanoUsdPerMtok: d.price.base.output,
              cachedInputNanoUsdPerMtok: d.price.base.cachedInput,
              cacheWriteNanoUsdPerMtok: d.price.base.cacheWrite,
            },
            available: d.enabled && breaker !== "open",
            breaker: breaker === "open" ? BreakerState.OPEN : breaker === "half_open" ? BreakerState.HALF_OPEN : BreakerState.CLOSED,
          };
        });
        const routes = [...rt.routes.values()]
          .filter((r) => ctx.caller.mayUse(r.id))
          .map((r) => ({ id: r.id, strategy: routeTiers(r).map((t) => t.strategy).join(">"), targets: routeTargetIds(r) }));
        return { models, routes };
      }),
  });
}

function msg(event: MessageInitShape<typeof StreamCompleteResponseSchema>["event"]): StreamCompleteResponse {
  return create(StreamCompleteResponseSchema, { event });
}
