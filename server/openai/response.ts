import type { AssistantOutput, ChatEvent, FinishReason, ToolCall, Usage } from "../core/chat.js";
import type { CostBreakdown } from "../pricing/cost.js";
import { nanoToUsdString } from "../pricing/cost.js";
import { jsonNumber, jsonString, stringLiteralOf } from "../core/json-text.js";
import type { AttemptRecord, RouteTraceRecord } from "../core/trace.js";

/**
 * Encoding of normalized results into OpenAI chat-completions JSON: whole
 * responses, stream chunks, and the usage object. Gateway-specific facts
 * (cost, provider, route) ride in an `x_gateway` field the SDK ignores.
 */

/** finishReasonToOpenAI maps a normalized finish reason to OpenAI's vocabulary. */
export function finishReasonToOpenAI(reason: FinishReason): string {
  switch (reason) {
    case "length":
      return "length";
    case "tool_calls":
      return "tool_calls";
    case "content_filter":
      return "content_filter";
    // OpenAI has no word for these; "stop" would hide them, so keep them distinct.
    case "malformed_tool_call":
      return "malformed_tool_call";
    case "error":
      return "error";
    default:
      return "stop";
  }
}

// Strings from outside (ids, model names, messages) go through JSON.stringify, which escapes them.
const str = jsonString;
const num = jsonNumber;

/**
 * usageJson renders usage the way OpenAI does (cached and reasoning as
 * details), as JSON text. The response's small objects are written as
 * text rather than built and passed to JSON.stringify, whose walk over a
 * handful of fields cost more than the rest of the rendering.
 */
export function usageJson(u: Usage): string {
  return (
    `{"prompt_tokens":${num(u.inputTokens)},"completion_tokens":${num(u.outputTokens)},"total_tokens":${num(u.inputTokens + u.outputTokens)},` +
    `"prompt_tokens_details":{"cached_tokens":${num(u.cachedInputTokens)},"cache_write_tokens":${num(u.cacheWriteInputTokens)}},` +
    `"completion_tokens_details":{"reasoning_tokens":${num(u.reasoningTokens)}}}`
  );
}

function attemptJson(a: AttemptRecord): string {
  let s = `{"provider":${str(a.provider)},"model":${str(a.model)},"outcome":${str(a.outcome)},"latencyMs":${num(a.latencyMs)},"httpStatus":${num(a.httpStatus)},"hedged":${a.hedged}`;
  if (a.errorClass !== undefined) s += `,"errorClass":${str(a.errorClass)}`;
  if (a.errorMessage !== undefined) s += `,"errorMessage":${str(a.errorMessage)}`;
  if (a.timeToFirstTokenMs !== undefined) s += `,"timeToFirstTokenMs":${num(a.timeToFirstTokenMs)}`;
  if (a.retryAfterMs !== undefined) s += `,"retryAfterMs":${num(a.retryAfterMs)}`;
  return `${s}}`;
}

/** traceJson renders a route trace as JSON text (the same value JSON.stringify gives). */
export function traceJson(t: RouteTraceRecord): string {
  const attempts = t.attempts.map(attemptJson).join(",");
  const skipped = t.skipped.map((k) => `{"model":${str(k.model)},"reason":${str(k.reason)}}`).join(",");
  return `{"route":${str(t.route)},"strategy":${str(t.strategy)},"reason":${str(t.reason)},"attempts":[${attempts}],"skipped":[${skipped}]}`;
}

/** gatewayJson is the x_gateway extension as JSON text: cost, provider, model and route. */
export function gatewayJson(provider: string, model: string, cost: CostBreakdown, trace: RouteTraceRecord): string {
  return (
    `{"provider":${str(provider)},"model":${str(model)},"cost_usd":"${nanoToUsdString(cost.total)}","cost_nano_usd":"${cost.total}",` +
    `"attempts":${trace.attempts.length},"route":${traceJson(trace)}}`
  );
}

function toolCallsToOpenAI(calls: ToolCall[]): unknown[] {
  return calls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.arguments } }));
}

/** textLiteral is the text as a JSON literal: the provider's own, when it sent the text in OpenAI's format and it is unchanged. */
function textLiteral(output: AssistantOutput): string {
  const source = output.openaiSource;
  return (source?.text === output.text ? stringLiteralOf(source.body, "content", output.text) : undefined) ?? str(output.text);
}

/** completionToOpenAI renders a whole answer as a chat.completion object. */
export function completionToOpenAI(args: {
  id: string;
  created: number;
  model: string;
  output: AssistantOutput;
  finishReason: FinishReason;
  usage: Usage;
  /** gateway is the x_gateway field's JSON text (gatewayJson). */
  gateway: string;
}): string {
  const { output } = args;
  const content = output.text === "" && output.toolCalls.length > 0 ? "null" : textLiteral(output);
  let message = `{"role":"assistant","content":${content},"refusal":${output.refusal === "" ? "null" : str(output.refusal)}`;
  if (output.toolCalls.length > 0) message += `,"tool_calls":${JSON.stringify(toolCallsToOpenAI(output.toolCalls))}`;
  if (output.reasoning !== "") message += `,"reasoning_content":${str(output.reasoning)}`;
  return (
    `{"id":${str(`chatcmpl-${args.id}`)},"object":"chat.completion","created":${num(args.created)},"model":${str(args.model)},` +
    `"choices":[{"index":0,"message":${message}},"logprobs":null,"finish_reason":${str(finishReasonToOpenAI(args.finishReason))}}],` +
    `"usage":${usageJson(args.usage)},"x_gateway":${args.gateway}}`
  );
}

/** ChunkEncoder renders normalized stream events as chat.completion.chunk JSON. */
export class ChunkEncoder {
  private readonly head: string;
  private roleSent = false;

  constructor(id: string, created: number, model: string) {
    this.head = `{"id":${JSON.stringify(`chatcmpl-${id}`)},"object":"chat.completion.chunk","created":${created},"model":${JSON.stringify(model)}`;
  }

  /**
   * forward rebrands an upstream OpenAI-format chunk for the caller, given
   * its tail (StreamChunk.openaiTail): its id, created and model become the
   * gateway's (the upstream's name for the model and its completion id must
   * not leak, and every chunk of a stream must share one id), the rest
   * passes through byte for byte.
   */
  forward(openaiTail: string): string {
    // A forwarded upstream chunk carries the assistant role itself.
    this.roleSent = true;
    return this.head + openaiTail;
  }

  /** delta encodes the events of one chunk (usage excluded); undefined when there is nothing to send. */
  delta(events: ChatEvent[]): string | undefined {
    const delta: Record<string, unknown> = {};
    let finish: string | null = null;
    let toolCalls: unknown[] | undefined;
    let any = false;
    for (const e of events) {
      switch (e.type) {
        case "text":
          delta.content = ((delta.content as string | undefined) ?? "") + e.text;
          any = true;
          break;
        case "reasoning":
          delta.reasoning_content = ((delta.reasoning_content as string | undefined) ?? "") + e.text;
          any = true;
          break;
        case "tool_call": {
          const call: Record<string, unknown> = { index: e.index };
          if (e.id !== undefined) call.id = e.id;
          if (e.id !== undefined || e.name !== undefined) call.type = "function";
          const fn: Record<string, unknown> = { arguments: e.argumentsDelta };
          if (e.name !== undefined) fn.name = e.name;
          call.function = fn;
          (toolCalls ??= []).push(call);
          any = true;
          break;
        }
        case "finish":
          finish = finishReasonToOpenAI(e.finishReason);
          any = true;
          break;
        case "usage":
          break;
      }
    }
    if (!any) return undefined;
    if (toolCalls !== undefined) delta.tool_calls = toolCalls;
    if (!this.roleSent) {
      delta.role = "assistant";
      this.roleSent = true;
    }
    return `${this.head},"choices":[{"index":0,"delta":${JSON.stringify(delta)},"logprobs":null,"finish_reason":${finish === null ? "null" : JSON.stringify(finish)}}]}`;
  }

  /** usage encodes the final usage chunk (choices: []) with the gateway's cost; gateway is gatewayJson's text. */
  usage(u: Usage, gateway: string): string {
    return `${this.head},"choices":[],"usage":${usageJson(u)},"x_gateway":${gateway}}`;
  }
}
