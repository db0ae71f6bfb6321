import type { ChatMessage, ChatRequest, JsonObject, ToolChoice } from "../../core/chat.js";
import { UpstreamError } from "../../core/errors.js";
import type { AdapterCall } from "../adapter.js";
import { argumentsObject, partsText, resolveImage } from "../message-parts.js";
import { cleanGeminiSchema } from "./schema.js";

/**
 * Normalized request → Gemini generateContent request. Gemini names the
 * assistant "model", has no tool role (function responses are parts of a
 * user turn and are matched to calls by function name, not id), keeps the
 * system prompt apart, and accepts only an OpenAPI subset of JSON Schema.
 */

/** GeminiPart is one part of a content turn. */
export type GeminiPart =
  | { text: string }
  | { inlineData: { mimeType: string; data: string } }
  | { fileData: { mimeType: string; fileUri: string } }
  | { functionCall: { name: string; args: JsonObject } }
  | { functionResponse: { name: string; response: JsonObject } };

/** GeminiContent is one turn of `contents`. */
export interface GeminiContent {
  role: "user" | "model";
  parts: GeminiPart[];
}

/** GeminiGenerationConfig is the `generationConfig` field. */
export interface GeminiGenerationConfig {
  maxOutputTokens?: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  stopSequences?: string[];
  seed?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  responseMimeType?: string;
  responseSchema?: JsonObject;
}

/** GeminiRequest is the body of :generateContent and :streamGenerateContent. */
export interface GeminiRequest {
  contents: GeminiContent[];
  systemInstruction?: { parts: Array<{ text: string }> };
  generationConfig?: GeminiGenerationConfig;
  tools?: Array<{ functionDeclarations: Array<{ name: string; description?: string; parameters?: JsonObject }> }>;
  toolConfig?: { functionCallingConfig: { mode: "AUTO" | "ANY" | "NONE"; allowedFunctionNames?: string[] } };
}

/**
 * buildGeminiRequest maps a call to a Gemini request. Decisions:
 * - system messages, wherever they are, go to systemInstruction;
 * - a tool result's function name is looked up from its tool_call_id among
 *   earlier assistant calls (falling back to the message's name);
 * - URL images travel as fileData, which needs a MIME type: given, or implied
 *   by the file extension, otherwise the request is rejected as
 *   invalid_request (Gemini would reject it less clearly);
 * - assistant reasoning is dropped (replaying thoughts needs signatures the
 *   normalized model does not carry); endUser and parallelToolCalls have no
 *   equivalent;
 * - tool parameter and response schemas are cleaned (see cleanGeminiSchema).
 */
export function buildGeminiRequest(call: AdapterCall, providerId: string): GeminiRequest {
  const { request } = call;
  const fail = (message: string): UpstreamError => new UpstreamError("invalid_request", `${providerId}: ${message}`);
  const systemTexts: string[] = [];
  const contents: GeminiContent[] = [];
  const callNames = new Map<string, string>();

  request.messages.forEach((message, i) => {
    if (message.role === "system") {
      const text = partsText(message.content);
      if (text !== "") systemTexts.push(text);
      return;
    }
    const role = message.role === "assistant" ? "model" : "user";
    const parts = message.role === "tool" ? [functionResponse(message, i, callNames, fail)] : messageParts(message, i, callNames, fail);
    if (parts.length === 0) return;
    const last = contents[contents.length - 1];
    if (last !== undefined && last.role === role) last.parts.push(...parts);
    else contents.push({ role, parts });
  });

  const body: GeminiRequest = { contents };
  if (systemTexts.length > 0) body.systemInstruction = { parts: [{ text: systemTexts.join("\n\n") }] };
  const generationConfig = buildGenerationConfig(request);
  if (Object.keys(generationConfig).length > 0) body.generationConfig = generationConfig;
  addTools(body, request);
  return body;
}

function messageParts(message: ChatMessage, index: number, callNames: Map<string, string>, fail: (m: string) => UpstreamError): GeminiPart[] {
  const parts: GeminiPart[] = [];
  for (const part of message.content) {
    if (part.type === "text") {
      // Gemini rejects empty text parts.
      if (part.text !== "") parts.push({ text: part.text });
      continue;
    }
    const image = resolveImage(part);
    if (typeof image === "string") throw fail(`messages[${index}]: ${image}`);
    if (image.kind === "inline") parts.push({ inlineData: { mimeType: image.mediaType, data: image.data } });
    else if (image.mediaType !== undefined) parts.push({ fileData: { mimeType: image.mediaType, fileUri: image.url } });
    else throw fail(`messages[${index}]: an image URL needs a media type (set one, or use a URL ending in .png, .jpg, .gif or .webp, or inline base64 data)`);
  }
  if (message.role === "assistant") {
    for (const toolCall of message.toolCalls ?? []) {
      callNames.set(toolCall.id, toolCall.name);
      parts.push({ functionCall: { name: toolCall.name, args: argumentsObject(toolCall.arguments) } });
    }
  }
  return parts;
}

function functionResponse(
  message: ChatMessage,
  index: number,
  callNames: Map<string, string>,
  fail: (m: string) => UpstreamError,
): GeminiPart {
  const name = (message.toolCallId !== undefined ? callNames.get(message.toolCallId) : undefined) ?? message.name;
  if (name === undefined || name === "") {
    throw fail(`messages[${index}]: the tool result's tool_call_id matches no earlier assistant tool call, and Gemini needs the function name`);
  }
  return { functionResponse: { name, response: { content: partsText(message.content) } } };
}

function buildGenerationConfig(request: ChatRequest): GeminiGenerationConfig {
  const s = request.sampling;
  const config: GeminiGenerationConfig = {};
  if (s.maxOutputTokens !== undefined) config.maxOutputTokens = s.maxOutputTokens;
  if (s.temperature !== undefined) config.temperature = s.temperature;
  if (s.topP !== undefined) config.topP = s.topP;
  if (s.topK !== undefined) config.topK = s.topK;
  const stops = (s.stop ?? []).filter((x) => x !== "");
  if (stops.length > 0) config.stopSequences = stops;
  if (s.seed !== undefined) config.seed = s.seed;
  if (s.presencePenalty !== undefined) config.presencePenalty = s.presencePenalty;
  if (s.frequencyPenalty !== undefined) config.frequencyPenalty = s.frequencyPenalty;
  const format = request.responseFormat;
  if (format !== undefined && format.type !== "text") {
    config.responseMimeType = "application/json";
    if (format.type === "json_schema" && format.schema !== undefined) config.responseSchema = cleanGeminiSchema(format.schema);
  }
  return config;
}

function addTools(body: GeminiRequest, request: ChatRequest): void {
  const tools = request.tools ?? [];
  if (tools.length === 0) return;
  body.tools = [
    {
      functionDeclarations: tools.map((t) => {
        const declaration: { name: string; description?: string; parameters?: JsonObject } = { name: t.name };
        if (t.description !== undefined && t.description !== "") declaration.description = t.description;
        if (t.parameters !== undefined) {
          const parameters = cleanGeminiSchema(t.parameters);
          // An object without properties is rejected ("should be non-empty for OBJECT type"): omit it.
          const props = parameters.properties;
          const empty = typeof props !== "object" || props === null || Object.keys(props).length === 0;
          if (!empty) declaration.parameters = parameters;
        }
        return declaration;
      }),
    },
  ];
  const config = toolConfig(request.toolChoice);
  if (config !== undefined) body.toolConfig = config;
}

function toolConfig(choice: ToolChoice | undefined): GeminiRequest["toolConfig"] {
  if (choice === undefined) return undefined;
  if ("function" in choice) return { functionCallingConfig: { mode: "ANY", allowedFunctionNames: [choice.function] } };
  const mode = choice.mode === "none" ? "NONE" : choice.mode === "required" ? "ANY" : "AUTO";
  return { functionCallingConfig: { mode } };
}
