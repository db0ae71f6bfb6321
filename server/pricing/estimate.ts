import type { ChatRequest, ImagePart } from "../core/chat.js";
import { familyProfiles, type TokenizerFamily } from "./families.js";
import { imageSize, imageTokens, type ImageSize } from "./images.js";
import { addTextFeatures, approxTokensFromFeatures, exactTextTokens, zeroTextFeatures, type Encoding, type TextFeatures } from "./text-tokens.js";

/**
 * Prompt-size estimates before a call. A request is measured once
 * (measurePrompt: its text by script, messages, tools, images) and then
 * priced per candidate (promptTokensFor), since each provider counts with
 * its own tokenizer (families.ts).
 *
 * Two speeds:
 * - the request hot path (routing, budget reservations, TPM limits) uses the
 *   one-pass approximate count (text-tokens.ts: about 5 µs per KB, within
 *   a few percent of o200k on the calibration corpus);
 * - EstimateCost, and a request whose estimate comes within
 *   EXACT_WINDOW_MARGIN of a candidate's context window, count the text with
 *   the real o200k/cl100k tokenizer (about 50-90 µs per KB; its tables load in ~150 ms on first use), exact for
 *   OpenAI models and the best base for the others.
 *
 * estimatePromptTokens is the router's single number (o200k framing); the
 * gateway hands the router a more exact figure for a prompt that comes
 * close to a candidate's window.
 */

/** ScriptTokens are o200k-unit token counts by script. */
export interface ScriptTokens {
  latin: number;
  cjk: number;
  hangul: number;
}

/** PromptMeasure is a request's prompt, measured once, priceable for any family. */
export interface PromptMeasure {
  /** messages is the number of messages. */
  messages: number;
  /** names is the number of messages that carry a name. */
  names: number;
  /** tools is the number of tool definitions. */
  tools: number;
  /** approx is the approximate o200k count of all text, by script. */
  approx: ScriptTokens;
  /** exact holds exact text counts per encoding, for the encodings that were measured. */
  exact: Partial<Record<Encoding, number>>;
  /** images lists each image's size (undefined when unknown) and detail. */
  images: Array<{ size?: ImageSize; detail: ImagePart["detail"] }>;
}

/** MeasureOptions choose how exactly to measure. */
export interface MeasureOptions {
  /** exact lists the OpenAI encodings to count the text with exactly. */
  exact?: readonly Encoding[];
}

// What one CJK or Hangul character weighs in the approximation: a constant, computed once.
const CJK_UNIT = approxTokensFromFeatures({ ...zeroTextFeatures(), cjk: 1 });
const HANGUL_UNIT = approxTokensFromFeatures({ ...zeroTextFeatures(), hangul: 1 });

function scriptTokens(f: TextFeatures): ScriptTokens {
  const cjk = f.cjk * CJK_UNIT;
  const hangul = f.hangul * HANGUL_UNIT;
  return { latin: approxTokensFromFeatures(f) - cjk - hangul, cjk, hangul };
}

/** promptTexts lists every piece of text a provider would tokenize for the prompt. */
function promptTexts(request: ChatRequest, each: (text: string) => void): void {
  for (const m of request.messages) {
    for (const part of m.content) if (part.type === "text") each(part.text);
    if (m.name !== undefined) each(m.name);
    for (const call of m.toolCalls ?? []) {
      each(call.name);
      each(call.arguments);
    }
  }
  for (const tool of request.tools ?? []) {
    each(tool.name);
    if (tool.description !== undefined) each(tool.description);
    if (tool.parameters !== undefined) each(JSON.stringify(tool.parameters));
  }
  // A JSON schema for structured output is sent to the model too.
  if (request.responseFormat?.schema !== undefined) each(JSON.stringify(request.responseFormat.schema));
}

/** measurePrompt measures a request's prompt: approximately always, exactly for the encodings asked for. */
export function measurePrompt(request: ChatRequest, options: MeasureOptions = {}): PromptMeasure {
  const total = zeroTextFeatures();
  const exact: Partial<Record<Encoding, number>> = {};
  const encodings = options.exact ?? [];
  for (const e of encodings) exact[e] = 0;
  promptTexts(
    request,
    encodings.length === 0
      ? (text) => addTextFeatures(text, total)
      : (text) => {
          addTextFeatures(text, total);
          for (const e of encodings) exact[e]! += exactTextTokens(text, e);
        },
  );
  const images: PromptMeasure["images"] = [];
  let names = 0;
  for (const m of request.messages) {
    if (m.name !== undefined) names++;
    for (const part of m.content) if (part.type === "image") images.push({ size: imageSize(part), detail: part.detail });
  }
  return { messages: request.messages.length, names, tools: request.tools?.length ?? 0, approx: scriptTokens(total), exact, images };
}

/**
 * promptTokensFor prices a measured prompt for one tokenizer family; model
 * is the provider's model name (some image formulas depend on it).
 */
export function promptTokensFor(measure: PromptMeasure, family: TokenizerFamily, model = ""): number {
  const p = familyProfiles[family];
  const a = measure.approx;
  const approxTotal = a.latin + a.cjk + a.hangul;
  let text: number;
  const own = p.encoding === undefined || family === "simulated" ? undefined : measure.exact[p.encoding];
  if (own !== undefined) {
    text = own;
  } else {
    const f = p.factors;
    const weighted = a.latin * f.latin + a.cjk * f.cjk + a.hangul * f.hangul;
    const o200k = family === "simulated" ? undefined : measure.exact.o200k_base;
    // With an exact o200k count, apply the family's factors in the proportions the approximation saw.
    text = o200k !== undefined && approxTotal > 0 ? (o200k * weighted) / approxTotal : weighted;
  }
  let tokens = text + measure.messages * p.perMessage + measure.names * p.perName + p.primer;
  if (measure.tools > 0) tokens += p.toolsPreamble + measure.tools * p.perTool;
  for (const image of measure.images) tokens += imageTokens(image.size, image.detail, family, model);
  return Math.ceil(tokens);
}

/** EXACT_WINDOW_MARGIN: an approximate estimate within this fraction of a window is re-counted exactly. */
export const EXACT_WINDOW_MARGIN = 0.15;

/**
 * estimatePromptTokens is the fast approximation of a request's prompt with
 * o200k framing: the router's figure unless the gateway measured more
 * exactly (see measureForRouting), and the simulated provider's usage.
 */
export function estimatePromptTokens(request: ChatRequest): number {
  return promptTokensFor(measurePrompt(request), "simulated");
}
