import type { ChatMessage, ChatRequest, ContentPart, JsonObject, ReasoningEffort, ToolChoice, ToolDefinition } from "../core/chat.js";
import { invalidArgument } from "../core/errors.js";

/**
 * Parsing of an OpenAI chat-completions body into the normalized request.
 * Validation is hand-written rather than schema-driven because this is the
 * hot path and because every error must name the field the OpenAI way
 * (`messages[2].content`), so the SDK user sees exactly what to fix.
 */

/** ShimRequest is a parsed chat-completions request. */
export interface ShimRequest {
  request: ChatRequest;
  stream: boolean;
  /** includeUsage is stream_options.include_usage: the caller wants a usage chunk. */
  includeUsage: boolean;
}

type Obj = Record<string, unknown>;

const known = new Set([
  "model", "messages", "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "stream",
  "stream_options", "tools", "tool_choice", "parallel_tool_calls", "response_format", "seed", "user", "n",
  "presence_penalty", "frequency_penalty", "reasoning_effort", "top_k", "metadata", "store", "service_tier",
]);
const unsupported = new Set(["logprobs", "top_logprobs", "logit_bias", "audio", "modalities", "prediction", "functions", "function_call", "web_search_options"]);
const efforts = new Set(["minimal", "low", "medium", "high"]);

function isObj(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function typeName(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "array" : typeof v;
}

function num(body: Obj, key: string, min: number, max: number): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v)) throw invalidArgument(key, `expected a number, got ${typeName(v)}`);
  if (v < min || v > max) throw invalidArgument(key, `must be between ${min} and ${max}, got ${v}`);
  return v;
}

function int(body: Obj, key: string, min: number, max: number): number | undefined {
  const v = num(body, key, min, max);
  if (v !== undefined && !Number.isInteger(v)) throw invalidArgument(key, `expected an integer, got ${v}`);
  return v;
}

function str(v: unknown, param: string): string {
  if (typeof v !== "string") throw invalidArgument(param, `expected a string, got ${typeName(v)}`);
  return v;
}

function parseImage(part: Obj, param: string): ContentPart {
  const image = part.image_url;
  if (!isObj(image)) throw invalidArgument(`${param}.image_url`, "expected an object with a url");
  const url = str(image.url, `${param}.image_url.url`);
  const detail = image.detail;
  if (detail !== undefined && detail !== "low" && detail !== "high" && detail !== "auto") {
    throw invalidArgument(`${param}.image_url.detail`, "expected low, high or auto");
  }
  if (url.startsWith("data:")) {
    const m = /^data:([\w.+-]+\/[\w.+-]+);base64,(.*)$/s.exec(url);
    if (m === null) throw invalidArgument(`${param}.image_url.url`, "expected a data URL of the form data:<mime>;base64,<data>");
    return { type: "image", base64: m[2]!, mediaType: m[1]!, detail };
  }
  if (!/^https?:\/\//.test(url)) throw invalidArgument(`${param}.image_url.url`, "expected an http(s) URL or a base64 data URL");
  return { type: "image", url, detail };
}

function parseContent(v: unknown, param: string, allowImages: boolean): ContentPart[] {
  if (typeof v === "string") return [{ type: "text", text: v }];
  if (!Array.isArray(v)) throw invalidArgument(param, `expected a string or an array of content parts, got ${typeName(v)}`);
  return v.map((part, i): ContentPart => {
    const p = `${param}[${i}]`;
    if (!isObj(part)) throw invalidArgument(p, "expected a content part object");
    if (part.type === "text") return { type: "text", text: str(part.text, `${p}.text`) };
    if (part.type === "image_url") {
      if (!allowImages) throw invalidArgument(`${p}.type`, "images are only allowed in user messages");
      return parseImage(part, p);
    }
    throw invalidArgument(`${p}.type`, `unsupported content part type ${JSON.stringify(part.type)} (expected text or image_url)`);
  });
}

function parseMessage(v: unknown, i: number): ChatMessage {
  const param = `messages[${i}]`;
  if (!isObj(v)) throw invalidArgument(param, `expected an object, got ${typeName(v)}`);
  const name = v.name === undefined ? undefined : str(v.name, `${param}.name`);
  switch (v.role) {
    case "system":
    case "developer":
      return { role: "system", content: parseContent(v.content, `${param}.content`, false), name };
    case "user":
      return { role: "user", content: parseContent(v.content, `${param}.content`, true), name };
    case "assistant": {
      const content = v.content === undefined || v.content === null ? [] : parseContent(v.content, `${param}.content`, false);
      const toolCalls = v.tool_calls === undefined || v.tool_calls === null ? undefined : parseToolCalls(v.tool_calls, `${param}.tool_calls`);
      if (content.length === 0 && (toolCalls?.length ?? 0) === 0) {
        throw invalidArgument(`${param}.content`, "an assistant message needs content or tool_calls");
      }
      const reasoning = typeof v.reasoning_content === "string" ? v.reasoning_content : undefined;
      return { role: "assistant", content, toolCalls, name, reasoning };
    }
    case "tool":
      return {
        role: "tool",
        content: parseContent(v.content, `${param}.content`, false),
        toolCallId: str(v.tool_call_id, `${param}.tool_call_id`),
      };
    default:
      throw invalidArgument(`${param}.role`, `expected system, developer, user, assistant or tool, got ${JSON.stringify(v.role)}`);
  }
}

function parseToolCalls(v: unknown, param: string): ChatMessage["toolCalls"] {
  if (!Array.isArray(v)) throw invalidArgument(param, "expected an array");
  return v.map((c, i) => {
    const p = `${param}[${i}]`;
    if (!isObj(c) || !isObj(c.function)) throw invalidArgument(p, "expected {id, type: \"function\", function: {name, arguments}}");
    return { id: str(c.id, `${p}.id`), name: str(c.function.name, `${p}.function.name`), arguments: str(c.function.arguments, `${p}.function.arguments`) };
  });
}

function parseTools(v: unknown): ToolDefinition[] {
  if (!Array.isArray(v)) throw invalidArgument("tools", "expected an array");
  return v.map((t, i) => {
    const p = `tools[${i}]`;
    if (!isObj(t) || t.type !== "function" || !isObj(t.function)) throw invalidArgument(p, "expected {type: \"function\", function: {name, parameters}}");
    const f = t.function;
    const name = str(f.name, `${p}.function.name`);
    if (!/^[a-zA-Z0-9_-]{1,64}$/.test(name)) throw invalidArgument(`${p}.function.name`, "must match ^[a-zA-Z0-9_-]{1,64}$");
    if (f.parameters !== undefined && !isObj(f.parameters)) throw invalidArgument(`${p}.function.parameters`, "expected a JSON Schema object");
    return {
      name,
      description: f.description === undefined ? undefined : str(f.description, `${p}.function.description`),
      parameters: f.parameters as JsonObject | undefined,
      strict: typeof f.strict === "boolean" ? f.strict : undefined,
    };
  });
}

function parseToolChoice(v: unknown): ToolChoice | undefined {
  if (v === undefined || v === null) return undefined;
  if (v === "auto" || v === "none" || v === "required") return { mode: v };
  if (isObj(v) && v.type === "function" && isObj(v.function)) return { function: str(v.function.name, "tool_choice.function.name") };
  throw invalidArgument("tool_choice", "expected \"auto\", \"none\", \"required\" or {type: \"function\", function: {name}}");
}

function parseResponseFormat(v: unknown): ChatRequest["responseFormat"] {
  if (v === undefined || v === null) return undefined;
  if (!isObj(v)) throw invalidArgument("response_format", "expected an object");
  if (v.type === "text" || v.type === "json_object") return { type: v.type };
  if (v.type === "json_schema") {
    const js = v.json_schema;
    if (!isObj(js)) throw invalidArgument("response_format.json_schema", "expected {name, schema, strict}");
    if (js.schema !== undefined && !isObj(js.schema)) throw invalidArgument("response_format.json_schema.schema", "expected a JSON Schema object");
    return {
      type: "json_schema",
      name: str(js.name, "response_format.json_schema.name"),
      schema: js.schema as JsonObject | undefined,
      strict: typeof js.strict === "boolean" ? js.strict : undefined,
    };
  }
  throw invalidArgument("response_format.type", "expected text, json_object or json_schema");
}

function parseStop(v: unknown): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === "string") return [v];
  if (Array.isArray(v) && v.length <= 4 && v.every((s) => typeof s === "string")) return v as string[];
  throw invalidArgument("stop", "expected a string or an array of at most 4 strings");
}

/** parseChatRequest validates a parsed JSON body and normalizes it. */
export function parseChatRequest(body: unknown): ShimRequest {
  if (!isObj(body)) throw invalidArgument("body", `expected a JSON object, got ${typeName(body)}`);
  for (const key of Object.keys(body)) {
    if (unsupported.has(key)) throw invalidArgument(key, "is not supported by this gateway");
    if (!known.has(key)) throw invalidArgument(key, `unrecognized request argument supplied: ${key}`);
  }
  const model = str(body.model, "model");
  if (model === "") throw invalidArgument("model", "must not be empty");
  if (!Array.isArray(body.messages) || body.messages.length === 0) {
    throw invalidArgument("messages", body.messages === undefined ? "is required" : "expected a non-empty array");
  }
  const messages = body.messages.map(parseMessage);
  const n = int(body, "n", 1, 128);
  if (n !== undefined && n !== 1) throw invalidArgument("n", "only n=1 is supported");
  const stream = body.stream === undefined || body.stream === null ? false : body.stream;
  if (typeof stream !== "boolean") throw invalidArgument("stream", "expected a boolean");
  const so = body.stream_options;
  if (so !== undefined && so !== null && !isObj(so)) throw invalidArgument("stream_options", "expected an object");
  const includeUsage = isObj(so) && so.include_usage === true;
  const effort = body.reasoning_effort;
  if (effort !== undefined && effort !== null && !(typeof effort === "string" && efforts.has(effort))) {
    throw invalidArgument("reasoning_effort", "expected minimal, low, medium or high");
  }
  const parallel = body.parallel_tool_calls;
  if (parallel !== undefined && parallel !== null && typeof parallel !== "boolean") throw invalidArgument("parallel_tool_calls", "expected a boolean");
  const metadata = body.metadata;
  if (metadata !== undefined && metadata !== null && !(isObj(metadata) && Object.values(metadata).every((x) => typeof x === "string"))) {
    throw invalidArgument("metadata", "expected an object of string values");
  }
  const maxTokens = int(body, "max_completion_tokens", 1, 10_000_000) ?? int(body, "max_tokens", 1, 10_000_000);
  return {
    stream,
    includeUsage,
    request: {
      model,
      messages,
      tools: body.tools === undefined || body.tools === null ? undefined : parseTools(body.tools),
      toolChoice: parseToolChoice(body.tool_choice),
      parallelToolCalls: parallel as boolean | undefined,
      sampling: {
        temperature: num(body, "temperature", 0, 2),
        topP: num(body, "top_p", 0, 1),
        maxOutputTokens: maxTokens,
        stop: parseStop(body.stop),
        seed: int(body, "seed", Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER),
        topK: int(body, "top_k", 1, 1_000_000),
        presencePenalty: num(body, "presence_penalty", -2, 2),
        frequencyPenalty: num(body, "frequency_penalty", -2, 2),
        reasoningEffort: (effort ?? undefined) as ReasoningEffort | undefined,
      },
      responseFormat: parseResponseFormat(body.response_format),
      routing: {},
      metadata: {
        endUser: body.user === undefined || body.user === null ? undefined : str(body.user, "user"),
        tags: (metadata ?? undefined) as Record<string, string> | undefined,
      },
    },
  };
}
