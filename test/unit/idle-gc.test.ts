import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { startIdleGc } from "../../server/http/idle-gc.js";

// The idle collector only acts when the gateway is quiet after work; these pin when it runs and when it must not.

/** churn allocates and drops about mb MB of small objects, growing the heap with garbage. */
function churn(mb: number): number {
  let sum = 0;
  let keep: { n: number; s: string }[] = [];
  for (let i = 0; i < mb * 12_000; i++) {
    keep.push({ n: i, s: `item-${i}` });
    if (keep.length > 200_000) {
      sum += keep.length;
      keep = [];
    }
  }
  return sum + keep.length;
}

describe("idle garbage collection", () => {
  it("collects once the gateway is quiet after a burst, and stops when the heap settles", async () => {
    let started = 0;
    const collections: { freed: number; committed: number }[] = [];
    const gc = startIdleGc({
      idleMs: 200,
      started: () => started,
      inFlight: () => 0,
      collected: (_ms, freed, committed) => collections.push({ freed, committed }),
    });
    try {
      started++;
      assert.ok(churn(64) > 0);
      started++;
      for (let i = 0; i < 60 && collections.length === 0; i++) await sleep(100);
      assert.ok(collections.length >= 1, "no collection within 6 s of quiet after a burst");
      assert.ok(collections[0]!.freed > 0, "the first collection freed nothing");
      // The series ends (at most 8 collections, idleMs / 2 apart): nothing more once settled.
      await sleep(8 * 100 + 1500);
      const settled = collections.length;
      assert.ok(settled <= 8, `${settled} collections in one quiet period`);
      await sleep(600);
      assert.equal(collections.length, settled, "kept collecting after the heap settled");
    } finally {
      gc.stop();
    }
  });

  it("never collects while a request is in flight, nor after activity without heap growth", async () => {
    let started = 0;
    let inFlight = 1;
    let count = 0;
    const gc = startIdleGc({ idleMs: 100, started: () => started, inFlight: () => inFlight, collected: () => count++ });
    try {
      started++;
      churn(64);
      await sleep(700);
      assert.equal(count, 0, "collected while a request was in flight");
      inFlight = 0;
      for (let i = 0; i < 40 && count === 0; i++) await sleep(100);
      assert.ok(count >= 1, "did not collect once the request ended");
      // Wait for the series to end, then make a little activity that leaves almost no garbage.
      await sleep(1500);
      const after = count;
      started++;
      await sleep(700);
      assert.equal(count, after, "a request that left no garbage set off another collection");
    } finally {
      gc.stop();
    }
  });

  it("does nothing after stop()", async () => {
    let count = 0;
    let started = 0;
    const gc = startIdleGc({ idleMs: 100, started: () => started, inFlight: () => 0, collected: () => count++ });
    gc.stop();
    started++;
    churn(32);
    await sleep(600);
    assert.equal(count, 0);
  });
});
