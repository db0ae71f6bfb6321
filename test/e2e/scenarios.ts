import { answerText, countTokens, type Fault } from "../simulators/harness.js";

/**
 * The one table of scenarios of issue 3: every row runs against the three
 * wire protocols (OpenAI Chat Completions, Anthropic Messages, Gemini), each
 * behind the gateway, through the official OpenAI SDK (REST shim) and the
 * generated client (Connect), streaming and not, and must come out the same.
 * The expectations follow the simulators' shared answer rules
 * (.tmp/sim-rules.md, test/simulators/answer-plan.ts), written out here so a
 * drift in any simulator or adapter fails the table.
 *
 * Where a protocol legitimately cannot match, the row says so in `only`,
 * `usageDifferences` or `classDifferences`, with the reason in `note`:
 * nothing else may differ between protocols but the provider field and the
 * opaque tool-call ids.
 */

/** Protocol is one of the three wire protocols under test. */
export type Protocol = "openai" | "anthropic" | "gemini";

/** PROTOCOLS are the protocols every row runs against. */
export const PROTOCOLS: readonly Protocol[] = ["openai", "anthropic", "gemini"];

/** PROVIDER_KEYS are the upstream keys the gateway holds; no caller-visible text or log line may contain them. */
export const PROVIDER_KEYS: Readonly<Record<Protocol, string>> = {
  openai: "sk-proj-cross-protocol-openai-secret-0123456789",
  anthropic: "sk-ant-api03-cross-protocol-secret-0123456789",
  gemini: "AIzaSyCrossProtocolGeminiSecret0123456789",
};

/** UPSTREAM_MODELS are the model names each simulator is asked for. */
export const UPSTREAM_MODELS: Readonly<Record<Protocol, string>> = {
  openai: "gpt-4o",
  anthropic: "claude-sonnet-4-5",
  gemini: "gemini-2.5-flash",
};

/** ToolCallSeen is a tool call as a caller received it (ids are opaque and per protocol). */
export interface ToolCallSeen {
  id: string;
  name: string;
  arguments: string;
}

/** Turn is one protocol-neutral message; each caller renders it in its own format. */
export type Turn =
  | { role: "system"; text: string }
  | { role: "user"; text: string; imageDataUrl?: string }
  | { role: "assistant"; text?: string; toolCalls?: ToolCallSeen[] }
  | { role: "tool"; toolCallId: string; text: string };

/** ScenarioRequest is a protocol-neutral request. */
export interface ScenarioRequest {
  turns: Turn[];
  /** tools are function names; each takes `{q: string}`. */
  tools?: string[];
  maxTokens?: number;
  stop?: string[];
}

/** Finish is a normalized finish reason, spelled as the REST shim spells it. */
export type Finish = "stop" | "length" | "tool_calls" | "content_filter" | "malformed_tool_call" | "error";

/** ExpectedUsage is normalized usage: input includes cached, output includes reasoning. */
export interface ExpectedUsage {
  input: number;
  output: number;
  cached: number;
  reasoning: number;
}

/** ExpectedAnswer is what every caller must see. */
export interface ExpectedAnswer {
  text: string;
  reasoning: string;
  toolCalls: Array<{ name: string; arguments: string }>;
  finish: Finish;
  usage: ExpectedUsage;
}

/** AnswerScenario is a row that succeeds. */
export interface AnswerScenario {
  name: string;
  request: ScenarioRequest;
  expect: ExpectedAnswer;
  /** followUp answers the tool calls of `expect` (results in call order) and expects this answer. */
  followUp?: { toolResults: string[]; expect: ExpectedAnswer };
  /** only restricts the row to the protocols that have the behaviour. */
  only?: Protocol[];
  /** usageDifferences are legitimate per-protocol departures from expect.usage. */
  usageDifferences?: Partial<Record<Protocol, Partial<ExpectedUsage>>>;
  /** note explains `only` and `usageDifferences`. */
  note?: string;
}

const tools = ["get_weather", "get_time"];
const toolPrompt = "call get_weather and get_time for Paris";
const toolArgs = JSON.stringify({ q: toolPrompt });
const thinkPrompt = "THINK about the answer";
const thinking = `Thinking about: ${thinkPrompt}`;
const cachedSystem = "CACHED policy: answer briefly and politely always";
const multiTurn: Turn[] = [
  { role: "system", text: "You are a terse assistant." },
  { role: "user", text: "Hi" },
  { role: "assistant", text: "Hello! How can I help?" },
  { role: "user", text: "What is the capital of France?" },
];

/** PNG_DATA_URL is a 1×1 PNG as a base64 data URL. */
export const PNG_DATA_URL =
  "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==";

const text = (t: string, usage: Partial<ExpectedUsage> & { input: number }, finish: Finish = "stop"): ExpectedAnswer => ({
  text: t,
  reasoning: "",
  toolCalls: [],
  finish,
  usage: { output: t.trim() === "" ? 0 : countTokens(t), cached: 0, reasoning: 0, ...usage },
});

/** ANSWER_SCENARIOS is the table of rows that succeed. */
export const ANSWER_SCENARIOS: readonly AnswerScenario[] = [
  {
    name: "plain answer",
    request: { turns: [{ role: "user", text: "Hello there, gateway" }] },
    expect: text(answerText("Hello there, gateway", 12), { input: 3 }),
  },
  {
    name: "multi-turn with a system prompt",
    request: { turns: multiTurn },
    expect: text(answerText("What is the capital of France?", 12), {
      input: countTokens("You are a terse assistant. Hi Hello! How can I help? What is the capital of France?"),
    }),
  },
  {
    name: "tool call round trip with two parallel calls",
    request: { turns: [{ role: "user", text: toolPrompt }], tools },
    expect: {
      text: "",
      reasoning: "",
      toolCalls: tools.map((name) => ({ name, arguments: toolArgs })),
      finish: "tool_calls",
      usage: { input: countTokens(toolPrompt), output: 2 * countTokens(toolArgs), cached: 0, reasoning: 0 },
    },
    followUp: {
      toolResults: ["sunny", "noon"],
      // The prompt now also holds both calls' arguments and both results.
      expect: text("Results: sunny; noon", { input: countTokens(toolPrompt) + 2 * countTokens(toolArgs) + 2 }),
    },
    note: "Gemini has no tool-call ids: the adapter makes them up and matches results back by id.",
  },
  {
    name: "image input (base64 data URL)",
    request: { turns: [{ role: "user", text: "What is in this picture?", imageDataUrl: PNG_DATA_URL }] },
    // Images count as " [image]" in the answer and as no input tokens.
    expect: text(answerText("What is in this picture? [image]", 12), { input: 5 }),
  },
  {
    name: "stop sequence",
    request: { turns: [{ role: "user", text: "Tell me a story" }], stop: ["story"] },
    expect: text("Echo: Tell me a ", { input: 4 }),
    note: "Anthropic's stop_reason stop_sequence and Gemini's STOP both normalize to stop.",
  },
  {
    name: "length cut (max tokens)",
    request: { turns: [{ role: "user", text: "Count slowly to twenty please" }], maxTokens: 4 },
    expect: text("Echo: Count slowly to", { input: 5 }, "length"),
  },
  {
    name: "content filter",
    request: { turns: [{ role: "user", text: "BLOCKME now" }] },
    expect: text("", { input: 2 }, "content_filter"),
    note: "OpenAI finish_reason content_filter, Anthropic stop_reason refusal, Gemini promptFeedback.blockReason: an answer, not an error.",
  },
  {
    name: "reasoning (THINK)",
    request: { turns: [{ role: "user", text: thinkPrompt }] },
    expect: {
      ...text(answerText(thinkPrompt, 12), { input: 4 }),
      reasoning: thinking,
      usage: { input: 4, output: 12 + countTokens(thinking), cached: 0, reasoning: countTokens(thinking) },
    },
    usageDifferences: { anthropic: { reasoning: 0 } },
    note: "Anthropic reports thinking inside output_tokens with no separate count, so its reasoning tokens are 0; the output total is the same.",
  },
  {
    name: "cached input (CACHED)",
    request: { turns: [{ role: "system", text: cachedSystem }, { role: "user", text: "What time is it?" }] },
    expect: text(answerText("What time is it?", 12), { input: 11, cached: 5 }),
    note: "Anthropic reports input_tokens without the cache read; the adapter adds it back so input is the total everywhere.",
  },
  {
    name: "malformed function call (MALFORMED)",
    request: { turns: [{ role: "user", text: "MALFORMED call please" }], tools },
    expect: text("", { input: 3 }, "malformed_tool_call"),
    only: ["gemini"],
    note: "Only Gemini reports MALFORMED_FUNCTION_CALL; it must not come out as a normal stop.",
  },
];

/** CallerCode is the Connect code a caller of the generated client sees. */
export type CallerCode = "InvalidArgument" | "NotFound" | "ResourceExhausted" | "Unavailable";

/** ExpectedError is what every caller must see for an upstream failure. */
export interface ExpectedError {
  /** errorClass is the class in the route trace (RPC error detail, REST x_gateway.route). */
  errorClass: string;
  /** rpc is the Connect code. */
  rpc: CallerCode;
  /** http is the REST shim's status (the SDK's error class follows from it). */
  http: number;
  /** restCode is the REST body's error.code. */
  restCode: string;
  /** retryAfterMs is the retry hint the caller gets (RPC retry-after-ms, REST retry-after-ms and retry-after). */
  retryAfterMs?: number;
  /** messageIncludes is upstream text that must reach the caller (sanitized). */
  messageIncludes?: string;
}

/** ErrorScenario is a row whose upstream fails before any token. */
export interface ErrorScenario {
  name: string;
  /** faults are injected per protocol; null when the protocol has no such signal (see note). */
  faults: Record<Protocol, Fault | null>;
  expect: ExpectedError;
  note?: string;
}

const openaiError = (message: string, type: string, code: string | null = null) => ({ error: { message, type, param: null, code } });
const anthropicError = (type: string, message: string) => ({ type: "error", error: { type, message }, request_id: "req_sim" });
const geminiError = (code: number, status: string, message: string, details: unknown[] = []) => ({
  error: { code, message, status, ...(details.length > 0 ? { details } : {}) },
});

/** ERROR_SCENARIOS is the table of upstream error classes and what the caller gets for each. */
export const ERROR_SCENARIOS: readonly ErrorScenario[] = [
  {
    name: "rate limited with a retry hint",
    faults: {
      openai: { status: 429, headers: { "retry-after": "7" } },
      anthropic: { status: 429, headers: { "retry-after": "7" } },
      gemini: {
        status: 429,
        body: geminiError(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).", [
          { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "7s" },
        ]),
      },
    },
    expect: { errorClass: "rate_limited", rpc: "ResourceExhausted", http: 429, restCode: "rate_limit_exceeded", retryAfterMs: 7000 },
    note: "OpenAI and Anthropic send retry-after seconds; Gemini sends details[].retryDelay in the body.",
  },
  {
    name: "overloaded",
    faults: { openai: { status: 503 }, anthropic: { status: 529 }, gemini: { status: 503 } },
    expect: { errorClass: "overloaded", rpc: "Unavailable", http: 503, restCode: "unavailable" },
    note: "Anthropic's 529 overloaded_error, OpenAI's and Gemini's 503.",
  },
  {
    name: "server error",
    faults: { openai: { status: 500 }, anthropic: { status: 500 }, gemini: { status: 500 } },
    expect: { errorClass: "server_error", rpc: "Unavailable", http: 503, restCode: "unavailable" },
  },
  {
    name: "provider auth failure (not the caller's)",
    // Real providers echo (part of) the key they were sent; the gateway must not pass it on.
    faults: {
      openai: { status: 401, body: openaiError(`Incorrect API key provided: ${PROVIDER_KEYS.openai}.`, "invalid_request_error", "invalid_api_key") },
      anthropic: { status: 401, body: anthropicError("authentication_error", `invalid x-api-key ${PROVIDER_KEYS.anthropic}`) },
      gemini: {
        status: 400,
        body: geminiError(400, "INVALID_ARGUMENT", `API key not valid: ${PROVIDER_KEYS.gemini}. Please pass a valid API key.`, [
          { "@type": "type.googleapis.com/google.rpc.ErrorInfo", reason: "API_KEY_INVALID", domain: "googleapis.com" },
        ]),
      },
    },
    // The echoed key must arrive redacted.
    expect: { errorClass: "auth", rpc: "Unavailable", http: 503, restCode: "unavailable", messageIncludes: "[redacted]" },
    note: "The gateway's provider key is wrong, not the caller's: never Unauthenticated/401. Gemini says it with a 400 API_KEY_INVALID.",
  },
  {
    name: "invalid request",
    faults: {
      openai: { status: 400, body: openaiError("Invalid value for 'temperature': upstream says no.", "invalid_request_error") },
      anthropic: { status: 400, body: anthropicError("invalid_request_error", "temperature: upstream says no.") },
      gemini: { status: 400, body: geminiError(400, "INVALID_ARGUMENT", "Invalid value at 'generation_config.temperature': upstream says no.") },
    },
    expect: { errorClass: "invalid_request", rpc: "InvalidArgument", http: 400, restCode: "invalid_argument", messageIncludes: "upstream says no" },
  },
  {
    name: "context length exceeded",
    faults: {
      openai: {
        status: 400,
        body: openaiError(
          "This model's maximum context length is 128000 tokens. However, your messages resulted in 130000 tokens.",
          "invalid_request_error",
          "context_length_exceeded",
        ),
      },
      anthropic: { status: 400, body: anthropicError("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum") },
      gemini: {
        status: 400,
        body: geminiError(400, "INVALID_ARGUMENT", "The input token count (1048577) exceeds the maximum number of tokens allowed (1048576)."),
      },
    },
    expect: { errorClass: "context_length_exceeded", rpc: "InvalidArgument", http: 400, restCode: "context_length_exceeded" },
  },
  {
    name: "quota exhausted",
    faults: {
      openai: { status: 429, body: openaiError("You exceeded your current quota, please check your plan and billing details.", "insufficient_quota", "insufficient_quota") },
      anthropic: { status: 402, body: anthropicError("billing_error", "Your credit balance is too low to access the Anthropic API.") },
      gemini: null,
    },
    expect: { errorClass: "quota_exhausted", rpc: "Unavailable", http: 503, restCode: "unavailable" },
    note: "Gemini reports exhausted quotas as 429 RESOURCE_EXHAUSTED with a retryDelay, the same as a rate limit (see the first row).",
  },
  {
    name: "upstream model not found",
    faults: { openai: { status: 404 }, anthropic: { status: 404 }, gemini: { status: 404 } },
    expect: { errorClass: "not_found", rpc: "Unavailable", http: 503, restCode: "unavailable" },
    note:
      "What the router does today. The caller named a model the gateway lists, so the upstream's 404 is a configuration fault; " +
      "Unavailable (and failing over to the next candidate) would serve callers better: a router change, see the issue-3 table report.",
  },
  {
    name: "connection reset",
    faults: { openai: { resetConnection: true }, anthropic: { resetConnection: true }, gemini: { resetConnection: true } },
    expect: { errorClass: "connection", rpc: "Unavailable", http: 503, restCode: "unavailable" },
  },
];

/** MidStreamFault is a failure after some text was streamed. */
export interface MidStreamFault {
  fault: Fault;
  /** errorClass is what the protocol says happened. */
  errorClass: string;
}

/** MID_STREAM_PROMPT is the prompt of the mid-stream failure row. */
export const MID_STREAM_PROMPT = "Stream then fail midway";

/**
 * MID_STREAM_FAULTS fail each protocol's stream after exactly three words of
 * text (the chunk counts differ because the protocols frame differently).
 * Gemini has no in-stream error event: the stream just ends, a connection
 * failure; that class difference is legitimate.
 */
export const MID_STREAM_FAULTS: Readonly<Record<Protocol, MidStreamFault>> = {
  // role chunk + 3 words
  openai: {
    fault: { errorEventAfterChunks: 4, errorEvent: { error: { message: "Overloaded", type: "overloaded_error", param: null, code: "overloaded" } } },
    errorClass: "overloaded",
  },
  // message_start, ping, content_block_start + 3 words; the default event is overloaded_error
  anthropic: { fault: { errorEventAfterChunks: 6 }, errorClass: "overloaded" },
  // 3 words
  gemini: { fault: { errorEventAfterChunks: 3 }, errorClass: "connection" },
};
