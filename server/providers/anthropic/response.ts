import type { ChatResult, FinishReason, ToolCall, Usage } from "../../core/chat.js";
import { UpstreamError } from "../../core/errors.js";
import { isObject } from "../json-upstream.js";

/**
 * Anthropic Messages response → normalized result: content blocks to text,
 * tool calls and reasoning; stop_reason to a FinishReason; usage to the
 * gateway's convention (input includes cache reads and writes).
 */

const stopReasons: Record<string, FinishReason> = {
  end_turn: "stop",
  stop_sequence: "stop",
  max_tokens: "length",
  model_context_window_exceeded: "length",
  tool_use: "tool_calls",
  refusal: "content_filter",
  pause_turn: "other",
};

/** finishReasonOf maps an Anthropic stop_reason; unknown or missing reasons are "other". */
export function finishReasonOf(stopReason: unknown): FinishReason {
  return typeof stopReason === "string" ? (stopReasons[stopReason] ?? "other") : "other";
}

function count(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? value : 0;
}

/**
 * AnthropicUsageCounts are the raw counters; Anthropic's input_tokens
 * excludes cache reads and writes, and streams report them in pieces.
 */
export interface AnthropicUsageCounts {
  input: number;
  cacheWrite: number;
  cacheRead: number;
  output: number;
}

/**
 * mergeUsage overlays the counters present in an Anthropic usage object on
 * `into`. Every counter Anthropic sends is a running total, so a later value
 * replaces an earlier one and is never added to it.
 */
export function mergeUsage(into: AnthropicUsageCounts, usage: unknown): void {
  if (!isObject(usage)) return;
  if (usage.input_tokens != null) into.input = count(usage.input_tokens);
  if (usage.cache_creation_input_tokens != null) into.cacheWrite = count(usage.cache_creation_input_tokens);
  if (usage.cache_read_input_tokens != null) into.cacheRead = count(usage.cache_read_input_tokens);
  if (usage.output_tokens != null) into.output = count(usage.output_tokens);
}

/**
 * toUsage converts Anthropic counters. Reasoning tokens are not reported
 * separately by Anthropic (they are inside output_tokens), so they stay 0.
 */
export function toUsage(c: AnthropicUsageCounts): Usage {
  return {
    inputTokens: c.input + c.cacheWrite + c.cacheRead,
    outputTokens: c.output,
    cachedInputTokens: c.cacheRead,
    cacheWriteInputTokens: c.cacheWrite,
    reasoningTokens: 0,
  };
}

/** emptyCounts returns zeroed Anthropic counters. */
export function emptyCounts(): AnthropicUsageCounts {
  return { input: 0, cacheWrite: 0, cacheRead: 0, output: 0 };
}

/**
 * parseAnthropicMessage converts a non-streaming Messages response. A body
 * without a content array is a malformed_response.
 */
export function parseAnthropicMessage(body: unknown, providerId: string): ChatResult {
  if (!isObject(body) || !Array.isArray(body.content)) {
    throw new UpstreamError("malformed_response", `${providerId}: the response has no content array`, { status: 200 });
  }
  let text = "";
  let reasoning = "";
  const toolCalls: ToolCall[] = [];
  for (const block of body.content) {
    if (!isObject(block)) continue;
    if (block.type === "text" && typeof block.text === "string") text += block.text;
    else if (block.type === "thinking" && typeof block.thinking === "string") reasoning += block.thinking;
    else if (block.type === "tool_use" && typeof block.name === "string") {
      toolCalls.push({
        id: typeof block.id === "string" ? block.id : `toolu_${toolCalls.length}`,
        name: block.name,
        arguments: JSON.stringify(block.input ?? {}),
      });
    }
  }
  const counts = emptyCounts();
  mergeUsage(counts, body.usage);
  const result: ChatResult = {
    output: { text, toolCalls, reasoning, refusal: "" },
    finishReason: finishReasonOf(body.stop_reason),
    usage: toUsage(counts),
  };
  if (typeof body.id === "string") result.upstreamId = body.id;
  return result;
}
