import { parseDurationMs } from "../providers/retry-hints.js";
import type { StateStore } from "../state/store.js";
import { keyNamer } from "../state/key-names.js";

/**
 * Learning providers' rate limits from their response headers, to steer
 * away from a deployment before it answers 429:
 *   OpenAI and its family: x-ratelimit-{remaining,reset,limit}-{requests,tokens}
 *     (reset as a duration such as "6m0s" or "250ms");
 *   Anthropic: anthropic-ratelimit-{requests,tokens,input-tokens}-{remaining,reset,limit}
 *     (reset as an RFC 3339 time).
 * A 429's retry hint is learned the same way. What is learned goes to the
 * shared store under `ratelimit:learned:<deployment>`, only when it matters
 * (no requests left, or tokens running low), so a healthy deployment costs
 * no write; the document expires when the provider's window resets.
 */

/** HeaderBag is a response's headers as undici gives them. */
export type HeaderBag = Record<string, string | string[] | undefined>;

/** RateLimitSnapshot is what one response's headers say about the remaining capacity. */
export interface RateLimitSnapshot {
  requestsRemaining?: number;
  /** requestsResetAt is when the request window resets (epoch ms). */
  requestsResetAt?: number;
  tokensRemaining?: number;
  tokensLimit?: number;
  tokensResetAt?: number;
}

/** LearnedLimits is the stored verdict for a deployment. */
export interface LearnedLimits {
  /** blockedUntil is when the deployment may be called again (epoch ms); 0 when not blocked. */
  blockedUntil: number;
  reason: string;
  /** tokensRemaining is the provider's remaining token budget until tokensResetAt. */
  tokensRemaining?: number;
  tokensResetAt?: number;
}

/** LOW_TOKENS_FRACTION is how low remaining tokens must be, relative to the limit, before it is worth sharing. */
export const LOW_TOKENS_FRACTION = 0.25;

/** LOW_TOKENS_ABSOLUTE is the same threshold when the provider does not say its limit. */
export const LOW_TOKENS_ABSOLUTE = 8192;

function first(headers: HeaderBag, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function count(headers: HeaderBag, name: string): number | undefined {
  const v = first(headers, name);
  if (v === undefined || v.trim() === "") return undefined;
  const n = Number(v);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

function resetAt(headers: HeaderBag, name: string, now: number): number | undefined {
  const v = first(headers, name);
  if (v === undefined) return undefined;
  const duration = parseDurationMs(v.trim());
  if (duration !== undefined) return now + duration;
  const seconds = Number(v);
  if (v.trim() !== "" && Number.isFinite(seconds)) return now + seconds * 1000;
  const date = Date.parse(v);
  return Number.isFinite(date) ? date : undefined;
}

/** parseRateLimitHeaders reads OpenAI- or Anthropic-style rate-limit headers; undefined when there are none. */
export function parseRateLimitHeaders(headers: HeaderBag, now: number): RateLimitSnapshot | undefined {
  const s: RateLimitSnapshot = {};
  if (headers["x-ratelimit-remaining-requests"] !== undefined || headers["x-ratelimit-remaining-tokens"] !== undefined) {
    s.requestsRemaining = count(headers, "x-ratelimit-remaining-requests");
    s.requestsResetAt = resetAt(headers, "x-ratelimit-reset-requests", now);
    s.tokensRemaining = count(headers, "x-ratelimit-remaining-tokens");
    s.tokensLimit = count(headers, "x-ratelimit-limit-tokens");
    s.tokensResetAt = resetAt(headers, "x-ratelimit-reset-tokens", now);
    return s;
  }
  if (headers["anthropic-ratelimit-requests-remaining"] !== undefined || headers["anthropic-ratelimit-tokens-remaining"] !== undefined || headers["anthropic-ratelimit-input-tokens-remaining"] !== undefined) {
    s.requestsRemaining = count(headers, "anthropic-ratelimit-requests-remaining");
    s.requestsResetAt = resetAt(headers, "anthropic-ratelimit-requests-reset", now);
    const tokens = headers["anthropic-ratelimit-tokens-remaining"] !== undefined ? "tokens" : "input-tokens";
    s.tokensRemaining = count(headers, `anthropic-ratelimit-${tokens}-remaining`);
    s.tokensLimit = count(headers, `anthropic-ratelimit-${tokens}-limit`);
    s.tokensResetAt = resetAt(headers, `anthropic-ratelimit-${tokens}-reset`, now);
    return s;
  }
  return undefined;
}

/** learnedFromSnapshot turns a snapshot into what is worth sharing, or undefined when capacity is ample. */
export function learnedFromSnapshot(s: RateLimitSnapshot, now: number): LearnedLimits | undefined {
  const out: LearnedLimits = { blockedUntil: 0, reason: "" };
  let worth = false;
  if (s.requestsRemaining === 0 && s.requestsResetAt !== undefined && s.requestsResetAt > now) {
    out.blockedUntil = s.requestsResetAt;
    out.reason = "the provider reports 0 requests remaining";
    worth = true;
  }
  if (s.tokensRemaining !== undefined && s.tokensResetAt !== undefined && s.tokensResetAt > now) {
    const low = s.tokensLimit !== undefined ? s.tokensRemaining < s.tokensLimit * LOW_TOKENS_FRACTION : s.tokensRemaining < LOW_TOKENS_ABSOLUTE;
    if (low) {
      out.tokensRemaining = s.tokensRemaining;
      out.tokensResetAt = s.tokensResetAt;
      worth = true;
    }
  }
  return worth ? out : undefined;
}

/** learnedKey is the store key of a deployment's learned limits. */
export const learnedKey: (deploymentId: string) => string = keyNamer("ratelimit:learned:");

function expiry(l: LearnedLimits, now: number): number {
  return Math.max(l.blockedUntil, l.tokensResetAt ?? 0) - now;
}

/** storeLearned writes learned limits until they lapse (no write when already lapsed). */
export async function storeLearned(store: StateStore, deploymentId: string, learned: LearnedLimits, now: number): Promise<void> {
  const ttl = expiry(learned, now);
  if (ttl <= 0) return;
  await store.setJson(learnedKey(deploymentId), learned, Math.ceil(ttl));
}

/** learnedFrom429 is what a 429 teaches: the deployment is blocked for the hint (1 s when it gave none). */
export function learnedFrom429(retryAfterMs: number | undefined, now: number): LearnedLimits {
  const wait = retryAfterMs ?? 1000;
  return { blockedUntil: now + wait, reason: `the provider answered 429 (retry after ${wait} ms)` };
}

/** LearnedVerdict is why learned limits keep a request away, and for how long. */
export interface LearnedVerdict {
  reason: string;
  /** retryAfterMs is when it may be tried again. */
  retryAfterMs: number;
}

/** judgeLearned tells whether learned limits rule a deployment out for a request of `tokens` tokens. */
export function judgeLearned(l: LearnedLimits | undefined, tokens: number, now: number): LearnedVerdict | undefined {
  if (l === undefined) return undefined;
  if (l.blockedUntil > now) return { reason: `${l.reason}; blocked for ${l.blockedUntil - now} ms`, retryAfterMs: l.blockedUntil - now };
  if (l.tokensRemaining !== undefined && l.tokensResetAt !== undefined && l.tokensResetAt > now && l.tokensRemaining < tokens) {
    return {
      reason: `the provider reports ${l.tokensRemaining} tokens remaining (this request needs ~${tokens}) for ${l.tokensResetAt - now} ms`,
      retryAfterMs: l.tokensResetAt - now,
    };
  }
  return undefined;
}
