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
