import { answerText, countTokens } from "./harness.js";

/**
 * The protocol-free half of the simulator answer rules (.tmp/sim-rules.md):
 * given what a protocol simulator extracted from its request, decide the
 * answer, its finish and its usage. Each protocol simulator only extracts the
 * inputs and renders the plan in its own wire format, so the protocols
 * cannot drift apart on what they answer.
 */

/** PlanInput is what a simulator extracts from a request. */
export interface PlanInput {
  /** lastUserText is the last user text turn: text parts joined with " ", plus " [image]" per image. */
  lastUserText: string;
  /** promptText is every text of the request joined with " " (see the rules). */
  promptText: string;
  /** toolNames are the request's tools, in order. */
  toolNames: string[];
  /** toolChoice is "auto", "none", "forced" (any/required) or a forced function's name. */
  toolChoice: "auto" | "none" | "forced" | { name: string };
  /** toolResults are the result contents when the last turn is tool results, else undefined. */
  toolResults?: string[];
  /** maxTokens is the request's output cap, if any. */
  maxTokens?: number;
  /** stop are the stop sequences. */
  stop: string[];
  /** malformedRule enables Gemini's MALFORMED rule. */
  malformedRule?: boolean;
}

/** PlannedCall is one tool call to answer with; args is the JSON text. */
export interface PlannedCall {
  name: string;
  args: string;
}

/** AnswerPlan is the answer a simulator renders. */
export type AnswerPlan = {
  /** reasoning is the thinking text ("" when none). */
  reasoning: string;
  inputTokens: number;
  cachedTokens: number;
  /** outputTokens includes reasoningTokens. */
  outputTokens: number;
  reasoningTokens: number;
} & (
  | { kind: "content_filter" }
  | { kind: "malformed" }
  | { kind: "tool_calls"; calls: PlannedCall[] }
  | { kind: "text"; text: string; finish: "stop" | "length" | "stop_sequence"; stopSequence?: string }
);

/** ANSWER_WORDS is how many words a plain answer has. */
export const ANSWER_WORDS = 12;

/** planAnswer applies the rules in their order of precedence. */
export function planAnswer(input: PlanInput): AnswerPlan {
  const inputTokens = countTokens(input.promptText);
  const cachedTokens = input.promptText.includes("CACHED") ? Math.floor(inputTokens / 2) : 0;
  const base = { inputTokens, cachedTokens };
  if (input.lastUserText.includes("BLOCKME")) {
    return { ...base, kind: "content_filter", reasoning: "", outputTokens: 0, reasoningTokens: 0 };
  }
  if (input.malformedRule === true && input.lastUserText.includes("MALFORMED")) {
    return { ...base, kind: "malformed", reasoning: "", outputTokens: 0, reasoningTokens: 0 };
  }
  const reasoning = input.promptText.includes("THINK") ? `Thinking about: ${input.lastUserText}` : "";
  const reasoningTokens = reasoning === "" ? 0 : countTokens(reasoning);
  const withReasoning = { ...base, reasoning, reasoningTokens };
  const textTokens = (text: string): number => (text.trim() === "" ? 0 : countTokens(text)) + reasoningTokens;

  if (input.toolResults !== undefined) {
    const text = `Results: ${input.toolResults.join("; ")}`;
    return { ...withReasoning, kind: "text", text, finish: "stop", outputTokens: textTokens(text) };
  }

  const choice = input.toolChoice;
  const forced = choice === "forced" || typeof choice === "object";
  if (input.toolNames.length > 0 && choice !== "none" && (forced || input.lastUserText.includes("call "))) {
    let names = input.toolNames.filter((n) => input.lastUserText.includes(n));
    if (names.length === 0) names = [typeof choice === "object" ? choice.name : input.toolNames[0]!];
    const args = JSON.stringify({ q: input.lastUserText });
    const calls = names.map((name) => ({ name, args }));
    const outputTokens = calls.reduce((n, c) => n + countTokens(c.args), 0) + reasoningTokens;
    return { ...withReasoning, kind: "tool_calls", calls, outputTokens };
  }

  let words = answerText(input.lastUserText, ANSWER_WORDS).split(" ");
  let finish: "stop" | "length" | "stop_sequence" = "stop";
  if (input.maxTokens !== undefined && input.maxTokens < words.length) {
    words = words.slice(0, input.maxTokens);
    finish = "length";
  }
  let text = words.join(" ");
  let stopSequence: string | undefined;
  let cut = -1;
  for (const s of input.stop) {
    const at = s === "" ? -1 : text.indexOf(s);
    if (at >= 0 && (cut < 0 || at < cut)) {
      cut = at;
      stopSequence = s;
    }
  }
  if (stopSequence !== undefined) {
    text = text.slice(0, cut);
    finish = "stop_sequence";
  }
  const plan: AnswerPlan = { ...withReasoning, kind: "text", text, finish, outputTokens: textTokens(text) };
  if (stopSequence !== undefined) plan.stopSequence = stopSequence;
  return plan;
}

/** streamWords splits text into one-word deltas whose concatenation is the text. */
export function streamWords(text: string): string[] {
  if (text === "") return [];
  return text.split(" ").map((w, i) => (i === 0 ? w : ` ${w}`));
}

/** splitInTwo splits a JSON text in the middle, for two-fragment argument streaming. */
export function splitInTwo(text: string): [string, string] {
  const mid = Math.floor(text.length / 2);
  return [text.slice(0, mid), text.slice(mid)];
}
