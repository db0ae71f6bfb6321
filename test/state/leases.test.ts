import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import pino from "pino";
import { createLeases, LEASE_START, type Leases } from "../../server/state/leases.js";
import { createMemoryStore } from "../../server/state/memory-store.js";
import { createRedisStore, type RedisStateStore } from "../../server/state/redis-store.js";
import { deleteRedisKeys } from "../support/routing.js";
import { freshKey } from "./store-behaviour.js";

// Quota leases (server/state/leases.ts) on the real Redis at 127.0.0.1:6379,
// under a key prefix unique to this run: two stores on one prefix are two
// replicas. Leases are short (LEASE_MS) so that they end within a test;
// what a lease holds is visible in the store's own totals, which is how
// these tests tell a request served from a lease from one that asked Redis.

const REDIS_URL = "redis://127.0.0.1:6379";
const prefix = `test-leases-${randomUUID().replaceAll("-", "")}`;
const LEASE_MS = 500;
const MINUTE = 60_000;
const HOUR = 3_600_000;
const silent = pino({ level: "silent" });

const opened: RedisStateStore[] = [];

function replica(leaseMs = LEASE_MS): { store: RedisStateStore; leases: Leases } {
  const store = createRedisStore({ url: REDIS_URL, keyPrefix: prefix, logger: silent, commandTimeoutMs: 5000, leaseMs });
  opened.push(store);
  return { store, leases: createLeases(store) };
}


/** admitOne takes one request from an rpm window of a roomy limit, which must admit it. */
async function admitOne(leases: Leases, rpm: string): Promise<void> {
  assert.equal((await leases.acquireWindows([{ key: rpm, amount: 1, limit: 1_000_000 }], MINUTE)).result.allowed, true);
}

after(async () => {
  await Promise.all(opened.map((s) => s.close()));
  await deleteRedisKeys(REDIS_URL, prefix);
});

describe("quota leases: windows", () => {
  it("serve requests from a lease taken beside the first, and give back what was not used when it ends", async () => {
    const { store, leases } = replica();
    const rpm = freshKey("rpm");
    const group = [{ key: rpm, amount: 1, limit: 64_000 }];
    const first = await leases.acquireWindows(group, MINUTE);
    assert.equal(first.result.allowed, true);
    // The first request asked Redis; a lease of LEASE_START requests was taken in the same round trip.
    await sleep(20);
    assert.equal(await store.windowUsage(rpm, MINUTE), 1 + LEASE_START);
    // The lease's entry is timed LEASE_MS ahead: what it hands out counts a whole window after it is handed out.
    const client = new Redis(REDIS_URL);
    // A window's key is tagged with its group, the logical key without its last segment (redis-store.ts).
    const cut = rpm.lastIndexOf(":");
    const entries = await client.zrange(`${prefix}:{${rpm.slice(0, cut)}}${rpm.slice(cut)}:w`, "0", "-1", "WITHSCORES");
    await client.quit();
    assert.deepEqual([entries[0]!.split(":")[1], entries[2]!.split(":")[1]], ["1", String(LEASE_START)]);
    assert.equal(Number(entries[3]) - Number(entries[1]), LEASE_MS);
    // The next requests come out of the lease: Redis's total does not move.
    for (let i = 0; i < LEASE_START / 2; i++) assert.equal((await leases.acquireWindows(group, MINUTE)).result.allowed, true);
    assert.equal(await store.windowUsage(rpm, MINUTE), 1 + LEASE_START);
    // When the lease ends, what it did not hand out goes back: Redis counts exactly what was admitted
    // (a renewal may have been taken once half the lease was used: let it end too).
    await sleep(2 * LEASE_MS + 200);
    assert.equal(await store.windowUsage(rpm, MINUTE), 1 + LEASE_START / 2);
  });

  it("reconcile a request's tokens into its lease while it lives, and into the lease's own entry after, together", async () => {
    const { store, leases } = replica();
    const group = [
      { key: `${freshKey("g")}:rpm`, amount: 1, limit: 1_000_000 },
      { key: "", amount: 100, limit: 10_000_000 },
    ];
    group[1]!.key = group[0]!.key.replace(/:rpm$/, ":tpm");
    await leases.acquireWindows(group, MINUTE);
    await sleep(20);
    const served = await leases.acquireWindows(group, MINUTE);
    assert.equal(await store.windowUsage(group[1]!.key, MINUTE), 100 * (1 + LEASE_START));
    // Used 40 of its 100: the 60 go back to the lease, not to Redis (Redis still holds the lease's entry).
    await served.taken!.adjust(1, -60);
    assert.equal(await store.windowUsage(group[1]!.key, MINUTE), 100 * (1 + LEASE_START));
    // Three more requests from the lease settle after it ended.
    const more = await leases.acquireWindows(group, MINUTE);
    const less = await leases.acquireWindows(group, MINUTE);
    const least = await leases.acquireWindows(group, MINUTE);
    await sleep(2 * LEASE_MS + 200);
    const before = await store.windowUsage(group[1]!.key, MINUTE);
    assert.equal(before, 100 + 40 + 100 + 100 + 100);
    // One used more than it took: the extra is counted at once, as a new entry.
    await more.taken!.adjust(1, 50);
    assert.equal(await store.windowUsage(group[1]!.key, MINUTE), before + 50);
    // Two used less: what they give back stays counted for now, and then comes out of the lease's own
    // entry in one call for both, LEASE_MS after the first.
    const adjusts: number[] = [];
    const windowAdjust = store.windowAdjust.bind(store);
    store.windowAdjust = (key, delta, windowMs, entry) => {
      adjusts.push(delta);
      return windowAdjust(key, delta, windowMs, entry);
    };
    await less.taken!.adjust(1, -70);
    await least.taken!.adjust(1, -30);
    assert.equal(await store.windowUsage(group[1]!.key, MINUTE), before + 50);
    await sleep(LEASE_MS + 100);
    assert.deepEqual(adjusts, [-100]);
    assert.equal(await store.windowUsage(group[1]!.key, MINUTE), 100 + 40 + 150 + 30 + 70);
  });

  it("send late give-backs at once when the leases close", async () => {
    const { store, leases } = replica();
    const other = replica().store;
    const tpm = freshKey("late");
    const group = [{ key: tpm, amount: 100, limit: 100_000_000 }];
    await leases.acquireWindows(group, MINUTE);
    await sleep(20);
    const served = await leases.acquireWindows(group, MINUTE);
    await sleep(LEASE_MS + 100);
    assert.equal(await store.windowUsage(tpm, MINUTE), 100 + 100);
    await served.taken!.adjust(0, -60);
    await leases.close();
    await sleep(50);
    assert.equal(await other.windowUsage(tpm, MINUTE), 100 + 40);
  });

  it("grow with demand, so a busy replica asks Redis a few times per lease, not every few requests", async () => {
    const { store, leases } = replica();
    const rpm = freshKey("busy");
    // Paced, so that each renewal lands before its lease runs out: the leases grow because each is half
    // used long before half its time, not because a request found one empty.
    for (let i = 0; i < 80; i++) {
      await admitOne(leases, rpm);
      await sleep(2);
    }
    // A lease of LEASE_START would hold at most LEASE_START; grown ones hold more.
    const held = (await store.windowUsage(rpm, MINUTE)) - 80;
    assert.ok(held > 2 * LEASE_START, `leases hold ${held} after 80 requests`);
    await sleep(2 * LEASE_MS + 200);
    assert.equal(await store.windowUsage(rpm, MINUTE), 80);
  });

  it("renew a lease once half its time has passed, so that a slow, steady demand never finds it gone", async () => {
    const { store, leases } = replica();
    const rpm = freshKey("slow");
    const take = () => admitOne(leases, rpm);
    await take();
    await sleep(20);
    assert.equal(await store.windowUsage(rpm, MINUTE), 1 + LEASE_START);
    // One request past half the lease's time: served from it, and a renewal is taken beside it.
    await sleep(LEASE_MS / 2);
    await take();
    await sleep(20);
    assert.equal(await store.windowUsage(rpm, MINUTE), 1 + LEASE_START + LEASE_START);
    // After the first lease ended, the next request is served from the renewal: Redis was asked once in all.
    await sleep(LEASE_MS / 2);
    await take();
    assert.deepEqual(leases.stats(), { windowsFromLease: 2, windowsFromStore: 1, budgetsFromLease: 0, budgetsFromStore: 0 });
    await sleep(2 * LEASE_MS + 200);
    assert.equal(await store.windowUsage(rpm, MINUTE), 3);
  });

  it("shrink leases again when demand falls", async () => {
    const { store, leases } = replica();
    const rpm = freshKey("falls");
    const take = () => admitOne(leases, rpm);
    let admitted = 0;
    for (; admitted < 200; admitted++) {
      await take();
      await sleep(1);
    }
    const busy = (await store.windowUsage(rpm, MINUTE)) - admitted;
    // Then a request every LEASE_MS / 4: each lease is renewed at half its time having served two.
    for (let i = 0; i < 24; i++, admitted++) {
      await take();
      await sleep(LEASE_MS / 4);
    }
    const slow = (await store.windowUsage(rpm, MINUTE)) - admitted;
    assert.ok(busy >= 8 * LEASE_START, `leases held ${busy} while busy`);
    assert.ok(slow <= 2 * LEASE_START, `leases held ${slow} once demand fell`);
  });

  it("serve steady bursts from leases when requests give back most of their estimate", async () => {
    const { leases } = replica();
    const key = freshKey("bursts");
    const group = [
      { key: `${key}:rpm`, amount: 1, limit: 1_000_000_000 },
      { key: `${key}:tpm`, amount: 16_000, limit: 1_000_000_000 },
    ];
    // 16 requests at once every 100 ms, each running 100 ms and using 150 of its 16,000 estimated tokens:
    // what they give back is not demand, and must not make the next lease smaller.
    const burst = () =>
      Promise.all(
        Array.from({ length: 16 }, async () => {
          const a = await leases.acquireWindows(group, MINUTE);
          await sleep(100);
          await a.taken!.adjust(1, 150 - 16_000);
        }),
      );
    for (let i = 0; i < 10; i++) await burst();
    const warm = leases.stats();
    for (let i = 0; i < 10; i++) await burst();
    const steady = leases.stats();
    const fromStore = steady.windowsFromStore - warm.windowsFromStore;
    assert.equal(steady.windowsFromLease + steady.windowsFromStore - warm.windowsFromLease - warm.windowsFromStore, 160);
    assert.ok(fromStore < 16, `${fromStore} of 160 requests asked Redis once leases had warmed up`);
  });

  it("a replaced lease keeps its requests' give-backs until its time is up, then returns them in one call", async () => {
    const { store, leases } = replica();
    const tpm = freshKey("replaced");
    const take = () => leases.acquireWindows([{ key: tpm, amount: 100, limit: 100_000_000 }], MINUTE);
    await take();
    await sleep(20);
    // Three requests from the first lease: more than half of it used, so a renewal replaces it.
    await take();
    await take();
    const third = await take();
    await sleep(20);
    const total = await store.windowUsage(tpm, MINUTE);
    assert.equal(total, 100 + 400 + 400, "the first request, the first lease, its replacement");
    // The third request used 40 of its 100: the replaced lease takes the 60 back, Redis is not asked.
    await third.taken!.adjust(0, -60);
    assert.equal(await store.windowUsage(tpm, MINUTE), total);
    // Once both leases end, Redis counts what the four requests used.
    await sleep(2 * LEASE_MS + 200);
    assert.equal(await store.windowUsage(tpm, MINUTE), 100 + 100 + 100 + 40);
  });

  it("never lease a small limit: each request asks Redis, and the window is exact", async () => {
    const { store, leases } = replica();
    const rpm = freshKey("small");
    for (let i = 1; i <= 5; i++) {
      assert.equal((await leases.acquireWindows([{ key: rpm, amount: 1, limit: 100 }], MINUTE)).result.allowed, true);
      assert.equal(await store.windowUsage(rpm, MINUTE), i);
    }
  });

  it("never admit more than the limit across replicas, and count exactly what was admitted once leases end", async () => {
    const replicas = [replica(), replica()];
    const rpm = freshKey("shared");
    const limit = 640;
    let admitted = 0;
    // Bursts from both replicas, well past the limit, in waves so leases are taken, used and renewed.
    for (let wave = 0; wave < 20; wave++) {
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => replicas[i % 2]!.leases.acquireWindows([{ key: rpm, amount: 1, limit }], MINUTE)),
      );
      admitted += results.filter((r) => r.result.allowed).length;
      assert.ok((await replicas[0]!.store.windowUsage(rpm, MINUTE)) <= limit, "Redis never counts past the limit");
      await sleep(5);
    }
    assert.ok(admitted <= limit, `admitted ${admitted} of a limit of ${limit}`);
    await sleep(2 * LEASE_MS + 200);
    assert.equal(await replicas[0]!.store.windowUsage(rpm, MINUTE), admitted);
    // With the leases ended, the rest of the limit is there to take, exactly.
    let more = 0;
    while ((await replicas[more % 2]!.leases.acquireWindows([{ key: rpm, amount: 1, limit }], MINUTE)).result.allowed) more++;
    assert.equal(admitted + more, limit);
  });

  it("a refused group gives back nothing it did not take, and a lease's give-back comes out of its own entry only", async () => {
    const a = replica();
    const b = replica(0);
    const tpm = freshKey("tpm");
    // Replica A holds a lease; replica B (no leases) takes and gives back 500 by its own entry.
    await a.leases.acquireWindows([{ key: tpm, amount: 10, limit: 1_000_000 }], MINUTE);
    await sleep(20);
    const withLease = await a.store.windowUsage(tpm, MINUTE);
    const taken = await b.leases.acquireWindows([{ key: tpm, amount: 500, limit: 1_000_000 }], MINUTE);
    await taken.taken!.adjust(0, -500);
    assert.equal(await a.store.windowUsage(tpm, MINUTE), withLease);
    // A's lease entry is untouched: it still hands out what it holds without asking Redis.
    for (let i = 0; i < LEASE_START / 2; i++) await a.leases.acquireWindows([{ key: tpm, amount: 10, limit: 1_000_000 }], MINUTE);
    assert.equal(await a.store.windowUsage(tpm, MINUTE), withLease);
    // Its end gives back what it did not hand out, from its own entry: Redis counts A's requests only.
    await sleep(2 * LEASE_MS + 200);
    assert.equal(await a.store.windowUsage(tpm, MINUTE), 10 * (1 + LEASE_START / 2));
  });

  it("with leaseMs 0, or on the memory store, every acquire is exact", async () => {
    const memory = createMemoryStore();
    const leases = createLeases(memory);
    const rpm = freshKey("mem");
    await leases.acquireWindows([{ key: rpm, amount: 1, limit: 1_000_000 }], MINUTE);
    await leases.acquireWindows([{ key: rpm, amount: 1, limit: 1_000_000 }], MINUTE);
    assert.equal(await memory.windowUsage(rpm, MINUTE), 2);
    await memory.close();
  });
});

describe("quota leases: budgets", () => {
  it("reserve from a lease, record each request's spend at once, and release the rest when the lease ends", async () => {
    const { store, leases } = replica();
    const budget = freshKey("budget");
    const limit = 1_000_000n;
    const first = await leases.reserve(budget, "r1", 100n, limit, limit, HOUR, MINUTE);
    assert.equal(first.ok, true);
    await sleep(20);
    // The lease (LEASE_START requests' worth) is reserved beside the request's own 100.
    assert.deepEqual(await store.readReserve(budget), { committed: 0n, reserved: 100n + 100n * BigInt(LEASE_START) });
    const served = await leases.reserve(budget, "r2", 100n, limit, limit, HOUR, MINUTE);
    assert.equal(served.ok, true);
    assert.deepEqual(await store.readReserve(budget), { committed: 0n, reserved: 100n + 100n * BigInt(LEASE_START) });
    // A lease-served request's spend is in Redis as soon as it settles, and its share of the lease is released.
    await served.settle(30n);
    assert.deepEqual(await store.readReserve(budget), { committed: 30n, reserved: 100n + 100n * BigInt(LEASE_START - 1) });
    await first.settle(70n);
    // A request that spent nothing gives its share back to the lease, which then releases it on ending.
    const unused = await leases.reserve(budget, "r3", 100n, limit, limit, HOUR, MINUTE);
    await unused.settle(0n);
    await sleep(2 * LEASE_MS + 200);
    assert.deepEqual(await store.readReserve(budget), { committed: 100n, reserved: 0n });
  });

  it("renew a budget lease once half its time has passed", async () => {
    const { store, leases } = replica();
    const budget = freshKey("slow-budget");
    const limit = 1_000_000n;
    const reserve = async (id: string) => {
      const r = await leases.reserve(budget, id, 100n, limit, limit, HOUR, MINUTE);
      assert.equal(r.ok, true);
      return r;
    };
    await (await reserve("r1")).settle(10n);
    await sleep(LEASE_MS / 2 + 20);
    await (await reserve("r2")).settle(10n);
    await sleep(LEASE_MS / 2);
    // The first lease has ended; the renewal taken beside r2 serves r3.
    await (await reserve("r3")).settle(10n);
    assert.deepEqual(leases.stats(), { windowsFromLease: 0, windowsFromStore: 0, budgetsFromLease: 2, budgetsFromStore: 1 });
    await sleep(2 * LEASE_MS + 200);
    assert.deepEqual(await store.readReserve(budget), { committed: 30n, reserved: 0n });
  });

  it("never lease past the soft limit, or where 63 more leases would not fit", async () => {
    const { store, leases } = replica();
    const soft = freshKey("soft");
    // Under a soft limit of 300, a lease of 400 does not fit: the request is reserved alone.
    await leases.reserve(soft, "a", 100n, 1_000_000n, 300n, HOUR, MINUTE);
    await sleep(20);
    assert.deepEqual(await store.readReserve(soft), { committed: 0n, reserved: 100n });
    const tight = freshKey("tight");
    // 64 leases of 400 would need 25,600: a limit of 20,000 is too tight to lease.
    await leases.reserve(tight, "a", 100n, 20_000n, 20_000n, HOUR, MINUTE);
    await sleep(20);
    assert.deepEqual(await store.readReserve(tight), { committed: 0n, reserved: 100n });
  });

  it("never reserve more than the limit across replicas, and commit exactly what was spent", async () => {
    const replicas = [replica(), replica()];
    const budget = freshKey("shared-budget");
    const limit = 64_000n;
    const held: Array<(actual: bigint) => Promise<void>> = [];
    let ok = 0;
    for (let wave = 0; wave < 20; wave++) {
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => replicas[i % 2]!.leases.reserve(budget, `w${wave}-${i}`, 100n, limit, limit, HOUR, MINUTE)),
      );
      for (const r of results) if (r.ok) {
        ok++;
        held.push(r.settle);
      }
      const now = await replicas[0]!.store.readReserve(budget);
      assert.ok(now.committed + now.reserved <= limit, `committed ${now.committed} + reserved ${now.reserved} within ${limit}`);
    }
    assert.ok(BigInt(ok) * 100n <= limit, `${ok} reservations of 100 within ${limit}`);
    await Promise.all(held.map((settle) => settle(100n)));
    await sleep(2 * LEASE_MS + 200);
    assert.deepEqual(await replicas[0]!.store.readReserve(budget), { committed: BigInt(ok) * 100n, reserved: 0n });
  });
});
