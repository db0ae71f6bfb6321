import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { createServer } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { after, afterEach, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import pino, { type Logger } from "pino";
import { batchArguments, buildBatchScript, type RedisOp } from "../../server/state/redis-scripts.js";
import { createRedisStore, type RedisStateStore, type RedisStoreOptions } from "../../server/state/redis-store.js";
import type { StateStore } from "../../server/state/store.js";
import { describeStoreBehaviour, ENTRY, freshKey, opaque, opaqueAll } from "./store-behaviour.js";

// The Redis store against the real Redis at 127.0.0.1:6379, under a key
// prefix unique to this run (deleted afterwards); the fallback tests run
// their own redis-server child on a free port.

const REDIS_URL = "redis://127.0.0.1:6379";
const prefix = `test-state-${randomUUID().replaceAll("-", "")}`;

interface CapturedLog {
  logger: Logger;
  lines: { level: number; msg: string }[];
}

function captureLogger(): CapturedLog {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s) as { level: number; msg: string }) });
  return { logger, lines };
}

const silent = pino({ level: "silent" });

// A generous command timeout keeps a loaded test machine from tripping the fallback mid-assertion.
function openStore(extra: Partial<RedisStoreOptions> = {}): RedisStateStore {
  return createRedisStore({ url: REDIS_URL, keyPrefix: prefix, logger: silent, commandTimeoutMs: 2000, ...extra });
}

async function deletePrefix(client: Redis, match: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await client.scan(cursor, "MATCH", `${match}:*`, "COUNT", 500);
    cursor = next;
    if (keys.length > 0) await client.del(...keys);
  } while (cursor !== "0");
}

async function waitFor(what: string, condition: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

/** commandCalls reads how many times a Redis server has run a command (INFO commandstats). */
async function commandCalls(client: Redis, command: string): Promise<number> {
  return Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec((await client.info("commandstats")) as string)?.[1] ?? 0);
}

/** PrivateRedis is a redis-server child on a free port, for tests that stop Redis or count its commands. */
class PrivateRedis {
  port = 0;
  child: ChildProcess | undefined;

  /** choosePort picks a free port for the next start(). */
  async choosePort(): Promise<void> {
    const server = createServer();
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const address = server.address();
    server.close();
    await once(server, "close");
    assert.ok(address !== null && typeof address === "object");
    this.port = address.port;
  }

  async start(): Promise<void> {
    if (this.port === 0) await this.choosePort();
    const port = this.port;
    const proc = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], {
      stdio: "ignore",
    });
    this.child = proc;
    const probe = new Redis({ port, host: "127.0.0.1", lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    probe.on("error", () => undefined);
    const deadline = Date.now() + 5000;
    try {
      for (;;) {
        try {
          await probe.connect();
          await probe.ping();
          return;
        } catch (err) {
          probe.disconnect();
          if (Date.now() > deadline || proc.exitCode !== null) throw err;
          await sleep(50);
        }
      }
    } finally {
      probe.disconnect();
    }
  }

  async stop(): Promise<void> {
    const proc = this.child;
    this.child = undefined;
    if (proc === undefined || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = once(proc, "exit");
    proc.kill("SIGKILL");
    await exited;
  }
}

let admin: Redis;
before(async () => {
  admin = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await admin.connect();
});
after(async () => {
  await deletePrefix(admin, prefix);
  await admin.quit();
});

describeStoreBehaviour("redis", async () => {
  const store = openStore();
  return { store, cleanup: () => store.close() };
});

describe("redis store: two replicas on one Redis", () => {
  let a: StateStore;
  let b: StateStore;
  before(() => {
    a = openStore();
    b = openStore();
  });
  after(async () => {
    await Promise.all([a.close(), b.close()]);
  });

  it("200 concurrent acquires split across both replicas admit exactly 100", async () => {
    const key = freshKey("rpm");
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? a : b).windowAcquire(key, 1, 100, 60_000)));
    assert.equal(results.filter((r) => r.allowed).length, 100);
    assert.ok(a.healthy() && b.healthy(), "no call fell back to local state");
    assert.equal(await a.windowUsage(key, 60_000), 100);
    assert.equal(await b.windowUsage(key, 60_000), 100);
  });

  it("200 concurrent two-window acquires across both replicas admit exactly 100, and the refused count nowhere", async () => {
    const group = freshKey("scope");
    const requests = [
      { key: `${group}:rpm`, amount: 1, limit: 1_000 },
      { key: `${group}:tpm`, amount: 30, limit: 3_000 },
    ];
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? a : b).windowsAcquire(requests, 60_000)));
    assert.equal(results.filter((r) => r.allowed).length, 100);
    assert.ok(a.healthy() && b.healthy(), "no call fell back to local state");
    assert.equal(await a.windowUsage(`${group}:rpm`, 60_000), 100);
    assert.equal(await b.windowUsage(`${group}:tpm`, 60_000), 3_000);
  });

  it("200 concurrent reservations admit exactly floor(limit / amount)", async () => {
    const key = freshKey("budget");
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => (i % 2 === 0 ? a : b).reserve(key, `req-${i}`, 7n, 500n, 3_600_000, 60_000)),
    );
    assert.equal(results.filter((r) => r.ok).length, 71);
    assert.ok(a.healthy() && b.healthy());
    assert.deepEqual(await b.readReserve(key), { committed: 0n, reserved: 497n });
  });

  it("casJson lets exactly one of many contenders on both replicas win", async () => {
    const key = freshKey("breaker");
    await a.setJson(key, { state: "open", since: 1 }, 60_000);
    const wins = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? a : b).casJson(key, { state: "open", since: 1 }, { state: "half-open", probe: i }, 60_000)),
    );
    assert.equal(wins.filter(Boolean).length, 1);
    const winner = wins.indexOf(true);
    assert.deepEqual(await b.getJson(key), { state: "half-open", probe: winner });
  });

  it("a crashed replica's reservation lapses after its TTL and frees the budget", async () => {
    const key = freshKey("crash");
    const doomed = openStore();
    assert.equal((await doomed.reserve(key, "in-flight", 90n, 100n, 3_600_000, 400)).ok, true);
    await doomed.close(); // never settles
    assert.equal((await a.reserve(key, "other", 20n, 100n, 3_600_000, 60_000)).ok, false);
    await sleep(550);
    assert.deepEqual(await a.reserve(key, "other", 20n, 100n, 3_600_000, 60_000), { ok: true, committed: 0n, reserved: 20n });
  });

  it("spend settled on one replica is seen by the other", async () => {
    const key = freshKey("spend");
    await a.reserve(key, "r1", 10n, 100n, 3_600_000, 60_000);
    await b.settle(key, "r1", 12n, 3_600_000);
    assert.deepEqual(await a.readReserve(key), { committed: 12n, reserved: 0n });
  });

  it("keeps every key of one logical key under one hash tag", async () => {
    const logical = freshKey("tag");
    await a.windowAcquire(logical, 1, 10, 60_000);
    await a.reserve(logical, "r", 1n, 10n, 60_000, 60_000);
    await a.setJson(logical, 1, 60_000);
    await a.recordLatency(logical, 5, undefined, 60_000);
    const keys = (await admin.keys(`${prefix}:*`)).filter((k) => k.includes(logical.slice(logical.lastIndexOf(":") + 1))).sort();
    // A window's tag is its group: the logical key without its last segment.
    const group = logical.slice(0, logical.lastIndexOf(":"));
    const windowBase = `${prefix}:{${group}}${logical.slice(group.length)}`;
    assert.deepEqual(keys, [...["j", "l", "r"].map((s) => `${prefix}:{${logical}}:${s}`), `${windowBase}:w`, `${windowBase}:wm`]);
  });

  it("keeps the windows of one group in one slot, so they are acquired in one call", async () => {
    const group = freshKey("group");
    const requests = [
      { key: `${group}:rpm`, amount: 1, limit: 10 },
      { key: `${group}:tpm`, amount: 500, limit: 1000 },
    ];
    assert.equal((await a.windowsAcquire(requests, 60_000)).allowed, true);
    const keys = (await admin.keys(`${prefix}:*`)).filter((k) => k.includes(group)).sort();
    assert.deepEqual(keys, [`${prefix}:{${group}}:rpm:w`, `${prefix}:{${group}}:rpm:wm`, `${prefix}:{${group}}:tpm:w`, `${prefix}:{${group}}:tpm:wm`]);
    // The other replica sees both windows, and neither moves when one of them is full.
    const second = await b.windowsAcquire([requests[0]!, { ...requests[1]!, amount: 600 }], 60_000);
    assert.deepEqual(second, {
      allowed: false,
      windows: [
        { allowed: true, used: 1, retryAfterMs: 0 },
        { allowed: false, used: 500, retryAfterMs: second.windows[1]!.retryAfterMs },
      ],
    });
    // Up to 1 ms over the window: an entry is timed at the next whole millisecond.
    assert.ok(second.windows[1]!.retryAfterMs > 59_000 && second.windows[1]!.retryAfterMs <= 60_001, String(second.windows[1]!.retryAfterMs));
    assert.equal(await a.windowUsage(`${group}:rpm`, 60_000), 1);
  });

  it("re-sends a script with EVAL when Redis has forgotten it (restart, SCRIPT FLUSH)", async () => {
    const key = freshKey("noscript");
    await a.windowAcquire(key, 1, 10, 60_000);
    await admin.script("FLUSH");
    assert.deepEqual(opaque(await a.windowAcquire(key, 1, 10, 60_000)), { allowed: true, used: 2, retryAfterMs: 0, entry: ENTRY });
    assert.ok(a.healthy());
  });
});

describe("redis store: operations of one turn travel as one batch", () => {
  // A private server, so its command counts are this suite's alone.
  const server = new PrivateRedis();
  let direct: Redis;
  let store: StateStore;
  const evalshas = () => commandCalls(direct, "evalsha");
  before(async () => {
    await server.start();
    direct = new Redis({ port: server.port, host: "127.0.0.1" });
    store = createRedisStore({ url: `redis://127.0.0.1:${server.port}`, keyPrefix: prefix, logger: silent, commandTimeoutMs: 2000 });
  });
  after(async () => {
    await store.close();
    direct.disconnect();
    await server.stop();
  });

  it("sends the operations issued in one turn as one EVALSHA, and each gets its own reply", async () => {
    const key = freshKey("batch-one");
    await store.windowUsage(`${key}:tpm`, 60_000);
    const before = await evalshas();
    const [acquired, reserved, usage] = await Promise.all([
      store.windowsAcquire([{ key: `${key}:rpm`, amount: 1, limit: 5 }], 60_000),
      store.reserve(key, "r1", 7n, 100n, 60_000, 60_000),
      store.windowUsage(`${key}:tpm`, 60_000),
    ]);
    assert.deepEqual(opaqueAll(acquired), { allowed: true, windows: [{ allowed: true, used: 1, retryAfterMs: 0, entry: ENTRY }] });
    assert.deepEqual(reserved, { ok: true, committed: 0n, reserved: 7n });
    assert.equal(usage, 0);
    assert.equal((await evalshas()) - before, 1);
  });

  it("with usedUpperBound, an acquire drops departed entries once per 600th of the window, not every time", async () => {
    const key = freshKey("batch-lazy");
    const take = (usedUpperBound?: boolean) => store.windowsAcquire([{ key: `${key}:rpm`, amount: 1, limit: 100 }], 600_000, { usedUpperBound });
    // The second trims (a window never trimmed is due at once); the next is due a second later.
    await take(true);
    await take(true);
    const before = await commandCalls(direct, "zrangebyscore");
    for (let i = 0; i < 5; i++) assert.equal((await take(true)).windows[0]!.used, 3 + i);
    assert.equal((await commandCalls(direct, "zrangebyscore")) - before, 0);
    for (let i = 0; i < 5; i++) await take();
    assert.equal((await commandCalls(direct, "zrangebyscore")) - before, 5);
  });

  it("a plain command sends the operations issued before it first, so Redis applies them in the order they were issued", async () => {
    const key = freshKey("batch-order");
    // The compare-and-set (a script operation) is issued before the SET (a plain command): it must find the key absent.
    const [swapped] = await Promise.all([store.casJson(key, undefined, { v: 1 }, 60_000), store.setJson(key, { v: 2 }, 60_000)]);
    assert.equal(swapped, true);
    assert.deepEqual(await store.getJson(key), { v: 2 });
  });

  it("one operation's error is its own: the others in its batch still run", async () => {
    const key = freshKey("batch-error");
    // A string where the window's sorted set belongs.
    await direct.set(`${prefix}:{${key}}:rpm:w`, "not a sorted set");
    const [broken, fine] = await Promise.allSettled([store.windowAcquire(`${key}:rpm`, 1, 5, 60_000), store.reserve(key, "r1", 1n, 10n, 60_000, 60_000)]);
    assert.equal(broken.status, "rejected");
    assert.match(String((broken as PromiseRejectedResult).reason), /WRONGTYPE/);
    assert.deepEqual(fine, { status: "fulfilled", value: { ok: true, committed: 0n, reserved: 1n } });
    assert.ok(store.healthy(), "a wrong key is the caller's error, not an unreachable Redis");
  });

  it("a burst larger than one batch goes out in bounded batches, and every operation is answered", async () => {
    const key = freshKey("batch-burst");
    const before = await evalshas();
    const results = await Promise.all(Array.from({ length: 200 }, () => store.windowAcquire(`${key}:rpm`, 1, 150, 60_000)));
    assert.equal(results.filter((r) => r.allowed).length, 150);
    // 200 acquires in batches of at most 64: 64 + 64 + 64 + 8.
    assert.equal((await evalshas()) - before, 4);
    assert.equal(await store.windowUsage(`${key}:rpm`, 60_000), 150);
  });

  it("a reservation hash lasts at least ttlMs after every write, without an expiry renewed on each", async () => {
    const key = freshKey("batch-ttl");
    const hash = `${prefix}:{${key}}:r`;
    await store.reserve(key, "r1", 1n, 10n, 10_000, 60_000);
    const first = await direct.pttl(hash);
    // Set an eighth beyond the asked 10 s.
    assert.ok(first > 11_000 && first <= 11_251, String(first));
    await sleep(300);
    await store.settle(key, "r1", 1n, 10_000);
    const kept = await direct.pttl(hash);
    assert.ok(kept >= 10_000 && kept < first - 250, `not renewed: ${kept} after ${first}`);
    // A write that asks for longer than the expiry lasts renews it.
    await store.reserve(key, "r2", 1n, 10n, 20_000, 60_000);
    const longer = await direct.pttl(hash);
    assert.ok(longer > 20_000 && longer <= 22_501, String(longer));
  });
});

describe("redis store: cached JSON reads (client tracking)", () => {
  // A private server, so its command counts are this suite's alone.
  const server = new PrivateRedis();
  let direct: Redis;
  let a: RedisStateStore;
  let b: RedisStateStore;
  const gets = () => commandCalls(direct, "get");
  before(async () => {
    await server.start();
    direct = new Redis({ port: server.port, host: "127.0.0.1" });
    const url = `redis://127.0.0.1:${server.port}`;
    a = createRedisStore({ url, keyPrefix: prefix, logger: silent, commandTimeoutMs: 2000 });
    b = createRedisStore({ url, keyPrefix: prefix, logger: silent, commandTimeoutMs: 2000 });
    await waitFor("read caching on both replicas", () => a.readCacheActive() && b.readCacheActive(), 5000);
  });
  after(async () => {
    await Promise.all([a.close(), b.close()]);
    direct.disconnect();
    await server.stop();
  });

  async function eventually(read: () => Promise<unknown>, expected: unknown): Promise<void> {
    const deadline = Date.now() + 2000;
    let value = await read();
    while (JSON.stringify(value) !== JSON.stringify(expected) && Date.now() < deadline) {
      await sleep(5);
      value = await read();
    }
    assert.deepEqual(value, expected);
  }

  it("answers repeated reads without asking Redis, and sees the other replica's write", async () => {
    const key = freshKey("cached");
    const before = await gets();
    for (let i = 0; i < 20; i++) assert.equal(await a.getJson(key), undefined);
    assert.equal((await gets()) - before, 1, "one GET for 20 reads");
    await b.setJson(key, { state: "open" }, 60_000);
    await eventually(() => a.getJson(key), { state: "open" });
    // Cached again after the change.
    const after = await gets();
    for (let i = 0; i < 20; i++) assert.deepEqual(await a.getJson(key), { state: "open" });
    assert.equal((await gets()) - after, 0);
  });

  it("reads its own writes at once, and returns a fresh object on every read", async () => {
    const key = freshKey("own");
    assert.equal(await a.getJson(key), undefined);
    await a.setJson(key, { n: 1 }, 60_000);
    const first = await a.getJson<{ n: number }>(key);
    assert.deepEqual(first, { n: 1 });
    first!.n = 99;
    assert.deepEqual(await a.getJson(key), { n: 1 });
    assert.equal(await a.casJson(key, { n: 1 }, { n: 2 }, 60_000), true);
    assert.deepEqual(await a.getJson(key), { n: 2 });
  });

  it("a cached value still lapses with the key's TTL", async () => {
    const key = freshKey("ttl");
    await b.setJson(key, "soon gone", 300);
    assert.equal(await a.getJson(key), "soon gone");
    const before = await gets();
    assert.equal(await a.getJson(key), "soon gone");
    assert.equal((await gets()) - before, 0, "served from the cache");
    await sleep(400);
    assert.equal(await a.getJson(key), undefined);
  });

  it("losing the invalidation connection empties the cache until tracking is back", async () => {
    const key = freshKey("redirect-lost");
    assert.equal(await a.getJson(key), undefined);
    const clients = (await direct.client("LIST")) as string;
    const subs = clients
      .split("\n")
      .filter((l) => l.includes("name=llmgw-invalidations"))
      .map((l) => /id=(\d+)/.exec(l)![1]!);
    assert.equal(subs.length, 2);
    for (const id of subs) await direct.client("KILL", "ID", id);
    // Invalidations sent meanwhile are lost, so nothing may be served from the cache.
    await b.setJson(key, "written while a was blind", 60_000);
    assert.equal(await a.getJson(key), "written while a was blind");
    await waitFor("tracking to come back on both replicas", () => a.readCacheActive() && b.readCacheActive(), 5000);
    assert.equal(await a.getJson(key), "written while a was blind");
    await b.setJson(key, "after", 60_000);
    await eventually(() => a.getJson(key), "after");
  });
});

// The production script with now_ms() reading the time from an extra last
// argument, so the Lua logic can be checked at exact instants.
describe("redis scripts on a controlled clock", () => {
  const script = buildBatchScript("local __now = tonumber(table.remove(ARGV))\nlocal function now_ms() return __now end\n");
  const k = (logical: string, s: string) => `${prefix}:{${logical}}:${s}`;
  // Runs one operation through the batch script at instant `now`.
  const call = async (op: RedisOp, keys: string[], args: (string | number)[], now: number) => {
    const [reply] = (await admin.eval(script.source, ...batchArguments([{ op, keys, args }]), now)) as unknown[];
    if (reply instanceof Error) throw reply;
    return reply;
  };
  // One window through windowsAcquire, its entry held `hold` ms ahead: the reply is {allowed, the
  // entries' time, then that window's had-room, used, retryAfterMs, entry sequence}. The time is
  // checked here (the next whole millisecond plus the hold, whether or not anything was counted),
  // and the window's four values are returned.
  const acquire = async (logical: string, amount: number, limit: number, windowMs: number, now: number, trim: "exact" | "lazy" = "exact", hold = 0) => {
    const reply = (await call("windowsAcquire", [k(logical, "w"), k(logical, "wm")], [windowMs, trim, hold, amount, limit], now)) as [number, number, number, string, number, number];
    const [allowed, at, ...window] = reply;
    assert.equal(at, Math.ceil(now) + hold, "the entries' time");
    // One window: the call is allowed exactly when it had room.
    assert.equal(allowed, window[0]);
    return window;
  };
  const usage = (logical: string, windowMs: number, now: number) => call("windowUsage", [k(logical, "w"), k(logical, "wm")], [windowMs], now);
  // A give-back from one entry passes its time and sequence as well.
  const adjust = (logical: string, delta: number, windowMs: number, now: number, entry?: { at: number; seq: number }) =>
    call("windowAdjust", [k(logical, "w"), k(logical, "wm")], entry === undefined ? [delta, windowMs] : [delta, windowMs, entry.at, entry.seq], now);

  it("runs a batch's operations in order, at one instant", async () => {
    const key = freshKey("lua-batch");
    const once = { op: "windowsAcquire" as const, keys: [k(key, "w"), k(key, "wm")], args: [1000, "exact", 0, 1, 1] };
    const replies = await admin.eval(script.source, ...batchArguments([once, once, { op: "windowUsage", keys: once.keys, args: [1000] }]), 4e6);
    // The second finds the first's entry (sequence 1, timed at this instant), which leaves a whole window after it, and counts nothing.
    assert.deepEqual(replies, [[1, 4e6, 1, "1", 0, 1], [0, 4e6, 0, "1", 1000, 0], "1"]);
  });

  it("an entry counts while now - time < windowMs and leaves exactly at windowMs", async () => {
    const key = freshKey("lua-edge");
    assert.deepEqual(await acquire(key, 1, 1, 1000, 1_000_000), [1, "1", 0, 1]);
    assert.deepEqual(await acquire(key, 1, 1, 1000, 1_000_999), [0, "1", 1, 0]);
    // The first entry has left; the window keeps its sequence.
    assert.deepEqual(await acquire(key, 1, 1, 1000, 1_001_000), [1, "1", 0, 2]);
  });

  it("retryAfterMs is the time until enough of the oldest entries leave", async () => {
    const key = freshKey("lua-retry");
    await acquire(key, 3, 10, 60_000, 0 + 5e6);
    await acquire(key, 4, 10, 60_000, 10_000 + 5e6);
    await acquire(key, 3, 10, 60_000, 15_000 + 5e6);
    assert.deepEqual(await acquire(key, 2, 10, 60_000, 15_000 + 5e6), [0, "10", 45_000, 0]);
    assert.deepEqual(await acquire(key, 5, 10, 60_000, 15_000 + 5e6), [0, "10", 55_000, 0]);
    assert.deepEqual(await acquire(key, 2, 10, 60_000, 60_000 + 5e6), [1, "9", 0, 4]);
  });

  it("windowAdjust gives back from the newest entries, so older ones still leave on time", async () => {
    const key = freshKey("lua-adjust");
    await acquire(key, 10, 100, 1000, 7e6);
    await acquire(key, 10, 100, 1000, 7e6 + 500);
    await call("windowAdjust", [k(key, "w"), k(key, "wm")], [-15, 1000], 7e6 + 500);
    assert.equal(await call("windowUsage", [k(key, "w"), k(key, "wm")], [1000], 7e6 + 500), "5");
    assert.equal(await call("windowUsage", [k(key, "w"), k(key, "wm")], [1000], 7e6 + 1000), "0");
  });

  it("windowAdjust leaves expired entries to the next acquire, and the totals stay exact", async () => {
    const key = freshKey("lua-adjust-late");
    await acquire(key, 5, 10, 1000, 8e6);
    await acquire(key, 4, 10, 1000, 8e6 + 600);
    // At +1200 the first entry has left; the adjustment takes from the newest (4 -> 1) without dropping it.
    await adjust(key, -3, 1000, 8e6 + 1200);
    assert.equal(await usage(key, 1000, 8e6 + 1200), "1");
    // Giving back more than is live takes the live entry to 0; the expired one leaves as before.
    await adjust(key, -7, 1000, 8e6 + 1300);
    assert.equal(await usage(key, 1000, 8e6 + 1300), "0");
    // (That give-back took the window's last entry, the usage read having dropped the expired one: its keys went, and sequences start over.)
    assert.deepEqual(await acquire(key, 10, 10, 1000, 8e6 + 1300), [1, "10", 0, 1]);
    // A late reconciliation of entries that have all left changes nothing that counts.
    await adjust(key, -4, 1000, 8e6 + 2400);
    assert.equal(await usage(key, 1000, 8e6 + 2400), "0");
    // (That read dropped the window's last entry, and its keys with it: a sequence starts over again.)
    assert.deepEqual(await acquire(key, 10, 10, 1000, 8e6 + 2400), [1, "10", 0, 1]);
  });

  it("a lazy acquire may report departed entries in used, but decides on the exact total", async () => {
    const key = freshKey("lua-lazy");
    const t = 9e6;
    assert.deepEqual(await acquire(key, 5, 10, 60_000, t, "lazy"), [1, "5", 0, 1]);
    // This one trims (its first chance), and the next trim is due a 600th of the window later.
    assert.deepEqual(await acquire(key, 1, 10, 60_000, t + 59_990, "lazy"), [1, "6", 0, 2]);
    // The first entry left at t + 60 000; before the next trim is due it still counts in used (an upper bound).
    assert.deepEqual(await acquire(key, 1, 10, 60_000, t + 60_050, "lazy"), [1, "7", 0, 3]);
    // An acquire that would not fit on the upper bound trims first: 2 + 8 fills the limit exactly.
    assert.deepEqual(await acquire(key, 8, 10, 60_000, t + 60_060, "lazy"), [1, "10", 0, 4]);
    // A refusal's total is exact, and so is its retry-after (the oldest live entry leaves at t + 119 990).
    assert.deepEqual(await acquire(key, 1, 10, 60_000, t + 60_060, "lazy"), [0, "10", 59_930, 0]);
    assert.equal(await usage(key, 60_000, t + 60_060), "10");
    assert.equal(await admin.zcard(k(key, "w")), 3);
  });

  it("a lazy acquire trims once the next trim is due", async () => {
    const key = freshKey("lua-lazy-due");
    const t = 10e6;
    await acquire(key, 5, 100, 60_000, t, "lazy");
    // Trimmed at t + 59 990 (nothing had left yet): the next trim is due at t + 60 090.
    await acquire(key, 1, 100, 60_000, t + 59_990, "lazy");
    assert.deepEqual(await acquire(key, 1, 100, 60_000, t + 60_089, "lazy"), [1, "7", 0, 3]);
    assert.deepEqual(await acquire(key, 1, 100, 60_000, t + 60_090, "lazy"), [1, "3", 0, 4]);
    assert.equal(await admin.zcard(k(key, "w")), 3);
  });

  it("giving back keeps an entry's score and sequence number, and the meta in step", async () => {
    const key = freshKey("lua-giveback");
    const t = 11e6;
    await acquire(key, 4, 100, 1000, t);
    await acquire(key, 6, 100, 1000, t + 100);
    await adjust(key, -5, 1000, t + 200);
    assert.deepEqual(await admin.zrange(k(key, "w"), "0", "-1", "WITHSCORES"), ["1:4", String(t), "2:1", String(t + 100)]);
    assert.deepEqual(await admin.hmget(k(key, "wm"), "sum", "n", "seq"), ["5", "2", "2"]);
    // Taking a whole entry counts it out of n; the next entry still gets a new sequence number.
    await adjust(key, -2, 1000, t + 200);
    assert.deepEqual(await admin.hmget(k(key, "wm"), "sum", "n", "seq"), ["3", "1", "2"]);
    await acquire(key, 2, 100, 1000, t + 300);
    assert.deepEqual(await admin.zrange(k(key, "w"), "0", "-1"), ["1:3", "3:2"]);
    // Giving back everything removes the window's keys.
    await adjust(key, -50, 1000, t + 300);
    assert.equal(await admin.exists(k(key, "w"), k(key, "wm")), 0);
  });

  it("a fractional total is given back exactly", async () => {
    const key = freshKey("lua-fraction");
    await acquire(key, 0.5, 10, 1000, 12e6);
    await adjust(key, -0.25, 1000, 12e6);
    assert.equal(await usage(key, 1000, 12e6), "0.25");
    await acquire(key, 1, 10, 1000, 12e6);
    await adjust(key, -1, 1000, 12e6);
    assert.equal(await usage(key, 1000, 12e6), "0.25");
  });

  it("a window whose meta is gone (evicted) is recounted from its entries, with fresh sequence numbers", async () => {
    const key = freshKey("lua-evicted");
    const t = 13e6;
    await acquire(key, 3, 100, 60_000, t);
    await acquire(key, 4, 100, 60_000, t + 1);
    await admin.del(k(key, "wm"));
    // A give-back to a window without meta must not leave a meta without TTL behind.
    await adjust(key, -1, 60_000, t + 2);
    assert.equal(await admin.exists(k(key, "wm")), 0);
    assert.equal(await usage(key, 60_000, t + 2), "6");
    assert.deepEqual(await acquire(key, 94, 100, 60_000, t + 3, "lazy"), [1, "100", 0, 3]);
    assert.deepEqual(await admin.zrange(k(key, "w"), "0", "-1"), ["1:3", "2:3", "3:94"]);
    assert.ok((await admin.pttl(k(key, "wm"))) > 0);
  });

  it("an acquire's reply names its entries: timed at the next whole millisecond, numbered per window, none when nothing is counted", async () => {
    const group = freshKey("lua-entries");
    const keys = [k(group, "rpm:w"), k(group, "rpm:wm"), k(group, "tpm:w"), k(group, "tpm:wm")];
    const take = (rpm: number, tpm: number, now: number) => call("windowsAcquire", keys, [60_000, "exact", 0, rpm, 3, tpm, 100], now);
    const t = 14e6 + 0.25;
    // The token window, given 0, counts nothing: sequence 0.
    assert.deepEqual(await take(1, 0, t), [1, 14e6 + 1, 1, "1", 0, 1, 1, "0", 0, 0]);
    // Each window numbers its own entries.
    assert.deepEqual(await take(1, 100, t + 1), [1, 14e6 + 2, 1, "2", 0, 2, 1, "100", 0, 1]);
    // Refused: nothing is counted, so no window has a sequence, not even the one with room.
    assert.deepEqual(await take(1, 1, t + 2), [0, 14e6 + 3, 1, "2", 0, 0, 0, "100", 60_000, 0]);
  });

  it("windowAdjust with an entry gives back from that entry only: not a newer one, nor another of its millisecond, nor once it has left", async () => {
    const key = freshKey("lua-adjust-entry");
    const t = 15e6;
    assert.deepEqual(await acquire(key, 10, 100, 1000, t), [1, "10", 0, 1]); // A
    assert.deepEqual(await acquire(key, 10, 100, 1000, t + 500), [1, "20", 0, 2]); // B
    await adjust(key, -4, 1000, t + 500, { at: t, seq: 1 });
    assert.deepEqual(await admin.zrange(k(key, "w"), "0", "-1", "WITHSCORES"), ["1:6", String(t), "2:10", String(t + 500)]);
    // A's time: what is left of A leaves, and B still counts all of its 10 (taken from B, as without an entry, it would be 6).
    assert.equal(await usage(key, 1000, t + 1000), "10");
    // A has left (that read dropped it): giving back from it takes nothing, rather than B's.
    await adjust(key, -5, 1000, t + 1000, { at: t, seq: 1 });
    assert.equal(await usage(key, 1000, t + 1000), "10");
    // Entries of one millisecond are told apart by sequence, and a give-back takes at most the named one's amount.
    assert.deepEqual(await acquire(key, 3, 100, 1000, t + 1000), [1, "13", 0, 3]);
    assert.deepEqual(await acquire(key, 7, 100, 1000, t + 1000), [1, "20", 0, 4]);
    await adjust(key, -100, 1000, t + 1000, { at: t + 1000, seq: 4 });
    assert.deepEqual(await admin.zrange(k(key, "w"), "0", "-1"), ["2:10", "3:3"]);
    assert.deepEqual(await admin.hmget(k(key, "wm"), "sum", "n"), ["13", "2"]);
    // The right sequence at the wrong time names nothing.
    await adjust(key, -1, 1000, t + 1000, { at: t + 999, seq: 3 });
    assert.deepEqual(await admin.zrange(k(key, "w"), "0", "-1"), ["2:10", "3:3"]);
  });

  it("a held entry counts from now until windowMs + hold after the next whole millisecond, and the window's keys outlive it", async () => {
    const key = freshKey("lua-hold");
    const t = 16e6;
    // An entry timed now sets the keys' TTL for its own window; one held 5 s must renew it.
    assert.deepEqual(await acquire(key, 1, 10, 1000, t), [1, "1", 0, 1]);
    assert.deepEqual(await acquire(key, 2, 10, 1000, t, "exact", 5000), [1, "3", 0, 2]);
    assert.deepEqual(await admin.zrange(k(key, "w"), "0", "-1", "WITHSCORES"), ["1:1", String(t), "2:2", String(t + 5000)]);
    for (const name of ["w", "wm"]) {
      const pttl = await admin.pttl(k(key, name));
      // Past the held entry's leaving (windowMs + hold from now); set two windows and a second beyond its time.
      assert.ok(pttl > 1000 + 5000 && pttl <= 2 * 1000 + 5000 + 1000, `${name}: PTTL ${pttl}`);
    }
    // A refusal waits for the held entry to leave, not for a window from now.
    assert.deepEqual(await acquire(key, 9, 10, 1000, t), [0, "3", 6000, 0]);
    assert.equal(await usage(key, 1000, t + 1000), "2");
    assert.equal(await usage(key, 1000, t + 1000 + 5000 - 1), "2");
    assert.equal(await usage(key, 1000, t + 1000 + 5000), "0");
    // Between milliseconds, the hold runs from the next whole one.
    const between = freshKey("lua-hold-between");
    assert.deepEqual(await acquire(between, 1, 1, 1000, t + 0.5, "exact", 300), [1, "1", 0, 1]);
    assert.equal(await usage(between, 1000, t + 1 + 1000 + 300 - 1), "1");
    assert.equal(await usage(between, 1000, t + 1 + 1000 + 300), "0");
  });

  it("settle with a release keeps the rest of the reservation with its expiry; a release of all of it removes it", async () => {
    const key = freshKey("lua-release");
    const h = k(key, "r");
    const t = 17e6;
    assert.deepEqual(await call("reserve", [h], ["a", "100", "1000", 60_000, 1000], t), [1, "0", "100"]);
    await call("settle", [h], ["a", "30", 60_000, "40"], t + 500);
    // The rest stays in its field, with the expiry it was reserved with.
    assert.equal(await admin.hget(h, "r:a"), `60|${t + 1000}`);
    assert.deepEqual(await call("readReserve", [h], [], t + 999), ["30", "60"]);
    assert.deepEqual(await call("readReserve", [h], [], t + 1000), ["30", "0"]);
    // A release of exactly what is held removes the field rather than leaving 0 reserved in it.
    assert.deepEqual(await call("reserve", [h], ["b", "50", "1000", 60_000, 1000], t + 1000), [1, "30", "50"]);
    await call("settle", [h], ["b", "5", 60_000, "50"], t + 1000);
    assert.equal(await admin.hexists(h, "r:b"), 0);
    assert.deepEqual(await call("readReserve", [h], [], t + 1000), ["35", "0"]);
  });

  it("a reservation lapses exactly at its expiry", async () => {
    const key = freshKey("lua-resv");
    const h = k(key, "r");
    assert.deepEqual(await call("reserve", [h], ["a", "5", "10", 60_000, 1000], 2e6), [1, "0", "5"]);
    assert.deepEqual(await call("readReserve", [h], [], 2e6 + 999), ["0", "5"]);
    assert.deepEqual(await call("readReserve", [h], [], 2e6 + 1000), ["0", "0"]);
    assert.deepEqual(await call("reserve", [h], ["b", "10", "10", 60_000, 1000], 2e6 + 1000), [1, "0", "10"]);
  });

  it("latency decays by half-life: an observation one half-life old weighs half", async () => {
    const key = freshKey("lua-lat");
    const h = k(key, "l");
    await call("recordLatency", [h], [100, 10, 1000, 60_000], 3e6);
    await call("recordLatency", [h], [400, "", 1000, 60_000], 3e6 + 1000);
    const [samples, ewma, ttft] = (await call("readLatency", [h], [], 3e6 + 1000)) as [string, string, string];
    assert.equal(samples, "2");
    assert.ok(Math.abs(Number(ewma) - 300) < 1e-9, `ewma ${ewma}`);
    assert.equal(Number(ttft), 10);
    const [later] = (await call("readLatency", [h], [], 3e6 + 3000)) as [string];
    assert.equal(later, "0");
  });
});

// A private redis-server the test can kill and restart.
describe("redis store: fallback to local state while Redis is down", () => {
  let store: StateStore | undefined;
  const server = new PrivateRedis();
  const startRedis = () => server.start();
  const stopRedis = () => server.stop();

  afterEach(async () => {
    await store?.close();
    store = undefined;
    await stopRedis();
  });

  it("serves from local state while Redis is down, logs once each way, and returns to Redis when it is back", async () => {
    await server.choosePort();
    await startRedis();
    const { logger, lines } = captureLogger();
    store = createRedisStore({
      url: `redis://127.0.0.1:${server.port}`,
      keyPrefix: prefix,
      logger,
      commandTimeoutMs: 500,
      connectTimeoutMs: 500,
      probeIntervalMs: 100,
      maxReconnectDelayMs: 200,
    });
    const key = freshKey("fallback");
    assert.equal((await store.windowAcquire(key, 2, 2, 60_000)).allowed, true);
    assert.equal((await store.windowAcquire(key, 1, 2, 60_000)).allowed, false);
    assert.equal(store.healthy(), true);

    await stopRedis();
    const s = store;
    await waitFor("healthy() to turn false", () => !s.healthy(), 5000);
    // Local state starts empty: the Redis window is out of reach, and calls still answer.
    for (let i = 0; i < 5; i++) assert.equal((await s.windowAcquire(key, 1, 2, 60_000)).allowed, i < 2);
    await s.setJson(key, { local: true }, 60_000);
    assert.deepEqual(await s.getJson(key), { local: true });
    assert.deepEqual(await s.reserve(key, "r", 1n, 10n, 60_000, 60_000), { ok: true, committed: 0n, reserved: 1n });
    const warns = lines.filter((l) => l.level === 40);
    assert.equal(warns.length, 1, JSON.stringify(lines));
    assert.match(warns[0]!.msg, /redis unreachable/);

    await startRedis();
    await waitFor("healthy() to return to true", () => s.healthy(), 10_000);
    assert.equal(lines.filter((l) => l.level === 30 && /reachable again/.test(l.msg)).length, 1, JSON.stringify(lines));
    // Back on the (restarted, empty) Redis: the call lands there, not in local state.
    assert.deepEqual(opaque(await s.windowAcquire(key, 1, 2, 60_000)), { allowed: true, used: 1, retryAfterMs: 0, entry: ENTRY });
    const direct = new Redis({ port: server.port, host: "127.0.0.1", lazyConnect: true });
    direct.on("error", () => undefined);
    try {
      await direct.connect();
      assert.equal(await direct.zcard(`${prefix}:{${key.slice(0, key.lastIndexOf(":"))}}${key.slice(key.lastIndexOf(":"))}:w`), 1);
    } finally {
      direct.disconnect();
    }
    assert.equal(await s.getJson(key), undefined);
    assert.equal(lines.filter((l) => l.level === 40).length, 1);
  });

  it("a Redis that stops answering (connection open, no replies) fails over within the command timeout and returns", async () => {
    await server.choosePort();
    await startRedis();
    const { logger, lines } = captureLogger();
    store = createRedisStore({ url: `redis://127.0.0.1:${server.port}`, keyPrefix: prefix, logger, commandTimeoutMs: 300, probeIntervalMs: 100 });
    const s = store;
    const key = freshKey("stuck");
    assert.equal((await s.windowAcquire(key, 1, 1, 60_000)).allowed, true);
    server.child!.kill("SIGSTOP");
    try {
      // The call times out on Redis and is answered from (empty) local state.
      assert.deepEqual(opaque(await s.windowAcquire(key, 1, 1, 60_000)), { allowed: true, used: 1, retryAfterMs: 0, entry: ENTRY });
      assert.equal(s.healthy(), false);
    } finally {
      server.child!.kill("SIGCONT");
    }
    await waitFor("healthy() to return to true", () => s.healthy(), 10_000);
    // Back on Redis, where the first acquire still holds the window.
    assert.equal((await s.windowAcquire(key, 1, 1, 60_000)).allowed, false);
    assert.equal(lines.filter((l) => l.level === 40).length, 1, JSON.stringify(lines));
    assert.equal(lines.filter((l) => l.level === 30).length, 1, JSON.stringify(lines));
  });

  it("starts on local state when Redis is unreachable from the start", async () => {
    await server.choosePort();
    const { logger, lines } = captureLogger();
    store = createRedisStore({ url: `redis://127.0.0.1:${server.port}`, keyPrefix: prefix, logger, connectTimeoutMs: 300, maxReconnectDelayMs: 200 });
    assert.deepEqual(opaque(await store.windowAcquire("k", 1, 1, 60_000)), { allowed: true, used: 1, retryAfterMs: 0, entry: ENTRY });
    assert.equal((await store.windowAcquire("k", 1, 1, 60_000)).allowed, false);
    assert.equal(store.healthy(), false);
    assert.equal(lines.filter((l) => l.level === 40).length, 1, JSON.stringify(lines));
  });
});
