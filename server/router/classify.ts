import type { TaskClass } from "../config/schema.js";
import type { ChatRequest } from "../core/chat.js";

/**
 * The `auto` strategy's task classifier: a fast, explainable verdict on
 * what kind of request this is — code, math/reasoning, long-document
 * summarization, translation or CJK text, structured extraction/JSON, or
 * short chat — from the request's features alone (no model, no network).
 *
 * Each class scores points for features it recognizes, and each point
 * comes with a reason in words; the highest score wins (ties go to the
 * more specific class, in the order of `tieOrder`), and the reasons go into
 * the route trace. Only a bounded sample of the text is scanned (the last
 * user message's head and tail and the system prompt's head), so a
 * 200-page document costs the same as a page; its size is judged from the
 * prompt-token estimate instead.
 */

/** TaskVerdict is the classifier's answer. */
export interface TaskVerdict {
  taskClass: TaskClass;
  /** reasons explain the winning class's score. */
  reasons: string[];
  scores: Record<TaskClass, number>;
}

/** LONG_DOCUMENT_TOKENS is the prompt size from which a request is a long document by size alone. */
export const LONG_DOCUMENT_TOKENS = 8000;

const HEAD_CHARS = 6000;
const TAIL_CHARS = 2000;
const SYSTEM_CHARS = 1000;

const tieOrder: readonly TaskClass[] = ["extraction", "code", "math", "translation", "long_document", "chat"];

const codeFence = /```/g;
const codeLine = /^\s*(def |class |function |import |from \S+ import |#include|public (static )?|private |const |let |var |fn |func |package |SELECT .+ FROM |async function|return [^\n]*;$)/gim;
const codeWords = /\b(code|function|compile[rsd]?|stack ?trace|traceback|refactor|regex|python|javascript|typescript|java|rust|golang|c\+\+|sql|unit tests?|bug|exception|segfault|null pointer)\b/i;
const braceLine = /[{};]\s*$/gm;
const latex = /\\(frac|int|sum|sqrt|lim|prod|begin\{(equation|align)|cdot|infty|partial)/;
const mathWords = /\b(prove|proof|theorem|lemma|equation|integral|derivative|solve for|probability|matrix|eigen\w*|polynomial|factori[sz]e|modulo|prime numbers?|calculate|compute the)\b/i;
const arithmetic = /\d+(\.\d+)?\s*[-+*/^×÷=]\s*\(?\d+/;
const summaryWords = /\b(summari[sz]e|summary|tl;?dr|key points|main points|abstract|outline the)\b/i;
const translateWords = /\b(translate|translation|in(to)? (english|french|german|spanish|italian|portuguese|chinese|japanese|korean|russian|arabic))\b|翻译|翻譯|翻訳|번역/i;
const extractWords = /\b(extract|parse|fields?|json|schema|structured|key[- ]value|csv|entities|fill in the)\b/i;

function isCjk(c: number): boolean {
  return (c >= 0x3040 && c <= 0x30ff) || (c >= 0x3400 && c <= 0x9fff) || (c >= 0xac00 && c <= 0xd7af) || (c >= 0xf900 && c <= 0xfaff);
}

function textOf(request: ChatRequest, role: "user" | "system"): string {
  for (let i = request.messages.length - 1; i >= 0; i--) {
    const m = request.messages[i]!;
    if (m.role !== role) continue;
    let text = "";
    for (const p of m.content) if (p.type === "text") text += (text === "" ? "" : "\n") + p.text;
    return text;
  }
  return "";
}

function sample(text: string, head: number, tail: number): string {
  return text.length <= head + tail ? text : `${text.slice(0, head)}\n${text.slice(-tail)}`;
}

function countMatches(re: RegExp, text: string, cap: number): number {
  re.lastIndex = 0;
  let n = 0;
  while (n < cap && re.exec(text) !== null) n++;
  re.lastIndex = 0;
  return n;
}

/** classifyTask classifies a request; promptTokens is the router's prompt-size estimate. */
export function classifyTask(request: ChatRequest, promptTokens: number): TaskVerdict {
  const user = sample(textOf(request, "user"), HEAD_CHARS, TAIL_CHARS);
  const system = textOf(request, "system").slice(0, SYSTEM_CHARS);
  const text = system === "" ? user : `${system}\n${user}`;
  const scores: Record<TaskClass, number> = { code: 0, math: 0, long_document: 0, translation: 0, extraction: 0, chat: 1 };
  const reasons: Record<TaskClass, string[]> = { code: [], math: [], long_document: [], translation: [], extraction: [], chat: ["no stronger signal"] };
  const add = (c: TaskClass, points: number, why: string) => {
    scores[c] += points;
    reasons[c].push(why);
  };

  const rf = request.responseFormat?.type;
  if (rf === "json_schema") add("extraction", 5, "asks for a JSON schema answer");
  else if (rf === "json_object") add("extraction", 4, "asks for a JSON answer");
  const extractHit = extractWords.exec(text);
  if (extractHit !== null) add("extraction", 2, `mentions "${extractHit[0]}"`);

  const fences = Math.floor(countMatches(codeFence, text, 20) / 2);
  if (fences > 0) add("code", 4, `${fences} code block${fences === 1 ? "" : "s"}`);
  const lines = countMatches(codeLine, text, 10);
  if (lines > 0) add("code", Math.min(4, 1 + lines), `${lines} line${lines === 1 ? "" : "s"} that look like code`);
  const braces = countMatches(braceLine, text, 10);
  if (braces >= 3) add("code", 2, `${braces} lines ending in { } or ;`);
  const codeHit = codeWords.exec(text);
  if (codeHit !== null) add("code", 2, `mentions "${codeHit[0]}"`);

  if (latex.test(text)) add("math", 4, "LaTeX math");
  const mathHit = mathWords.exec(text);
  if (mathHit !== null) add("math", 3, `mentions "${mathHit[0]}"`);
  if (arithmetic.test(text)) add("math", 2, "arithmetic expressions");
  if (request.sampling.reasoningEffort === "high") add("math", 1, "asks for high reasoning effort");

  if (promptTokens >= LONG_DOCUMENT_TOKENS) add("long_document", 5, `~${promptTokens} prompt tokens`);
  else if (promptTokens >= 3000) add("long_document", 2, `~${promptTokens} prompt tokens`);
  const summaryHit = summaryWords.exec(text);
  if (summaryHit !== null) add("long_document", promptTokens >= 1000 ? 3 : 1, `asks to "${summaryHit[0]}"`);

  const translateHit = translateWords.exec(text);
  if (translateHit !== null) add("translation", 5, `asks for "${translateHit[0]}"`);
  let cjk = 0;
  let letters = 0;
  for (let i = 0; i < user.length; i++) {
    const c = user.charCodeAt(i);
    if (c <= 0x20) continue;
    letters++;
    if (isCjk(c)) cjk++;
  }
  const ratio = letters === 0 ? 0 : cjk / letters;
  if (ratio >= 0.3) add("translation", 4, `${Math.round(ratio * 100)}% CJK text`);
  else if (ratio >= 0.1) add("translation", 2, `${Math.round(ratio * 100)}% CJK text`);

  if (promptTokens < 200 && scores.chat >= Math.max(scores.code, scores.math, scores.extraction, scores.translation, scores.long_document)) {
    add("chat", 1, `short prompt (~${promptTokens} tokens)`);
  }

  let best: TaskClass = "chat";
  for (const c of tieOrder) if (scores[c] > scores[best] || (scores[c] === scores[best] && tieOrder.indexOf(c) < tieOrder.indexOf(best))) best = c;
  return { taskClass: best, reasons: reasons[best], scores };
}
