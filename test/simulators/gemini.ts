import type { ServerResponse } from "node:http";
import { planAnswer, streamWords, type AnswerPlan, type PlanInput } from "./answer-plan.js";
import { sendJson, sleep, startSimulator, type Fault, type SimContext, type Simulator } from "./harness.js";
import { writeSse, type SseFrame } from "./sse-writer.js";
import { ApiError, isJson, validateRequest, type Json } from "./gemini/validate.js";

/**
 * A strict simulator of the Gemini API (POST /v1beta/models/{model}:
 * generateContent and :streamGenerateContent?alt=sse) over real HTTP. It
 * rejects what the real API rejects (a bad key as 400 API_KEY_INVALID, roles
 * other than user/model, a functionResponse without a name, JSON Schema
 * keywords outside Gemini's subset, wrongly typed generationConfig, unknown
 * fields), answers by the shared simulator rules (answer-plan.ts), streams
 * `data: <GenerateContentResponse>` events separated by \r\n\r\n with no
 * [DONE], and injects the harness's faults.
 */

/** GeminiSimulatorOptions configure the simulator. */
export interface GeminiSimulatorOptions {
  /** apiKey is the only key accepted (x-goog-api-key or ?key=); any non-empty key when unset. */
  apiKey?: string;
  /** models, when given, are the only models that exist (404 otherwise). */
  models?: string[];
}

/** GeminiSimulator is a running simulator; openStreams counts streams still being written. */
export interface GeminiSimulator extends Simulator {
  /** openStreams is how many streamed responses are open right now (for cancellation tests). */
  openStreams(): number;
}

const statusNames: Record<number, string> = {
  400: "INVALID_ARGUMENT",
  401: "UNAUTHENTICATED",
  403: "PERMISSION_DENIED",
  404: "NOT_FOUND",
  429: "RESOURCE_EXHAUSTED",
  500: "INTERNAL",
  503: "UNAVAILABLE",
  504: "DEADLINE_EXCEEDED",
};

/** errorBody is Google's error body. */
function errorBody(code: number, message: string, details: Json[] = []): Json {
  const error: Json = { code, message, status: statusNames[code] ?? (code >= 500 ? "INTERNAL" : "INVALID_ARGUMENT") };
  if (details.length > 0) error.details = details;
  return { error };
}

function defaultFaultBody(status: number): Json {
  if (status === 429) {
    return errorBody(429, "You exceeded your current quota, please check your plan and billing details.", [
      { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "34s" },
    ]);
  }
  if (status === 503) return errorBody(503, "The model is overloaded. Please try again later.");
  return errorBody(status, `Simulated ${statusNames[status] ?? "error"}`);
}

const apiKeyInvalid: Json[] = [
  {
    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
    reason: "API_KEY_INVALID",
    domain: "googleapis.com",
    metadata: { service: "generativelanguage.googleapis.com" },
  },
];

const pathPattern = /^\/v1beta\/models\/([^/:]+):(generateContent|streamGenerateContent)$/;

/** startGeminiSimulator starts the simulator on an ephemeral loopback port. */
export async function startGeminiSimulator(options: GeminiSimulatorOptions = {}): Promise<GeminiSimulator> {
  let open = 0;
  let counter = 0;
  const sim = await startSimulator(
    async (ctx) => {
      try {
        await handle(ctx);
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        sendJson(ctx.res, err.status, errorBody(err.status, err.message, err.details));
      }
    },
    (path) => pathPattern.test(path.split("?")[0]!),
  );

  async function handle(ctx: SimContext): Promise<void> {
    const { req, res, url } = ctx;
    const route = pathPattern.exec(url.pathname);
    if (req.method !== "POST" || route === null) throw new ApiError(404, `Not found: ${url.pathname}`);
    const key = (req.headers["x-goog-api-key"] as string | undefined) ?? url.searchParams.get("key") ?? "";
    if (key === "" || (options.apiKey !== undefined && key !== options.apiKey)) {
      throw new ApiError(400, "API key not valid. Please pass a valid API key.", apiKeyInvalid);
    }
    const model = decodeURIComponent(route[1]!);
    const streaming = route[2] === "streamGenerateContent";
    if (streaming && url.searchParams.get("alt") !== "sse") throw new ApiError(400, "this simulator streams only with alt=sse");
    if (options.models !== undefined && !options.models.includes(model)) {
      throw new ApiError(404, `models/${model} is not found for API version v1beta, or is not supported for generateContent.`);
    }
    if (!isJson(ctx.body)) throw new ApiError(400, "Invalid JSON payload received.");
    validateRequest(ctx.body);
    const fault = ctx.takeFault(model);
    if (fault?.resetConnection === true) {
      req.socket.destroy();
      return;
    }
    await sleep(fault?.firstTokenDelayMs ?? 0);
    if (fault?.status !== undefined) {
      sendJson(res, fault.status, fault.body ?? defaultFaultBody(fault.status), fault.headers ?? {});
      return;
    }
    const plan = planAnswer(extractPlanInput(ctx.body));
    const responseId = `sim-${counter++}`;
    if (streaming) {
      // Gemini has no in-stream error event: errorEventAfterChunks behaves as a cut.
      await writeSse(res, streamFrames(plan, model, responseId), fault, {
        separator: "\r\n\r\n",
        onOpen: () => open++,
        onClose: () => open--,
      });
      return;
    }
    sendResponse(res, plan, model, responseId, fault);
  }

  return { ...sim, openStreams: () => open };
}

function partsOf(content: unknown): Json[] {
  return isJson(content) && Array.isArray(content.parts) ? (content.parts as Json[]) : [];
}

/**
 * toolResultText is a functionResponse's content for the answer: the string
 * `content` field when there is one, else the whole response as JSON. (The
 * string is used as is, not JSON-quoted, so the answer matches the other
 * protocols' "Results: ..." for the same tool outputs.)
 */
function toolResultText(part: Json): string {
  const response = (part.functionResponse as Json).response as Json;
  return typeof response.content === "string" ? response.content : JSON.stringify(response);
}

/** extractPlanInput reads what the answer rules need from a valid request. */
function extractPlanInput(body: Json): PlanInput {
  const contents = body.contents as Json[];
  const texts: string[] = [];
  for (const p of partsOf(body.systemInstruction)) if (typeof p.text === "string") texts.push(p.text);
  let lastUserText = "";
  for (const c of contents) {
    const parts = partsOf(c);
    for (const p of parts) {
      if (typeof p.text === "string") texts.push(p.text);
      else if (isJson(p.functionCall)) texts.push(JSON.stringify(p.functionCall.args ?? {}));
      else if (isJson(p.functionResponse)) texts.push(toolResultText(p));
    }
    if (c.role !== "model" && !parts.every((p) => p.functionResponse !== undefined)) {
      const words = parts.filter((p) => typeof p.text === "string").map((p) => p.text as string);
      lastUserText = words.join(" ") + " [image]".repeat(parts.filter((p) => p.inlineData !== undefined || p.fileData !== undefined).length);
    }
  }
  const last = contents[contents.length - 1]!;
  const lastParts = partsOf(last);
  const config = (body.generationConfig as Json | undefined) ?? {};
  const names: string[] = [];
  for (const t of (body.tools as Json[] | undefined) ?? []) for (const d of (t.functionDeclarations as Json[] | undefined) ?? []) names.push(d.name as string);
  const input: PlanInput = {
    lastUserText,
    promptText: texts.join(" "),
    toolNames: names,
    toolChoice: "auto",
    stop: (config.stopSequences as string[] | undefined) ?? [],
    malformedRule: true,
  };
  if (config.maxOutputTokens !== undefined) input.maxTokens = config.maxOutputTokens as number;
  const fcc = ((body.toolConfig as Json | undefined)?.functionCallingConfig as Json | undefined) ?? {};
  const allowed = (fcc.allowedFunctionNames as string[] | undefined) ?? [];
  if (fcc.mode === "NONE") input.toolChoice = "none";
  else if (fcc.mode === "ANY") input.toolChoice = allowed.length === 1 ? { name: allowed[0]! } : "forced";
  if (last.role !== "model" && lastParts.every((p) => p.functionResponse !== undefined)) input.toolResults = lastParts.map(toolResultText);
  return input;
}

function finishReason(plan: AnswerPlan): string {
  if (plan.kind === "malformed") return "MALFORMED_FUNCTION_CALL";
  if (plan.kind === "text" && plan.finish === "length") return "MAX_TOKENS";
  return "STOP";
}

function usageMetadata(plan: AnswerPlan): Json {
  const usage: Json = { promptTokenCount: plan.inputTokens };
  if (plan.kind !== "content_filter") usage.candidatesTokenCount = plan.outputTokens - plan.reasoningTokens;
  usage.totalTokenCount = plan.inputTokens + plan.outputTokens;
  if (plan.cachedTokens > 0) usage.cachedContentTokenCount = plan.cachedTokens;
  if (plan.reasoningTokens > 0) usage.thoughtsTokenCount = plan.reasoningTokens;
  return usage;
}

function answerParts(plan: AnswerPlan): Json[] {
  const parts: Json[] = [];
  if (plan.reasoning !== "") parts.push({ text: plan.reasoning, thought: true });
  if (plan.kind === "text" && plan.text !== "") parts.push({ text: plan.text });
  if (plan.kind === "tool_calls") for (const c of plan.calls) parts.push({ functionCall: { name: c.name, args: JSON.parse(c.args) as Json } });
  return parts;
}

function candidate(parts: Json[] | undefined): Json {
  return { content: parts === undefined ? {} : { role: "model", parts }, index: 0 };
}

function sendResponse(res: ServerResponse, plan: AnswerPlan, model: string, responseId: string, fault: Fault | undefined): void {
  const body: Json =
    plan.kind === "content_filter"
      ? { promptFeedback: { blockReason: "SAFETY" }, usageMetadata: usageMetadata(plan), modelVersion: model, responseId }
      : {
          candidates: [{ ...candidate(plan.kind === "malformed" ? undefined : answerParts(plan)), finishReason: finishReason(plan) }],
          usageMetadata: usageMetadata(plan),
          modelVersion: model,
          responseId,
        };
  sendJson(res, 200, body, fault?.headers ?? {});
}

function streamFrames(plan: AnswerPlan, model: string, responseId: string): SseFrame[] {
  const chunks: Json[] = [];
  if (plan.kind === "content_filter") {
    chunks.push({ promptFeedback: { blockReason: "SAFETY" } });
  } else if (plan.kind === "malformed") {
    chunks.push({ candidates: [candidate(undefined)] });
  } else {
    for (const w of streamWords(plan.reasoning)) chunks.push({ candidates: [candidate([{ text: w, thought: true }])] });
    if (plan.kind === "text") for (const w of streamWords(plan.text)) chunks.push({ candidates: [candidate([{ text: w }])] });
    if (plan.kind === "tool_calls") chunks.push({ candidates: [candidate(answerParts({ ...plan, reasoning: "" }))] });
  }
  // The last chunk carries the finishReason and the usage, as Gemini's does.
  if (chunks.length === 0) chunks.push({ candidates: [candidate([{ text: "" }])] });
  const last = chunks[chunks.length - 1]!;
  const first = (last.candidates as Json[] | undefined)?.[0];
  if (first !== undefined) first.finishReason = finishReason(plan);
  last.usageMetadata = usageMetadata(plan);
  return chunks.map((c) => ({ data: JSON.stringify({ ...c, modelVersion: model, responseId }) }));
}
