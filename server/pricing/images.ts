import type { ImagePart } from "../core/chat.js";
import type { TokenizerFamily } from "./families.js";

/**
 * Image input tokens. Inline images (data URLs) carry their size in the
 * file header: PNG, GIF and WebP in the first 30 bytes, JPEG in its first
 * SOF segment (after any EXIF block), so only the start of the base64 is
 * decoded. For an image given by URL the size is unknown without fetching
 * it, which the gateway never does before a call: it assumes 1024×1024
 * (DEFAULT_IMAGE_SIZE), which is what most clients send after resizing.
 *
 * Per family:
 * - OpenAI (o200k/cl100k): `detail: low` is 85 tokens; otherwise the image is
 *   scaled to fit 2048×2048, then its short side to 768, and costs
 *   85 + 170 per 512-pixel tile (gpt-4o-mini: 2833 + 5667 per tile, the same
 *   price in dollars). Patch-based models (gpt-4.1-mini, o4-mini) are
 *   approximated by the tile formula.
 * - Claude: width × height / 750 after scaling the long side to 1568 px
 *   (Anthropic's formula), at most about 1,600 tokens.
 * - Gemini: 258 tokens when both sides are at most 384 px, else 258 per
 *   768×768 tile.
 * - Others: the OpenAI tile formula (a documented guess).
 */

/** ImageSize is an image's pixel dimensions. */
export interface ImageSize {
  width: number;
  height: number;
}

/** DEFAULT_IMAGE_SIZE is assumed when the dimensions cannot be read. */
export const DEFAULT_IMAGE_SIZE: ImageSize = { width: 1024, height: 1024 };

// Enough of the file for a JPEG whose SOF follows a typical EXIF/ICC header.
const JPEG_SCAN_BYTES = 96 * 1024;

function decodePrefix(base64: string, bytes: number): Buffer {
  const chars = Math.min(base64.length, Math.ceil(bytes / 3) * 4);
  return Buffer.from(base64.slice(0, chars - (chars % 4)), "base64");
}

function pngSize(b: Buffer): ImageSize | undefined {
  // Signature (8) + IHDR length (4) + "IHDR" (4) + width (4) + height (4).
  if (b.length < 24 || b.readUInt32BE(0) !== 0x89504e47 || b.toString("latin1", 12, 16) !== "IHDR") return undefined;
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
}

function gifSize(b: Buffer): ImageSize | undefined {
  if (b.length < 10 || b.toString("latin1", 0, 4) !== "GIF8") return undefined;
  return { width: b.readUInt16LE(6), height: b.readUInt16LE(8) };
}

function webpSize(b: Buffer): ImageSize | undefined {
  if (b.length < 30 || b.toString("latin1", 0, 4) !== "RIFF" || b.toString("latin1", 8, 12) !== "WEBP") return undefined;
  const chunk = b.toString("latin1", 12, 16);
  if (chunk === "VP8X") return { width: 1 + b.readUIntLE(24, 3), height: 1 + b.readUIntLE(27, 3) };
  if (chunk === "VP8 ") return { width: b.readUInt16LE(26) & 0x3fff, height: b.readUInt16LE(28) & 0x3fff };
  if (chunk === "VP8L") {
    const bits = b.readUInt32LE(21);
    return { width: (bits & 0x3fff) + 1, height: ((bits >> 14) & 0x3fff) + 1 };
  }
  return undefined;
}

function jpegSize(b: Buffer): ImageSize | undefined {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return undefined;
  let i = 2;
  while (i + 9 < b.length) {
    if (b[i] !== 0xff) return undefined;
    const marker = b[i + 1]!;
    if (marker === 0xff) {
      i++;
      continue;
    }
    const length = b.readUInt16BE(i + 2);
    // SOF0-SOF15 carry the frame size, except DHT (C4), JPG (C8) and DAC (CC).
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { width: b.readUInt16BE(i + 7), height: b.readUInt16BE(i + 5) };
    }
    i += 2 + length;
  }
  return undefined;
}

/** imageSizeFromBase64 reads an inline image's dimensions from its header; undefined when it cannot. */
export function imageSizeFromBase64(base64: string): ImageSize | undefined {
  const head = decodePrefix(base64, 32);
  const size = pngSize(head) ?? gifSize(head) ?? webpSize(head) ?? (head[0] === 0xff && head[1] === 0xd8 ? jpegSize(decodePrefix(base64, JPEG_SCAN_BYTES)) : undefined);
  return size !== undefined && size.width > 0 && size.height > 0 ? size : undefined;
}

/** imageSize is an image part's dimensions, or undefined when unknown (URL images, unreadable headers). */
export function imageSize(part: ImagePart): ImageSize | undefined {
  return part.base64 === undefined ? undefined : imageSizeFromBase64(part.base64);
}

function scaleToFit(s: ImageSize, maxW: number, maxH: number): ImageSize {
  const f = Math.min(1, maxW / s.width, maxH / s.height);
  return { width: Math.max(1, Math.round(s.width * f)), height: Math.max(1, Math.round(s.height * f)) };
}

/** openaiImageTokens is OpenAI's tile formula. */
export function openaiImageTokens(size: ImageSize, detail: ImagePart["detail"], mini = false): number {
  const [base, perTile] = mini ? [2833, 5667] : [85, 170];
  if (detail === "low") return base;
  let s = scaleToFit(size, 2048, 2048);
  const short = Math.min(s.width, s.height);
  if (short > 768) s = { width: Math.round((s.width * 768) / short), height: Math.round((s.height * 768) / short) };
  return base + perTile * Math.ceil(s.width / 512) * Math.ceil(s.height / 512);
}

/** claudeImageTokens is Anthropic's width × height / 750 after fitting the long side to 1568 px. */
export function claudeImageTokens(size: ImageSize): number {
  const s = scaleToFit(size, 1568, 1568);
  return Math.min(1600, Math.ceil((s.width * s.height) / 750));
}

/** geminiImageTokens is 258 for a small image, else 258 per 768×768 tile. */
export function geminiImageTokens(size: ImageSize): number {
  if (size.width <= 384 && size.height <= 384) return 258;
  return 258 * Math.ceil(size.width / 768) * Math.ceil(size.height / 768);
}

/** imageTokens prices one image for a family (model is the provider's model name, for gpt-4o-mini). */
export function imageTokens(size: ImageSize | undefined, detail: ImagePart["detail"], family: TokenizerFamily, model = ""): number {
  const s = size ?? DEFAULT_IMAGE_SIZE;
  switch (family) {
    case "claude":
      return claudeImageTokens(s);
    case "gemini":
      return geminiImageTokens(s);
    default:
      return openaiImageTokens(s, detail, family === "o200k" && model.includes("4o-mini"));
  }
}
