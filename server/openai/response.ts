import type { AssistantOutput, ChatEvent, FinishReason, ToolCall, Usage } from "../core/chat.js";
import type { CostBreakdown } from "../pricing/cost.js";
import { nanoToUsdString } from "../pricing/cost.js";
import type { RouteTraceRecord } from "../core/trace.js";

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

/** usageToOpenAI renders usage the way OpenAI does (cached and reasoning as details). */
export function usageToOpenAI(u: Usage): Record<string, unknown> {
  return {
    prompt_tokens: u.inputTokens,
    completion_tokens: u.outputTokens,
    total_tokens: u.inputTokens + u.outputTokens,
    prompt_tokens_details: { cached_tokens: u.cachedInputTokens, cache_write_tokens: u.cacheWriteInputTokens },
    completion_tokens_details: { reasoning_tokens: u.reasoningTokens },
  };
}

/** gatewayFields is the x_gateway extension: cost, provider, model and route. */
export function gatewayFields(provider: string, model: string, cost: CostBreakdown, trace: RouteTraceRecord): Record<string, unknown> {
  return {
    provider,
    model,
    cost_usd: nanoToUsdString(cost.total),
    cost_nano_usd: cost.total.toString(),
    attempts: trace.attempts.length,
    route: trace,
  };
}

function toolCallsToOpenAI(calls: ToolCall[]): unknown[] {
  return calls.map((c) => ({ id: c.id, type: "function", function: { name: c.name, arguments: c.arguments } }));
}

/** completionToOpenAI renders a whole answer as a chat.completion object. */
export function completionToOpenAI(args: {
  id: string;
  created: number;
  model: string;
  output: AssistantOutput;
  finishReason: FinishReason;
  usage: Usage;
  gateway: Record<string, unknown>;
}): string {
  const { output } = args;
  const message: Record<string, unknown> = {
    role: "assistant",
    content: output.text === "" && output.toolCalls.length > 0 ? null : output.text,
    refusal: output.refusal === "" ? null : output.refusal,
  };
  if (output.toolCalls.length > 0) message.tool_calls = toolCallsToOpenAI(output.toolCalls);
  if (output.reasoning !== "") message.reasoning_content = output.reasoning;
  return JSON.stringify({
    id: `chatcmpl-${args.id}`,
    object: "chat.completion",
    created: args.created,
    model: args.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: finishReasonToOpenAI(args.finishReason) }],
    usage: usageToOpenAI(args.usage),
    x_gateway: args.gateway,
  });
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

  /** usage encodes the final usage chunk (choices: []) with the gateway's cost. */
  usage(u: Usage, gateway: Record<string, unknown>): string {
    return `${this.head},"choices":[],"usage":${JSON.stringify(usageToOpenAI(u))},"x_gateway":${JSON.stringify(gateway)}}`;
  }
}
