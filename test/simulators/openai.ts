import type { ServerResponse } from "node:http";
import { planAnswer, splitInTwo, streamWords, type AnswerPlan, type PlanInput } from "./answer-plan.js";
import { sendJson, sleep, startSimulator, type Fault, type SimContext, type Simulator } from "./harness.js";

/**
 * A strict simulator of the OpenAI Chat Completions API over real HTTP, in
 * three flavours: OpenAI itself, Mistral (422 `{"detail":[...]}` validation,
 * `random_seed`, no `stream_options`, usage on the last chunk) and DeepSeek
 * (`reasoning_content`, `prompt_cache_hit_tokens`, `: keep-alive` comments,
 * unknown fields ignored). It validates requests like the real APIs, answers
 * by the shared rules of .tmp/sim-rules.md (answer-plan.ts), streams real
 * chat.completion.chunk events, and applies every harness Fault.
 */

/** OpenAIFlavor selects which provider of the family the simulator imitates. */
export type OpenAIFlavor = "openai" | "mistral" | "deepseek";

/** OpenAISimulatorOptions configure startOpenAISimulator. */
export interface OpenAISimulatorOptions {
  /** apiKey, when set, must arrive as `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** models, when set, are the only model ids accepted (others get 404 model_not_found). */
  models?: string[];
  /** flavor is the provider imitated; default "openai". */
  flavor?: OpenAIFlavor;
}

/** OpenAISimulator is a running OpenAI-protocol simulator. */
export interface OpenAISimulator extends Simulator {
  /** clientAborts counts responses the client closed before the simulator finished them. */
  clientAborts(): number;
}

// Top-level fields the real APIs accept. OpenAI rejects anything else with 400;
// Mistral with 422 extra_forbidden; DeepSeek ignores unknown fields.
const openaiFields = new Set([
  "model", "messages", "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
  "max_completion_tokens", "max_tokens", "metadata", "modalities", "n", "parallel_tool_calls", "prediction",
  "presence_penalty", "prompt_cache_key", "reasoning_effort", "response_format", "safety_identifier", "seed",
  "service_tier", "stop", "store", "stream", "stream_options", "temperature", "tool_choice", "tools",
  "top_logprobs", "top_p", "user", "verbosity", "web_search_options",
]);
const mistralFields = new Set([
  "model", "messages", "temperature", "top_p", "max_tokens", "stream", "stop", "random_seed", "response_format",
  "tools", "tool_choice", "presence_penalty", "frequency_penalty", "n", "prediction", "parallel_tool_calls",
  "prompt_mode", "safe_prompt", "metadata",
]);

// Message keys per role; OpenAI rejects others ("Additional properties are not allowed").
const messageKeys: Record<OpenAIFlavor, Record<string, Set<string>>> = {
  openai: {
    system: new Set(["role", "content", "name"]),
    developer: new Set(["role", "content", "name"]),
    user: new Set(["role", "content", "name"]),
    assistant: new Set(["role", "content", "name", "tool_calls", "refusal", "audio", "function_call"]),
    tool: new Set(["role", "content", "tool_call_id"]),
  },
  mistral: {
    system: new Set(["role", "content"]),
    user: new Set(["role", "content"]),
    assistant: new Set(["role", "content", "tool_calls", "prefix"]),
    tool: new Set(["role", "content", "tool_call_id", "name"]),
  },
  deepseek: {
    system: new Set(["role", "content", "name"]),
    user: new Set(["role", "content", "name"]),
    assistant: new Set(["role", "content", "name", "tool_calls", "prefix", "reasoning_content"]),
    tool: new Set(["role", "content", "tool_call_id"]),
  },
};

// Mistral only accepts tool-call ids of exactly nine letters and digits.
const mistralToolCallId = /^[a-zA-Z0-9]{9}$/;
const toolNamePattern = /^[a-zA-Z0-9_-]{1,64}$/;
const reasoningEfforts = new Set(["none", "minimal", "low", "medium", "high", "xhigh"]);

/** A request the simulator refuses, with the status and body the real API would send. */
class Rejection {
  constructor(
    readonly status: number,
    readonly body: unknown,
  ) {}
}

function openaiError(message: string, type: string, param: string | null = null, code: string | null = null): unknown {
  return { error: { message, type, param, code } };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return "an object";
  return `a ${typeof v}`;
}

/** Validator checks one request body and collects what answer-plan.ts needs. */
class Validator {
  constructor(readonly flavor: OpenAIFlavor) {}

  /** invalid builds the flavour's validation error for the field at `path`. */
  invalid(path: Array<string | number>, message: string, code: string | null = null, kind = "value_error"): Rejection {
    if (this.flavor === "mistral") {
      return new Rejection(422, { detail: [{ type: kind, loc: ["body", ...path], msg: message, input: null }] });
    }
    const param = path.reduce<string>((acc, p) => (typeof p === "number" ? `${acc}[${p}]` : acc === "" ? p : `${acc}.${p}`), "");
    return new Rejection(400, openaiError(`Invalid '${param}': ${message}`, "invalid_request_error", param, code));
  }

  wrongType(path: Array<string | number>, expected: string, got: unknown): Rejection {
    return this.invalid(path, `expected ${expected}, but got ${typeName(got)} instead.`, "invalid_type", "type_error");
  }

  number(body: Record<string, unknown>, field: string, min: number, max: number, integer = false): void {
    const v = body[field];
    if (v === undefined || v === null) return;
    if (typeof v !== "number" || !Number.isFinite(v) || (integer && !Number.isInteger(v))) {
      throw this.wrongType([field], integer ? "an integer" : "a number", v);
    }
    if (v < min) throw this.invalid([field], `value below minimum. Expected a value >= ${min}, but got ${v} instead.`, "value_below_min");
    if (v > max) throw this.invalid([field], `value above maximum. Expected a value <= ${max}, but got ${v} instead.`, "value_above_max");
  }

  textContent(path: Array<string | number>, content: unknown, allowNull: boolean): string {
    if (typeof content === "string") return content;
    if (content === null && allowNull) return "";
    if (!Array.isArray(content)) throw this.wrongType(path, "a string or an array of content parts", content);
    const texts: string[] = [];
    content.forEach((part, i) => {
      if (!isObject(part) || part.type !== "text") throw this.invalid([...path, i], "only text content parts are allowed for this role.", "invalid_value");
      if (typeof part.text !== "string") throw this.wrongType([...path, i, "text"], "a string", part.text);
      texts.push(part.text);
    });
    return texts.join(" ");
  }

  userContent(path: Array<string | number>, content: unknown): { text: string; images: number } {
    if (typeof content === "string") return { text: content, images: 0 };
    if (!Array.isArray(content) || content.length === 0) throw this.wrongType(path, "a string or a non-empty array of content parts", content);
    const texts: string[] = [];
    let images = 0;
    content.forEach((part, i) => {
      if (!isObject(part)) throw this.wrongType([...path, i], "an object", part);
      if (part.type === "text") {
        if (typeof part.text !== "string") throw this.wrongType([...path, i, "text"], "a string", part.text);
        texts.push(part.text);
      } else if (part.type === "image_url") {
        const image = part.image_url;
        if (!isObject(image) || typeof image.url !== "string") throw this.wrongType([...path, i, "image_url", "url"], "a string", isObject(image) ? image.url : image);
        const url = image.url;
        if (!/^https?:\/\/\S+$/.test(url) && !/^data:image\/[a-z0-9.+-]+;base64,[A-Za-z0-9+/]+=*$/.test(url)) {
          throw this.invalid([...path, i, "image_url", "url"], "expected an http(s) URL or a base64 data URL of an image.", "invalid_image_url");
        }
        if (image.detail !== undefined && !["auto", "low", "high"].includes(image.detail as string)) {
          throw this.invalid([...path, i, "image_url", "detail"], `Invalid value: '${String(image.detail)}'. Supported values are: 'auto', 'low', and 'high'.`, "invalid_value");
        }
        images += 1;
      } else if (part.type === "input_audio" || part.type === "file") {
        // Accepted by the real API; the simulator does not read them.
      } else {
        throw this.invalid([...path, i, "type"], `Invalid value: '${String(part.type)}'. Supported values are: 'text', 'image_url', 'input_audio', and 'file'.`, "invalid_value");
      }
    });
    return { text: texts.join(" "), images };
  }

  /** messages validates the conversation and extracts the rules' inputs from it. */
  messages(raw: unknown): Pick<PlanInput, "lastUserText" | "promptText" | "toolResults"> {
    if (!Array.isArray(raw)) throw this.wrongType(["messages"], "an array", raw);
    if (raw.length === 0) throw this.invalid(["messages"], "[] is too short - 'messages'", "empty_array");
    const prompt: string[] = [];
    let lastUserText = "";
    // Tool calls still waiting for their results, by id.
    let pending = new Set<string>();
    let trailingResults: string[] = [];
    raw.forEach((m, i) => {
      if (!isObject(m)) throw this.wrongType(["messages", i], "an object", m);
      const role = m.role;
      const allowed = typeof role === "string" ? messageKeys[this.flavor][role] : undefined;
      if (allowed === undefined) {
        const roles = Object.keys(messageKeys[this.flavor]).map((r) => `'${r}'`).join(", ");
        throw this.invalid(["messages", i, "role"], `Invalid value: '${String(role)}'. Supported values are: ${roles}.`, "invalid_value");
      }
      for (const key of Object.keys(m)) {
        if (!allowed.has(key)) {
          throw this.flavor === "mistral"
            ? this.invalid(["messages", i, key], "Extra inputs are not permitted", null, "extra_forbidden")
            : new Rejection(400, openaiError(`Additional properties are not allowed ('${key}' was unexpected) - 'messages.${i}'`, "invalid_request_error", `messages.[${i}]`, null));
        }
      }
      if (m.name !== undefined && typeof m.name !== "string") throw this.wrongType(["messages", i, "name"], "a string", m.name);
      if (role !== "tool") {
        if (pending.size > 0) {
          throw new Rejection(
            400,
            openaiError(
              `An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: ${[...pending].join(", ")}`,
              "invalid_request_error",
              `messages.[${i}].role`,
              null,
            ),
          );
        }
        trailingResults = [];
      }
      switch (role) {
        case "system":
        case "developer":
          prompt.push(this.textContent(["messages", i, "content"], m.content, false));
          break;
        case "user": {
          const { text, images } = this.userContent(["messages", i, "content"], m.content);
          prompt.push(text);
          lastUserText = text + " [image]".repeat(images);
          break;
        }
        case "assistant": {
          const calls = m.tool_calls;
          const hasCalls = Array.isArray(calls) && calls.length > 0;
          if ((m.content === undefined || m.content === null) && !hasCalls) throw this.invalid(["messages", i, "content"], "content is required unless tool_calls is set.", "missing_required_parameter");
          prompt.push(this.textContent(["messages", i, "content"], m.content ?? null, true));
          if (calls !== undefined) {
            if (!Array.isArray(calls)) throw this.wrongType(["messages", i, "tool_calls"], "an array", calls);
            pending = new Set();
            calls.forEach((c, j) => {
              const path = ["messages", i, "tool_calls", j];
              if (!isObject(c)) throw this.wrongType(path, "an object", c);
              if (typeof c.id !== "string" || c.id === "") throw this.wrongType([...path, "id"], "a string", c.id);
              if (this.flavor === "mistral" && !mistralToolCallId.test(c.id)) {
                throw new Rejection(400, { object: "error", message: `Tool call id was ${c.id} but must be a-z, A-Z, 0-9, with a length of 9.`, type: "invalid_request_message_order", param: null, code: "3280" });
              }
              if (this.flavor !== "mistral" && c.type !== "function") throw this.invalid([...path, "type"], `Invalid value: '${String(c.type)}'. Supported values are: 'function'.`, "invalid_value");
              const fn = c.function;
              if (!isObject(fn)) throw this.wrongType([...path, "function"], "an object", fn);
              if (typeof fn.name !== "string") throw this.wrongType([...path, "function", "name"], "a string", fn.name);
              if (typeof fn.arguments !== "string") throw this.wrongType([...path, "function", "arguments"], "a string", fn.arguments);
              prompt.push(fn.arguments);
              pending.add(c.id);
            });
          }
          break;
        }
        case "tool": {
          if (typeof m.tool_call_id !== "string") throw this.wrongType(["messages", i, "tool_call_id"], "a string", m.tool_call_id);
          if (!pending.has(m.tool_call_id)) {
            throw new Rejection(
              400,
              openaiError(
                "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
                "invalid_request_error",
                `messages.[${i}].role`,
                null,
              ),
            );
          }
          pending.delete(m.tool_call_id);
          const content = this.textContent(["messages", i, "content"], m.content, false);
          prompt.push(content);
          trailingResults.push(content);
          break;
        }
      }
    });
    if (pending.size > 0) {
      throw new Rejection(
        400,
        openaiError(
          `An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: ${[...pending].join(", ")}`,
          "invalid_request_error",
          "messages",
          null,
        ),
      );
    }
    const last = raw[raw.length - 1] as Record<string, unknown>;
    return {
      lastUserText,
      promptText: prompt.join(" "),
      toolResults: last.role === "tool" ? trailingResults : undefined,
    };
  }

  /** tools validates tools and tool_choice and returns the rules' view of them. */
  tools(body: Record<string, unknown>): Pick<PlanInput, "toolNames" | "toolChoice"> {
    const tools = body.tools;
    const names: string[] = [];
    if (tools !== undefined && tools !== null) {
      if (!Array.isArray(tools)) throw this.wrongType(["tools"], "an array", tools);
      tools.forEach((t, i) => {
        if (!isObject(t)) throw this.wrongType(["tools", i], "an object", t);
        if (t.type !== "function") throw this.invalid(["tools", i, "type"], `Invalid value: '${String(t.type)}'. Supported values are: 'function'.`, "invalid_value");
        const fn = t.function;
        if (!isObject(fn)) throw this.wrongType(["tools", i, "function"], "an object", fn);
        if (typeof fn.name !== "string" || !toolNamePattern.test(fn.name)) {
          throw this.invalid(["tools", i, "function", "name"], "string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.", "invalid_value");
        }
        if (fn.description !== undefined && typeof fn.description !== "string") throw this.wrongType(["tools", i, "function", "description"], "a string", fn.description);
        if (fn.parameters !== undefined && !isObject(fn.parameters)) throw this.wrongType(["tools", i, "function", "parameters"], "an object", fn.parameters);
        if (fn.strict !== undefined && fn.strict !== null && typeof fn.strict !== "boolean") throw this.wrongType(["tools", i, "function", "strict"], "a boolean", fn.strict);
        names.push(fn.name);
      });
    }
    const hasTools = names.length > 0;
    if (body.parallel_tool_calls !== undefined) {
      if (typeof body.parallel_tool_calls !== "boolean") throw this.wrongType(["parallel_tool_calls"], "a boolean", body.parallel_tool_calls);
      if (!hasTools && this.flavor === "openai") {
        throw this.invalid(["parallel_tool_calls"], "'parallel_tool_calls' is only allowed when 'tools' are specified.", "invalid_value");
      }
    }
    const choice = body.tool_choice;
    if (choice === undefined || choice === null) return { toolNames: names, toolChoice: "auto" };
    if (!hasTools && this.flavor === "openai") throw this.invalid(["tool_choice"], "'tool_choice' is only allowed when 'tools' are specified.", "invalid_value");
    const modes = this.flavor === "mistral" ? ["none", "auto", "any", "required"] : ["none", "auto", "required"];
    if (typeof choice === "string") {
      if (!modes.includes(choice)) {
        throw this.invalid(["tool_choice"], `Invalid value: '${choice}'. Supported values are: ${modes.map((m) => `'${m}'`).join(", ")}.`, "invalid_value");
      }
      return { toolNames: names, toolChoice: choice === "none" ? "none" : choice === "auto" ? "auto" : "forced" };
    }
    if (!isObject(choice) || choice.type !== "function" || !isObject(choice.function) || typeof choice.function.name !== "string") {
      throw this.wrongType(["tool_choice"], "a string or {type: 'function', function: {name}}", choice);
    }
    const name = choice.function.name;
    if (!names.includes(name)) throw this.invalid(["tool_choice", "function", "name"], `Tool '${name}' is not in the list of tools.`, "invalid_value");
    return { toolNames: names, toolChoice: { name } };
  }

  /** responseFormat validates response_format (OpenAI also wants "json" in the messages for json_object). */
  responseFormat(body: Record<string, unknown>, promptText: string): void {
    const rf = body.response_format;
    if (rf === undefined || rf === null) return;
    if (!isObject(rf)) throw this.wrongType(["response_format"], "an object", rf);
    if (rf.type === "text") return;
    if (rf.type === "json_object") {
      if (this.flavor === "openai" && !/json/i.test(promptText)) {
        throw new Rejection(
          400,
          openaiError("'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.", "invalid_request_error", "messages", null),
        );
      }
      return;
    }
    if (rf.type === "json_schema" && this.flavor !== "deepseek") {
      const js = rf.json_schema;
      if (!isObject(js)) throw this.wrongType(["response_format", "json_schema"], "an object", js);
      if (typeof js.name !== "string" || !toolNamePattern.test(js.name)) {
        throw this.invalid(["response_format", "json_schema", "name"], "expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.", "invalid_value");
      }
      if (js.schema !== undefined && !isObject(js.schema)) throw this.wrongType(["response_format", "json_schema", "schema"], "an object", js.schema);
      if (js.strict !== undefined && js.strict !== null && typeof js.strict !== "boolean") throw this.wrongType(["response_format", "json_schema", "strict"], "a boolean", js.strict);
      return;
    }
    const types = this.flavor === "deepseek" ? "'text' and 'json_object'" : "'text', 'json_object', and 'json_schema'";
    throw this.invalid(["response_format", "type"], `Invalid value: '${String(rf.type)}'. Supported values are: ${types}.`, "invalid_value");
  }

  /** request validates a whole body and returns the rules' input and stream settings. */
  request(body: Record<string, unknown>): { plan: PlanInput; stream: boolean; includeUsage: boolean } {
    const known = this.flavor === "mistral" ? mistralFields : this.flavor === "openai" ? openaiFields : undefined;
    if (known !== undefined) {
      for (const key of Object.keys(body)) {
        if (known.has(key)) continue;
        if (this.flavor === "mistral") throw this.invalid([key], "Extra inputs are not permitted", null, "extra_forbidden");
        throw new Rejection(400, openaiError(`Unrecognized request argument supplied: ${key}`, "invalid_request_error"));
      }
    }
    const extracted = this.messages(body.messages);
    const tools = this.tools(body);
    this.responseFormat(body, extracted.promptText);

    this.number(body, "temperature", 0, 2);
    this.number(body, "top_p", 0, 1);
    this.number(body, "presence_penalty", -2, 2);
    this.number(body, "frequency_penalty", -2, 2);
    this.number(body, "n", 1, 1, true);
    this.number(body, "max_tokens", 1, Number.MAX_SAFE_INTEGER, true);
    this.number(body, "max_completion_tokens", 1, Number.MAX_SAFE_INTEGER, true);
    this.number(body, this.flavor === "mistral" ? "random_seed" : "seed", Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, true);
    if (body.user !== undefined && typeof body.user !== "string") throw this.wrongType(["user"], "a string", body.user);
    if (body.reasoning_effort !== undefined && !reasoningEfforts.has(body.reasoning_effort as string)) {
      throw this.invalid(["reasoning_effort"], `Invalid value: '${String(body.reasoning_effort)}'. Supported values are: 'none', 'minimal', 'low', 'medium', 'high', and 'xhigh'.`, "invalid_value");
    }

    let stop: string[] = [];
    const rawStop = body.stop;
    if (typeof rawStop === "string") stop = [rawStop];
    else if (Array.isArray(rawStop)) {
      if (rawStop.length > 4) throw this.invalid(["stop"], `array too long. Expected an array with maximum length 4, but got an array with length ${rawStop.length} instead.`, "array_above_max_length");
      rawStop.forEach((s, i) => {
        if (typeof s !== "string") throw this.wrongType(["stop", i], "a string", s);
      });
      stop = rawStop as string[];
    } else if (rawStop !== undefined && rawStop !== null) throw this.wrongType(["stop"], "a string or an array of strings", rawStop);

    if (body.stream !== undefined && body.stream !== null && typeof body.stream !== "boolean") throw this.wrongType(["stream"], "a boolean", body.stream);
    const stream = body.stream === true;
    let includeUsage = false;
    const so = body.stream_options;
    if (so !== undefined && so !== null) {
      if (!stream) throw this.invalid(["stream_options"], "The 'stream_options' parameter is only allowed when 'stream' is enabled.", "invalid_value");
      if (!isObject(so)) throw this.wrongType(["stream_options"], "an object", so);
      if (so.include_usage !== undefined && typeof so.include_usage !== "boolean") throw this.wrongType(["stream_options", "include_usage"], "a boolean", so.include_usage);
      includeUsage = so.include_usage === true;
    }

    // DeepSeek only knows max_tokens (it ignores the unknown max_completion_tokens); Mistral rejects the latter above.
    const cap = this.flavor === "openai" ? (body.max_completion_tokens ?? body.max_tokens) : body.max_tokens;
    const plan: PlanInput = { ...extracted, ...tools, stop };
    if (typeof cap === "number") plan.maxTokens = cap;
    return { plan, stream, includeUsage };
  }
}

/** defaultErrorBody is the body an injected status gets when the fault sets none. */
function defaultErrorBody(flavor: OpenAIFlavor, status: number, model: string): unknown {
  switch (status) {
    case 400:
      return openaiError("Bad request (simulated).", "invalid_request_error");
    case 401:
      return openaiError("Incorrect API key provided.", "invalid_request_error", null, "invalid_api_key");
    case 402:
      return openaiError("Insufficient Balance", "insufficient_quota", null, "insufficient_quota");
    case 403:
      return openaiError("Country, region, or territory not supported", "request_forbidden", null, "unsupported_country_region_territory");
    case 404:
      return openaiError(`The model \`${model}\` does not exist or you do not have access to it.`, "invalid_request_error", null, "model_not_found");
    case 408:
      return openaiError("Request timed out.", "timeout", null, null);
    case 413:
      return openaiError("Request too large.", "invalid_request_error", null, "request_too_large");
    case 422:
      return flavor === "mistral"
        ? { detail: [{ type: "value_error", loc: ["body"], msg: "Invalid request (simulated)", input: null }] }
        : openaiError("Invalid parameters (simulated).", "invalid_request_error");
    case 429:
      return openaiError(`Rate limit reached for ${model} on requests per min (RPM): Limit 3, Used 3, Requested 1.`, "requests", null, "rate_limit_exceeded");
    case 500:
      return openaiError("The server had an error while processing your request. Sorry about that!", "server_error");
    case 502:
      return openaiError("Bad gateway.", "server_error", null, "bad_gateway");
    case 503:
      return openaiError("The engine is currently overloaded, please try again later.", "server_error", null, "overloaded");
    case 504:
      return openaiError("Gateway timeout.", "timeout", null, null);
    case 529:
      return openaiError("The server is overloaded.", "overloaded_error", null, "overloaded");
    default:
      return openaiError(`Simulated error ${status}.`, status >= 500 ? "server_error" : "invalid_request_error");
  }
}

const defaultErrorEvent = openaiError("The server had an error while processing your request. Sorry about that!", "server_error");

/** startOpenAISimulator starts an OpenAI-protocol simulator on an ephemeral loopback port. */
export async function startOpenAISimulator(options: OpenAISimulatorOptions = {}): Promise<OpenAISimulator> {
  const flavor = options.flavor ?? "openai";
  const validator = new Validator(flavor);
  const models = options.models;
  let sequence = 0;
  let aborts = 0;
  // Responses the simulator itself cut (faults), so they are not counted as client aborts.
  const cutByFault = new WeakSet<ServerResponse>();

  function cut(res: ServerResponse): void {
    cutByFault.add(res);
    // Let what was written reach the socket first, then drop the connection.
    setImmediate(() => res.socket?.destroy());
  }

  function authorized(ctx: SimContext): boolean {
    if (options.apiKey === undefined) return true;
    const header = ctx.req.headers.authorization;
    if (header === `Bearer ${options.apiKey}`) return true;
    const message =
      header === undefined
        ? "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        : "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.";
    sendJson(ctx.res, 401, openaiError(message, "invalid_request_error", null, header === undefined ? null : "invalid_api_key"));
    return false;
  }

  function usageOf(plan: AnswerPlan): Record<string, unknown> {
    const usage: Record<string, unknown> = {
      prompt_tokens: plan.inputTokens,
      completion_tokens: plan.outputTokens,
      total_tokens: plan.inputTokens + plan.outputTokens,
      prompt_tokens_details: { cached_tokens: plan.cachedTokens, audio_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: plan.reasoningTokens, audio_tokens: 0, accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 },
    };
    if (flavor === "deepseek") {
      usage.prompt_cache_hit_tokens = plan.cachedTokens;
      usage.prompt_cache_miss_tokens = plan.inputTokens - plan.cachedTokens;
    }
    return usage;
  }

  function finishOf(plan: AnswerPlan): string {
    if (plan.kind === "content_filter") return "content_filter";
    if (plan.kind === "tool_calls") return "tool_calls";
    if (plan.kind === "text" && plan.finish === "length") return "length";
    return "stop";
  }

  function completion(id: string, model: string, plan: AnswerPlan): unknown {
    const message: Record<string, unknown> = { role: "assistant", content: plan.kind === "text" ? plan.text : plan.kind === "tool_calls" ? null : "" };
    if (flavor === "openai") message.refusal = null;
    if (plan.reasoning !== "") message.reasoning_content = plan.reasoning;
    if (plan.kind === "tool_calls") {
      message.tool_calls = plan.calls.map((c, i) => ({ id: `call_${i}`, type: "function", function: { name: c.name, arguments: c.args } }));
    }
    return {
      id,
      object: "chat.completion",
      created: Math.floor(Date.now() / 1000),
      model,
      choices: [{ index: 0, message, logprobs: null, finish_reason: finishOf(plan) }],
      usage: usageOf(plan),
      system_fingerprint: "fp_sim",
    };
  }

  /** chunks renders the answer as chat.completion.chunk JSON texts, in order. */
  function chunks(id: string, model: string, plan: AnswerPlan, includeUsage: boolean): string[] {
    const created = Math.floor(Date.now() / 1000);
    const deltas: Array<Record<string, unknown>> = [{ role: "assistant", content: "" }];
    for (const w of streamWords(plan.reasoning)) deltas.push(flavor === "deepseek" ? { content: null, reasoning_content: w } : { reasoning_content: w });
    if (plan.kind === "text") for (const w of streamWords(plan.text)) deltas.push({ content: w });
    if (plan.kind === "tool_calls") {
      plan.calls.forEach((c, index) => {
        deltas.push({ tool_calls: [{ index, id: `call_${index}`, type: "function", function: { name: c.name, arguments: "" } }] });
        for (const part of splitInTwo(c.args)) deltas.push({ tool_calls: [{ index, function: { arguments: part } }] });
      });
    }
    // The finish reason rides on the last content chunk, or on an empty delta when there was no content.
    const lastIsContent = deltas.length > 1 && (plan.kind !== "text" || plan.text !== "" || plan.reasoning !== "");
    if (!lastIsContent) deltas.push({});
    const finish = finishOf(plan);
    // OpenAI marks every chunk usage:null when usage was asked for; Mistral always reports it on the last chunk.
    const streamUsage = flavor !== "mistral" && includeUsage;
    const out = deltas.map((delta, i) => {
      const last = i === deltas.length - 1;
      const chunk: Record<string, unknown> = {
        id,
        object: "chat.completion.chunk",
        created,
        model,
        system_fingerprint: "fp_sim",
        choices: [{ index: 0, delta, logprobs: null, finish_reason: last ? finish : null }],
      };
      if (streamUsage) chunk.usage = null;
      if (last && flavor === "mistral") chunk.usage = usageOf(plan);
      return JSON.stringify(chunk);
    });
    if (streamUsage) {
      out.push(JSON.stringify({ id, object: "chat.completion.chunk", created, model, system_fingerprint: "fp_sim", choices: [], usage: usageOf(plan) }));
    }
    return out;
  }

  function closed(res: ServerResponse): boolean {
    return res.destroyed || res.writableEnded;
  }

  async function writeStream(ctx: SimContext, data: string[], fault: Fault | undefined): Promise<void> {
    const { res } = ctx;
    res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", ...fault?.headers });
    // DeepSeek keeps a queued request alive with SSE comments before the first chunk.
    if (flavor === "deepseek") res.write(": keep-alive\n\n: keep-alive\n\n");
    const errorAt = fault?.errorEventAfterChunks;
    const cutAt = fault?.cutAfterChunks;
    for (let i = 0; i <= data.length; i++) {
      if (i > 0 && fault?.chunkDelayMs !== undefined) await sleep(fault.chunkDelayMs);
      if (closed(res)) return;
      if (errorAt === i) {
        const payload = fault?.errorEvent ?? defaultErrorEvent;
        res.end(`data: ${typeof payload === "string" ? payload : JSON.stringify(payload)}\n\n`);
        return;
      }
      if (cutAt === i) {
        cut(res);
        return;
      }
      if (i === data.length) break;
      res.write(`data: ${fault?.malformedChunkAt === i ? '{"broken":' : data[i]}\n\n`);
    }
    res.end("data: [DONE]\n\n");
  }

  function writeCompletion(ctx: SimContext, body: unknown, fault: Fault | undefined): void {
    const { res } = ctx;
    let text = JSON.stringify(body);
    if (fault?.malformedChunkAt !== undefined) text = '{"broken":';
    if (fault?.errorEventAfterChunks !== undefined) {
      const payload = fault.errorEvent ?? defaultErrorEvent;
      text = typeof payload === "string" ? payload : JSON.stringify(payload);
    }
    if (fault?.cutAfterChunks !== undefined) {
      // A non-streamed body cut half-way: headers promise more than arrives.
      res.writeHead(200, { "content-type": "application/json", "content-length": String(Buffer.byteLength(text)), ...fault.headers });
      res.write(text.slice(0, Math.floor(text.length / 2)));
      cut(ctx.res);
      return;
    }
    sendJson(res, 200, text, fault?.headers);
  }

  async function generate(ctx: SimContext): Promise<void> {
    if (!authorized(ctx)) return;
    const body = ctx.body;
    if (!isObject(body)) {
      sendJson(
        ctx.res,
        400,
        openaiError(
          "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
          "invalid_request_error",
        ),
      );
      return;
    }
    if (typeof body.model !== "string" || body.model === "") {
      sendJson(ctx.res, 400, openaiError("you must provide a model parameter", "invalid_request_error"));
      return;
    }
    const model = body.model;
    if (models !== undefined && !models.includes(model)) {
      sendJson(ctx.res, 404, openaiError(`The model \`${model}\` does not exist or you do not have access to it.`, "invalid_request_error", null, "model_not_found"));
      return;
    }
    let parsed: ReturnType<Validator["request"]>;
    try {
      parsed = validator.request(body);
    } catch (err) {
      if (err instanceof Rejection) {
        sendJson(ctx.res, err.status, err.body);
        return;
      }
      throw err;
    }

    const fault = ctx.takeFault(model);
    if (fault?.resetConnection === true) {
      cutByFault.add(ctx.res);
      ctx.req.socket.destroy();
      return;
    }
    if (fault?.firstTokenDelayMs !== undefined) await sleep(fault.firstTokenDelayMs);
    if (closed(ctx.res)) return;
    if (fault?.status !== undefined) {
      const errBody = fault.body ?? defaultErrorBody(flavor, fault.status, model);
      sendJson(ctx.res, fault.status, typeof errBody === "string" ? errBody : JSON.stringify(errBody), fault.headers);
      return;
    }

    const plan = planAnswer(parsed.plan);
    sequence += 1;
    const id = `chatcmpl-sim${sequence}`;
    if (parsed.stream) await writeStream(ctx, chunks(id, model, plan, parsed.includeUsage), fault);
    else writeCompletion(ctx, completion(id, model, plan), fault);
  }

  const sim = await startSimulator(
    async (ctx) => {
      ctx.res.on("close", () => {
        if (!ctx.res.writableFinished && !cutByFault.has(ctx.res)) aborts += 1;
      });
      const path = ctx.url.pathname.replace(/^\/v1(?=\/)/, "");
      const method = ctx.req.method ?? "";
      if (method === "POST" && path === "/chat/completions") return generate(ctx);
      if (method === "GET" && path === "/models") {
        if (!authorized(ctx)) return;
        const owner = flavor === "openai" ? "openai" : flavor === "mistral" ? "mistralai" : "deepseek";
        const ids = models ?? ["gpt-4o-mini", "gpt-4o"];
        sendJson(ctx.res, 200, { object: "list", data: ids.map((id) => ({ id, object: "model", created: 1_700_000_000, owned_by: owner })) });
        return;
      }
      sendJson(ctx.res, 404, openaiError(`Invalid URL (${method} ${ctx.url.pathname})`, "invalid_request_error"));
    },
    (path) => path.replace(/\?.*$/, "").endsWith("/chat/completions"),
  );
  return { ...sim, clientAborts: () => aborts };
}
