import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { backoffMs, DEFAULT_RETRY, retryPolicy } from "../../server/resilience/backoff.js";

// Backoff between retries of one deployment: exponential, capped, jittered,
// and the provider's own hint wins.

describe("backoffMs", () => {
  const policy = { base_ms: 1000, cap_ms: 30_000, max_retries: 3 };

  it("doubles from base_ms with equal jitter: between half and all of the ceiling", () => {
    for (const [retry, ceiling] of [[1, 1000], [2, 2000], [3, 4000], [4, 8000]] as const) {
      assert.equal(backoffMs(policy, retry, undefined, () => 0), ceiling / 2);
      assert.equal(backoffMs(policy, retry, undefined, () => 0.999999), ceiling);
      const mid = backoffMs(policy, retry, undefined, () => 0.5);
      assert.ok(mid > ceiling / 2 && mid < ceiling, `retry ${retry}: ${mid}`);
    }
  });

  it("never computes more than cap_ms", () => {
    assert.equal(backoffMs(policy, 12, undefined, () => 0.999999), 30_000);
    assert.equal(backoffMs({ ...policy, cap_ms: 1500 }, 3, undefined, () => 0.999999), 1500);
  });

  it("honours the provider's retry hint as given, even above the cap", () => {
    assert.equal(backoffMs(policy, 1, 250, () => 0.5), 250);
    assert.equal(backoffMs(policy, 1, 45_000, () => 0.5), 45_000);
    assert.equal(backoffMs(policy, 1, 0, () => 0.5), 0);
  });

  it("defaults to base 1 s, cap 30 s and no same-deployment retries", () => {
    assert.deepEqual({ ...DEFAULT_RETRY }, { base_ms: 1000, cap_ms: 30_000, max_retries: 0 });
    const provider = { id: "p", type: "openai", timeout_ms: 1, connect_timeout_ms: 1, idle_timeout_ms: 1, max_connections: 1 } as const;
    assert.equal(retryPolicy(provider), DEFAULT_RETRY);
    assert.deepEqual(retryPolicy({ ...provider, retry: policy }), policy);
  });
});
