import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import type { StateStore, WindowResult, WindowsResult } from "../../server/state/store.js";

/**
 * The behavioural suite every StateStore implementation must pass, written
 * once and run against the memory store and the Redis store. It runs on
 * real time (the Redis store reads the Redis server's clock), with windows
 * and TTLs of a few hundred milliseconds and margins wide enough for a
 * loaded machine; exact clock-driven checks live in the per-store files.
 */

/** StoreFixture is one store under test and how to dispose of it. */
export interface StoreFixture {
  store: StateStore;
  cleanup(): Promise<void>;
}

/** freshKey returns a logical key no other test uses. */
export function freshKey(label: string): string {
  return `test:${label}:${randomUUID()}`;
}

/** ENTRY stands for a counted entry in a window result compared whole on real time (see opaque). */
export const ENTRY = Symbol("entry");

/**
 * opaque returns a window result with its entry, when it has one, replaced
 * by ENTRY: the entry's time is the store's clock (real time here) and its
 * sequence the Redis store's own, so an expected result can say only that
 * there is one. It checks that the entry is well-formed; its exact value
 * is checked on the controlled clocks of the per-store files.
 */
export function opaque(result: WindowResult): Omit<WindowResult, "entry"> & { entry?: typeof ENTRY } {
  const { entry, ...rest } = result;
  if (entry === undefined) return rest;
  assert.ok(Number.isFinite(entry.at) && Number.isInteger(entry.seq) && entry.seq >= 0, `malformed entry ${JSON.stringify(entry)}`);
  return { ...rest, entry: ENTRY };
}

/** opaqueAll is opaque over every window of a windowsAcquire result. */
export function opaqueAll(result: WindowsResult): { allowed: boolean; windows: ReturnType<typeof opaque>[] } {
  return { allowed: result.allowed, windows: result.windows.map(opaque) };
}

/** describeStoreBehaviour registers the shared suite for one implementation. */
export function describeStoreBehaviour(name: string, setup: () => Promise<StoreFixture>): void {
  describe(`${name}: shared StateStore behaviour`, () => {
    let fixture: StoreFixture;
    let store: StateStore;
    before(async () => {
      fixture = await setup();
      store = fixture.store;
    });
    after(async () => {
      await fixture.cleanup();
    });

    describe("sliding window", () => {
      it("admits up to the limit, then refuses with the window's total and a retry-after", async () => {
        const key = freshKey("win");
        for (let i = 1; i <= 3; i++) {
          assert.deepEqual(opaque(await store.windowAcquire(key, 1, 3, 60_000)), { allowed: true, used: i, retryAfterMs: 0, entry: ENTRY });
        }
        const refused = await store.windowAcquire(key, 1, 3, 60_000);
        assert.equal(refused.allowed, false);
        assert.equal(refused.used, 3);
        assert.equal(refused.entry, undefined);
        assert.ok(refused.retryAfterMs > 55_000 && refused.retryAfterMs <= 60_000, `retryAfterMs ${refused.retryAfterMs}`);
        assert.equal(await store.windowUsage(key, 60_000), 3);
      });

      it("counts amounts, and admits an amount that exactly fills the limit", async () => {
        const key = freshKey("amount");
        assert.equal((await store.windowAcquire(key, 700, 1000, 60_000)).allowed, true);
        const refused = await store.windowAcquire(key, 400, 1000, 60_000);
        assert.equal(refused.allowed, false);
        assert.equal(refused.used, 700);
        assert.deepEqual(opaque(await store.windowAcquire(key, 300, 1000, 60_000)), { allowed: true, used: 1000, retryAfterMs: 0, entry: ENTRY });
      });

      it("refuses an amount larger than the limit even on an empty window", async () => {
        const r = await store.windowAcquire(freshKey("huge"), 11, 10, 5_000);
        assert.equal(r.allowed, false);
        assert.equal(r.used, 0);
        assert.equal(r.retryAfterMs, 5_000);
      });

      it("windowsAcquire counts every window when all have room, and none when one is full", async () => {
        const group = freshKey("multi");
        const rpm = `${group}:rpm`;
        const tpm = `${group}:tpm`;
        const take = (tokens: number) =>
          store.windowsAcquire(
            [
              { key: rpm, amount: 1, limit: 3 },
              { key: tpm, amount: tokens, limit: 1000 },
            ],
            60_000,
          );
        assert.deepEqual(opaqueAll(await take(600)), {
          allowed: true,
          windows: [
            { allowed: true, used: 1, retryAfterMs: 0, entry: ENTRY },
            { allowed: true, used: 600, retryAfterMs: 0, entry: ENTRY },
          ],
        });
        // The token window is full for 500 more: neither window moves (nor names an entry), and only the full one says when.
        const refused = await take(500);
        assert.equal(refused.allowed, false);
        assert.deepEqual(refused.windows[0], { allowed: true, used: 1, retryAfterMs: 0 });
        assert.equal(refused.windows[1]!.allowed, false);
        assert.equal(refused.windows[1]!.entry, undefined);
        assert.equal(refused.windows[1]!.used, 600);
        // Up to 1 ms over the window: Redis times an entry at the next whole millisecond.
        assert.ok(refused.windows[1]!.retryAfterMs > 55_000 && refused.windows[1]!.retryAfterMs <= 60_001, `retryAfterMs ${refused.windows[1]!.retryAfterMs}`);
        assert.equal(await store.windowUsage(rpm, 60_000), 1);
        assert.equal(await store.windowUsage(tpm, 60_000), 600);
        // Both full: both say so.
        await take(400);
        await take(0);
        const both = await take(1);
        assert.deepEqual(
          both.windows.map((w) => [w.allowed, w.used]),
          [
            [false, 3],
            [false, 1000],
          ],
        );
        assert.equal(await store.windowUsage(rpm, 60_000), 3);
      });

      it("windowsAcquire refuses keys of different groups, a key twice, an empty list and bad amounts", async () => {
        const group = freshKey("multi-bad");
        const w = (key: string, amount = 1) => ({ key, amount, limit: 10 });
        await assert.rejects(store.windowsAcquire([w(`${group}:rpm`), w(`${freshKey("other")}:tpm`)], 1000), TypeError);
        await assert.rejects(store.windowsAcquire([w(`${group}:rpm`), w(`${group}:rpm`)], 1000), TypeError);
        await assert.rejects(store.windowsAcquire([], 1000), TypeError);
        await assert.rejects(store.windowsAcquire([w(`${group}:rpm`, -1)], 1000), RangeError);
        await assert.rejects(store.windowsAcquire([w(`${group}:rpm`)], 0), RangeError);
        await assert.rejects(store.windowsAcquire([w(`${group}:rpm`)], 1000, { holdMs: -1 }), RangeError);
        await assert.rejects(store.windowsAcquire([w(`${group}:rpm`)], 1000, { holdMs: Number.NaN }), RangeError);
        assert.equal(await store.windowUsage(`${group}:rpm`, 1000), 0);
      });

      it("keeps windows of different keys apart", async () => {
        const a = freshKey("a");
        const b = freshKey("b");
        await store.windowAcquire(a, 5, 5, 60_000);
        assert.equal((await store.windowAcquire(b, 5, 5, 60_000)).allowed, true);
        assert.equal(await store.windowUsage(a, 60_000), 5);
        assert.equal(await store.windowUsage(freshKey("none"), 60_000), 0);
      });

      it("slides: an entry leaves exactly one window after it was counted, not at a calendar boundary", async () => {
        const key = freshKey("slide");
        const windowMs = 800;
        const t0 = Date.now();
        assert.equal((await store.windowAcquire(key, 2, 3, windowMs)).allowed, true);
        await sleep(400);
        assert.equal((await store.windowAcquire(key, 1, 3, windowMs)).allowed, true);
        assert.equal((await store.windowAcquire(key, 1, 3, windowMs)).allowed, false);
        // Past t0 + window, the first entry has left; the second (t0 + 400) has not.
        await sleep(Math.max(0, t0 + windowMs + 100 - Date.now()));
        assert.equal(await store.windowUsage(key, windowMs), 1);
        assert.equal((await store.windowAcquire(key, 2, 3, windowMs)).allowed, true);
        assert.equal((await store.windowAcquire(key, 1, 3, windowMs)).allowed, false);
      });

      it("retryAfterMs is long enough and not much longer: after waiting it, the same acquire is admitted", async () => {
        const key = freshKey("retry");
        const windowMs = 600;
        await store.windowAcquire(key, 1, 2, windowMs);
        await sleep(200);
        await store.windowAcquire(key, 1, 2, windowMs);
        const refused = await store.windowAcquire(key, 1, 2, windowMs);
        assert.equal(refused.allowed, false);
        // Only the first entry must leave: about 400 ms, not the full window.
        assert.ok(refused.retryAfterMs > 0 && refused.retryAfterMs <= 420, `retryAfterMs ${refused.retryAfterMs}`);
        await sleep(refused.retryAfterMs + 5);
        assert.equal((await store.windowAcquire(key, 1, 2, windowMs)).allowed, true);
      });

      it("windowAdjust adds without a limit check and gives back from the newest entries, never below zero", async () => {
        const key = freshKey("adjust");
        await store.windowAcquire(key, 100, 1000, 60_000);
        await store.windowAcquire(key, 50, 1000, 60_000);
        await store.windowAdjust(key, 2000, 60_000);
        assert.equal(await store.windowUsage(key, 60_000), 2150);
        await store.windowAdjust(key, -2030, 60_000);
        assert.equal(await store.windowUsage(key, 60_000), 120);
        await store.windowAdjust(key, 0, 60_000);
        assert.equal(await store.windowUsage(key, 60_000), 120);
        await store.windowAdjust(key, -5000, 60_000);
        assert.equal(await store.windowUsage(key, 60_000), 0);
        assert.equal((await store.windowAcquire(key, 1000, 1000, 60_000)).allowed, true);
        await store.windowAdjust(freshKey("adjust-none"), -10, 60_000);
      });

      it("an allowed acquire names an entry, timed now, for each window it counted in; a refusal, and a window given 0, name none", async () => {
        const group = freshKey("entry");
        const take = (tokens: number) =>
          store.windowsAcquire(
            [
              { key: `${group}:rpm`, amount: 1, limit: 3 },
              { key: `${group}:tpm`, amount: tokens, limit: 100 },
            ],
            60_000,
          );
        const sent = Date.now();
        const first = await take(0);
        const answered = Date.now();
        assert.equal(first.allowed, true);
        const entry = first.windows[0]!.entry;
        assert.ok(entry !== undefined, "the counted window names its entry");
        // The store's clock is this machine's (Redis runs locally); Redis times an entry at the next whole millisecond.
        assert.ok(entry.at >= sent && entry.at <= answered + 1, `entry.at ${entry.at} outside [${sent}, ${answered + 1}]`);
        assert.deepEqual(first.windows[1], { allowed: true, used: 0, retryAfterMs: 0 }, "a window given 0 counts nothing, so names nothing");
        assert.deepEqual(opaqueAll(await take(100)), {
          allowed: true,
          windows: [
            { allowed: true, used: 2, retryAfterMs: 0, entry: ENTRY },
            { allowed: true, used: 100, retryAfterMs: 0, entry: ENTRY },
          ],
        });
        // The token window is full: nothing is counted, so no window names an entry, not even the one with room.
        const refused = await take(1);
        assert.equal(refused.allowed, false);
        assert.deepEqual(refused.windows[0], { allowed: true, used: 2, retryAfterMs: 0 });
        assert.equal(refused.windows[1]!.entry, undefined);
        // The same through windowAcquire, a group of one.
        const key = freshKey("entry-one");
        assert.deepEqual(opaque(await store.windowAcquire(key, 1, 1, 60_000)), { allowed: true, used: 1, retryAfterMs: 0, entry: ENTRY });
        assert.equal((await store.windowAcquire(key, 1, 1, 60_000)).entry, undefined);
      });

      it("windowAdjust with an entry gives back from that entry only: at most its amount, and nothing once it is gone", async () => {
        const key = freshKey("adjust-entry");
        const a = await store.windowAcquire(key, 10, 1000, 60_000);
        // A later millisecond, so that the memory store (which merges the entries of one millisecond) keeps A and B apart.
        await sleep(5);
        const b = await store.windowAcquire(key, 50, 1000, 60_000);
        assert.ok(a.entry !== undefined && b.entry !== undefined);
        assert.notDeepEqual(a.entry, b.entry);
        // Without an entry a give-back takes from the newest, as before: 20 of B's 50.
        await store.windowAdjust(key, -20, 60_000);
        assert.equal(await store.windowUsage(key, 60_000), 40);
        // B's entry still names what is left of it (30); a give-back from it takes that and nothing of A's.
        await store.windowAdjust(key, -100, 60_000, b.entry);
        assert.equal(await store.windowUsage(key, 60_000), 10);
        // B is gone: giving back from it takes nothing, rather than falling back to the newest (A).
        await store.windowAdjust(key, -5, 60_000, b.entry);
        assert.equal(await store.windowUsage(key, 60_000), 10);
        await store.windowAdjust(key, -4, 60_000, a.entry);
        assert.equal(await store.windowUsage(key, 60_000), 6);
        await store.windowAdjust(key, -100, 60_000, a.entry);
        assert.equal(await store.windowUsage(key, 60_000), 0);
      });

      it("holdMs times the entries that much after now: they count from now until a window after that", async () => {
        const key = freshKey("hold");
        const windowMs = 400;
        const holdMs = 400;
        const sent = Date.now();
        const held = await store.windowsAcquire([{ key, amount: 2, limit: 3 }], windowMs, { holdMs });
        const answered = Date.now();
        const entry = held.windows[0]!.entry;
        assert.ok(held.allowed && entry !== undefined);
        assert.ok(entry.at >= sent + holdMs && entry.at <= answered + holdMs + 1, `entry.at ${entry.at} outside [${sent + holdMs}, ${answered + holdMs + 1}]`);
        // It counts from now...
        assert.equal((await store.windowAcquire(key, 2, 3, windowMs)).allowed, false);
        // ...still a window after now, when an entry timed now would have left...
        await sleep(Math.max(0, sent + windowMs + 100 - Date.now()));
        assert.equal(await store.windowUsage(key, windowMs), 2);
        // ...and leaves a window after its time.
        await sleep(Math.max(0, entry.at + windowMs + 100 - Date.now()));
        assert.equal(await store.windowUsage(key, windowMs), 0);
      });

      it("admits exactly the limit under 200 concurrent acquires", async () => {
        const key = freshKey("concurrent");
        const results = await Promise.all(Array.from({ length: 200 }, () => store.windowAcquire(key, 1, 100, 60_000)));
        assert.equal(results.filter((r) => r.allowed).length, 100);
        assert.equal(await store.windowUsage(key, 60_000), 100);
      });

      it("rejects bad arguments with a clear error", async () => {
        await assert.rejects(store.windowAcquire("", 1, 1, 1000), /key must be a non-empty string/);
        await assert.rejects(store.windowAcquire(freshKey("bad"), -1, 1, 1000), /amount must be a finite number >= 0/);
        await assert.rejects(store.windowAcquire(freshKey("bad"), 1, 1, 0), /windowMs must be a finite number of milliseconds > 0/);
        await assert.rejects(store.windowAdjust(freshKey("bad"), Number.NaN, 1000), /delta must be a finite number/);
      });
    });

    describe("reservations", () => {
      const hour = 3_600_000;

      it("reserves while committed + reserved + amount fits the limit, and reports the totals", async () => {
        const key = freshKey("budget");
        assert.deepEqual(await store.reserve(key, "a", 40n, 100n, hour, 60_000), { ok: true, committed: 0n, reserved: 40n });
        assert.deepEqual(await store.reserve(key, "b", 60n, 100n, hour, 60_000), { ok: true, committed: 0n, reserved: 100n });
        assert.deepEqual(await store.reserve(key, "c", 1n, 100n, hour, 60_000), { ok: false, committed: 0n, reserved: 100n });
        assert.deepEqual(await store.readReserve(key), { committed: 0n, reserved: 100n });
      });

      it("settle releases the reservation and commits the actual amount, even above the reservation", async () => {
        const key = freshKey("settle");
        await store.reserve(key, "a", 40n, 100n, hour, 60_000);
        await store.reserve(key, "b", 30n, 100n, hour, 60_000);
        await store.settle(key, "a", 25n, hour);
        assert.deepEqual(await store.readReserve(key), { committed: 25n, reserved: 30n });
        await store.settle(key, "b", 90n, hour);
        assert.deepEqual(await store.readReserve(key), { committed: 115n, reserved: 0n });
        assert.deepEqual(await store.reserve(key, "c", 1n, 100n, hour, 60_000), { ok: false, committed: 115n, reserved: 0n });
        // Settling an unknown (lapsed) reservation still records the spend.
        await store.settle(key, "never-reserved", 5n, hour);
        assert.deepEqual(await store.readReserve(key), { committed: 120n, reserved: 0n });
      });

      it("settle with release releases only that much and keeps the rest reserved, until a release covers what is left", async () => {
        const key = freshKey("release");
        await store.reserve(key, "a", 100n, 1000n, hour, 60_000);
        // Another reservation, so that releasing more of "a" than it still holds would show in the total.
        await store.reserve(key, "b", 20n, 1000n, hour, 60_000);
        await store.settle(key, "a", 30n, hour, 40n);
        assert.deepEqual(await store.readReserve(key), { committed: 30n, reserved: 80n });
        // Releasing 0 releases nothing; the spend is still committed.
        await store.settle(key, "a", 5n, hour, 0n);
        assert.deepEqual(await store.readReserve(key), { committed: 35n, reserved: 80n });
        // A release of what is left (60, not the 100 first reserved) removes the reservation, and only it.
        await store.settle(key, "a", 25n, hour, 60n);
        assert.deepEqual(await store.readReserve(key), { committed: 60n, reserved: 20n });
        // Gone: a further release releases nothing of the others.
        await store.settle(key, "a", 0n, hour, 10n);
        assert.deepEqual(await store.readReserve(key), { committed: 60n, reserved: 20n });
        // A release above the reservation releases it whole, and no more.
        await store.settle(key, "b", 1n, hour, 1000n);
        assert.deepEqual(await store.readReserve(key), { committed: 61n, reserved: 0n });
        await assert.rejects(store.settle(key, "b", 1n, hour, -1n), /release must be a bigint >= 0/);
        // Exact at any size: a release one short of the reservation keeps 1 (doubles would see them equal).
        const big = 10n ** 25n + 7n;
        const bigKey = freshKey("release-big");
        await store.reserve(bigKey, "a", big, 2n * big, hour, 60_000);
        await store.settle(bigKey, "a", 0n, hour, big - 1n);
        assert.deepEqual(await store.readReserve(bigKey), { committed: 0n, reserved: 1n });
      });

      it("reserving an id again replaces its amount instead of adding to it", async () => {
        const key = freshKey("replace");
        await store.reserve(key, "a", 60n, 100n, hour, 60_000);
        assert.deepEqual(await store.reserve(key, "a", 90n, 100n, hour, 60_000), { ok: true, committed: 0n, reserved: 90n });
        assert.deepEqual(await store.reserve(key, "a", 101n, 100n, hour, 60_000), { ok: false, committed: 0n, reserved: 90n });
      });

      it("is exact for totals far beyond 2^53 and int64", async () => {
        const key = freshKey("big");
        const big = 10n ** 25n + 7n;
        assert.deepEqual(await store.reserve(key, "a", big, 3n * big, hour, 60_000), { ok: true, committed: 0n, reserved: big });
        await store.settle(key, "a", big + 1n, hour);
        assert.deepEqual(await store.reserve(key, "b", big, 3n * big, hour, 60_000), { ok: true, committed: big + 1n, reserved: big });
        assert.deepEqual(await store.reserve(key, "c", big, 3n * big, hour, 60_000), { ok: false, committed: big + 1n, reserved: big });
        assert.deepEqual(await store.reserve(key, "c", big - 1n, 3n * big, hour, 60_000), { ok: true, committed: big + 1n, reserved: 2n * big - 1n });
      });

      it("a reservation that is never settled lapses after reservationTtlMs", async () => {
        const key = freshKey("lapse");
        await store.reserve(key, "crashed", 100n, 100n, hour, 250);
        assert.equal((await store.reserve(key, "x", 1n, 100n, hour, 250)).ok, false);
        await sleep(400);
        assert.deepEqual(await store.readReserve(key), { committed: 0n, reserved: 0n });
        assert.deepEqual(await store.reserve(key, "x", 100n, 100n, hour, 60_000), { ok: true, committed: 0n, reserved: 100n });
      });

      it("only the lapsed reservations lapse: the others still count, and settle as usual", async () => {
        const key = freshKey("lapse-some");
        await store.reserve(key, "short", 30n, 100n, hour, 250);
        await store.reserve(key, "long", 50n, 100n, hour, 60_000);
        await store.reserve(key, "short-too", 10n, 100n, hour, 300);
        assert.deepEqual(await store.readReserve(key), { committed: 0n, reserved: 90n });
        await sleep(400);
        assert.deepEqual(await store.readReserve(key), { committed: 0n, reserved: 50n });
        assert.deepEqual(await store.reserve(key, "x", 51n, 100n, hour, 60_000), { ok: false, committed: 0n, reserved: 50n });
        await store.settle(key, "long", 20n, hour);
        assert.deepEqual(await store.readReserve(key), { committed: 20n, reserved: 0n });
        // A lapsed reservation settled late: its spend is committed, nothing is released twice.
        await store.settle(key, "short", 5n, hour);
        assert.deepEqual(await store.readReserve(key), { committed: 25n, reserved: 0n });
      });

      it("the whole key expires ttlMs after its last write", async () => {
        const key = freshKey("period");
        await store.reserve(key, "a", 10n, 100n, 300, 60_000);
        await store.settle(key, "a", 10n, 300);
        assert.deepEqual(await store.readReserve(key), { committed: 10n, reserved: 0n });
        await sleep(450);
        assert.deepEqual(await store.readReserve(key), { committed: 0n, reserved: 0n });
      });

      it("rejects bad arguments with a clear error", async () => {
        await assert.rejects(store.reserve(freshKey("bad"), "", 1n, 1n, 1000, 1000), /reservation id/);
        await assert.rejects(store.reserve(freshKey("bad"), "a", -1n, 1n, 1000, 1000), /amount must be a bigint >= 0/);
        await assert.rejects(store.settle(freshKey("bad"), "a", 1n, 0), /ttlMs/);
      });
    });

    describe("JSON documents", () => {
      it("get returns undefined when absent and the stored value after set", async () => {
        const key = freshKey("json");
        assert.equal(await store.getJson(key), undefined);
        await store.setJson(key, { state: "open", until: 123, nested: [1, "x"] }, 60_000);
        assert.deepEqual(await store.getJson(key), { state: "open", until: 123, nested: [1, "x"] });
      });

      it("casJson writes only when the stored value equals expected (undefined = absent)", async () => {
        const key = freshKey("cas");
        assert.equal(await store.casJson(key, { state: "open" }, { state: "half-open" }, 60_000), false);
        assert.equal(await store.casJson(key, undefined, { state: "open" }, 60_000), true);
        assert.equal(await store.casJson(key, undefined, { state: "open" }, 60_000), false);
        assert.equal(await store.casJson(key, { state: "closed" }, { state: "half-open" }, 60_000), false);
        const seen = await store.getJson<{ state: string }>(key);
        assert.equal(await store.casJson(key, seen, { state: "half-open" }, 60_000), true);
        assert.deepEqual(await store.getJson(key), { state: "half-open" });
      });

      it("lets exactly one of many concurrent contenders win", async () => {
        const key = freshKey("cas-race");
        await store.setJson(key, { state: "open" }, 60_000);
        const wins = await Promise.all(Array.from({ length: 50 }, (_, i) => store.casJson(key, { state: "open" }, { state: "half-open", by: i }, 60_000)));
        assert.equal(wins.filter(Boolean).length, 1);
      });

      it("documents expire after ttlMs", async () => {
        const key = freshKey("json-ttl");
        await store.setJson(key, 1, 250);
        assert.equal(await store.getJson(key), 1);
        await sleep(400);
        assert.equal(await store.getJson(key), undefined);
        assert.equal(await store.casJson(key, undefined, 2, 250), true);
      });
    });

    describe("latency statistics", () => {
      it("is undefined before any observation", async () => {
        assert.equal(await store.readLatency(freshKey("lat")), undefined);
      });

      it("averages observations; ttft is 0 until a streamed call reports one", async () => {
        const key = freshKey("lat");
        await store.recordLatency(key, 100, undefined, 3_600_000);
        assert.deepEqual(await store.readLatency(key), { samples: 1, ewmaMs: 100, ewmaTtftMs: 0 });
        await store.recordLatency(key, 300, 40, 3_600_000);
        const s = await store.readLatency(key);
        assert.ok(s !== undefined);
        assert.equal(s.samples, 2);
        // Two observations a moment apart weigh almost equally.
        assert.ok(Math.abs(s.ewmaMs - 200) < 0.5, `ewmaMs ${s.ewmaMs}`);
        assert.equal(s.ewmaTtftMs, 40);
      });

      it("older observations weigh less as half-lives pass", async () => {
        const key = freshKey("decay");
        await store.recordLatency(key, 1000, undefined, 100);
        await sleep(350);
        await store.recordLatency(key, 100, undefined, 100);
        const s = await store.readLatency(key);
        assert.ok(s !== undefined);
        // The old sample is worth at most 2^-3.5 ≈ 0.09 of the new one: mean <= (1000*0.09 + 100)/1.09.
        assert.ok(s.ewmaMs > 100 && s.ewmaMs < 175, `ewmaMs ${s.ewmaMs}`);
        assert.equal(s.samples, 1);
      });
    });
  });
}
