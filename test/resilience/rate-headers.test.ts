import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  judgeLearned,
  learnedFrom429,
  learnedFromSnapshot,
  parseRateLimitHeaders,
} from "../../server/resilience/rate-headers.js";

// Learning a provider's limits from its rate-limit headers, to steer away
// before it answers 429.

const now = Date.parse("2026-01-01T00:00:00Z");

describe("parseRateLimitHeaders", () => {
  it("reads OpenAI's x-ratelimit-* headers with duration resets", () => {
    const s = parseRateLimitHeaders(
      {
        "x-ratelimit-limit-requests": "500",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "1.5s",
        "x-ratelimit-limit-tokens": "30000",
        "x-ratelimit-remaining-tokens": "1200",
        "x-ratelimit-reset-tokens": "6m0s",
      },
      now,
    );
    assert.deepEqual(s, { requestsRemaining: 0, requestsResetAt: now + 1500, tokensRemaining: 1200, tokensLimit: 30000, tokensResetAt: now + 360_000 });
  });

  it("reads Anthropic's anthropic-ratelimit-* headers with RFC 3339 resets", () => {
    const s = parseRateLimitHeaders(
      {
        "anthropic-ratelimit-requests-remaining": "3",
        "anthropic-ratelimit-requests-reset": "2026-01-01T00:00:20Z",
        "anthropic-ratelimit-input-tokens-limit": "40000",
        "anthropic-ratelimit-input-tokens-remaining": "900",
        "anthropic-ratelimit-input-tokens-reset": "2026-01-01T00:00:30Z",
      },
      now,
    );
    assert.deepEqual(s, { requestsRemaining: 3, requestsResetAt: now + 20_000, tokensRemaining: 900, tokensLimit: 40000, tokensResetAt: now + 30_000 });
  });

  it("returns undefined without rate-limit headers", () => {
    assert.equal(parseRateLimitHeaders({ "content-type": "application/json" }, now), undefined);
  });
});

describe("learned limits", () => {
  it("shares only what matters: no requests left, or tokens running low", () => {
    assert.equal(learnedFromSnapshot({ requestsRemaining: 10, requestsResetAt: now + 1000, tokensRemaining: 20000, tokensLimit: 30000, tokensResetAt: now + 1000 }, now), undefined);
    assert.deepEqual(learnedFromSnapshot({ requestsRemaining: 0, requestsResetAt: now + 1000 }, now), {
      blockedUntil: now + 1000,
      reason: "the provider reports 0 requests remaining",
    });
    const low = learnedFromSnapshot({ requestsRemaining: 5, requestsResetAt: now + 1000, tokensRemaining: 1000, tokensLimit: 30000, tokensResetAt: now + 5000 }, now);
    assert.deepEqual(low, { blockedUntil: 0, reason: "", tokensRemaining: 1000, tokensResetAt: now + 5000 });
  });

  it("keeps a deployment away while blocked, or while this request needs more tokens than remain", () => {
    const blocked = learnedFrom429(7000, now);
    assert.equal(judgeLearned(blocked, 10, now + 1000)?.retryAfterMs, 6000);
    assert.equal(judgeLearned(blocked, 10, now + 7000), undefined);
    const low = { blockedUntil: 0, reason: "", tokensRemaining: 1000, tokensResetAt: now + 5000 };
    assert.equal(judgeLearned(low, 500, now), undefined);
    assert.match(judgeLearned(low, 1500, now)!.reason, /1000 tokens remaining \(this request needs ~1500\)/);
    assert.equal(judgeLearned(low, 1500, now + 5000), undefined);
  });

  it("a 429 without a hint blocks for one second", () => {
    assert.equal(learnedFrom429(undefined, now).blockedUntil, now + 1000);
  });
});
