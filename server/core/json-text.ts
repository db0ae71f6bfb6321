/**
 * Helpers for writing JSON as text, field by field, where building an
 * object for JSON.stringify would cost more than the text itself (the
 * REST answer, the request log line).
 */

/** jsonString writes a string as a JSON string literal; strings from outside are escaped by it. */
export const jsonString: (s: string) => string = JSON.stringify;

/** jsonNumber writes a number as JSON.stringify does (null when not finite). */
export function jsonNumber(n: number): string {
  return Number.isFinite(n) ? `${n}` : "null";
}

const QUOTE = 34;
const BACKSLASH = 92;

/**
 * stringLiteralOf finds, in JSON text, the literal of the first member named
 * `key` whose value is a string, and returns it when it encodes `value`
 * (undefined otherwise). It lets an answer the gateway parsed be written
 * out again with the literal as the source sent it, instead of escaping a
 * long text a second time (JSON.stringify walks every character). A quote
 * inside a string is always escaped, so the first `"key":` that is not
 * inside a string is a member name; the value check covers a text where it
 * is another object's member.
 */
export function stringLiteralOf(json: string, key: string, value: string): string | undefined {
  const name = json.indexOf(`"${key}":`);
  if (name < 0) return undefined;
  let start = name + key.length + 3;
  // JSON's whitespace: space, tab, line feed, carriage return.
  for (let c = json.charCodeAt(start); c === 32 || c === 9 || c === 10 || c === 13; c = json.charCodeAt(++start));
  if (json.charCodeAt(start) !== QUOTE) return undefined;
  // The closing quote is the first one preceded by an even number of backslashes.
  let end = start;
  for (;;) {
    end = json.indexOf('"', end + 1);
    if (end < 0) return undefined;
    let slashes = 0;
    while (json.charCodeAt(end - 1 - slashes) === BACKSLASH) slashes++;
    if (slashes % 2 === 0) break;
  }
  const literal = json.slice(start, end + 1);
  // Without escapes the literal is the text itself between its quotes; with them, decode to compare.
  // (slice and === compare memory at once; startsWith walks character by character.)
  if (literal.indexOf("\\") < 0) return end - start - 1 === value.length && json.slice(start + 1, end) === value ? literal : undefined;
  try {
    return JSON.parse(literal) === value ? literal : undefined;
  } catch {
    return undefined;
  }
}
