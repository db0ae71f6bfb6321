import { create } from "@bufbuild/protobuf";
import {
  Capability as PbCapability,
  CachePolicy,
  type Cost as PbCost,
  CostSchema,
  FinishReason as PbFinishReason,
  ImageDetail,
  type Message,
  Priority,
  ReasoningEffort as PbReasoningEffort,
  ResponseFormatType,
  Role as PbRole,
  type SamplingOptions as PbSampling,
  type ToolChoice as PbToolChoice,
  ToolChoiceMode,
  type Usage as PbUsage,
  UsageSchema,
  type RoutingOptions as PbRouting,
  type RequestMetadata as PbMetadata,
  type ResponseFormat as PbResponseFormat,
  type Tool as PbTool,
} from "../../gen/llmgateway/v1/chat_pb.js";
import { AttemptOutcome, ErrorClass as PbErrorClass, type RouteTrace, RouteTraceSchema } from "../../gen/llmgateway/v1/trace_pb.js";
import type {
  Capability,
  ChatMessage,
  ChatRequest,
  ContentPart,
  FinishReason,
  JsonObject,
  ReasoningEffort,
  ResponseFormat,
  RoutingOptions,
  SamplingOptions,
  ToolChoice,
  ToolDefinition,
  Usage,
} from "../core/chat.js";
import { invalidArgument, type ErrorClass } from "../core/errors.js";
import type { RouteTraceRecord } from "../core/trace.js";
import type { CostBreakdown } from "../pricing/cost.js";

/**
 * Conversion between the protobuf contract and the normalized model. The
 * contract's types guarantee shapes; what is checked here is what protobuf
 * cannot express (enum values left unspecified, ranges, links between fields),
 * with errors that name the field.
 */

/** ProtoChatFields are the request fields CompleteRequest and StreamCompleteRequest share. */
export interface ProtoChatFields {
  model: string;
  messages: Message[];
  tools: PbTool[];
  toolChoice?: PbToolChoice;
  parallelToolCalls?: boolean;
  sampling?: PbSampling;
  responseFormat?: PbResponseFormat;
  routing?: PbRouting;
  metadata?: PbMetadata;
}

const roles: Partial<Record<PbRole, ChatMessage["role"]>> = {
  [PbRole.SYSTEM]: "system",
  [PbRole.USER]: "user",
  [PbRole.ASSISTANT]: "assistant",
  [PbRole.TOOL]: "tool",
};

const details: Partial<Record<ImageDetail, "low" | "high" | "auto">> = {
  [ImageDetail.LOW]: "low",
  [ImageDetail.HIGH]: "high",
  [ImageDetail.AUTO]: "auto",
};

function content(m: Message, i: number): ContentPart[] {
  return m.content.map((part, j): ContentPart => {
    const param = `messages[${i}].content[${j}]`;
    switch (part.part.case) {
      case "text":
        return { type: "text", text: part.part.value };
      case "image": {
        if (m.role !== PbRole.USER) throw invalidArgument(param, "images are only allowed in user messages");
        const img = part.part.value;
        const detail = details[img.detail];
        if (img.source.case === "url") {
          const url = img.source.value;
          const dataUrl = /^data:([\w.+-]+\/[\w.+-]+);base64,(.*)$/s.exec(url);
          if (dataUrl !== null) return { type: "image", base64: dataUrl[2]!, mediaType: dataUrl[1]!, detail };
          if (!/^https?:\/\//.test(url)) throw invalidArgument(`${param}.image.url`, "expected an http(s) URL or a base64 data URL");
          return { type: "image", url, mediaType: img.mediaType || undefined, detail };
        }
        if (img.source.case === "data") {
          if (img.mediaType === "") throw invalidArgument(`${param}.image.media_type`, "is required with inline image data");
          return { type: "image", base64: Buffer.from(img.source.value).toString("base64"), mediaType: img.mediaType, detail };
        }
        throw invalidArgument(`${param}.image`, "set url or data");
      }
      default:
        throw invalidArgument(param, "set text or image");
    }
  });
}

function messages(list: Message[]): ChatMessage[] {
  if (list.length === 0) throw invalidArgument("messages", "at least one message is required");
  return list.map((m, i) => {
    const role = roles[m.role];
    if (role === undefined) throw invalidArgument(`messages[${i}].role`, "must be SYSTEM, USER, ASSISTANT or TOOL");
    const msg: ChatMessage = { role, content: content(m, i) };
    if (m.name !== "") msg.name = m.name;
    if (m.toolCalls.length > 0) {
      if (role !== "assistant") throw invalidArgument(`messages[${i}].tool_calls`, "only assistant messages carry tool calls");
      msg.toolCalls = m.toolCalls.map((c) => ({ id: c.id, name: c.name, arguments: c.arguments === "" ? "{}" : c.arguments }));
    }
    if (role === "tool") {
      if (m.toolCallId === "") throw invalidArgument(`messages[${i}].tool_call_id`, "is required on tool messages");
      msg.toolCallId = m.toolCallId;
    }
    if (role === "assistant" && msg.content.length === 0 && (msg.toolCalls?.length ?? 0) === 0) {
      throw invalidArgument(`messages[${i}].content`, "an assistant message needs content or tool_calls");
    }
    if (m.reasoning !== "") msg.reasoning = m.reasoning;
    return msg;
  });
}

function tools(list: PbTool[]): ToolDefinition[] | undefined {
  if (list.length === 0) return undefined;
  return list.map((t, i) => {
    if (!/^[a-zA-Z0-9_-]{1,64}$/.test(t.name)) throw invalidArgument(`tools[${i}].name`, "must match ^[a-zA-Z0-9_-]{1,64}$");
    return { name: t.name, description: t.description || undefined, parameters: t.parameters as JsonObject | undefined, strict: t.strict };
  });
}

function toolChoice(c: PbToolChoice | undefined): ToolChoice | undefined {
  switch (c?.choice.case) {
    case "mode":
      return c.choice.value === ToolChoiceMode.AUTO
        ? { mode: "auto" }
        : c.choice.value === ToolChoiceMode.NONE
          ? { mode: "none" }
          : c.choice.value === ToolChoiceMode.REQUIRED
            ? { mode: "required" }
            : undefined;
    case "functionName":
      return { function: c.choice.value };
    default:
      return undefined;
  }
}

function range(v: number | undefined, param: string, min: number, max: number): number | undefined {
  if (v !== undefined && !(v >= min && v <= max)) throw invalidArgument(param, `must be between ${min} and ${max}, got ${v}`);
  return v;
}

const efforts: Partial<Record<PbReasoningEffort, ReasoningEffort>> = {
  [PbReasoningEffort.MINIMAL]: "minimal",
  [PbReasoningEffort.LOW]: "low",
  [PbReasoningEffort.MEDIUM]: "medium",
  [PbReasoningEffort.HIGH]: "high",
};

function sampling(s: PbSampling | undefined): SamplingOptions {
  if (s === undefined) return {};
  if (s.stop.length > 4) throw invalidArgument("sampling.stop", "at most 4 stop sequences");
  if (s.maxOutputTokens === 0) throw invalidArgument("sampling.max_output_tokens", "must be > 0 when set");
  return {
    temperature: range(s.temperature, "sampling.temperature", 0, 2),
    topP: range(s.topP, "sampling.top_p", 0, 1),
    maxOutputTokens: s.maxOutputTokens,
    stop: s.stop.length > 0 ? s.stop : undefined,
    seed: s.seed === undefined ? undefined : Number(BigInt.asIntN(53, s.seed)),
    topK: s.topK,
    presencePenalty: range(s.presencePenalty, "sampling.presence_penalty", -2, 2),
    frequencyPenalty: range(s.frequencyPenalty, "sampling.frequency_penalty", -2, 2),
    reasoningEffort: efforts[s.reasoningEffort],
  };
}

function responseFormat(f: PbResponseFormat | undefined): ResponseFormat | undefined {
  switch (f?.type) {
    case ResponseFormatType.JSON_OBJECT:
      return { type: "json_object" };
    case ResponseFormatType.JSON_SCHEMA:
      if (f.schemaName === "") throw invalidArgument("response_format.schema_name", "is required for JSON_SCHEMA");
      return { type: "json_schema", name: f.schemaName, schema: f.schema as JsonObject | undefined, strict: f.strict };
    case ResponseFormatType.TEXT:
      return { type: "text" };
    default:
      return undefined;
  }
}

const capabilities: Partial<Record<PbCapability, Capability>> = {
  [PbCapability.TOOLS]: "tools",
  [PbCapability.VISION]: "vision",
  [PbCapability.JSON]: "json",
  [PbCapability.JSON_SCHEMA]: "json_schema",
  [PbCapability.REASONING]: "reasoning",
};

/** capabilityToProto maps a config capability name to the contract's enum. */
export function capabilityToProto(c: string): PbCapability {
  for (const [k, v] of Object.entries(capabilities)) if (v === c) return Number(k) as PbCapability;
  return PbCapability.UNSPECIFIED;
}

function routing(r: PbRouting | undefined): RoutingOptions {
  if (r === undefined) return {};
  return {
    maxCostNanoUsd: r.maxCostNanoUsd,
    latencyBudgetMs: r.latencyBudgetMs === 0 ? undefined : r.latencyBudgetMs,
    requiredCapabilities: r.requiredCapabilities.map((c, i) => {
      const cap = capabilities[c];
      if (cap === undefined) throw invalidArgument(`routing.required_capabilities[${i}]`, "unspecified capability");
      return cap;
    }),
    allowedProviders: r.allowedProviders,
    deniedProviders: r.deniedProviders,
    priority: r.priority === Priority.BATCH ? "batch" : "interactive",
    cachePolicy:
      r.cachePolicy === CachePolicy.USE ? "use" : r.cachePolicy === CachePolicy.BYPASS ? "bypass" : r.cachePolicy === CachePolicy.REFRESH ? "refresh" : undefined,
  };
}

/** chatRequestFromProto converts and checks a Complete/StreamComplete/EstimateCost request. */
export function chatRequestFromProto(req: ProtoChatFields): ChatRequest {
  if (req.model === "") throw invalidArgument("model", "is required (a model id such as openai/gpt-4o, or a route id)");
  return {
    model: req.model,
    messages: messages(req.messages),
    tools: tools(req.tools),
    toolChoice: toolChoice(req.toolChoice),
    parallelToolCalls: req.parallelToolCalls,
    sampling: sampling(req.sampling),
    responseFormat: responseFormat(req.responseFormat),
    routing: routing(req.routing),
    metadata: {
      tags: req.metadata?.tags,
      endUser: req.metadata?.endUser || undefined,
      feature: req.metadata?.feature || undefined,
    },
  };
}

const finishReasons: Record<FinishReason, PbFinishReason> = {
  stop: PbFinishReason.STOP,
  length: PbFinishReason.LENGTH,
  tool_calls: PbFinishReason.TOOL_CALLS,
  content_filter: PbFinishReason.CONTENT_FILTER,
  malformed_tool_call: PbFinishReason.MALFORMED_TOOL_CALL,
  error: PbFinishReason.ERROR,
  other: PbFinishReason.OTHER,
};

/** finishReasonToProto maps a normalized finish reason. */
export function finishReasonToProto(r: FinishReason): PbFinishReason {
  return finishReasons[r];
}

const errorClasses: Record<ErrorClass, PbErrorClass> = {
  rate_limited: PbErrorClass.RATE_LIMITED,
  overloaded: PbErrorClass.OVERLOADED,
  quota_exhausted: PbErrorClass.QUOTA_EXHAUSTED,
  auth: PbErrorClass.AUTH,
  invalid_request: PbErrorClass.INVALID_REQUEST,
  context_length_exceeded: PbErrorClass.CONTEXT_LENGTH_EXCEEDED,
  content_filtered: PbErrorClass.CONTENT_FILTERED,
  not_found: PbErrorClass.NOT_FOUND,
  server_error: PbErrorClass.SERVER_ERROR,
  timeout: PbErrorClass.TIMEOUT,
  connection: PbErrorClass.CONNECTION,
  cancelled: PbErrorClass.CANCELLED,
  malformed_response: PbErrorClass.MALFORMED_RESPONSE,
};

/** errorClassToProto maps an upstream error class. */
export function errorClassToProto(c: ErrorClass | undefined): PbErrorClass {
  return c === undefined ? PbErrorClass.UNSPECIFIED : errorClasses[c];
}

/** usageToProto renders usage. */
export function usageToProto(u: Usage): PbUsage {
  return create(UsageSchema, { ...u, totalTokens: u.inputTokens + u.outputTokens });
}

/** costToProto renders a cost breakdown in nano-USD. */
export function costToProto(c: CostBreakdown): PbCost {
  return create(CostSchema, {
    inputNanoUsd: c.input,
    cachedInputNanoUsd: c.cachedInput,
    cacheWriteNanoUsd: c.cacheWrite,
    outputNanoUsd: c.output,
    requestFeeNanoUsd: c.requestFee,
    totalNanoUsd: c.total,
  });
}

/** traceToProto renders a route trace. */
export function traceToProto(t: RouteTraceRecord): RouteTrace {
  return create(RouteTraceSchema, {
    route: t.route,
    strategy: t.strategy,
    reason: t.reason,
    attempts: t.attempts.map((a) => ({
      provider: a.provider,
      model: a.model,
      outcome: a.outcome === "succeeded" ? AttemptOutcome.SUCCEEDED : a.outcome === "cancelled" ? AttemptOutcome.CANCELLED : AttemptOutcome.FAILED,
      errorClass: errorClassToProto(a.errorClass),
      errorMessage: a.errorMessage ?? "",
      latencyMs: a.latencyMs,
      timeToFirstTokenMs: a.timeToFirstTokenMs,
      httpStatus: a.httpStatus,
      retryAfterMs: a.retryAfterMs,
      hedged: a.hedged,
    })),
    skipped: t.skipped,
  });
}
