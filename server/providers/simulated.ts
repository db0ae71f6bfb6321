import type { ChatRequest, ChatResult, StreamChunk, ToolCall, Usage } from "../core/chat.js";
import { UpstreamError } from "../core/errors.js";
import type { ProviderConfig } from "../config/schema.js";
import { estimatePromptTokens } from "../pricing/estimate.js";
import type { AdapterCall, ProviderAdapter } from "./adapter.js";
import type { Cancellation } from "../core/cancel.js";
import { pause } from "../resilience/wait.js";

/**
 * The `simulated` provider answers in-process, so the gateway works with no
 * keys and no network (the shipped gateway.yaml's `sim/*` models). Answers
 * are deterministic, derived from the prompt; latency and speed come from
 * the provider's `simulated` settings; usage is counted for real (prompt by
 * the gateway's estimator, output one token per word), so cost accounting,
 * limits and budgets behave as they would against a paid provider.
 */

interface Plan {
  text: string;
  toolCalls: ToolCall[];
  reasoning: string;
  finishReason: ChatResult["finishReason"];
  usage: Usage;
}

function lastUserText(request: ChatRequest): string {
  for (let i = request.messages.length - 1; i >= 0; i--) {
    const m = request.messages[i]!;
    if (m.role !== "user") continue;
    return m.content.map((p) => (p.type === "text" ? p.text : "[image]")).join(" ");
  }
  return "";
}

function plan(call: AdapterCall, answerTokens: number): Plan {
  const { request, model } = call;
  const prompt = lastUserText(request);
  // The gateway's own figure, so a simulated bill matches what the request was routed and reserved by.
  const inputTokens = call.promptTokens ?? estimatePromptTokens(request);
  const last = request.messages[request.messages.length - 1];
  const tools = request.tools ?? [];
  const choice = request.toolChoice;
  const forced = choice !== undefined && ("function" in choice || choice.mode === "required");
  const toolsAllowed = tools.length > 0 && !(choice !== undefined && "mode" in choice && choice.mode === "none");
  const reasoning = model.capabilities.includes("reasoning") ? `Considering: ${prompt}` : "";
  const reasoningTokens = reasoning === "" ? 0 : reasoning.split(/\s+/).length;

  if (toolsAllowed && last?.role !== "tool" && (forced || /\bcall\b/i.test(prompt))) {
    const named = tools.filter((t) => prompt.includes(t.name));
    const chosen =
      named.length > 0 ? named : choice !== undefined && "function" in choice ? tools.filter((t) => t.name === choice.function) : tools.slice(0, 1);
    const toolCalls = chosen.map((t, i) => ({ id: `call_sim_${i}`, name: t.name, arguments: JSON.stringify({ q: prompt }) }));
    const outputTokens = toolCalls.reduce((n, c) => n + Math.ceil(c.arguments.length / 4), 0) + reasoningTokens;
    return { text: "", toolCalls, reasoning, finishReason: "tool_calls", usage: usage(inputTokens, outputTokens, reasoningTokens) };
  }

  let words: string[];
  if (last?.role === "tool") {
    const results = request.messages.filter((m) => m.role === "tool").map((m) => m.content.map((p) => (p.type === "text" ? p.text : "")).join(""));
    words = `Results: ${results.join("; ")}`.split(/\s+/);
  } else {
    words = `Simulated answer to: ${prompt}`.split(/\s+/).filter((w) => w !== "");
    for (let i = 0; words.length < answerTokens; i++) words.push(filler[i % filler.length]!);
    words = words.slice(0, answerTokens);
  }
  let finishReason: ChatResult["finishReason"] = "stop";
  const max = request.sampling.maxOutputTokens;
  if (max !== undefined && words.length + reasoningTokens > max) {
    words = words.slice(0, Math.max(0, max - reasoningTokens));
    finishReason = "length";
  }
  let text = words.join(" ");
  if (request.responseFormat !== undefined && request.responseFormat.type !== "text") {
    text = JSON.stringify({ answer: text });
  }
  for (const stop of request.sampling.stop ?? []) {
    const at = text.indexOf(stop);
    if (stop !== "" && at >= 0) {
      text = text.slice(0, at);
      finishReason = "stop";
    }
  }
  const outputTokens = (text === "" ? 0 : text.split(/\s+/).length) + reasoningTokens;
  return { text, toolCalls: [], reasoning, finishReason, usage: usage(inputTokens, outputTokens, reasoningTokens) };
}

const filler = "the gateway simulates a provider so that everything works without keys or network".split(" ");

function usage(inputTokens: number, outputTokens: number, reasoningTokens: number): Usage {
  return { inputTokens, outputTokens, cachedInputTokens: 0, cacheWriteInputTokens: 0, reasoningTokens };
}

function cancelled(): UpstreamError {
  return new UpstreamError("cancelled", "the request was cancelled");
}

/** createSimulatedAdapter builds the in-process provider. */
export function createSimulatedAdapter(provider: ProviderConfig): ProviderAdapter {
  const settings = provider.simulated ?? { first_token_ms: 0, tokens_per_second: 0, answer_tokens: 48 };
  const msPerToken = settings.tokens_per_second > 0 ? 1000 / settings.tokens_per_second : 0;

  async function wait(ms: number, signal: Cancellation): Promise<void> {
    if (ms <= 0) return;
    if ((await pause(ms, signal)) === "aborted") throw cancelled();
  }

  return {
    providerId: provider.id,

    async complete(call) {
      const p = plan(call, settings.answer_tokens);
      await wait(settings.first_token_ms + msPerToken * p.usage.outputTokens, call.signal);
      return {
        output: { text: p.text, toolCalls: p.toolCalls, reasoning: p.reasoning, refusal: "" },
        finishReason: p.finishReason,
        usage: p.usage,
      };
    },

    async *stream(call): AsyncGenerator<StreamChunk> {
      const p = plan(call, settings.answer_tokens);
      await wait(settings.first_token_ms, call.signal);
      if (p.reasoning !== "") yield { events: [{ type: "reasoning", text: p.reasoning }] };
      const words = p.text === "" ? [] : p.text.split(" ");
      // Pace output in batches of at least 10 ms so a fast simulated model does not arm a timer per token.
      const batch = msPerToken > 0 ? Math.max(1, Math.ceil(10 / msPerToken)) : words.length;
      for (let i = 0; i < words.length; i += batch) {
        if (i > 0) await wait(msPerToken * batch, call.signal);
        else if (call.signal.aborted) throw cancelled();
        const piece = words.slice(i, i + batch).join(" ");
        yield { events: [{ type: "text", text: i === 0 ? piece : ` ${piece}` }] };
      }
      for (const [index, c] of p.toolCalls.entries()) {
        yield { events: [{ type: "tool_call", index, id: c.id, name: c.name, argumentsDelta: c.arguments }] };
      }
      yield { events: [{ type: "finish", finishReason: p.finishReason }, { type: "usage", usage: p.usage }] };
    },

    async close() {},
  };
}
