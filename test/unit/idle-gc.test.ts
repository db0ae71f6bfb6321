import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { getHeapSpaceStatistics } from "node:v8";
import { startIdleGc, type Collection } from "../../server/http/idle-gc.js";

// The idle collector only acts when the gateway is quiet after work; these pin when it runs, when it must not, and that it gives memory back.

const MB = 1024 * 1024;

/** churn allocates and drops about mb MB of small objects, some living long enough to grow the young generation. */
function churn(mb: number): number {
  let sum = 0;
  const ring: unknown[] = new Array(50_000);
  for (let i = 0; i < mb * 12_000; i++) {
    ring[(i * 7919) % ring.length] = { n: i, s: `item-${i}` };
    sum += i & 1;
  }
  return sum;
}

function youngGeneration(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === "new_space")!.space_size;
}

describe("idle garbage collection", () => {
  it("collects once the gateway is quiet after a burst, until the young generation is back at rest", async () => {
    let count = 0;
    const collections: Collection[] = [];
    const gc = startIdleGc({ idleMs: 200, started: () => count, inFlight: () => 0, collected: (c) => collections.push(c) });
    try {
      count++;
      assert.ok(churn(96) > 0);
      count++;
      assert.ok(youngGeneration() > 4 * MB, `the burst did not grow the young generation (${youngGeneration()} bytes)`);
      for (let i = 0; i < 30 && collections.length === 0; i++) await sleep(100);
      assert.ok(collections.length >= 1, "no collection within 3 s of quiet after a burst");
      assert.ok(collections[0]!.freedBytes > 0, "the first collection freed nothing");
      // V8 shrinks the young generation only in a collection after 5 s of low allocation: the series' second.
      for (let i = 0; i < 90 && collections.at(-1)!.youngBytes > 4 * MB; i++) await sleep(100);
      assert.ok(collections.at(-1)!.youngBytes <= 4 * MB, `young generation still ${collections.at(-1)!.youngBytes} bytes after ${collections.length} collections`);
      // The series ends there: two collections at most.
      const settled = collections.length;
      assert.ok(settled <= 2, `${settled} collections in one quiet period`);
      await sleep(1500);
      assert.equal(collections.length, settled, "kept collecting after the heap settled");
    } finally {
      gc.stop();
    }
  });

  it("never collects while a request is in flight, and not again without new growth", async () => {
    let count = 0;
    let inFlight = 1;
    let collections = 0;
    const gc = startIdleGc({ idleMs: 100, shrinkDelayMs: 200, started: () => count, inFlight: () => inFlight, collected: () => collections++ });
    try {
      count++;
      churn(64);
      await sleep(700);
      assert.equal(collections, 0, "collected while a request was in flight");
      inFlight = 0;
      for (let i = 0; i < 40 && collections === 0; i++) await sleep(100);
      assert.ok(collections >= 1, "did not collect once the request ended");
      // The series ends by 100 + 200 ms; then a request that leaves almost no garbage sets off no other.
      await sleep(1000);
      const after = collections;
      assert.ok(after <= 2, `${after} collections in one quiet period`);
      count++;
      await sleep(700);
      assert.equal(collections, after, "collected again without heap growth");
    } finally {
      gc.stop();
    }
  });

  it("does nothing after stop()", async () => {
    let collections = 0;
    let count = 0;
    const gc = startIdleGc({ idleMs: 100, started: () => count, inFlight: () => 0, collected: () => collections++ });
    gc.stop();
    count++;
    churn(32);
    await sleep(600);
    assert.equal(collections, 0);
  });
});
