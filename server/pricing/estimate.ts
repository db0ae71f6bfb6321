import type { ChatRequest } from "../core/chat.js";

/**
 * A quick prompt-size estimate for routing and cost estimates before a
 * call. It is deliberately cheap (no tokenizer on the hot path here): about
 * four characters per token for Latin text and one token per CJK character,
 * plus per-message and per-tool overhead. The cost issue replaces it with a
 * real tokenizer for OpenAI families and calibrated estimates for others.
 */

const MESSAGE_OVERHEAD = 4;
const IMAGE_TOKENS = 765;

function textTokens(text: string): number {
  let cjk = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c >= 0x3040 && c <= 0x30ff) || (c >= 0x3400 && c <= 0x9fff) || (c >= 0xac00 && c <= 0xd7af)) cjk++;
  }
  return cjk + Math.ceil((text.length - cjk) / 4);
}

/** estimatePromptTokens estimates the input tokens of a request. */
export function estimatePromptTokens(request: ChatRequest): number {
  let tokens = 3;
  for (const m of request.messages) {
    tokens += MESSAGE_OVERHEAD;
    for (const part of m.content) tokens += part.type === "text" ? textTokens(part.text) : IMAGE_TOKENS;
    for (const call of m.toolCalls ?? []) tokens += textTokens(call.name) + textTokens(call.arguments) + 3;
  }
  for (const tool of request.tools ?? []) {
    tokens += 8 + textTokens(tool.name) + textTokens(tool.description ?? "");
    if (tool.parameters !== undefined) tokens += textTokens(JSON.stringify(tool.parameters));
  }
  return tokens;
}
