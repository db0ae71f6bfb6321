import type {
  AssistantOutput,
  ChatEvent,
  ChatMessage,
  ChatRequest,
  ChatResult,
  ContentPart,
  FinishReason,
  StreamChunk,
  ToolCall,
  Usage,
} from "../core/chat.js";
import { emptyUsage } from "../core/chat.js";
import { UpstreamError, type ErrorClass, type UpstreamErrorOptions } from "../core/errors.js";
import type { ProviderConfig } from "../config/schema.js";
import type { AdapterCall, ProviderAdapter } from "./adapter.js";
import { upstreamErrorMessage } from "./error-message.js";
import { createUpstreamHttp, toUpstreamError, type UpstreamResponse } from "./http.js";
import { resolveOpenAIProvider, type OpenAIPreset } from "./openai-presets.js";
import { retryAfterMs } from "./retry-hints.js";
import { chunkTail, plainTextChunk, type PlainTextChunk } from "./openai-chunk.js";
import { readText, SseDecoder } from "./sse.js";
import type { EventSourceMessage } from "eventsource-parser";
import { parseJsonOrUndefined } from "./json-upstream.js";
import type { Cancellation } from "../core/cancel.js";

/**
 * The adapter for the OpenAI Chat Completions protocol and the providers
 * that speak it (DeepSeek, Mistral, Qwen, Ollama, vLLM). Provider quirks come
 * from the preset table in openai-presets.ts; this file holds the wire
 * format: request encoding, response and stream decoding, and the error
 * taxonomy.
 *
 * Hot path: the request body is one JSON.stringify; a stream chunk that
 * only carries text is read by one match, not parsed (openai-chunk.ts), and
 * every chunk's tail is handed on for forwarding as `openaiTail`; no
 * regular expression is compiled per request.
 */

// ---------------------------------------------------------------------------
// Request encoding

type WireObject = Record<string, unknown>;

/** Text of a message's text parts; one part needs no join (the common case). */
function joinText(parts: readonly ContentPart[]): string {
  if (parts.length === 1) {
    const only = parts[0]!;
    return only.type === "text" ? only.text : "";
  }
  let text = "";
  let first = true;
  for (const p of parts) {
    if (p.type !== "text") continue;
    text = first ? p.text : `${text}\n${p.text}`;
    first = false;
  }
  return text;
}

function userContent(parts: readonly ContentPart[]): string | WireObject[] {
  if (parts.every((p) => p.type === "text")) return joinText(parts);
  return parts.map((p): WireObject => {
    if (p.type === "text") return { type: "text", text: p.text };
    const url = p.url ?? `data:${p.mediaType ?? "application/octet-stream"};base64,${p.base64 ?? ""}`;
    return { type: "image_url", image_url: p.detail === undefined ? { url } : { url, detail: p.detail } };
  });
}

const nineAlphanumerics = /^[a-zA-Z0-9]{9}$/;
const base62 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/**
 * shortToolCallId rewrites a tool-call id into nine letters and digits (the
 * only ids Mistral accepts), the same way every time so that a call and its
 * result still match. Ids already in that form are kept.
 */
export function shortToolCallId(id: string): string {
  if (nineAlphanumerics.test(id)) return id;
  // Two independent 32-bit FNV-style hashes: 5 base-62 digits from one, 4 from the other.
  let a = 0x811c9dc5;
  let b = 0x9747b28c ^ id.length;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
  }
  a >>>= 0;
  b >>>= 0;
  let out = "";
  for (let i = 0; i < 5; i++, a = Math.floor(a / 62)) out += base62[a % 62];
  for (let i = 0; i < 4; i++, b = Math.floor(b / 62)) out += base62[b % 62];
  return out;
}

function encodeMessage(preset: OpenAIPreset, m: ChatMessage): WireObject {
  switch (m.role) {
    case "tool": {
      // A tool turn has no `name` in OpenAI's schema; the call id links it.
      const id = m.toolCallId ?? "";
      return { role: "tool", tool_call_id: preset.shortToolCallIds ? shortToolCallId(id) : id, content: joinText(m.content) };
    }
    case "assistant": {
      const text = joinText(m.content);
      const calls = m.toolCalls;
      const out: WireObject = { role: "assistant", content: text === "" && calls !== undefined && calls.length > 0 ? null : text };
      if (calls !== undefined && calls.length > 0) {
        out.tool_calls = calls.map((c) => ({
          id: preset.shortToolCallIds ? shortToolCallId(c.id) : c.id,
          type: "function",
          // Providers that parse the arguments (Mistral, vLLM) reject an empty string.
          function: { name: c.name, arguments: c.arguments === "" ? "{}" : c.arguments },
        }));
      }
      // Earlier reasoning is not sent back: DeepSeek rejects reasoning_content in input messages.
      if (m.name !== undefined && preset.messageNames) out.name = m.name;
      return out;
    }
    case "user": {
      const out: WireObject = { role: "user", content: userContent(m.content) };
      if (m.name !== undefined && preset.messageNames) out.name = m.name;
      return out;
    }
    default: {
      const out: WireObject = { role: "system", content: joinText(m.content) };
      if (m.name !== undefined && preset.messageNames) out.name = m.name;
      return out;
    }
  }
}

/**
 * buildOpenAIChatBody encodes a normalized request as a Chat Completions
 * request body (JSON text) for one preset. Only fields the request sets are
 * sent; fields the preset drops are never sent. Streaming bodies ask for
 * usage unless the preset rejects `stream_options`.
 */
export function buildOpenAIChatBody(preset: OpenAIPreset, request: ChatRequest, upstreamModel: string, stream: boolean): string {
  const messages = new Array<WireObject>(request.messages.length);
  for (let i = 0; i < request.messages.length; i++) messages[i] = encodeMessage(preset, request.messages[i]!);
  const body: WireObject = { model: upstreamModel, messages };
  const dropped = preset.droppedFields;
  const put = (field: string, value: unknown): void => {
    if (value !== undefined && !dropped.has(field)) body[field] = value;
  };

  const s = request.sampling;
  put("temperature", s.temperature);
  put("top_p", s.topP);
  if (preset.topK) put("top_k", s.topK);
  put(preset.maxTokensField, s.maxOutputTokens);
  if (s.stop !== undefined && s.stop.length > 0) put("stop", s.stop);
  put(preset.seedField, s.seed);
  put("presence_penalty", s.presencePenalty);
  put("frequency_penalty", s.frequencyPenalty);
  if (preset.reasoningEffort) put("reasoning_effort", s.reasoningEffort);

  const tools = request.tools;
  if (tools !== undefined && tools.length > 0) {
    put(
      "tools",
      tools.map((t) => {
        const fn: WireObject = { name: t.name };
        if (t.description !== undefined) fn.description = t.description;
        if (t.parameters !== undefined) fn.parameters = t.parameters;
        if (t.strict !== undefined) fn.strict = t.strict;
        return { type: "function", function: fn };
      }),
    );
    // OpenAI rejects tool_choice and parallel_tool_calls without tools, so they go only with them.
    const choice = request.toolChoice;
    if (choice !== undefined) {
      put(
        "tool_choice",
        "function" in choice
          ? { type: "function", function: { name: choice.function } }
          : choice.mode === "required"
            ? preset.requiredToolChoice
            : choice.mode,
      );
    }
    put("parallel_tool_calls", request.parallelToolCalls);
  }

  const rf = request.responseFormat;
  if (rf !== undefined) {
    if (rf.type === "json_schema") {
      const schema: WireObject = { name: rf.name ?? "response" };
      if (rf.schema !== undefined) schema.schema = rf.schema;
      if (rf.strict !== undefined) schema.strict = rf.strict;
      put("response_format", { type: "json_schema", json_schema: schema });
    } else {
      put("response_format", { type: rf.type });
    }
  }
  put("user", request.metadata.endUser);

  if (stream) {
    body.stream = true;
    if (preset.streamOptions) body.stream_options = { include_usage: true };
  }
  return JSON.stringify(body);
}

// ---------------------------------------------------------------------------
// Response decoding

interface WireToolCall {
  index?: number;
  id?: string;
  function?: { name?: string; arguments?: unknown };
}

interface WireMessage {
  content?: unknown;
  reasoning_content?: unknown;
  reasoning?: unknown;
  refusal?: unknown;
  tool_calls?: WireToolCall[] | null;
}

interface WireChoice {
  index?: number;
  message?: WireMessage;
  delta?: WireMessage;
  finish_reason?: string | null;
}

interface WireUsage {
  prompt_tokens?: unknown;
  completion_tokens?: unknown;
  prompt_tokens_details?: { cached_tokens?: unknown } | null;
  completion_tokens_details?: { reasoning_tokens?: unknown } | null;
  prompt_cache_hit_tokens?: unknown;
}

interface WireBody {
  id?: unknown;
  choices?: unknown;
  usage?: WireUsage | null;
  error?: unknown;
}

function count(v: unknown): number {
  return typeof v === "number" && Number.isFinite(v) && v > 0 ? Math.floor(v) : 0;
}

/**
 * normalizeOpenAIUsage converts a Chat Completions `usage` object to Usage,
 * or returns undefined when there is none. Cached tokens come from
 * `prompt_tokens_details.cached_tokens` or DeepSeek's
 * `prompt_cache_hit_tokens`; both are already inside `prompt_tokens`, as
 * reasoning tokens are inside `completion_tokens`, which is Usage's convention.
 */
export function normalizeOpenAIUsage(usage: unknown): Usage | undefined {
  if (usage === null || typeof usage !== "object") return undefined;
  const u = usage as WireUsage;
  return {
    inputTokens: count(u.prompt_tokens),
    outputTokens: count(u.completion_tokens),
    // DeepSeek sends both fields with the same value; max() reads either without double counting.
    cachedInputTokens: Math.max(count(u.prompt_tokens_details?.cached_tokens), count(u.prompt_cache_hit_tokens)),
    cacheWriteInputTokens: 0,
    reasoningTokens: count(u.completion_tokens_details?.reasoning_tokens),
  };
}

const finishReasons: ReadonlyMap<string, FinishReason> = new Map<string, FinishReason>([
  ["stop", "stop"],
  ["eos", "stop"],
  ["length", "length"],
  ["model_length", "length"], // Mistral
  ["tool_calls", "tool_calls"],
  ["function_call", "tool_calls"],
  ["content_filter", "content_filter"],
  ["error", "error"], // Mistral
  ["insufficient_system_resource", "error"], // DeepSeek
]);

/** normalizeOpenAIFinishReason maps a wire finish_reason to FinishReason; unknown values are "other". */
export function normalizeOpenAIFinishReason(reason: unknown): FinishReason {
  return (typeof reason === "string" ? finishReasons.get(reason) : undefined) ?? "other";
}

function reasoningOf(m: WireMessage): string {
  const r = m.reasoning_content ?? m.reasoning;
  return typeof r === "string" ? r : "";
}

/**
 * Content is a string everywhere except Mistral's reasoning models, which
 * send an array of `text` and `thinking` chunks; both shapes are read.
 */
function readContent(content: unknown, onText: (t: string) => void, onThinking: (t: string) => void): void {
  if (typeof content === "string") {
    if (content !== "") onText(content);
    return;
  }
  if (!Array.isArray(content)) return;
  for (const part of content as Array<{ type?: unknown; text?: unknown; thinking?: unknown }>) {
    if (part === null || typeof part !== "object") continue;
    if (part.type === "text" && typeof part.text === "string" && part.text !== "") onText(part.text);
    else if (part.type === "thinking") {
      const inner = part.thinking;
      if (typeof inner === "string") onThinking(inner);
      else if (Array.isArray(inner)) {
        for (const t of inner as Array<{ text?: unknown }>) if (typeof t?.text === "string") onThinking(t.text);
      }
    }
  }
}

function argumentsText(args: unknown): string {
  if (typeof args === "string") return args;
  // Some servers (older Ollama) send the arguments as an object.
  return args === undefined || args === null ? "" : JSON.stringify(args);
}

// ---------------------------------------------------------------------------
// Errors

const contextExceeded = /context[ _-]?(?:length|window)|maximum context|range of input length|prompt is too long/i;
const htmlTitle = /<title>([^<]*)<\/title>/i;
const whitespace = /\s+/g;

const contentFilterCodes: ReadonlySet<string> = new Set(["content_filter", "content_policy_violation", "data_inspection_failed"]);

// How an error without an HTTP status (an in-stream error event) is classified, by its code or type.
const classByCode: ReadonlyMap<string, ErrorClass> = new Map<string, ErrorClass>([
  ["insufficient_quota", "quota_exhausted"],
  ["rate_limit_exceeded", "rate_limited"],
  ["rate_limit_error", "rate_limited"],
  ["requests", "rate_limited"],
  ["tokens", "rate_limited"],
  ["overloaded", "overloaded"],
  ["overloaded_error", "overloaded"],
  ["server_overloaded", "overloaded"],
  ["service_unavailable", "overloaded"],
  ["context_length_exceeded", "context_length_exceeded"],
  ["content_filter", "content_filtered"],
  ["content_policy_violation", "content_filtered"],
  ["data_inspection_failed", "content_filtered"],
  ["invalid_api_key", "auth"],
  ["authentication_error", "auth"],
  ["permission_error", "auth"],
  ["model_not_found", "not_found"],
  ["not_found_error", "not_found"],
  ["invalid_request_error", "invalid_request"],
  ["timeout", "timeout"],
  ["timeout_error", "timeout"],
  ["server_error", "server_error"],
  ["api_error", "server_error"],
]);

/** ErrorInfo is what an error body says, whichever of the family's shapes it has. */
interface ErrorInfo {
  message: string;
  type: string;
  code: string;
}

function str(v: unknown): string {
  return typeof v === "string" ? v : typeof v === "number" ? String(v) : "";
}

/**
 * errorInfo reads `{"error":{message,type,code}}` (OpenAI, DeepSeek, Qwen),
 * `{"error":"..."}` (Ollama), `{"detail":[...]}` (Mistral 422, FastAPI) and
 * top-level `{message,type,code}` (Mistral, vLLM).
 */
function errorInfo(json: unknown): ErrorInfo {
  if (json === null || typeof json !== "object") return { message: "", type: "", code: "" };
  const o = json as { error?: unknown; detail?: unknown; message?: unknown; type?: unknown; code?: unknown };
  const e = o.error;
  if (e !== null && typeof e === "object") {
    const eo = e as { message?: unknown; type?: unknown; code?: unknown };
    return { message: str(eo.message), type: str(eo.type), code: str(eo.code) };
  }
  if (typeof e === "string") return { message: e, type: str(o.type), code: str(o.code) };
  if (Array.isArray(o.detail)) {
    const details = o.detail as Array<{ loc?: unknown; msg?: unknown; type?: unknown }>;
    const message = details
      .map((d) => {
        const loc = Array.isArray(d?.loc) ? (d.loc as unknown[]).map(str).join(".") : "";
        return loc === "" ? str(d?.msg) : `${loc}: ${str(d?.msg)}`;
      })
      .join("; ");
    return { message, type: "invalid_request_error", code: str(details[0]?.type) };
  }
  if (typeof o.detail === "string") return { message: o.detail, type: "", code: "" };
  return { message: str(o.message), type: str(o.type), code: str(o.code) };
}

function errorInfoFromText(text: string): ErrorInfo {
  try {
    return errorInfo(JSON.parse(text));
  } catch {
    // A proxy's HTML page: its title is the useful part.
    const title = htmlTitle.exec(text);
    if (title !== null) return { message: title[1]!.trim(), type: "", code: "" };
    return { message: text.trimStart().startsWith("<") ? "" : text, type: "", code: "" };
  }
}

/** classifyHttpError maps an upstream HTTP status and error body to an ErrorClass. */
function classifyHttpError(status: number, info: ErrorInfo): ErrorClass {
  if (status === 429) return info.code === "insufficient_quota" || info.type === "insufficient_quota" ? "quota_exhausted" : "rate_limited";
  if (status === 402) return "quota_exhausted";
  if (status === 401 || status === 403) return "auth";
  if (status === 404) return "not_found";
  if (status === 408 || status === 504) return "timeout";
  if (status === 503 || status === 529) return "overloaded";
  if (status >= 500) return "server_error";
  if (status >= 400) {
    if (contentFilterCodes.has(info.code) || contentFilterCodes.has(info.type)) return "content_filtered";
    if (info.code === "context_length_exceeded" || contextExceeded.test(info.message)) return "context_length_exceeded";
    return "invalid_request";
  }
  return "server_error";
}

/** classifyEventError classifies an error that arrived without a status (inside a 200 stream). */
function classifyEventError(info: ErrorInfo): ErrorClass {
  // vLLM and some proxies put the HTTP status in `code`.
  const numeric = Number(info.code);
  if (info.code !== "" && Number.isInteger(numeric) && numeric >= 400 && numeric <= 599) {
    return classifyHttpError(numeric, { ...info, code: "" });
  }
  // The code is the most specific; a context-length message beats a generic type such as invalid_request_error.
  const byCode = classByCode.get(info.code);
  if (byCode !== undefined) return byCode;
  if (contextExceeded.test(info.message)) return "context_length_exceeded";
  return classByCode.get(info.type) ?? "server_error";
}

async function readLimited(body: AsyncIterable<Uint8Array> & { destroy(): unknown }, limit: number): Promise<string> {
  const decoder = new TextDecoder();
  let text = "";
  try {
    for await (const bytes of body) {
      text += decoder.decode(bytes, { stream: true });
      if (text.length >= limit) {
        body.destroy();
        break;
      }
    }
  } catch {
    // The status already says what failed; a truncated error body is still useful.
  }
  return text;
}

function headerValue(v: string | string[] | undefined): string {
  return Array.isArray(v) ? (v[0] ?? "") : (v ?? "");
}

/** StreamState is what reading one stream has seen so far. */
interface StreamState {
  /** finished is set once a finish reason arrived. */
  finished: boolean;
  /** done is set once the [DONE] marker arrived. */
  done: boolean;
  /** sawToolCall turns a later "stop" into "tool_calls" (older Ollama ends tool calls with "stop"). */
  sawToolCall: boolean;
}

// ---------------------------------------------------------------------------
// The adapter

function originAndPath(providerId: string, baseUrl: string): { origin: string; path: string; basicAuth?: string } {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    // The URL itself is not repeated: it may carry credentials.
    throw new Error(`provider ${providerId}: base_url is not a valid URL`);
  }
  const path = `${url.pathname.replace(/\/+$/, "")}/chat/completions${url.search}`;
  const basicAuth =
    url.username !== "" ? `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString("base64")}` : undefined;
  return { origin: url.origin, path, basicAuth };
}

/**
 * createOpenAICompatibleAdapter builds the adapter of an OpenAI-family
 * provider (openai, deepseek, mistral, qwen, ollama, vllm). It sends
 * `Authorization: Bearer <api_key>` only when a key is set (otherwise the
 * base URL's `user:pass@`, if any, as Basic auth), then the provider's own
 * headers. `timeout_ms` bounds the wait for response headers (for a
 * non-streaming call, the whole generation) and `idle_timeout_ms` the
 * silence between two body chunks.
 */
export function createOpenAICompatibleAdapter(provider: ProviderConfig): ProviderAdapter {
  const { preset, baseUrl } = resolveOpenAIProvider(provider);
  const { origin, path, basicAuth } = originAndPath(provider.id, baseUrl);
  const apiKey = provider.api_key !== undefined && provider.api_key !== "" ? provider.api_key : undefined;
  const prefix = `${provider.id}: `;
  const secrets = [apiKey];
  const http = createUpstreamHttp({
    connectTimeoutMs: provider.connect_timeout_ms,
    headersTimeoutMs: provider.timeout_ms,
    idleTimeoutMs: provider.idle_timeout_ms,
    maxConnections: provider.max_connections,
  });

  const baseHeaders: Record<string, string> = { "content-type": "application/json" };
  if (apiKey !== undefined) baseHeaders.authorization = `Bearer ${apiKey}`;
  else if (basicAuth !== undefined) baseHeaders.authorization = basicAuth;
  const jsonHeaders: Record<string, string> = { ...baseHeaders, accept: "application/json", ...provider.headers };
  const streamHeaders: Record<string, string> = { ...baseHeaders, accept: "text/event-stream", ...provider.headers };

  /** fail builds a classified error whose message is `<provider id>: <upstream message>`, redacted and cut. */
  function fail(errorClass: ErrorClass, message: string, options?: UpstreamErrorOptions): UpstreamError {
    return new UpstreamError(errorClass, upstreamErrorMessage(provider.id, message.replace(whitespace, " "), secrets), options);
  }

  /** tagged names the provider in a transport error (whose message never holds the URL). */
  function tagged(err: unknown, signal: Cancellation): UpstreamError {
    const e = toUpstreamError(err, signal);
    if (e.message.startsWith(prefix)) return e;
    return new UpstreamError(e.errorClass, prefix + e.message, { status: e.status, retryAfterMs: e.retryAfterMs, cause: e.cause ?? e });
  }

  async function httpError(res: UpstreamResponse, signal: Cancellation): Promise<UpstreamError> {
    const text = await readLimited(res.body, 64 * 1024);
    if (signal.aborted) return fail("cancelled", "the request was cancelled", { status: res.status });
    const info = errorInfoFromText(text);
    const message = info.message !== "" ? info.message : info.code !== "" ? info.code : `HTTP ${res.status}`;
    return fail(classifyHttpError(res.status, info), message, { status: res.status, retryAfterMs: retryAfterMs(res.headers) });
  }

  function eventError(json: unknown, status: number): UpstreamError {
    const info = errorInfo(json);
    return fail(classifyEventError(info), info.message !== "" ? info.message : "the provider reported an error", { status });
  }

  async function send(call: AdapterCall, stream: boolean): Promise<UpstreamResponse> {
    const body = buildOpenAIChatBody(preset, call.request, call.upstreamModel, stream);
    let res: UpstreamResponse;
    try {
      res = await http.post(origin, path, stream ? streamHeaders : jsonHeaders, body, call.signal);
    } catch (err) {
      throw tagged(err, call.signal);
    }
    call.onResponseHeaders?.(res.status, res.headers);
    if (res.status < 200 || res.status > 299) throw await httpError(res, call.signal);
    return res;
  }

  /** parseCompletion reads an answer; body is its JSON text, kept for the REST shim (AssistantOutput.openaiSource). */
  function parseCompletion(json: WireBody, body: string): ChatResult {
    const choices = json.choices;
    const choice = Array.isArray(choices) ? (choices[0] as WireChoice | undefined) : undefined;
    if (choice === undefined || choice === null || typeof choice !== "object") {
      throw fail("malformed_response", "the provider's answer has no choices", { status: 200 });
    }
    const message: WireMessage = choice.message ?? {};
    let text = "";
    let reasoning = reasoningOf(message);
    readContent(
      message.content,
      (t) => (text += t),
      (t) => (reasoning += t),
    );
    const toolCalls: ToolCall[] = [];
    if (Array.isArray(message.tool_calls)) {
      for (const [i, c] of message.tool_calls.entries()) {
        toolCalls.push({ id: typeof c.id === "string" ? c.id : `call_${i}`, name: c.function?.name ?? "", arguments: argumentsText(c.function?.arguments) });
      }
    }
    let finishReason = normalizeOpenAIFinishReason(choice.finish_reason);
    // Some servers (older Ollama) end a tool call with "stop".
    if (finishReason === "stop" && toolCalls.length > 0) finishReason = "tool_calls";
    const output: AssistantOutput = { text, toolCalls, reasoning, refusal: typeof message.refusal === "string" ? message.refusal : "" };
    // Only the REST shim looks the text's literal up in the body (an RPC caller never needs it).
    if (typeof message.content === "string" && text.length > 0) output.openaiSource = { text, body };
    return {
      output,
      finishReason,
      usage: normalizeOpenAIUsage(json.usage) ?? emptyUsage(),
      upstreamId: typeof json.id === "string" ? json.id : undefined,
    };
  }

  /**
   * chunkOf turns one SSE data field into a StreamChunk, or undefined for
   * data that carries none ("" or the [DONE] marker, which it records).
   * A chunk with nothing but text is read without parsing it; any other is
   * parsed.
   */
  function chunkOf(data: string, s: StreamState, status: number): StreamChunk | undefined {
    if (data === "[DONE]") {
      s.done = true;
      return undefined;
    }
    if (data === "") return undefined;
    let plain: PlainTextChunk | undefined;
    let json: WireBody | undefined;
    try {
      plain = plainTextChunk(data);
      if (plain === undefined) json = JSON.parse(data) as WireBody;
    } catch {
      throw fail("malformed_response", "the provider sent a malformed stream chunk", { status });
    }
    if (plain !== undefined) return { events: plain.text === "" ? [] : [{ type: "text", text: plain.text }], openaiTail: plain.tail };
    if (json === null || typeof json !== "object") {
      throw fail("malformed_response", "the provider sent a stream chunk that is not an object", { status });
    }
    if (json.error !== undefined && json.error !== null) throw eventError(json, status);

    const events: ChatEvent[] = [];
    const choices = json.choices;
    if (Array.isArray(choices)) {
      for (const c of choices as WireChoice[]) {
        // One choice is requested; anything else is another choice's data.
        if (c === null || typeof c !== "object" || (c.index !== undefined && c.index !== 0)) continue;
        const delta = c.delta;
        if (delta !== undefined && delta !== null) {
          const r = reasoningOf(delta);
          if (r !== "") events.push({ type: "reasoning", text: r });
          const content = delta.content;
          if (typeof content === "string") {
            if (content !== "") events.push({ type: "text", text: content });
          } else if (Array.isArray(content)) {
            readContent(
              content,
              (t) => events.push({ type: "text", text: t }),
              (t) => events.push({ type: "reasoning", text: t }),
            );
          }
          const calls = delta.tool_calls;
          if (Array.isArray(calls)) {
            for (let i = 0; i < calls.length; i++) {
              const tc = calls[i]!;
              const e: Extract<ChatEvent, { type: "tool_call" }> = {
                type: "tool_call",
                index: typeof tc.index === "number" ? tc.index : i,
                argumentsDelta: argumentsText(tc.function?.arguments),
              };
              if (typeof tc.id === "string") e.id = tc.id;
              if (typeof tc.function?.name === "string") e.name = tc.function.name;
              events.push(e);
              s.sawToolCall = true;
            }
          }
        }
        const fr = c.finish_reason;
        if (fr !== undefined && fr !== null) {
          let finishReason = normalizeOpenAIFinishReason(fr);
          if (finishReason === "stop" && s.sawToolCall) finishReason = "tool_calls";
          events.push({ type: "finish", finishReason });
          s.finished = true;
        }
      }
    }
    const usage = json.usage;
    if (usage !== undefined && usage !== null) {
      const u = normalizeOpenAIUsage(usage);
      if (u !== undefined) events.push({ type: "usage", usage: u });
    }
    return { events, openaiTail: chunkTail(data) };
  }

  /**
   * OpenAIChunkStream is one streaming call, read chunk by chunk. It is a
   * hand-written iterator rather than an async generator because it runs
   * once per streamed chunk: an async generator layer (its request queue,
   * the implicit await of every yield) measured about 3 µs of CPU per
   * chunk in the gateway, several times what an async next() costs.
   * Leaving early (return) closes the body, so the connection is not reused.
   */
  class OpenAIChunkStream implements AsyncIterableIterator<StreamChunk> {
    private res: UpstreamResponse | undefined;
    private body: AsyncIterator<Buffer> | undefined;
    // The body's reads are decoded here rather than through readSse: one async step less per chunk.
    private readonly sse = new SseDecoder();
    private bodyDone = false;
    private readonly queue: StreamChunk[] = [];
    private readonly state: StreamState = { finished: false, done: false, sawToolCall: false };
    private over = false;
    private failure: unknown;

    constructor(private readonly call: AdapterCall) {}

    [Symbol.asyncIterator](): this {
      return this;
    }

    async next(): Promise<IteratorResult<StreamChunk, undefined>> {
      try {
        for (;;) {
          const queued = this.queue.shift();
          if (queued !== undefined) return { value: queued, done: false };
          // A bad event is reported after the chunks that came before it in the same read.
          if (this.failure !== undefined) throw this.failure;
          if (this.over) return { value: undefined, done: true };
          if (this.bodyDone) {
            this.close();
            if (!this.state.finished) throw fail("connection", "the stream ended early (no finish reason)", { status: this.res!.status });
            return { value: undefined, done: true };
          }
          const body = this.body ?? (await this.open());
          let events: EventSourceMessage[];
          try {
            const read = await body.next();
            if (read.done === true) {
              this.bodyDone = true;
              events = this.sse.end();
            } else {
              events = this.sse.push(read.value);
            }
          } catch (err) {
            // A failure while draining after [DONE] loses nothing: the answer is complete.
            if (!this.state.done || this.call.signal.aborted) throw tagged(err, this.call.signal);
            this.bodyDone = true;
            events = [];
          }
          // Closed by return() while the read was pending: the consumer has left.
          if (this.over) return { value: undefined, done: true };
          const status = this.res!.status;
          for (const event of events) {
            // After [DONE], keep reading to the end of the body so the pooled connection can be reused.
            if (this.state.done) continue;
            try {
              const chunk = chunkOf(event.data, this.state, status);
              if (chunk !== undefined) this.queue.push(chunk);
            } catch (err) {
              this.failure = err;
              break;
            }
          }
        }
      } catch (err) {
        this.close();
        throw err;
      }
    }

    return(): Promise<IteratorResult<StreamChunk, undefined>> {
      this.close();
      return Promise.resolve({ value: undefined, done: true });
    }

    /** open sends the request and checks that a stream came back. */
    private async open(): Promise<AsyncIterator<Buffer>> {
      const res = await send(this.call, true);
      this.res = res;
      const contentType = headerValue(res.headers["content-type"]);
      if (contentType.includes("application/json")) {
        // Not a stream: an error body, or a server that ignored `stream`.
        const text = await readLimited(res.body, 64 * 1024);
        const json = parseJsonOrUndefined(text);
        if (json !== null && typeof json === "object" && "error" in json) throw eventError(json, res.status);
        throw fail("malformed_response", "the provider answered a streaming request without a stream", { status: res.status });
      }
      // Closed by return() while the request was in flight: the next read ends at once.
      if (this.over) res.body.destroy();
      this.body = res.body[Symbol.asyncIterator]();
      return this.body;
    }

    /** close ends the iteration, dropping what was queued; an unfinished body is destroyed (harmless after its end). */
    private close(): void {
      this.queue.length = 0;
      this.failure = undefined;
      if (this.over) return;
      this.over = true;
      this.res?.body.destroy();
    }
  }

  return {
    providerId: provider.id,

    async complete(call) {
      const res = await send(call, false);
      let text: string;
      try {
        text = await readText(res.body, call.signal);
      } catch (err) {
        throw tagged(err, call.signal);
      }
      let json: WireBody;
      try {
        json = JSON.parse(text) as WireBody;
      } catch {
        throw fail("malformed_response", "the provider's answer is not valid JSON", { status: res.status });
      }
      if (json === null || typeof json !== "object") throw fail("malformed_response", "the provider's answer is not a JSON object", { status: res.status });
      // A few servers answer 200 with an error body.
      if (json.error !== undefined && json.error !== null && json.choices === undefined) throw eventError(json, res.status);
      return parseCompletion(json, text);
    },

    stream: (call) => new OpenAIChunkStream(call),

    close: () => http.close(),
  };
}
