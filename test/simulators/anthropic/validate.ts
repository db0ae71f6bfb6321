/**
 * Request validation of the Anthropic simulator: what the real Messages API
 * rejects, with its status, error type and (close to) its wording.
 */

/** Json is a parsed JSON object. */
export type Json = Record<string, unknown>;

/** ApiError is a rejection: the simulator answers it with the Messages API error body. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

/** isJson tells whether a value is a JSON object. */
export function isJson(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

const topLevelFields = new Set([
  "model",
  "max_tokens",
  "messages",
  "system",
  "stop_sequences",
  "temperature",
  "top_p",
  "top_k",
  "stream",
  "metadata",
  "tools",
  "tool_choice",
  "thinking",
  "service_tier",
]);

function bad(message: string): ApiError {
  return new ApiError(400, "invalid_request_error", message);
}

function onlyKeys(value: Json, allowed: string[], path: string): void {
  for (const k of Object.keys(value)) if (!allowed.includes(k)) throw bad(`${path}.${k}: Extra inputs are not permitted`);
}

/** validateRequest throws an ApiError for a body the real API would reject. */
export function validateRequest(body: Json): void {
  for (const k of Object.keys(body)) if (!topLevelFields.has(k)) throw bad(`${k}: Extra inputs are not permitted`);
  if (typeof body.model !== "string" || body.model === "") throw bad("model: Field required");
  if (body.max_tokens === undefined) throw bad("max_tokens: Field required");
  if (!Number.isInteger(body.max_tokens) || (body.max_tokens as number) < 1) throw bad("max_tokens: Input should be an integer >= 1");
  checkRange(body.temperature, "temperature", 0, 1);
  checkRange(body.top_p, "top_p", 0, 1);
  if (body.top_k !== undefined && (!Number.isInteger(body.top_k) || (body.top_k as number) < 0)) throw bad("top_k: Input should be a non-negative integer");
  if (body.stream !== undefined && typeof body.stream !== "boolean") throw bad("stream: Input should be a valid boolean");
  if (body.stop_sequences !== undefined) {
    if (!Array.isArray(body.stop_sequences) || body.stop_sequences.some((s) => typeof s !== "string" || s.trim() === "")) {
      throw bad("stop_sequences: each stop sequence must be a string containing non-whitespace");
    }
  }
  if (body.metadata !== undefined) {
    if (!isJson(body.metadata)) throw bad("metadata: Input should be a valid dictionary");
    onlyKeys(body.metadata, ["user_id"], "metadata");
    if (body.metadata.user_id !== undefined && typeof body.metadata.user_id !== "string") throw bad("metadata.user_id: Input should be a valid string");
  }
  validateSystem(body.system);
  validateTools(body);
  validateMessages(body.messages);
}

function checkRange(value: unknown, name: string, min: number, max: number): void {
  if (value === undefined) return;
  if (typeof value !== "number" || !Number.isFinite(value)) throw bad(`${name}: Input should be a valid number`);
  if (value < min || value > max) throw bad(`${name}: range: ${min}..${max}`);
}

function validateSystem(system: unknown): void {
  if (system === undefined || typeof system === "string") return;
  if (!Array.isArray(system) || system.some((b) => !isJson(b) || b.type !== "text" || typeof b.text !== "string")) {
    throw bad("system: Input should be a valid string or a list of text blocks");
  }
}

function validateTools(body: Json): void {
  if (body.tools !== undefined) {
    if (!Array.isArray(body.tools)) throw bad("tools: Input should be a valid list");
    body.tools.forEach((t, i) => {
      if (!isJson(t)) throw bad(`tools.${i}: Input should be a valid dictionary`);
      onlyKeys(t, ["name", "description", "input_schema", "cache_control", "type"], `tools.${i}`);
      if (typeof t.name !== "string" || !/^[a-zA-Z0-9_-]{1,128}$/.test(t.name)) throw bad(`tools.${i}.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'`);
      if (t.description !== undefined && typeof t.description !== "string") throw bad(`tools.${i}.description: Input should be a valid string`);
      if (!isJson(t.input_schema) || t.input_schema.type !== "object") throw bad(`tools.${i}.input_schema: JSON schema must have type "object"`);
    });
  }
  const choice = body.tool_choice;
  if (choice === undefined) return;
  if (!isJson(choice) || !["auto", "any", "tool", "none"].includes(choice.type as string)) {
    throw bad("tool_choice: Input tag should be one of 'auto', 'any', 'tool', 'none'");
  }
  if (!Array.isArray(body.tools) || body.tools.length === 0) throw bad("tool_choice: may only be specified while providing tools");
  onlyKeys(choice, choice.type === "tool" ? ["type", "name", "disable_parallel_tool_use"] : choice.type === "none" ? ["type"] : ["type", "disable_parallel_tool_use"], "tool_choice");
  if (choice.type === "tool" && typeof choice.name !== "string") throw bad("tool_choice.tool.name: Field required");
  if (choice.disable_parallel_tool_use !== undefined && typeof choice.disable_parallel_tool_use !== "boolean") {
    throw bad("tool_choice.disable_parallel_tool_use: Input should be a valid boolean");
  }
}

/** blocksOf returns a message's content as blocks (a string is one text block). */
export function blocksOf(content: unknown): Json[] {
  return typeof content === "string" ? [{ type: "text", text: content }] : (content as Json[]);
}

function validateMessages(messages: unknown): void {
  if (!Array.isArray(messages)) throw bad("messages: Field required");
  if (messages.length === 0) throw bad("messages: at least one message is required");
  messages.forEach((m, i) => {
    if (!isJson(m)) throw bad(`messages.${i}: Input should be a valid dictionary`);
    onlyKeys(m, ["role", "content"], `messages.${i}`);
    if (m.role === "system") {
      throw bad(`messages.${i}.role: Unexpected role "system". The Messages API accepts a top-level \`system\` parameter, not "system" as an input message role.`);
    }
    if (m.role !== "user" && m.role !== "assistant") throw bad(`messages.${i}.role: Input should be 'user' or 'assistant'`);
    if (i === 0 && m.role !== "user") throw bad("messages: first message must use the \"user\" role");
    const previous = messages[i - 1] as Json | undefined;
    if (previous !== undefined && previous.role === m.role) {
      throw bad(`messages: roles must alternate between "user" and "assistant", but found multiple "${m.role}" roles in a row`);
    }
    if (typeof m.content === "string") {
      if (m.content === "") throw bad(`messages.${i}: text content blocks must be non-empty`);
      return;
    }
    if (!Array.isArray(m.content) || m.content.length === 0) throw bad(`messages.${i}.content: Input should be a non-empty string or list of blocks`);
    const isLast = i === messages.length - 1;
    m.content.forEach((b, j) => validateBlock(b, m.role as string, `messages.${i}.content.${j}`, isLast));
    if (m.role === "user") checkToolResults(m.content as Json[], previous, i);
  });
  // Every tool_use must be answered by a tool_result in the very next turn.
  messages.forEach((m: Json, i) => {
    if (m.role !== "assistant" || i === messages.length - 1) return;
    const ids = blocksOf(m.content).filter((b) => b.type === "tool_use").map((b) => b.id as string);
    const next = blocksOf((messages[i + 1] as Json).content);
    const answered = new Set(next.filter((b) => b.type === "tool_result").map((b) => b.tool_use_id));
    const missing = ids.filter((id) => !answered.has(id));
    if (missing.length > 0) {
      throw bad(`messages.${i + 1}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${missing.join(", ")}`);
    }
  });
}

function validateBlock(b: unknown, role: string, path: string, isLast: boolean): void {
  if (!isJson(b)) throw bad(`${path}: Input should be a valid dictionary`);
  switch (b.type) {
    case "text":
      onlyKeys(b, ["type", "text", "cache_control", "citations"], path);
      if (typeof b.text !== "string" || b.text === "") throw bad(`${path}: text content blocks must be non-empty`);
      if (role === "assistant" && isLast && /\s$/.test(b.text)) throw bad("final assistant content cannot end with trailing whitespace");
      return;
    case "image":
      if (role !== "user") throw bad(`${path}: image blocks are only allowed in user messages`);
      validateImage(b, path);
      return;
    case "tool_use":
      if (role !== "assistant") throw bad(`${path}: tool_use blocks are only allowed in assistant messages`);
      onlyKeys(b, ["type", "id", "name", "input", "cache_control"], path);
      if (typeof b.id !== "string" || typeof b.name !== "string") throw bad(`${path}: tool_use needs an id and a name`);
      if (!isJson(b.input)) throw bad(`${path}.input: Input should be a valid dictionary`);
      return;
    case "tool_result":
      if (role !== "user") throw bad(`${path}: tool_result blocks are only allowed in user messages`);
      onlyKeys(b, ["type", "tool_use_id", "content", "is_error", "cache_control"], path);
      if (typeof b.tool_use_id !== "string") throw bad(`${path}.tool_use_id: Field required`);
      if (b.is_error !== undefined && typeof b.is_error !== "boolean") throw bad(`${path}.is_error: Input should be a valid boolean`);
      if (b.content !== undefined && typeof b.content !== "string") {
        if (!Array.isArray(b.content)) throw bad(`${path}.content: Input should be a valid string or list`);
        b.content.forEach((c, k) => {
          if (!isJson(c) || (c.type !== "text" && c.type !== "image")) throw bad(`${path}.content.${k}: only text and image blocks are allowed`);
          if (c.type === "image") validateImage(c, `${path}.content.${k}`);
          else if (typeof c.text !== "string" || c.text === "") throw bad(`${path}.content.${k}: text content blocks must be non-empty`);
        });
      }
      return;
    case "thinking":
      if (role !== "assistant") throw bad(`${path}: thinking blocks are only allowed in assistant messages`);
      if (typeof b.thinking !== "string" || typeof b.signature !== "string") throw bad(`${path}.signature: Field required`);
      return;
    default:
      throw bad(`${path}.type: Input tag '${String(b.type)}' does not match any of the expected tags`);
  }
}

function validateImage(b: Json, path: string): void {
  const source = b.source;
  if (!isJson(source)) throw bad(`${path}.source: Field required`);
  if (source.type === "base64") {
    if (!["image/jpeg", "image/png", "image/gif", "image/webp"].includes(source.media_type as string)) {
      throw bad(`${path}.source.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'`);
    }
    if (typeof source.data !== "string" || source.data === "") throw bad(`${path}.source.data: Field required`);
  } else if (source.type === "url") {
    if (typeof source.url !== "string" || !/^https?:\/\//.test(source.url)) throw bad(`${path}.source.url: Input should be a valid URL`);
  } else {
    throw bad(`${path}.source.type: Input tag should be 'base64' or 'url'`);
  }
}

function checkToolResults(blocks: Json[], previous: Json | undefined, i: number): void {
  const results = blocks.filter((b) => b.type === "tool_result");
  if (results.length === 0) return;
  const calls = new Set(previous === undefined ? [] : blocksOf(previous.content).filter((b) => b.type === "tool_use").map((b) => b.id));
  for (const r of results) {
    if (!calls.has(r.tool_use_id)) {
      throw bad(`messages.${i}.content: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${String(r.tool_use_id)}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`);
    }
  }
}
