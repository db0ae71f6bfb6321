import type { ChatEvent } from "../../core/chat.js";
import { UpstreamError } from "../../core/errors.js";
import { isObject, parseJsonData } from "../json-upstream.js";
import { geminiBodyError } from "./errors.js";
import { finishReasonOf, readGeminiChunk, usageOf } from "./response.js";

/**
 * Gemini `:streamGenerateContent?alt=sse` → normalized events. Every event
 * is a partial GenerateContentResponse; there is no `[DONE]`, the stream just
 * ends, and the chunk with finishReason carries the final usageMetadata. A
 * function call arrives whole in one part, so it becomes one tool_call event
 * with id, name and all its arguments.
 */

/** GeminiStreamDecoder turns one stream's events into ChatEvents. */
export interface GeminiStreamDecoder {
  /** finished tells whether a finishReason (or a prompt block) arrived. */
  readonly finished: boolean;
  /** push decodes one event's data; it throws an UpstreamError for an error payload or invalid JSON. */
  push(data: string): ChatEvent[];
  /** end is called when the body ends; it throws if no finishReason ever came. */
  end(): void;
}

/** createGeminiStreamDecoder returns a decoder for one stream. */
export function createGeminiStreamDecoder(providerId: string, secrets: ReadonlyArray<string | undefined>): GeminiStreamDecoder {
  let toolCalls = 0;
  let lastUsage: unknown;
  let finished = false;

  return {
    get finished() {
      return finished;
    },
    push(data) {
      if (finished) return [];
      const body = parseJsonData(data, providerId);
      // Gemini reports a failure after the 200 as a data event holding an error body.
      if (isObject(body) && isObject(body.error)) throw geminiBodyError(providerId, body, 200, secrets);
      const chunk = readGeminiChunk(body, providerId, toolCalls);
      const events = chunk.events;
      for (const e of events) if (e.type === "tool_call") toolCalls += 1;
      if (chunk.usageMetadata !== undefined) lastUsage = chunk.usageMetadata;
      // Emit the finish as soon as it is known rather than when the socket closes.
      if (chunk.finishReason !== undefined || chunk.blockReason !== undefined) {
        finished = true;
        const reason = chunk.finishReason !== undefined ? finishReasonOf(chunk.finishReason, toolCalls > 0) : "content_filter";
        events.push({ type: "finish", finishReason: reason }, { type: "usage", usage: usageOf(lastUsage) });
      }
      return events;
    },
    end() {
      if (!finished) {
        throw new UpstreamError("connection", `${providerId}: the stream ended before a finishReason`, { status: 200 });
      }
    },
  };
}
