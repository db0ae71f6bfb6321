/**
 * Reading OpenAI chat.completion.chunk texts on the streaming hot path.
 *
 * Most chunks of a stream carry one piece of text and nothing else. Parsing
 * each into an object tree only to read that text, then handing the edge a
 * copy to forward, costs a JSON.parse and a dozen objects per chunk. Here a
 * plain text chunk is recognized by one anchored match over its whole text,
 * which only well-formed JSON of that exact shape passes, and the text is
 * taken straight from it; anything else (a finish reason, usage, tool
 * calls, reasoning, an error, another field or field order, whitespace) is
 * left to the full parse. Either way the chunk's tail, everything after its
 * id, object, created and model, is split off so the REST shim can forward
 * it behind its own head without matching again.
 */

// A JSON string's contents: unescaped characters other than controls, or escapes (checked when decoded).
const STRING_BODY = String.raw`(?:[^"\\\u0000-\u001f]|\\.)*`;

// The four fields every OpenAI-family server sends first, in this order (JSON strings may hold escapes).
const HEAD = String.raw`\{\s*"id"\s*:\s*"${STRING_BODY}"\s*,\s*"object"\s*:\s*"chat\.completion\.chunk"\s*,\s*"created"\s*:\s*\d+\s*,\s*"model"\s*:\s*"${STRING_BODY}"`;

const head = new RegExp(`^${HEAD}`);

/**
 * A compact text chunk as OpenAI, vLLM, DeepSeek and Ollama send it:
 * optional system_fingerprint and service_tier, one choice (index 0) whose
 * delta is the text (the first one also naming the assistant role), a null
 * finish reason, then optionally `"usage":null` (include_usage) and
 * OpenAI's `obfuscation` padding. Group 1 is the tail after the model,
 * group 2 the text's JSON string contents.
 */
const plainText = new RegExp(
  String.raw`^\{"id":"${STRING_BODY}","object":"chat\.completion\.chunk","created":\d+,"model":"${STRING_BODY}"` +
    String.raw`((?:,"(?:system_fingerprint|service_tier)":(?:"${STRING_BODY}"|null))*` +
    String.raw`,"choices":\[\{"index":0,"delta":\{(?:"role":"assistant",)?"content":"(${STRING_BODY})"\}(?:,"logprobs":null)?,"finish_reason":null\}\]` +
    String.raw`(?:,"usage":null)?(?:,"obfuscation":"${STRING_BODY}")?\})$`,
);

/** PlainTextChunk is a chunk recognized by plainTextChunk. */
export interface PlainTextChunk {
  /** text is the delta's content, unescaped ("" for a role-only first chunk). */
  text: string;
  /** tail is the chunk after its model field (see chunkTail). */
  tail: string;
}

/**
 * plainTextChunk recognizes a chunk that carries only text (see above) and
 * returns that text and the chunk's tail, or undefined for any other chunk.
 * It throws a SyntaxError when the text holds an invalid escape, as
 * JSON.parse of the whole chunk would.
 */
export function plainTextChunk(data: string): PlainTextChunk | undefined {
  const m = plainText.exec(data);
  if (m === null) return undefined;
  const body = m[2]!;
  // Without a backslash the JSON string's contents are the text itself.
  const text = body.includes("\\") ? (JSON.parse(`"${body}"`) as string) : body;
  return { text, tail: m[1]! };
}

/**
 * chunkTail returns what follows a chunk's id, object, created and model
 * fields, or undefined when the chunk does not begin with those four in
 * OpenAI's order. The caller must know the chunk is valid JSON.
 */
export function chunkTail(data: string): string | undefined {
  const m = head.exec(data);
  return m === null ? undefined : data.slice(m[0].length);
}
