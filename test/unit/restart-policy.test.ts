import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { MAX_RESTARTS_PER_MINUTE, planRestart, RESTART_DELAY_MAX_MS, RESTART_DELAY_MS } from "../../server/cluster/restart-policy.js";

// A dead worker is restarted soon, then later each time it keeps dying, and
// never more than MAX_RESTARTS_PER_MINUTE times in a minute.

describe("planRestart", () => {
  const now = 1_000_000;

  it("restarts a first failure after the base delay", () => {
    assert.deepEqual(planRestart([], now), { delayMs: RESTART_DELAY_MS, capped: false, recent: [] });
  });

  it("doubles the delay with each restart in the last minute and forgets older ones", () => {
    assert.equal(planRestart([now - 3_000, now - 2_000], now).delayMs, RESTART_DELAY_MS * 4);
    const plan = planRestart([now - 120_000, now - 61_000, now - 1_000], now);
    assert.deepEqual(plan.recent, [now - 1_000]);
    assert.equal(plan.delayMs, RESTART_DELAY_MS * 2);
  });

  it("holds the next restart until the window has room once the cap is reached", () => {
    const restarts = Array.from({ length: MAX_RESTARTS_PER_MINUTE }, (_, i) => now - 20_000 + i * 1_000);
    const plan = planRestart(restarts, now);
    assert.equal(plan.capped, true);
    // The oldest restart (20 s ago) leaves the window in 40 s.
    assert.equal(plan.delayMs, 40_000);
  });

  it("never waits less than the backoff, even when the window is about to have room", () => {
    const restarts = Array.from({ length: MAX_RESTARTS_PER_MINUTE }, (_, i) => now - 59_999 + i);
    const plan = planRestart(restarts, now);
    assert.equal(plan.capped, true);
    assert.equal(plan.delayMs, Math.min(RESTART_DELAY_MS * 2 ** MAX_RESTARTS_PER_MINUTE, RESTART_DELAY_MAX_MS));
    assert.ok(plan.delayMs > 1);
  });
});
