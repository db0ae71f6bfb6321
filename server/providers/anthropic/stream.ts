import type { ChatEvent, FinishReason } from "../../core/chat.js";
import { UpstreamError } from "../../core/errors.js";
import { isObject, parseJsonData } from "../json-upstream.js";
import { anthropicStreamError } from "./errors.js";
import { emptyCounts, finishReasonOf, mergeUsage, toUsage } from "./response.js";

/**
 * Anthropic Messages stream → normalized events. The stream is a sequence of
 * typed events: message_start (input usage), content_block_start / _delta /
 * _stop per block, ping, message_delta (stop_reason and the running output
 * total), message_stop. Tool calls are numbered by their ordinal among
 * tool_use blocks, not by block index, because text and thinking blocks
 * share the index space.
 */

/** AnthropicStreamDecoder turns one stream's events into ChatEvents. */
export interface AnthropicStreamDecoder {
  /** finished tells whether message_stop arrived. */
  readonly finished: boolean;
  /**
   * push decodes one SSE event (its name and data). It throws an
   * UpstreamError for an `error` event or data that is not JSON.
   */
  push(eventName: string, data: string): ChatEvent[];
  /** end is called when the body ends; it throws if message_stop never came. */
  end(): void;
}

/** createAnthropicStreamDecoder returns a decoder for one stream. */
export function createAnthropicStreamDecoder(providerId: string, secrets: ReadonlyArray<string | undefined>): AnthropicStreamDecoder {
  const counts = emptyCounts();
  const toolByBlock = new Map<number, { index: number; sawArguments: boolean }>();
  let finishReason: FinishReason = "other";
  let finished = false;

  function push(eventName: string, data: string): ChatEvent[] {
    if (finished) return [];
    const event = parseJsonData(data, providerId);
    const type = isObject(event) && typeof event.type === "string" ? event.type : eventName;
    if (type === "error" || eventName === "error") throw anthropicStreamError(providerId, event, secrets);
    if (!isObject(event)) return [];
    switch (type) {
      case "message_start":
        if (isObject(event.message)) mergeUsage(counts, event.message.usage);
        return [];
      case "content_block_start":
        return blockStart(event);
      case "content_block_delta":
        return blockDelta(event);
      case "content_block_stop": {
        // A call without arguments streams no JSON at all; say "{}" as the non-streaming answer would.
        const tool = toolByBlock.get(Number(event.index));
        if (tool === undefined || tool.sawArguments) return [];
        tool.sawArguments = true;
        return [{ type: "tool_call", index: tool.index, argumentsDelta: "{}" }];
      }
      case "message_delta":
        if (isObject(event.delta) && event.delta.stop_reason != null) finishReason = finishReasonOf(event.delta.stop_reason);
        mergeUsage(counts, event.usage);
        return [];
      case "message_stop":
        finished = true;
        return [
          { type: "finish", finishReason },
          { type: "usage", usage: toUsage(counts) },
        ];
      default:
        // ping and event types added after this was written.
        return [];
    }
  }

  function blockStart(event: Record<string, unknown>): ChatEvent[] {
    const block = event.content_block;
    if (!isObject(block)) return [];
    if (block.type === "tool_use") {
      const index = toolByBlock.size;
      toolByBlock.set(Number(event.index), { index, sawArguments: false });
      const chatEvent: ChatEvent & { type: "tool_call" } = { type: "tool_call", index, argumentsDelta: "" };
      if (typeof block.id === "string") chatEvent.id = block.id;
      if (typeof block.name === "string") chatEvent.name = block.name;
      return [chatEvent];
    }
    // Blocks normally start empty, but nothing forbids a first piece of text here.
    if (block.type === "text" && typeof block.text === "string" && block.text !== "") return [{ type: "text", text: block.text }];
    if (block.type === "thinking" && typeof block.thinking === "string" && block.thinking !== "") {
      return [{ type: "reasoning", text: block.thinking }];
    }
    return [];
  }

  function blockDelta(event: Record<string, unknown>): ChatEvent[] {
    const delta = event.delta;
    if (!isObject(delta)) return [];
    switch (delta.type) {
      case "text_delta":
        return typeof delta.text === "string" && delta.text !== "" ? [{ type: "text", text: delta.text }] : [];
      case "thinking_delta":
        return typeof delta.thinking === "string" && delta.thinking !== "" ? [{ type: "reasoning", text: delta.thinking }] : [];
      case "input_json_delta": {
        const tool = toolByBlock.get(Number(event.index));
        if (tool === undefined || typeof delta.partial_json !== "string" || delta.partial_json === "") return [];
        tool.sawArguments = true;
        return [{ type: "tool_call", index: tool.index, argumentsDelta: delta.partial_json }];
      }
      default:
        // signature_delta and citations carry nothing the normalized stream has a place for.
        return [];
    }
  }

  return {
    get finished() {
      return finished;
    },
    push,
    end() {
      if (!finished) {
        throw new UpstreamError("connection", `${providerId}: the stream ended before message_stop`, { status: 200 });
      }
    },
  };
}
