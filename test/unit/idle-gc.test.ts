import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { getHeapSpaceStatistics } from "node:v8";
import { startIdleGc, type Collection, type IdleGc } from "../../server/http/idle-gc.js";

// The idle collector only acts when the gateway is quiet after work; these pin when it runs, when it must not, and that it gives memory back.

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

function started(gc: IdleGc | undefined): IdleGc {
  assert.ok(gc !== undefined, "this Node has no inspector");
  return gc;
}

describe("idle garbage collection", () => {
  it("collects once the gateway is quiet after a burst, shrinking the young generation", async () => {
    let count = 0;
    const collections: Collection[] = [];
    const gc = started(startIdleGc({ idleMs: 200, started: () => count, inFlight: () => 0, collected: (c) => collections.push(c) }));
    try {
      count++;
      assert.ok(churn(96) > 0);
      count++;
      const youngBefore = getHeapSpaceStatistics().find((s) => s.space_name === "new_space")!.space_size;
      assert.ok(youngBefore > 4 * 1024 * 1024, `the burst did not grow the young generation (${youngBefore} bytes)`);
      for (let i = 0; i < 50 && collections.length === 0; i++) await sleep(100);
      assert.ok(collections.length >= 1, "no collection within 5 s of quiet after a burst");
      const c = collections[0]!;
      assert.ok(c.freedBytes > 0, "the collection freed nothing");
      // A memory-reducing collection leaves the young generation at its resting size (1–2 MB); an ordinary one does not.
      assert.ok(c.youngBytes <= 4 * 1024 * 1024, `young generation still ${c.youngBytes} bytes`);
      // Quiet, and no new growth: no more collections.
      const after = collections.length;
      await sleep(800);
      assert.equal(collections.length, after, "kept collecting without new garbage");
    } finally {
      gc.stop();
    }
  });

  it("never collects while a request is in flight, and collects once it ends", async () => {
    let count = 0;
    let inFlight = 1;
    let collections = 0;
    const gc = started(startIdleGc({ idleMs: 100, started: () => count, inFlight: () => inFlight, collected: () => collections++ }));
    try {
      count++;
      churn(64);
      await sleep(700);
      assert.equal(collections, 0, "collected while a request was in flight");
      inFlight = 0;
      for (let i = 0; i < 40 && collections === 0; i++) await sleep(100);
      assert.equal(collections, 1, "did not collect once the request ended");
      // A request that leaves almost no garbage does not set off another.
      count++;
      await sleep(600);
      assert.equal(collections, 1, "collected again without heap growth");
    } finally {
      gc.stop();
    }
  });

  it("does nothing after stop()", async () => {
    let collections = 0;
    let count = 0;
    const gc = started(startIdleGc({ idleMs: 100, started: () => count, inFlight: () => 0, collected: () => collections++ }));
    gc.stop();
    count++;
    churn(32);
    await sleep(600);
    assert.equal(collections, 0);
  });
});
