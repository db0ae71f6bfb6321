import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import OpenAI from "openai";
import { createGatewayClient, type GatewayClient } from "../../clients/index.js";
import { FinishReason, Role, type MessageSchema, type Usage as PbUsage } from "../../gen/llmgateway/v1/chat_pb.js";
import type { CompleteRequestSchema } from "../../gen/llmgateway/v1/gateway_service_pb.js";
import { ErrorClass, RouteTraceSchema } from "../../gen/llmgateway/v1/trace_pb.js";
import { startAnthropicSimulator } from "../simulators/anthropic.js";
import { startGeminiSimulator } from "../simulators/gemini.js";
import type { Simulator } from "../simulators/harness.js";
import { startOpenAISimulator } from "../simulators/openai.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { PROVIDER_KEYS, UPSTREAM_MODELS, type ExpectedUsage, type Protocol, type ScenarioRequest, type ToolCallSeen } from "./scenarios.js";

/**
 * The rig of the cross-protocol table: the three strict simulators, one
 * in-process gateway with one provider and one model per protocol, and the
 * four ways a caller reaches it (OpenAI SDK or generated Connect client,
 * whole or streamed), each reducing what it received to one Observed shape
 * so the table can compare them with deepEqual.
 */

/** PROVIDER_IDS are the gateway's provider ids, the one field that may tell protocols apart. */
export const PROVIDER_IDS: Readonly<Record<Protocol, string>> = { openai: "oai", anthropic: "ant", gemini: "gem" };

/** MODEL_IDS are the gateway model ids, one per protocol. */
export const MODEL_IDS: Readonly<Record<Protocol, string>> = { openai: "oai/chat", anthropic: "ant/chat", gemini: "gem/chat" };

/** WRONG_KEYS are keys the simulators refuse, held by a second provider per protocol. */
export const WRONG_KEYS: Readonly<Record<Protocol, string>> = {
  openai: "sk-proj-wrong-openai-key-9876543210",
  anthropic: "sk-ant-api03-wrong-anthropic-key-9876543210",
  gemini: "AIzaSyWrongGeminiKey9876543210abcdef",
};

/** WRONG_KEY_MODEL_IDS are models on the providers that hold WRONG_KEYS. */
export const WRONG_KEY_MODEL_IDS: Readonly<Record<Protocol, string>> = { openai: "oai-bad/chat", anthropic: "ant-bad/chat", gemini: "gem-bad/chat" };

/** PRICE_NANO_PER_TOKEN is every model's price (the same everywhere, so costs must match too). */
export const PRICE_NANO_PER_TOKEN = { input: 2500n, cachedInput: 1250n, output: 10_000n };

/** expectedCost is what the gateway must charge for a usage at PRICE_NANO_PER_TOKEN. */
export function expectedCost(u: ExpectedUsage): string {
  const p = PRICE_NANO_PER_TOKEN;
  return (BigInt(u.input - u.cached) * p.input + BigInt(u.cached) * p.cachedInput + BigInt(u.output) * p.output).toString();
}

/** Stack is the running rig. */
export interface Stack {
  gateway: TestGateway;
  sims: Record<Protocol, Simulator>;
  /** lastRestBody is the body of the last REST error response the SDK received. */
  lastRestBody(): string;
  /** restFetch is the fetch the SDK uses: it records error bodies for lastRestBody. */
  restFetch: typeof fetch;
  close(): Promise<void>;
}

/** startStack starts the simulators and the gateway. */
export async function startStack(): Promise<Stack> {
  const [openai, anthropic, gemini] = await Promise.all([
    startOpenAISimulator({ apiKey: PROVIDER_KEYS.openai }),
    startAnthropicSimulator({ apiKey: PROVIDER_KEYS.anthropic }),
    startGeminiSimulator({ apiKey: PROVIDER_KEYS.gemini }),
  ]);
  const sims: Record<Protocol, Simulator> = { openai, anthropic, gemini };
  const pricing = { input: 2.5, output: 10, cached_input: 1.25 };
  const model = (p: Protocol, wrongKey = false) => ({
    id: wrongKey ? WRONG_KEY_MODEL_IDS[p] : MODEL_IDS[p],
    provider: `${PROVIDER_IDS[p]}${wrongKey ? "-bad" : ""}`,
    upstream: UPSTREAM_MODELS[p],
    context_window: 128000,
    max_output_tokens: 4096,
    capabilities: ["tools", "vision", "reasoning"],
    pricing,
  });
  const gateway = await startTestGateway({
    providers: [
      { id: PROVIDER_IDS.openai, type: "openai", base_url: `${openai.url}/v1`, api_key: PROVIDER_KEYS.openai },
      { id: PROVIDER_IDS.anthropic, type: "anthropic", base_url: anthropic.url, api_key: PROVIDER_KEYS.anthropic },
      { id: PROVIDER_IDS.gemini, type: "gemini", base_url: gemini.url, api_key: PROVIDER_KEYS.gemini },
      { id: `${PROVIDER_IDS.openai}-bad`, type: "openai", base_url: `${openai.url}/v1`, api_key: WRONG_KEYS.openai },
      { id: `${PROVIDER_IDS.anthropic}-bad`, type: "anthropic", base_url: anthropic.url, api_key: WRONG_KEYS.anthropic },
      { id: `${PROVIDER_IDS.gemini}-bad`, type: "gemini", base_url: gemini.url, api_key: WRONG_KEYS.gemini },
    ],
    models: [model("openai"), model("anthropic"), model("gemini"), model("openai", true), model("anthropic", true), model("gemini", true)],
  });
  // The SDK hides error bodies beyond body.error; recording them lets the tests read the route trace.
  let lastBody = "";
  const restFetch: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    if (res.status >= 400) lastBody = await res.clone().text();
    return res;
  };
  return {
    gateway,
    sims,
    lastRestBody: () => lastBody,
    restFetch,
    close: async () => {
      await gateway.close();
      await Promise.all([openai.close(), anthropic.close(), gemini.close()]);
    },
  };
}

/** Observed is what a caller received, reduced to the compared fields. */
export interface Observed {
  provider: string;
  /** model is the model the caller was told answered (every chunk's, joined with "|" if they differ). */
  model: string;
  text: string;
  reasoning: string;
  toolCalls: ToolCallSeen[];
  finish: string;
  /** usage is undefined when the caller got none (a REST stream without include_usage). */
  usage?: ExpectedUsage;
  /** costNanoUsd is the gateway's charge, as a decimal string. */
  costNanoUsd?: string;
  /** streamErrorClass is the error class of an RPC finish event that reports a mid-stream failure. */
  streamErrorClass?: string;
}

/** StreamFailure is what a streamed ask throws: the client's error and what had arrived before it. */
export class StreamFailure extends Error {
  constructor(
    override readonly cause: unknown,
    readonly partial: Observed,
  ) {
    super(`the stream failed: ${String(cause)}`);
  }
}

/** ObservedError is what a caller received instead of an answer. */
export interface ObservedError {
  /** code is the Connect code name (RPC) or the HTTP status as text (REST). */
  code: string;
  /** sdkClass is the OpenAI SDK's error class name (REST only). */
  sdkClass?: string;
  /** restCode is the REST body's error.code (REST only). */
  restCode?: string;
  /** errorClass is the last attempt's class from the route trace. */
  errorClass?: string;
  retryAfterMs?: number;
  /** retryAfterSeconds is the REST retry-after header. */
  retryAfterSeconds?: number;
  /** shouldRetry is the REST x-should-retry header, which the SDK obeys. */
  shouldRetry?: string;
  message: string;
  /** everything is all the text the caller got, for "never contains" checks. */
  everything: string;
}

/** Channel is one way a caller reaches the gateway. */
export interface Channel {
  label: string;
  /** rest is true for the OpenAI SDK, false for the generated client. */
  rest: boolean;
  stream: boolean;
  /** ask sends a request; it rejects with whatever the client threw. */
  ask(model: string, request: ScenarioRequest, options?: { includeUsage?: boolean }): Promise<Observed>;
  /** describeError reduces what ask threw to an ObservedError. */
  describeError(err: unknown): ObservedError;
}

/** CHANNEL_LABELS name the four channels, in the order channels() returns them. */
export const CHANNEL_LABELS = ["OpenAI SDK, whole", "OpenAI SDK, streamed", "Connect client, whole", "Connect client, streamed"] as const;

/** channels returns the four channels to a running gateway, in CHANNEL_LABELS order. */
export function channels(stack: Stack): Channel[] {
  const sdk = new OpenAI({ baseURL: `${stack.gateway.url}/v1`, apiKey: "open-mode", maxRetries: 0, fetch: stack.restFetch });
  const rpc = createGatewayClient({ baseUrl: stack.gateway.url, protocol: "connect" });
  return [
    { label: CHANNEL_LABELS[0], rest: true, stream: false, ask: (m, r) => restComplete(sdk, m, r), describeError: (e) => restError(e, stack) },
    { label: CHANNEL_LABELS[1], rest: true, stream: true, ask: (m, r, o) => restStream(sdk, m, r, o?.includeUsage ?? true), describeError: (e) => restError(e, stack) },
    { label: CHANNEL_LABELS[2], rest: false, stream: false, ask: (m, r) => rpcComplete(rpc, m, r), describeError: rpcError },
    { label: CHANNEL_LABELS[3], rest: false, stream: true, ask: (m, r) => rpcStream(rpc, m, r), describeError: rpcError },
  ];
}

// ---------------------------------------------------------------------------
// The OpenAI SDK through the REST shim

const toolSchema = { type: "object", properties: { q: { type: "string" } }, required: ["q"] };

function restParams(model: string, r: ScenarioRequest): OpenAI.ChatCompletionCreateParamsNonStreaming {
  const messages: OpenAI.ChatCompletionMessageParam[] = r.turns.map((t): OpenAI.ChatCompletionMessageParam => {
    switch (t.role) {
      case "system":
        return { role: "system", content: t.text };
      case "user":
        return t.imageDataUrl === undefined
          ? { role: "user", content: t.text }
          : { role: "user", content: [{ type: "text", text: t.text }, { type: "image_url", image_url: { url: t.imageDataUrl } }] };
      case "assistant": {
        const m: OpenAI.ChatCompletionAssistantMessageParam = { role: "assistant", content: t.text ?? null };
        if (t.toolCalls !== undefined) {
          m.tool_calls = t.toolCalls.map((c) => ({ id: c.id, type: "function" as const, function: { name: c.name, arguments: c.arguments } }));
        }
        return m;
      }
      case "tool":
        return { role: "tool", tool_call_id: t.toolCallId, content: t.text };
    }
  });
  const params: OpenAI.ChatCompletionCreateParamsNonStreaming = { model, messages };
  if (r.tools !== undefined) {
    params.tools = r.tools.map((name) => ({ type: "function" as const, function: { name, description: `${name} for a place`, parameters: toolSchema } }));
  }
  if (r.maxTokens !== undefined) params.max_tokens = r.maxTokens;
  if (r.stop !== undefined) params.stop = r.stop;
  return params;
}

function restUsage(u: OpenAI.CompletionUsage): ExpectedUsage {
  return {
    input: u.prompt_tokens,
    output: u.completion_tokens,
    cached: u.prompt_tokens_details?.cached_tokens ?? 0,
    reasoning: u.completion_tokens_details?.reasoning_tokens ?? 0,
  };
}

interface GatewayExtension {
  x_gateway?: { provider?: string; cost_nano_usd?: string };
}

async function restComplete(sdk: OpenAI, model: string, r: ScenarioRequest): Promise<Observed> {
  const { data, response } = await sdk.chat.completions.create(restParams(model, r)).withResponse();
  const choice = data.choices[0]!;
  const message = choice.message as OpenAI.ChatCompletionMessage & { reasoning_content?: string };
  const ext = (data as unknown as GatewayExtension).x_gateway;
  if (ext?.provider !== response.headers.get("x-gateway-provider")) throw new Error("x_gateway.provider and the x-gateway-provider header disagree");
  return {
    provider: response.headers.get("x-gateway-provider") ?? "",
    model: data.model,
    text: message.content ?? "",
    reasoning: message.reasoning_content ?? "",
    toolCalls: (message.tool_calls ?? []).map((c) => (c.type === "function" ? { id: c.id, name: c.function.name, arguments: c.function.arguments } : { id: c.id, name: "", arguments: "" })),
    finish: choice.finish_reason,
    usage: data.usage === undefined ? undefined : restUsage(data.usage),
    costNanoUsd: ext?.cost_nano_usd,
  };
}

async function restStream(sdk: OpenAI, model: string, r: ScenarioRequest, includeUsage: boolean): Promise<Observed> {
  const params: OpenAI.ChatCompletionCreateParamsStreaming = { ...restParams(model, r), stream: true };
  if (includeUsage) params.stream_options = { include_usage: true };
  const out: Observed = { provider: "", model: "", text: "", reasoning: "", toolCalls: [], finish: "" };
  try {
    await readRestStream(sdk, params, out);
  } catch (err) {
    throw new StreamFailure(err, out);
  }
  return out;
}

async function readRestStream(sdk: OpenAI, params: OpenAI.ChatCompletionCreateParamsStreaming, out: Observed): Promise<void> {
  const { data, response } = await sdk.chat.completions.create(params).withResponse();
  out.provider = response.headers.get("x-gateway-provider") ?? "";
  let chunksAfterUsage = 0;
  const ids = new Set<string>();
  const models = new Set<string>();
  for await (const chunk of data) {
    ids.add(chunk.id);
    models.add(chunk.model);
    out.model = [...models].join("|");
    if (ids.size > 1) throw new Error(`the chunks of one stream have different ids: ${[...ids].join(", ")}`);
    if (out.usage !== undefined) chunksAfterUsage++;
    const choice = chunk.choices[0];
    if (choice !== undefined) {
      const delta = choice.delta as OpenAI.ChatCompletionChunk.Choice.Delta & { reasoning_content?: string };
      out.text += delta.content ?? "";
      out.reasoning += delta.reasoning_content ?? "";
      for (const c of delta.tool_calls ?? []) {
        const call = (out.toolCalls[c.index] ??= { id: "", name: "", arguments: "" });
        call.id += c.id ?? "";
        call.name += c.function?.name ?? "";
        call.arguments += c.function?.arguments ?? "";
      }
      if (choice.finish_reason !== null) out.finish = choice.finish_reason;
    }
    if (chunk.usage !== undefined && chunk.usage !== null) {
      if (chunk.choices.length !== 0) throw new Error("the usage chunk must have choices: []");
      out.usage = restUsage(chunk.usage);
      out.costNanoUsd = (chunk as unknown as GatewayExtension).x_gateway?.cost_nano_usd;
    }
  }
  if (chunksAfterUsage > 0) throw new Error("chunks arrived after the usage chunk");
}

function restError(thrown: unknown, stack: Stack): ObservedError {
  const err = thrown instanceof StreamFailure ? thrown.cause : thrown;
  if (!(err instanceof OpenAI.APIError)) throw err;
  // An error after the stream began has no status: it came in-band, as a data event.
  const out: ObservedError = { code: err.status === undefined ? "in-band" : String(err.status), message: err.message, everything: `${err.message} ${JSON.stringify(err.error ?? null)}` };
  out.sdkClass = err.constructor.name;
  if (typeof err.code === "string") out.restCode = err.code;
  const ms = err.headers?.get("retry-after-ms");
  if (ms !== null && ms !== undefined) out.retryAfterMs = Number(ms);
  const s = err.headers?.get("retry-after");
  if (s !== null && s !== undefined) out.retryAfterSeconds = Number(s);
  const retry = err.headers?.get("x-should-retry");
  if (retry !== null && retry !== undefined) out.shouldRetry = retry;
  if (err.status !== undefined) {
    const body = stack.lastRestBody();
    out.everything += ` ${body}`;
    const attempts = (JSON.parse(body) as { x_gateway?: { route?: { attempts?: Array<{ errorClass?: string }> } } }).x_gateway?.route?.attempts;
    out.errorClass = attempts?.at(-1)?.errorClass;
  }
  return out;
}

// ---------------------------------------------------------------------------
// The generated client over Connect

// CompleteRequest and StreamCompleteRequest have the same fields; without $typeName one object serves both.
type RpcRequest = Omit<MessageInitShape<typeof CompleteRequestSchema>, "$typeName">;

function rpcRequest(model: string, r: ScenarioRequest): RpcRequest {
  const text = (value: string) => ({ part: { case: "text" as const, value } });
  const messages = r.turns.map((t): MessageInitShape<typeof MessageSchema> => {
    switch (t.role) {
      case "system":
        return { role: Role.SYSTEM, content: [text(t.text)] };
      case "user":
        return {
          role: Role.USER,
          content: t.imageDataUrl === undefined ? [text(t.text)] : [text(t.text), { part: { case: "image", value: { source: { case: "url", value: t.imageDataUrl } } } }],
        };
      case "assistant":
        return { role: Role.ASSISTANT, content: t.text === undefined ? [] : [text(t.text)], toolCalls: t.toolCalls ?? [] };
      case "tool":
        return { role: Role.TOOL, toolCallId: t.toolCallId, content: [text(t.text)] };
    }
  });
  const req: RpcRequest = { model, messages };
  if (r.tools !== undefined) req.tools = r.tools.map((name) => ({ name, description: `${name} for a place`, parameters: toolSchema }));
  if (r.maxTokens !== undefined || r.stop !== undefined) req.sampling = { maxOutputTokens: r.maxTokens, stop: r.stop ?? [] };
  return req;
}

function rpcUsage(u: PbUsage | undefined): ExpectedUsage | undefined {
  if (u === undefined) return undefined;
  if (u.totalTokens !== u.inputTokens + u.outputTokens) throw new Error("usage.total_tokens is not input + output");
  return { input: u.inputTokens, output: u.outputTokens, cached: u.cachedInputTokens, reasoning: u.reasoningTokens };
}

function finishName(f: FinishReason): string {
  return (FinishReason[f] ?? String(f)).toLowerCase();
}

async function rpcComplete(client: GatewayClient, model: string, r: ScenarioRequest): Promise<Observed> {
  const res = await client.complete(rpcRequest(model, r));
  return {
    provider: res.provider,
    model: res.model,
    text: res.message?.text ?? "",
    reasoning: res.message?.reasoning ?? "",
    toolCalls: (res.message?.toolCalls ?? []).map((c) => ({ id: c.id, name: c.name, arguments: c.arguments })),
    finish: finishName(res.finishReason),
    usage: rpcUsage(res.usage),
    costNanoUsd: res.cost?.totalNanoUsd.toString(),
  };
}

async function rpcStream(client: GatewayClient, model: string, r: ScenarioRequest): Promise<Observed> {
  const out: Observed = { provider: "", model: "", text: "", reasoning: "", toolCalls: [], finish: "" };
  const order: string[] = [];
  try {
    await readRpcStream(client, rpcRequest(model, r), out, order);
  } catch (err) {
    throw new StreamFailure(err, out);
  }
  if (order[0] !== "start" || order.at(-1) !== "finish" || order.filter((c) => c === "start" || c === "finish").length !== 2) {
    throw new Error(`a stream is start, deltas, finish; got ${order.join(",")}`);
  }
  return out;
}

async function readRpcStream(client: GatewayClient, req: RpcRequest, out: Observed, order: string[]): Promise<void> {
  for await (const ev of client.streamComplete(req)) {
    order.push(ev.event.case ?? "");
    switch (ev.event.case) {
      case "start":
        out.provider = ev.event.value.provider;
        out.model = ev.event.value.model;
        break;
      case "textDelta":
        out.text += ev.event.value.text;
        break;
      case "reasoningDelta":
        out.reasoning += ev.event.value.text;
        break;
      case "toolCallDelta": {
        const d = ev.event.value;
        const call = (out.toolCalls[d.index] ??= { id: "", name: "", arguments: "" });
        call.id += d.id;
        call.name += d.name;
        call.arguments += d.argumentsDelta;
        break;
      }
      case "finish": {
        const f = ev.event.value;
        out.finish = finishName(f.finishReason);
        // The RPC stream always reports usage, whatever the caller asked.
        if (f.usage === undefined) throw new Error("the finish event has no usage");
        out.usage = rpcUsage(f.usage);
        out.costNanoUsd = f.cost?.totalNanoUsd.toString();
        if (f.error !== undefined) out.streamErrorClass = (ErrorClass[f.error.errorClass] ?? "").toLowerCase();
        break;
      }
    }
  }
}

function rpcError(thrown: unknown): ObservedError {
  const err = thrown instanceof StreamFailure ? thrown.cause : thrown;
  if (!(err instanceof ConnectError)) throw err;
  const [trace] = err.findDetails(RouteTraceSchema);
  const out: ObservedError = {
    code: Code[err.code],
    message: err.rawMessage,
    everything: `${err.message} ${trace === undefined ? "" : JSON.stringify(trace.attempts.map((a) => a.errorMessage))}`,
  };
  const cls = trace?.attempts.at(-1)?.errorClass;
  if (cls !== undefined) out.errorClass = (ErrorClass[cls] ?? "").toLowerCase();
  const ms = err.metadata.get("retry-after-ms");
  if (ms !== null) out.retryAfterMs = Number(ms);
  return out;
}
