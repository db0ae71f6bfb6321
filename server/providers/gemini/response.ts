import type { ChatEvent, ChatResult, FinishReason, ToolCall, Usage } from "../../core/chat.js";
import { UpstreamError } from "../../core/errors.js";
import { isObject } from "../json-upstream.js";

/**
 * Gemini GenerateContentResponse → normalized pieces. The same function
 * reads a whole response and each streamed chunk (a stream chunk is a
 * partial response of the same shape), so the two paths cannot disagree.
 */

const contentFilterReasons = new Set(["SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"]);

/**
 * finishReasonOf maps a Gemini finishReason. A function call ends with STOP
 * (Gemini has no separate reason), so `sawToolCalls` turns STOP into
 * tool_calls. MALFORMED_FUNCTION_CALL is malformed_tool_call, never a stop.
 */
export function finishReasonOf(reason: string, sawToolCalls: boolean): FinishReason {
  if (reason === "STOP") return sawToolCalls ? "tool_calls" : "stop";
  if (reason === "MAX_TOKENS") return "length";
  if (reason === "MALFORMED_FUNCTION_CALL" || reason === "UNEXPECTED_TOOL_CALL") return "malformed_tool_call";
  if (contentFilterReasons.has(reason)) return "content_filter";
  return "other";
}

function count(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? value : 0;
}

/**
 * usageOf converts usageMetadata. promptTokenCount already includes cached
 * tokens; candidatesTokenCount excludes thoughts, so they are added to make
 * outputTokens include reasoning, as the gateway's convention says.
 */
export function usageOf(metadata: unknown): Usage {
  const m = isObject(metadata) ? metadata : {};
  const reasoning = count(m.thoughtsTokenCount);
  return {
    inputTokens: count(m.promptTokenCount),
    outputTokens: count(m.candidatesTokenCount) + reasoning,
    cachedInputTokens: count(m.cachedContentTokenCount),
    cacheWriteInputTokens: 0,
    reasoningTokens: reasoning,
  };
}

/** GeminiChunk is what one response (or stream chunk) says, normalized. */
export interface GeminiChunk {
  /** events are the text, reasoning and tool-call events in part order. */
  events: ChatEvent[];
  /** finishReason is the candidate's raw finishReason, if the chunk has one. */
  finishReason?: string;
  /** blockReason is promptFeedback.blockReason when the prompt was blocked. */
  blockReason?: string;
  /** usageMetadata is the chunk's raw usageMetadata, if any. */
  usageMetadata?: unknown;
  /** responseId is the upstream response id, if any. */
  responseId?: string;
}

/**
 * readGeminiChunk reads one response. `nextToolIndex` is the number of tool
 * calls seen before this chunk: calls are numbered across the whole answer,
 * and a call without an upstream id gets the stable id `call_<index>`.
 */
export function readGeminiChunk(body: unknown, providerId: string, nextToolIndex: number): GeminiChunk {
  if (!isObject(body)) throw new UpstreamError("malformed_response", `${providerId}: the response is not a JSON object`, { status: 200 });
  const chunk: GeminiChunk = { events: [] };
  if (body.usageMetadata !== undefined) chunk.usageMetadata = body.usageMetadata;
  if (typeof body.responseId === "string") chunk.responseId = body.responseId;
  if (isObject(body.promptFeedback) && typeof body.promptFeedback.blockReason === "string") {
    chunk.blockReason = body.promptFeedback.blockReason;
  }
  const candidate = Array.isArray(body.candidates) ? body.candidates[0] : undefined;
  if (!isObject(candidate)) return chunk;
  if (typeof candidate.finishReason === "string") chunk.finishReason = candidate.finishReason;
  const parts = isObject(candidate.content) && Array.isArray(candidate.content.parts) ? candidate.content.parts : [];
  let toolIndex = nextToolIndex;
  for (const part of parts) {
    if (!isObject(part)) continue;
    if (typeof part.text === "string") {
      if (part.text !== "") chunk.events.push({ type: part.thought === true ? "reasoning" : "text", text: part.text });
    } else if (isObject(part.functionCall) && typeof part.functionCall.name === "string") {
      const fc = part.functionCall;
      const id = typeof fc.id === "string" && fc.id !== "" ? fc.id : `call_${toolIndex}`;
      chunk.events.push({ type: "tool_call", index: toolIndex, id, name: fc.name as string, argumentsDelta: JSON.stringify(fc.args ?? {}) });
      toolIndex += 1;
    }
  }
  return chunk;
}

/** parseGeminiResponse converts a non-streaming response. */
export function parseGeminiResponse(body: unknown, providerId: string): ChatResult {
  const chunk = readGeminiChunk(body, providerId, 0);
  let text = "";
  let reasoning = "";
  const toolCalls: ToolCall[] = [];
  for (const e of chunk.events) {
    if (e.type === "text") text += e.text;
    else if (e.type === "reasoning") reasoning += e.text;
    else if (e.type === "tool_call") toolCalls.push({ id: e.id!, name: e.name!, arguments: e.argumentsDelta });
  }
  let finishReason: FinishReason;
  if (chunk.finishReason !== undefined) finishReason = finishReasonOf(chunk.finishReason, toolCalls.length > 0);
  else if (chunk.blockReason !== undefined) finishReason = "content_filter";
  else finishReason = "other";
  const result: ChatResult = {
    output: { text, toolCalls, reasoning, refusal: "" },
    finishReason,
    usage: usageOf(chunk.usageMetadata),
  };
  if (chunk.responseId !== undefined) result.upstreamId = chunk.responseId;
  return result;
}
