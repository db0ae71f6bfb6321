import type { ProviderType } from "../config/schema.js";
import type { Encoding } from "./text-tokens.js";

/**
 * Tokenizer families: which tokenizer a deployment's provider counts with,
 * and how its counts relate to o200k_base where we have no tokenizer.
 *
 * OpenAI families are counted exactly (o200k_base or cl100k_base). For the
 * others the gateway has no tokenizer (they are not published for
 * JavaScript, or not at all), so their count is the o200k count (exact or
 * approximate, see text-tokens.ts) times a factor per script. The factors
 * below are ASSUMPTIONS taken from the providers' published rules of thumb
 * and public comparisons, not measurements made here; each says where it
 * comes from. They err on the high side (a budget reservation or a window
 * check that over-counts a little is safe; one that under-counts is not).
 * The cl100k factors are measured (test/fixtures/token-corpus, cl100k vs
 * o200k: Latin-script text 1.00-1.03, Chinese 1.48, Japanese 1.38, Korean
 * 1.74), and used only for the approximate path.
 */

/** TokenizerFamily names how a deployment's provider counts tokens. */
export type TokenizerFamily =
  | "o200k"
  | "cl100k"
  | "claude"
  | "gemini"
  | "deepseek"
  | "qwen"
  | "mistral"
  | "llama"
  | "generic"
  | "simulated";

/** ScriptFactors multiply an o200k count, per script. */
export interface ScriptFactors {
  /** latin covers Latin-script text, code, JSON, numbers, and other alphabets. */
  latin: number;
  /** cjk covers Chinese and Japanese (Han and kana). */
  cjk: number;
  /** hangul covers Korean. */
  hangul: number;
}

/** FamilyProfile is what the estimator needs to know about a family. */
export interface FamilyProfile {
  /** encoding is the exact OpenAI encoding, when the family has one. */
  encoding?: Encoding;
  /** factors convert o200k counts to this family's (1 for exact families). */
  factors: ScriptFactors;
  /** perMessage is the framing tokens of each message (role, separators). */
  perMessage: number;
  /** perName is the extra token of a message that carries a name. */
  perName: number;
  /** primer is the tokens that open the assistant's reply. */
  primer: number;
  /** toolsPreamble is the fixed system text a provider adds when tools are present. */
  toolsPreamble: number;
  /** perTool is the framing of each tool definition beyond its name, description and schema text. */
  perTool: number;
  /** source says where the numbers come from. */
  source: string;
}

const exact = { latin: 1, cjk: 1, hangul: 1 };

/** familyProfiles holds every family's numbers. */
export const familyProfiles: Readonly<Record<TokenizerFamily, FamilyProfile>> = {
  o200k: {
    encoding: "o200k_base",
    factors: exact,
    // OpenAI's cookbook: 3 tokens of framing per message plus its role (1), 1 per name, 3 to prime the reply;
    // function definitions are rendered as a TypeScript namespace (about 7 + 12 tokens of framing).
    perMessage: 4,
    perName: 1,
    primer: 3,
    toolsPreamble: 12,
    perTool: 7,
    source: "exact (o200k_base); framing per OpenAI's token-counting cookbook",
  },
  cl100k: {
    encoding: "cl100k_base",
    factors: { latin: 1.03, cjk: 1.48, hangul: 1.74 },
    perMessage: 4,
    perName: 1,
    primer: 3,
    toolsPreamble: 12,
    perTool: 7,
    source: "exact (cl100k_base); approximate factors measured on the calibration corpus",
  },
  claude: {
    factors: { latin: 1.2, cjk: 1.3, hangul: 1.3 },
    // Anthropic documents a tool-use system prompt of 313-346 tokens for Claude 4 models.
    perMessage: 4,
    perName: 0,
    primer: 3,
    toolsPreamble: 346,
    perTool: 10,
    source:
      "assumption: Claude tokenizers count about 20% more than o200k on English and code (public comparisons; Anthropic says its newest tokenizer uses up to 1.35x the tokens of the previous one)",
  },
  gemini: {
    factors: { latin: 1.05, cjk: 1.0, hangul: 1.0 },
    perMessage: 4,
    perName: 0,
    primer: 2,
    toolsPreamble: 10,
    perTool: 8,
    source: "assumption: Gemini's 256k SentencePiece vocabulary is close to o200k (Google: about 4 characters per token in English)",
  },
  deepseek: {
    factors: { latin: 1.1, cjk: 0.85, hangul: 1.3 },
    perMessage: 4,
    perName: 0,
    primer: 2,
    toolsPreamble: 20,
    perTool: 8,
    source: "assumption: DeepSeek's rule of thumb (an English character about 0.3 token, a Chinese character about 0.6)",
  },
  qwen: {
    factors: { latin: 1.05, cjk: 0.85, hangul: 1.3 },
    perMessage: 4,
    perName: 0,
    primer: 3,
    toolsPreamble: 20,
    perTool: 8,
    source: "assumption: Qwen's rule of thumb (1 token is 3-4 English characters or 1.5-1.8 Chinese characters)",
  },
  mistral: {
    factors: { latin: 1.1, cjk: 1.3, hangul: 1.5 },
    perMessage: 4,
    perName: 0,
    primer: 1,
    toolsPreamble: 10,
    perTool: 8,
    source: "assumption: Mistral's Tekken tokenizer (131k, tiktoken-style) is a little less efficient than o200k, and much less on CJK",
  },
  llama: {
    factors: { latin: 1.05, cjk: 1.3, hangul: 1.5 },
    perMessage: 4,
    perName: 0,
    primer: 4,
    toolsPreamble: 20,
    perTool: 8,
    source: "assumption: Llama 3's 128k vocabulary is cl100k_base plus 28k tokens, between cl100k and o200k",
  },
  generic: {
    factors: { latin: 1.2, cjk: 1.5, hangul: 1.75 },
    perMessage: 4,
    perName: 1,
    primer: 4,
    toolsPreamble: 20,
    perTool: 10,
    source: "assumption: an unknown tokenizer, counted as a cl100k-class vocabulary with a 20% margin",
  },
  simulated: {
    // The simulated provider reports the gateway's routing estimate (o200k framing, approximate text) as its usage.
    factors: exact,
    perMessage: 4,
    perName: 1,
    primer: 3,
    toolsPreamble: 12,
    perTool: 7,
    source: "the simulated provider counts prompts with estimatePromptTokens",
  },
};

// GPT-4 (not 4o, 4.1, 4.5) and GPT-3.5 use cl100k_base; everything newer uses o200k_base.
const openaiCl100k = /^(gpt-4(?![o.])|gpt-3\.5|text-|davinci|babbage)/;

/** tokenizerFamily picks the family for a provider type and the provider's model name. */
export function tokenizerFamily(type: ProviderType, upstreamModel: string): TokenizerFamily {
  const name = upstreamModel.toLowerCase();
  switch (type) {
    case "simulated":
      return "simulated";
    case "openai":
      return openaiCl100k.test(name) ? "cl100k" : "o200k";
    case "anthropic":
      return "claude";
    case "gemini":
      return "gemini";
    case "deepseek":
      return "deepseek";
    case "qwen":
      return "qwen";
    case "mistral":
      return "mistral";
    default:
      // Ollama and vLLM serve open-weight models: the name says which.
      if (name.includes("gpt-oss")) return "o200k";
      if (name.includes("llama")) return "llama";
      if (name.includes("qwen") || name.includes("qwq")) return "qwen";
      if (name.includes("deepseek")) return "deepseek";
      if (name.includes("gemma")) return "gemini";
      if (/mistral|mixtral|codestral|devstral|magistral|ministral/.test(name)) return "mistral";
      return "generic";
  }
}
