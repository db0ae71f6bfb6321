import type { ContentPart, ImagePart, JsonObject } from "../core/chat.js";

/**
 * Conversions of normalized message pieces that every non-OpenAI protocol
 * needs: tool-call arguments as an object (Anthropic `input`, Gemini
 * `args`), images as inline data or a URL, and a turn's plain text.
 */

/** RAW_ARGUMENTS_KEY holds tool-call arguments that were not a JSON object. */
export const RAW_ARGUMENTS_KEY = "_raw_arguments";

/**
 * argumentsObject turns a tool call's JSON arguments text into the object
 * Anthropic and Gemini require. Empty text is `{}` (a call without
 * arguments). Text that is not a JSON object (a model's broken output being
 * replayed) is kept as `{"_raw_arguments": text}` rather than dropped, so the
 * model still sees what it sent and the request is not rejected.
 */
export function argumentsObject(text: string): JsonObject {
  if (text.trim() === "") return {};
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === "object" && value !== null && !Array.isArray(value)) return value as JsonObject;
  } catch {
    // fall through: not JSON
  }
  return { [RAW_ARGUMENTS_KEY]: text };
}

/** ResolvedImage is an image as a protocol can send it. */
export type ResolvedImage =
  | { kind: "inline"; mediaType: string; data: string }
  | { kind: "url"; url: string; mediaType?: string };

const magic: ReadonlyArray<[string, string]> = [
  ["iVBORw0KGgo", "image/png"],
  ["/9j/", "image/jpeg"],
  ["R0lGOD", "image/gif"],
  ["UklGR", "image/webp"],
];

const extensions: Record<string, string> = {
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  webp: "image/webp",
  heic: "image/heic",
  heif: "image/heif",
};

/**
 * resolveImage decides how an image travels. `data:` URLs become inline
 * data (no provider fetches them); inline data without a media type gets one
 * sniffed from its first bytes; URL images keep a media type given or implied
 * by the file extension. It returns a string describing the problem when the
 * image cannot be sent.
 */
export function resolveImage(part: ImagePart): ResolvedImage | string {
  if (part.base64 !== undefined && part.base64 !== "") {
    const mediaType = part.mediaType ?? sniffMediaType(part.base64);
    if (mediaType === undefined) return "an inline image needs a media type (image/png, image/jpeg, image/gif or image/webp)";
    return { kind: "inline", mediaType, data: part.base64 };
  }
  if (part.url === undefined || part.url === "") return "an image needs either a url or base64 data";
  const data = /^data:([^;,]+)(;base64)?,(.*)$/s.exec(part.url);
  if (data !== null) {
    if (data[2] === undefined) return "a data: image URL must be base64-encoded";
    return { kind: "inline", mediaType: data[1]!, data: data[3]! };
  }
  if (!/^https?:\/\//i.test(part.url)) return "an image URL must be http(s) or a base64 data: URL";
  const mediaType = part.mediaType ?? mediaTypeFromPath(part.url);
  return mediaType === undefined ? { kind: "url", url: part.url } : { kind: "url", url: part.url, mediaType };
}

function sniffMediaType(base64: string): string | undefined {
  for (const [prefix, type] of magic) if (base64.startsWith(prefix)) return type;
  return undefined;
}

function mediaTypeFromPath(url: string): string | undefined {
  let path: string;
  try {
    path = new URL(url).pathname;
  } catch {
    return undefined;
  }
  const ext = /\.([a-z0-9]+)$/i.exec(path)?.[1]?.toLowerCase();
  return ext === undefined ? undefined : extensions[ext];
}

/** partsText joins the text parts of a message (tool results, system prompts) with newlines. */
export function partsText(parts: ContentPart[]): string {
  let text = "";
  for (const p of parts) {
    if (p.type !== "text") continue;
    text = text === "" ? p.text : `${text}\n${p.text}`;
  }
  return text;
}

/**
 * jsonInstruction is the system text that asks for JSON on protocols with
 * no native JSON mode (Anthropic), or an empty string for plain text.
 */
export function jsonInstruction(format: { type: string; name?: string; schema?: JsonObject } | undefined): string {
  if (format === undefined || format.type === "text") return "";
  const tail = "Do not add any text, explanation or code fences before or after it.";
  if (format.type === "json_schema" && format.schema !== undefined) {
    const named = format.name !== undefined ? ` "${format.name}"` : "";
    return `Respond with a single valid JSON object that conforms to the JSON Schema${named} below. ${tail}\n${JSON.stringify(format.schema)}`;
  }
  return `Respond with a single valid JSON object. ${tail}`;
}
