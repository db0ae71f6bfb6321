import type { ChatMessage, ChatRequest, ContentPart, JsonObject, ToolChoice } from "../../core/chat.js";
import { UpstreamError } from "../../core/errors.js";
import type { AdapterCall } from "../adapter.js";
import { argumentsObject, jsonInstruction, partsText, resolveImage } from "../message-parts.js";

/**
 * Normalized request → Anthropic Messages request. The Messages API is
 * stricter than OpenAI's: no system role in `messages`, strictly alternating
 * user/assistant turns starting with a user turn, tool results as blocks of a
 * user turn right after the assistant turn that called, `max_tokens`
 * required, temperature 0–1. This module reshapes a request that is valid
 * for OpenAI into one Anthropic accepts.
 */

/** AnthropicImageSource is where an image block's bytes come from. */
export type AnthropicImageSource = { type: "base64"; media_type: string; data: string } | { type: "url"; url: string };

/** AnthropicBlock is one content block of a Messages request. */
export type AnthropicBlock =
  | { type: "text"; text: string }
  | { type: "image"; source: AnthropicImageSource }
  | { type: "tool_use"; id: string; name: string; input: JsonObject }
  | {
      type: "tool_result";
      tool_use_id: string;
      content?: string | Array<{ type: "text"; text: string } | { type: "image"; source: AnthropicImageSource }>;
    }
  | { type: "thinking"; thinking: string; signature: string };

/** AnthropicMessage is one turn of `messages`. */
export interface AnthropicMessage {
  role: "user" | "assistant";
  content: AnthropicBlock[];
}

/** AnthropicToolChoice is the `tool_choice` field. */
export type AnthropicToolChoice =
  | { type: "auto" | "any"; disable_parallel_tool_use?: boolean }
  | { type: "tool"; name: string; disable_parallel_tool_use?: boolean }
  | { type: "none" };

/** AnthropicRequest is the body of POST /v1/messages. */
export interface AnthropicRequest {
  model: string;
  max_tokens: number;
  messages: AnthropicMessage[];
  system?: string;
  stop_sequences?: string[];
  temperature?: number;
  top_p?: number;
  top_k?: number;
  metadata?: { user_id: string };
  tools?: Array<{ name: string; description?: string; input_schema: JsonObject }>;
  tool_choice?: AnthropicToolChoice;
  stream?: boolean;
}

/**
 * buildAnthropicRequest maps a call to a Messages request. Decisions:
 * - system messages, wherever they are, are lifted to `system` (joined with
 *   blank lines); a JSON response format adds an instruction there, since
 *   Anthropic has no native JSON mode;
 * - consecutive same-role turns are merged, and within a user turn tool
 *   results come first (the API requires them before any text);
 * - assistant reasoning is dropped: replaying a thinking block needs its
 *   signature, which the normalized model does not carry;
 * - temperature is clamped to 0–1; seed and penalties have no equivalent and
 *   are dropped.
 * It throws an invalid_request UpstreamError for input no Anthropic request
 * can express (an image without data, a tool result without its call id).
 */
export function buildAnthropicRequest(call: AdapterCall, providerId: string, stream: boolean): AnthropicRequest {
  const { request } = call;
  const fail = (message: string): UpstreamError => new UpstreamError("invalid_request", `${providerId}: ${message}`);
  const systemTexts: string[] = [];
  const turns: AnthropicMessage[] = [];

  request.messages.forEach((message, i) => {
    if (message.role === "system") {
      const text = partsText(message.content);
      if (text !== "") systemTexts.push(text);
      return;
    }
    const role = message.role === "assistant" ? "assistant" : "user";
    const blocks = message.role === "tool" ? [toolResult(message, i, fail)] : messageBlocks(message, i, fail);
    if (blocks.length === 0) return;
    const last = turns[turns.length - 1];
    if (last !== undefined && last.role === role) last.content.push(...blocks);
    else turns.push({ role, content: blocks });
  });

  for (const turn of turns) {
    if (turn.role === "user") turn.content = toolResultsFirst(turn.content);
  }
  trimFinalAssistant(turns);

  const instruction = jsonInstruction(request.responseFormat);
  if (instruction !== "") systemTexts.push(instruction);

  const body: AnthropicRequest = {
    model: call.upstreamModel,
    max_tokens: request.sampling.maxOutputTokens ?? call.model.max_output_tokens,
    messages: turns,
  };
  if (systemTexts.length > 0) body.system = systemTexts.join("\n\n");
  addSampling(body, request);
  addTools(body, request);
  if (request.metadata.endUser !== undefined && request.metadata.endUser !== "") {
    body.metadata = { user_id: request.metadata.endUser };
  }
  if (stream) body.stream = true;
  return body;
}

function messageBlocks(message: ChatMessage, index: number, fail: (m: string) => UpstreamError): AnthropicBlock[] {
  const blocks: AnthropicBlock[] = contentBlocks(message.content, index, fail);
  if (message.role === "assistant") {
    for (const call of message.toolCalls ?? []) {
      blocks.push({ type: "tool_use", id: call.id, name: call.name, input: argumentsObject(call.arguments) });
    }
  }
  return blocks;
}

function contentBlocks(parts: ContentPart[], index: number, fail: (m: string) => UpstreamError): Array<AnthropicBlock & { type: "text" | "image" }> {
  const blocks: Array<AnthropicBlock & { type: "text" | "image" }> = [];
  for (const part of parts) {
    // The API rejects empty text blocks.
    if (part.type === "text") {
      if (part.text !== "") blocks.push({ type: "text", text: part.text });
      continue;
    }
    const image = resolveImage(part);
    if (typeof image === "string") throw fail(`messages[${index}]: ${image}`);
    blocks.push({
      type: "image",
      source: image.kind === "inline" ? { type: "base64", media_type: image.mediaType, data: image.data } : { type: "url", url: image.url },
    });
  }
  return blocks;
}

function toolResult(message: ChatMessage, index: number, fail: (m: string) => UpstreamError): AnthropicBlock {
  if (message.toolCallId === undefined || message.toolCallId === "") {
    throw fail(`messages[${index}]: a tool message needs the tool_call_id of the call it answers`);
  }
  const block: AnthropicBlock & { type: "tool_result" } = { type: "tool_result", tool_use_id: message.toolCallId };
  const hasImage = message.content.some((p) => p.type === "image");
  if (hasImage) block.content = contentBlocks(message.content, index, fail);
  else {
    const text = partsText(message.content);
    if (text !== "") block.content = text;
  }
  return block;
}

function toolResultsFirst(blocks: AnthropicBlock[]): AnthropicBlock[] {
  if (!blocks.some((b) => b.type === "tool_result")) return blocks;
  return [...blocks.filter((b) => b.type === "tool_result"), ...blocks.filter((b) => b.type !== "tool_result")];
}

// A final assistant turn is a prefill, and the API rejects one ending in whitespace.
function trimFinalAssistant(turns: AnthropicMessage[]): void {
  const last = turns[turns.length - 1];
  if (last?.role !== "assistant") return;
  const block = last.content[last.content.length - 1];
  if (block?.type !== "text") return;
  block.text = block.text.trimEnd();
  if (block.text === "") last.content.pop();
  if (last.content.length === 0) turns.pop();
}

function addSampling(body: AnthropicRequest, request: ChatRequest): void {
  const s = request.sampling;
  if (s.temperature !== undefined) body.temperature = Math.min(1, Math.max(0, s.temperature));
  if (s.topP !== undefined) body.top_p = s.topP;
  if (s.topK !== undefined) body.top_k = s.topK;
  // Whitespace-only stop sequences are rejected by the API and could never match usefully.
  const stops = (s.stop ?? []).filter((x) => x.trim() !== "");
  if (stops.length > 0) body.stop_sequences = stops;
}

function addTools(body: AnthropicRequest, request: ChatRequest): void {
  const tools = request.tools ?? [];
  if (tools.length === 0) return;
  body.tools = tools.map((t) => {
    const tool: { name: string; description?: string; input_schema: JsonObject } = {
      name: t.name,
      input_schema: t.parameters ?? { type: "object", properties: {} },
    };
    if (t.description !== undefined && t.description !== "") tool.description = t.description;
    return tool;
  });
  const choice = toolChoice(request.toolChoice, request.parallelToolCalls === false);
  if (choice !== undefined) body.tool_choice = choice;
}

function toolChoice(choice: ToolChoice | undefined, noParallel: boolean): AnthropicToolChoice | undefined {
  const parallel = noParallel ? { disable_parallel_tool_use: true } : {};
  if (choice === undefined) return noParallel ? { type: "auto", ...parallel } : undefined;
  if ("function" in choice) return { type: "tool", name: choice.function, ...parallel };
  switch (choice.mode) {
    case "none":
      return { type: "none" };
    case "required":
      return { type: "any", ...parallel };
    default:
      return { type: "auto", ...parallel };
  }
}
