import type { WindowRequest } from "./store.js";

/**
 * Argument checks shared by both state stores, so memory and Redis reject
 * the same bad calls with the same message. A bad argument here is a
 * programming error in the caller (limits and ids come from validated
 * config and the gateway itself), so these throw instead of returning.
 */

/** checkKey throws unless key is a non-empty string. */
export function checkKey(key: string): void {
  if (typeof key !== "string" || key.length === 0) throw new TypeError("state store: key must be a non-empty string");
}

/** windowGroup is a window key's group: the key without its last ":" segment (the key itself when it has none). */
export function windowGroup(key: string): string {
  const i = key.lastIndexOf(":");
  return i <= 0 ? key : key.slice(0, i);
}

/** checkWindowRequests throws unless requests is a non-empty list of valid, distinct windows of one group. */
export function checkWindowRequests(requests: readonly WindowRequest[], windowMs: number): void {
  if (!Array.isArray(requests) || requests.length === 0) throw new TypeError("state store: windowsAcquire needs at least one window");
  let group: string | undefined;
  for (let i = 0; i < requests.length; i++) {
    const r = requests[i]!;
    checkKey(r.key);
    checkNonNegative("amount", r.amount);
    checkNonNegative("limit", r.limit);
    if (i === 0) {
      group = windowGroup(r.key);
      continue;
    }
    if (windowGroup(r.key) !== group) throw new TypeError(`state store: windowsAcquire keys must share one group ("${group}"), got "${r.key}"`);
    // A group holds a few windows: a scan beats building a Set on every call.
    for (let j = 0; j < i; j++) if (requests[j]!.key === r.key) throw new TypeError(`state store: windowsAcquire got "${r.key}" twice`);
  }
  checkPositiveMs("windowMs", windowMs);
}

/** checkNonNegative throws unless value is a finite number >= 0. */
export function checkNonNegative(name: string, value: number): void {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new RangeError(`state store: ${name} must be a finite number >= 0, got ${String(value)}`);
  }
}

/** checkFinite throws unless value is a finite number. */
export function checkFinite(name: string, value: number): void {
  if (typeof value !== "number" || !Number.isFinite(value)) {
    throw new RangeError(`state store: ${name} must be a finite number, got ${String(value)}`);
  }
}

/** checkPositiveMs throws unless value is a finite number of milliseconds > 0. */
export function checkPositiveMs(name: string, value: number): void {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new RangeError(`state store: ${name} must be a finite number of milliseconds > 0, got ${String(value)}`);
  }
}

/** checkNonNegativeBigint throws unless value is a bigint >= 0. */
export function checkNonNegativeBigint(name: string, value: bigint): void {
  if (typeof value !== "bigint" || value < 0n) {
    throw new RangeError(`state store: ${name} must be a bigint >= 0, got ${String(value)}`);
  }
}

/** checkId throws unless id is a non-empty string. */
export function checkId(id: string): void {
  if (typeof id !== "string" || id.length === 0) throw new TypeError("state store: reservation id must be a non-empty string");
}

/** jsonText serializes a value for setJson/casJson, refusing values JSON cannot represent. */
export function jsonText(name: string, value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) throw new TypeError(`state store: ${name} is not representable as JSON`);
  return text;
}

/** LATENCY_TTL_HALF_LIVES is how many half-lives of silence a latency key survives (weight then < 1e-6). */
export const LATENCY_TTL_HALF_LIVES = 20;
