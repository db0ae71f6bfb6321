import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createMemoryStore } from "../../server/state/memory-store.js";
import { describeStoreBehaviour } from "./store-behaviour.js";

describeStoreBehaviour("memory", async () => {
  const store = createMemoryStore();
  return { store, cleanup: () => store.close() };
});

// Exact checks on an injected clock: boundaries to the millisecond.
describe("memory store on a controlled clock", () => {
  function clocked() {
    let t = 1_000_000;
    const store = createMemoryStore({ now: () => t, sweepIntervalMs: 0 });
    return { store, advance: (ms: number) => void (t += ms), set: (ms: number) => void (t = ms) };
  }

  it("an entry counts while now - time < windowMs and leaves exactly at windowMs", async () => {
    const { store, advance } = clocked();
    await store.windowAcquire("k", 1, 1, 1000);
    advance(999);
    assert.deepEqual(await store.windowAcquire("k", 1, 1, 1000), { allowed: false, used: 1, retryAfterMs: 1 });
    advance(1);
    // Counted now: its entry is this instant (the memory store has no sequence numbers).
    assert.deepEqual(await store.windowAcquire("k", 1, 1, 1000), { allowed: true, used: 1, retryAfterMs: 0, entry: { at: 1_001_000, seq: 0 } });
  });

  it("retryAfterMs is the time until enough of the oldest entries leave", async () => {
    const { store, advance } = clocked();
    await store.windowAcquire("k", 3, 10, 60_000); // t=0
    advance(10_000);
    await store.windowAcquire("k", 4, 10, 60_000); // t=10s
    advance(5_000);
    await store.windowAcquire("k", 3, 10, 60_000); // t=15s, full
    // 2 more need the first entry (3) gone: at t=60s, 45 s from now.
    assert.deepEqual(await store.windowAcquire("k", 2, 10, 60_000), { allowed: false, used: 10, retryAfterMs: 45_000 });
    // 5 more need the first two gone: at t=70s.
    assert.deepEqual(await store.windowAcquire("k", 5, 10, 60_000), { allowed: false, used: 10, retryAfterMs: 55_000 });
    advance(45_000);
    assert.deepEqual(await store.windowAcquire("k", 2, 10, 60_000), { allowed: true, used: 9, retryAfterMs: 0, entry: { at: 1_060_000, seq: 0 } });
  });

  it("a clock that steps back never frees capacity early", async () => {
    const { store, advance } = clocked();
    await store.windowAcquire("k", 1, 2, 1000);
    advance(-500);
    await store.windowAcquire("k", 1, 2, 1000);
    advance(1000); // 500 ms after the first entry's original time, in the new clock
    assert.equal(await store.windowUsage("k", 1000), 2);
  });

  it("windowAdjust gives back from the newest entries, so the older ones still leave on time", async () => {
    const { store, advance } = clocked();
    await store.windowAcquire("k", 10, 100, 1000); // t=0
    advance(500);
    await store.windowAcquire("k", 10, 100, 1000); // t=500
    await store.windowAdjust("k", -15, 1000);
    assert.equal(await store.windowUsage("k", 1000), 5);
    advance(500); // the t=0 entry, now 5, leaves
    assert.equal(await store.windowUsage("k", 1000), 0);
  });

  it("windowAdjust with an entry gives back from that entry, so the newer one keeps counting after it leaves", async () => {
    const { store, advance } = clocked();
    const a = await store.windowAcquire("k", 10, 100, 1000); // t=0
    advance(500);
    const b = await store.windowAcquire("k", 10, 100, 1000); // t=500
    assert.deepEqual([a.entry, b.entry], [
      { at: 1_000_000, seq: 0 },
      { at: 1_000_500, seq: 0 },
    ]);
    await store.windowAdjust("k", -4, 1000, a.entry);
    assert.equal(await store.windowUsage("k", 1000), 16);
    // A's time: what is left of A (6) leaves, B (10) still counts. Taken from B, as without an entry, this would be 6.
    advance(500);
    assert.equal(await store.windowUsage("k", 1000), 10);
    // A has left: giving back from it takes nothing, not B's.
    await store.windowAdjust("k", -5, 1000, a.entry);
    assert.equal(await store.windowUsage("k", 1000), 10);
    // At most the entry's amount: a give-back from C takes its 5 and nothing of the older B.
    const c = await store.windowAcquire("k", 5, 100, 1000); // t=1000
    await store.windowAdjust("k", -100, 1000, c.entry);
    assert.equal(await store.windowUsage("k", 1000), 10);
    advance(499);
    assert.equal(await store.windowUsage("k", 1000), 10);
    advance(1); // B's time
    assert.equal(await store.windowUsage("k", 1000), 0);
  });

  it("holdMs: a held entry counts from now until windowMs + holdMs later, and says so in its entry and retry-after", async () => {
    const { store, advance } = clocked();
    const held = await store.windowsAcquire([{ key: "k", amount: 1, limit: 1 }], 1000, { holdMs: 5000 });
    assert.deepEqual(held, { allowed: true, windows: [{ allowed: true, used: 1, retryAfterMs: 0, entry: { at: 1_005_000, seq: 0 } }] });
    // It counts from now, and makes room 6 s from now, not 1 s.
    assert.deepEqual(await store.windowAcquire("k", 1, 1, 1000), { allowed: false, used: 1, retryAfterMs: 6000 });
    advance(5999); // t + windowMs + holdMs - 1
    assert.equal(await store.windowUsage("k", 1000), 1);
    advance(1); // t + windowMs + holdMs
    assert.equal(await store.windowUsage("k", 1000), 0);
  });

  it("an entry counted after a held one shares its time (times never go back), and its entry names that time", async () => {
    const { store, advance } = clocked();
    await store.windowsAcquire([{ key: "k", amount: 3, limit: 100 }], 1000, { holdMs: 2000 }); // held to t=2000
    advance(100);
    const later = await store.windowAcquire("k", 4, 100, 1000);
    assert.deepEqual(later, { allowed: true, used: 7, retryAfterMs: 0, entry: { at: 1_002_000, seq: 0 } });
    // Its entry finds the slot it was counted in: timed at its call (t=100), it would find none and give back nothing.
    await store.windowAdjust("k", -4, 1000, later.entry);
    assert.equal(await store.windowUsage("k", 1000), 3);
  });

  it("admissions in one millisecond count and leave together, and later ones keep their own time", async () => {
    const { store, advance } = clocked();
    await store.windowAcquire("k", 3, 10, 1000); // t=0
    await store.windowAcquire("k", 4, 10, 1000); // t=0, the same entry
    advance(500);
    assert.deepEqual(await store.windowAcquire("k", 2, 10, 1000), { allowed: true, used: 9, retryAfterMs: 0, entry: { at: 1_000_500, seq: 0 } }); // t=500
    // 5 more need 4 freed: both t=0 admissions leave at t=1000, 500 ms from now.
    assert.deepEqual(await store.windowAcquire("k", 5, 10, 1000), { allowed: false, used: 9, retryAfterMs: 500 });
    await store.windowAdjust("k", 1, 1000); // t=500, with the 2
    await store.windowAdjust("k", -6, 1000); // the t=500 entry (3), then 3 of t=0's 7
    assert.equal(await store.windowUsage("k", 1000), 4);
    advance(499);
    assert.equal(await store.windowUsage("k", 1000), 4);
    advance(1); // t=1000: what is left of t=0 leaves
    assert.equal(await store.windowUsage("k", 1000), 0);
    await store.windowAcquire("k", 1, 10, 1000); // t=1000
    advance(400);
    await store.windowAcquire("k", 2, 10, 1000); // t=1400
    advance(600); // t=2000: only the t=1000 admission has left
    assert.equal(await store.windowUsage("k", 1000), 2);
  });

  it("reservations lapse exactly at reservationTtlMs and keys at ttlMs", async () => {
    const { store, advance } = clocked();
    await store.reserve("b", "a", 5n, 10n, 10_000, 1000);
    advance(999);
    assert.deepEqual(await store.readReserve("b"), { committed: 0n, reserved: 5n });
    advance(1);
    assert.deepEqual(await store.readReserve("b"), { committed: 0n, reserved: 0n });
    await store.settle("b", "a", 7n, 10_000);
    advance(9_999);
    assert.deepEqual(await store.readReserve("b"), { committed: 7n, reserved: 0n });
    advance(1);
    assert.deepEqual(await store.readReserve("b"), { committed: 0n, reserved: 0n });
  });

  it("settle with release keeps the rest of a reservation with its expiry", async () => {
    const { store, advance } = clocked();
    await store.reserve("b", "a", 100n, 1000n, 10_000, 1000); // lapses at t=1000
    advance(500);
    await store.settle("b", "a", 30n, 10_000, 40n);
    assert.deepEqual(await store.readReserve("b"), { committed: 30n, reserved: 60n });
    // Still the reservation's own expiry: not renewed by the settle (nor dropped).
    advance(499);
    assert.deepEqual(await store.readReserve("b"), { committed: 30n, reserved: 60n });
    advance(1);
    assert.deepEqual(await store.readReserve("b"), { committed: 30n, reserved: 0n });
  });

  it("latency decays by half-life: an observation one half-life old weighs half", async () => {
    const { store, advance } = clocked();
    await store.recordLatency("d", 100, 10, 1000);
    advance(1000);
    await store.recordLatency("d", 400, undefined, 1000);
    // weights 0.5 and 1: (50 + 400) / 1.5 = 300; ttft keeps its own (decayed) weight.
    const s = await store.readLatency("d");
    assert.ok(s !== undefined);
    assert.ok(Math.abs(s.ewmaMs - 300) < 1e-9, `ewmaMs ${s.ewmaMs}`);
    assert.equal(s.ewmaTtftMs, 10);
    assert.equal(s.samples, 2); // 1.5 rounds to 2
    advance(2000);
    assert.equal((await store.readLatency("d"))?.samples, 0); // 1.5 / 4
  });

  it("refuses to be used after close", async () => {
    const { store } = clocked();
    await store.close();
    await assert.rejects(store.windowUsage("k", 1000), /after close/);
  });
});
