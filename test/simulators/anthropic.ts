import type { ServerResponse } from "node:http";
import { planAnswer, splitInTwo, streamWords, type AnswerPlan, type PlanInput } from "./answer-plan.js";
import { sendJson, sleep, startSimulator, type Fault, type SimContext, type Simulator } from "./harness.js";
import { writeSse, type SseFrame } from "./sse-writer.js";
import { ApiError, blocksOf, isJson, validateRequest, type Json } from "./anthropic/validate.js";

/**
 * A strict simulator of the Anthropic Messages API (POST /v1/messages) over
 * real HTTP. It rejects what the real API rejects (missing max_tokens, a
 * system role in messages, non-alternating roles, tool results that do not
 * answer the preceding assistant turn's tool_use blocks, tool_use input that
 * is not an object, temperature outside 0–1, unknown fields, bad auth),
 * answers by the shared simulator rules (answer-plan.ts), streams in the real
 * event format and injects the harness's faults.
 */

/** AnthropicSimulatorOptions configure the simulator. */
export interface AnthropicSimulatorOptions {
  /** apiKey is the only key accepted (x-api-key or Authorization: Bearer); any non-empty key when unset. */
  apiKey?: string;
  /** models, when given, are the only models that exist (404 otherwise). */
  models?: string[];
}

/** AnthropicSimulator is a running simulator; openStreams counts streams still being written. */
export interface AnthropicSimulator extends Simulator {
  /** openStreams is how many streamed responses are open right now (for cancellation tests). */
  openStreams(): number;
}

const defaultTypes: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  402: "billing_error",
  403: "permission_error",
  404: "not_found_error",
  413: "request_too_large",
  429: "rate_limit_error",
  500: "api_error",
  504: "timeout_error",
  529: "overloaded_error",
};

/** errorBody is the Messages API error body. */
function errorBody(type: string, message: string): Json {
  return { type: "error", error: { type, message }, request_id: "req_sim" };
}

function defaultFaultBody(status: number): Json {
  const type = defaultTypes[status] ?? "api_error";
  return errorBody(type, type === "overloaded_error" ? "Overloaded" : `Simulated ${type}`);
}

const overloadedEvent = { type: "error", error: { type: "overloaded_error", message: "Overloaded" } };

/** startAnthropicSimulator starts the simulator on an ephemeral loopback port. */
export async function startAnthropicSimulator(options: AnthropicSimulatorOptions = {}): Promise<AnthropicSimulator> {
  let open = 0;
  let counter = 0;
  const sim = await startSimulator(
    async (ctx) => {
      try {
        await handle(ctx);
      } catch (err) {
        if (!(err instanceof ApiError)) throw err;
        sendJson(ctx.res, err.status, errorBody(err.type, err.message));
      }
    },
    (path) => path.startsWith("/v1/messages"),
  );

  async function handle(ctx: SimContext): Promise<void> {
    const { req, res, url } = ctx;
    if (req.method !== "POST" || url.pathname !== "/v1/messages") throw new ApiError(404, "not_found_error", `Not found: ${url.pathname}`);
    checkAuth(ctx, options.apiKey);
    if (req.headers["anthropic-version"] === undefined) {
      throw new ApiError(400, "invalid_request_error", "anthropic-version: header is required");
    }
    if (!isJson(ctx.body)) throw new ApiError(400, "invalid_request_error", "The request body is not valid JSON.");
    const body = ctx.body;
    validateRequest(body);
    const model = body.model as string;
    if (options.models !== undefined && !options.models.includes(model)) {
      throw new ApiError(404, "not_found_error", `model: ${model}`);
    }
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
    const plan = planAnswer(extractPlanInput(body));
    const id = `msg_sim_${counter++}`;
    if (body.stream === true) {
      await writeSse(res, streamFrames(plan, id, model), fault, {
        separator: "\n\n",
        errorFrame: { event: "error", data: JSON.stringify(fault?.errorEvent ?? overloadedEvent) },
        onOpen: () => open++,
        onClose: () => open--,
      });
      return;
    }
    sendMessage(res, plan, id, model, fault);
  }

  return { ...sim, openStreams: () => open };
}

function checkAuth(ctx: SimContext, apiKey: string | undefined): void {
  const headerKey = ctx.req.headers["x-api-key"];
  const bearer = /^Bearer\s+(.+)$/i.exec(ctx.req.headers.authorization ?? "")?.[1];
  const key = typeof headerKey === "string" ? headerKey : bearer;
  if (key === undefined || key === "" || (apiKey !== undefined && key !== apiKey)) {
    throw new ApiError(401, "authentication_error", "invalid x-api-key");
  }
}

function resultText(block: Json): string {
  if (typeof block.content === "string") return block.content;
  if (!Array.isArray(block.content)) return "";
  return (block.content as Json[]).filter((c) => c.type === "text").map((c) => c.text as string).join(" ");
}

/** extractPlanInput reads what the answer rules need from a valid request. */
function extractPlanInput(body: Json): PlanInput {
  const messages = body.messages as Json[];
  const texts: string[] = [];
  if (typeof body.system === "string") texts.push(body.system);
  else if (Array.isArray(body.system)) for (const b of body.system as Json[]) texts.push(b.text as string);
  let lastUserText = "";
  for (const m of messages) {
    const blocks = blocksOf(m.content);
    for (const b of blocks) {
      if (b.type === "text") texts.push(b.text as string);
      else if (b.type === "tool_use") texts.push(JSON.stringify(b.input));
      else if (b.type === "tool_result") texts.push(resultText(b));
    }
    if (m.role === "user" && !blocks.every((b) => b.type === "tool_result")) {
      const words = blocks.filter((b) => b.type === "text").map((b) => b.text as string);
      lastUserText = words.join(" ") + " [image]".repeat(blocks.filter((b) => b.type === "image").length);
    }
  }
  const last = messages[messages.length - 1]!;
  const lastBlocks = blocksOf(last.content);
  const input: PlanInput = {
    lastUserText,
    promptText: texts.join(" "),
    toolNames: Array.isArray(body.tools) ? (body.tools as Json[]).map((t) => t.name as string) : [],
    toolChoice: "auto",
    maxTokens: body.max_tokens as number,
    stop: (body.stop_sequences as string[] | undefined) ?? [],
  };
  const choice = body.tool_choice as Json | undefined;
  if (choice?.type === "none") input.toolChoice = "none";
  else if (choice?.type === "any") input.toolChoice = "forced";
  else if (choice?.type === "tool") input.toolChoice = { name: choice.name as string };
  if (last.role === "user" && lastBlocks.every((b) => b.type === "tool_result")) input.toolResults = lastBlocks.map(resultText);
  return input;
}

const stopReasons = { stop: "end_turn", length: "max_tokens", stop_sequence: "stop_sequence" } as const;

function stopReason(plan: AnswerPlan): string {
  if (plan.kind === "content_filter") return "refusal";
  if (plan.kind === "tool_calls") return "tool_use";
  if (plan.kind === "text") return stopReasons[plan.finish];
  return "end_turn";
}

function inputUsage(plan: AnswerPlan): Json {
  return { input_tokens: plan.inputTokens - plan.cachedTokens, cache_creation_input_tokens: 0, cache_read_input_tokens: plan.cachedTokens };
}

function contentBlocks(plan: AnswerPlan): Json[] {
  const blocks: Json[] = [];
  if (plan.reasoning !== "") blocks.push({ type: "thinking", thinking: plan.reasoning, signature: "sig_sim" });
  if (plan.kind === "text" && plan.text !== "") blocks.push({ type: "text", text: plan.text });
  if (plan.kind === "tool_calls") {
    plan.calls.forEach((c, i) => blocks.push({ type: "tool_use", id: `toolu_${i}`, name: c.name, input: JSON.parse(c.args) as Json }));
  }
  return blocks;
}

function sendMessage(res: ServerResponse, plan: AnswerPlan, id: string, model: string, fault: Fault | undefined): void {
  sendJson(
    res,
    200,
    {
      id,
      type: "message",
      role: "assistant",
      model,
      content: contentBlocks(plan),
      stop_reason: stopReason(plan),
      stop_sequence: plan.kind === "text" ? (plan.stopSequence ?? null) : null,
      usage: { ...inputUsage(plan), output_tokens: plan.outputTokens },
    },
    fault?.headers ?? {},
  );
}

function streamFrames(plan: AnswerPlan, id: string, model: string): SseFrame[] {
  const frames: SseFrame[] = [];
  const add = (event: string, data: Json): void => {
    frames.push({ event, data: JSON.stringify({ type: event, ...data }) });
  };
  add("message_start", {
    message: { id, type: "message", role: "assistant", model, content: [], stop_reason: null, stop_sequence: null, usage: { ...inputUsage(plan), output_tokens: 1 } },
  });
  add("ping", {});
  let index = 0;
  if (plan.reasoning !== "") {
    add("content_block_start", { index, content_block: { type: "thinking", thinking: "", signature: "" } });
    for (const w of streamWords(plan.reasoning)) add("content_block_delta", { index, delta: { type: "thinking_delta", thinking: w } });
    add("content_block_delta", { index, delta: { type: "signature_delta", signature: "sig_sim" } });
    add("content_block_stop", { index });
    index++;
  }
  if (plan.kind === "text" && plan.text !== "") {
    add("content_block_start", { index, content_block: { type: "text", text: "" } });
    for (const w of streamWords(plan.text)) add("content_block_delta", { index, delta: { type: "text_delta", text: w } });
    add("content_block_stop", { index });
    index++;
  }
  if (plan.kind === "tool_calls") {
    plan.calls.forEach((c, i) => {
      add("content_block_start", { index, content_block: { type: "tool_use", id: `toolu_${i}`, name: c.name, input: {} } });
      for (const piece of splitInTwo(c.args)) add("content_block_delta", { index, delta: { type: "input_json_delta", partial_json: piece } });
      add("content_block_stop", { index });
      index++;
    });
  }
  add("message_delta", {
    delta: { stop_reason: stopReason(plan), stop_sequence: plan.kind === "text" ? (plan.stopSequence ?? null) : null },
    usage: { output_tokens: plan.outputTokens },
  });
  add("message_stop", {});
  return frames;
}
