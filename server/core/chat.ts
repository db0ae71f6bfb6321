/**
 * The normalized chat model every part of the gateway speaks. The edges (RPC
 * and the OpenAI-compatible REST shim) translate into it, provider adapters
 * translate out of it, and nothing here knows about either side's wire format.
 */

/** JsonValue is any value JSON can hold. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [k: string]: JsonValue };
/** JsonObject is a JSON object, such as a JSON Schema. */
export type JsonObject = { [k: string]: JsonValue };

/** Role is who wrote a message. */
export type Role = "system" | "user" | "assistant" | "tool";

/** TextPart is a piece of plain text. */
export interface TextPart {
  type: "text";
  text: string;
}

/**
 * ImagePart is an image, either by URL or inline. Inline images are kept as
 * base64 because every provider wants base64 on the wire.
 */
export interface ImagePart {
  type: "image";
  /** url is an http(s) URL; unset for inline images. */
  url?: string;
  /** base64 is the inline image data; unset for URL images. */
  base64?: string;
  /** mediaType is the MIME type, required for inline images. */
  mediaType?: string;
  /** detail is the requested fidelity. */
  detail?: "low" | "high" | "auto";
}

/** ContentPart is one piece of a message's content. */
export type ContentPart = TextPart | ImagePart;

/** ToolCall is one function call made by the model; arguments is JSON text. */
export interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

/** ChatMessage is one turn of a conversation. */
export interface ChatMessage {
  role: Role;
  content: ContentPart[];
  /** toolCalls are the calls an assistant turn made. */
  toolCalls?: ToolCall[];
  /** toolCallId links a tool turn to the call it answers. */
  toolCallId?: string;
  /** name is a participant name, or the function name on a tool turn. */
  name?: string;
  /** reasoning is the reasoning text of a previous assistant turn. */
  reasoning?: string;
}

/** ToolDefinition is a function the model may call. */
export interface ToolDefinition {
  name: string;
  description?: string;
  /** parameters is the JSON Schema of the arguments object. */
  parameters?: JsonObject;
  strict?: boolean;
}

/** ToolChoice constrains tool use: a mode or one named function. */
export type ToolChoice = { mode: "auto" | "none" | "required" } | { function: string };

/** ReasoningEffort is how hard a reasoning model should think. */
export type ReasoningEffort = "minimal" | "low" | "medium" | "high";

/** SamplingOptions are generation controls; unset means the provider default. */
export interface SamplingOptions {
  temperature?: number;
  topP?: number;
  maxOutputTokens?: number;
  stop?: string[];
  seed?: number;
  topK?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  reasoningEffort?: ReasoningEffort;
}

/** ResponseFormat asks for structured output. */
export interface ResponseFormat {
  type: "text" | "json_object" | "json_schema";
  name?: string;
  schema?: JsonObject;
  strict?: boolean;
}

/** Capability is a model feature a request may require. */
export type Capability = "tools" | "vision" | "json" | "json_schema" | "reasoning";

/** RoutingOptions constrain which deployments may serve a request. */
export interface RoutingOptions {
  maxCostNanoUsd?: bigint;
  latencyBudgetMs?: number;
  requiredCapabilities?: Capability[];
  allowedProviders?: string[];
  deniedProviders?: string[];
  priority?: "interactive" | "batch";
  cachePolicy?: "use" | "bypass" | "refresh";
}

/** RequestMetadata labels a request for accounting; it never reaches generation. */
export interface RequestMetadata {
  tags?: Record<string, string>;
  endUser?: string;
  feature?: string;
}

/** ChatRequest is a normalized request, whichever edge it came from. */
export interface ChatRequest {
  /** model is a model id or a route id, as the caller wrote it. */
  model: string;
  messages: ChatMessage[];
  tools?: ToolDefinition[];
  toolChoice?: ToolChoice;
  parallelToolCalls?: boolean;
  sampling: SamplingOptions;
  responseFormat?: ResponseFormat;
  routing: RoutingOptions;
  metadata: RequestMetadata;
}

/** FinishReason is why generation stopped, with one meaning across providers. */
export type FinishReason =
  | "stop"
  | "length"
  | "tool_calls"
  | "content_filter"
  | "malformed_tool_call"
  | "error"
  | "other";

/**
 * Usage is a normalized token count. inputTokens includes cached and
 * cache-written tokens; outputTokens includes reasoning tokens. Adapters
 * convert each provider's convention into this one.
 */
export interface Usage {
  inputTokens: number;
  outputTokens: number;
  cachedInputTokens: number;
  cacheWriteInputTokens: number;
  reasoningTokens: number;
}

/** emptyUsage returns a zero Usage. */
export function emptyUsage(): Usage {
  return { inputTokens: 0, outputTokens: 0, cachedInputTokens: 0, cacheWriteInputTokens: 0, reasoningTokens: 0 };
}

/** AssistantOutput is the model's whole answer. */
export interface AssistantOutput {
  text: string;
  toolCalls: ToolCall[];
  reasoning: string;
  refusal: string;
  /**
   * openaiSource is the OpenAI-format answer (its JSON text) the text was
   * read from, as the message's "content", so the REST shim can write the
   * text with the provider's own JSON literal rather than escape it again.
   * It counts only while openaiSource.text === text: code that changes the
   * text need not clear it.
   */
  openaiSource?: { text: string; body: string };
}

/** ChatResult is a whole answer from one upstream call. */
export interface ChatResult {
  output: AssistantOutput;
  finishReason: FinishReason;
  usage: Usage;
  /** upstreamId is the provider's id for the completion, if it gave one. */
  upstreamId?: string;
}

/** ChatEvent is one normalized streaming event from an upstream. */
export type ChatEvent =
  | { type: "text"; text: string }
  | { type: "reasoning"; text: string }
  | { type: "tool_call"; index: number; id?: string; name?: string; argumentsDelta: string }
  | { type: "finish"; finishReason: FinishReason }
  | { type: "usage"; usage: Usage };

/**
 * StreamChunk is what an adapter yields for one upstream chunk: its events,
 * and, for OpenAI-format upstreams, the chunk's JSON text past its head so
 * an edge that speaks the same format can forward it behind its own head
 * without re-encoding. A chunk may carry no events (a role-only first
 * delta) and still be forwarded.
 */
export interface StreamChunk {
  events: ChatEvent[];
  /**
   * openaiTail is the upstream chat.completion.chunk JSON text after its
   * id, object, created and model fields (the closing brace included);
   * unset when the chunk is not OpenAI's or its head is in another order.
   */
  openaiTail?: string;
}
