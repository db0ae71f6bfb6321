import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, describe, it } from "node:test";
import pino from "pino";
import { configSchema } from "../../server/config/schema.js";
import { buildRuntime, type Deployment } from "../../server/core/runtime.js";
import { acquireCapacity, LIMIT_WINDOW_MS, reservationTokens } from "../../server/resilience/rate-limits.js";
import { pause, Wakeup } from "../../server/resilience/wait.js";
import { createMemoryStore } from "../../server/state/memory-store.js";
import { createRedisStore } from "../../server/state/redis-store.js";
import type { StateStore } from "../../server/state/store.js";
import { deleteRedisKeys } from "../support/routing.js";

// Provider and deployment rpm/tpm as shared sliding windows: exact
// admission, reservation and reconciliation, and the same limit across two
// Redis-backed replicas.

function deployments(limits: { provider?: object; model?: object }): Map<string, Deployment> {
  const rt = buildRuntime(
    configSchema.parse({
      providers: [{ id: "p", type: "simulated", limits: limits.provider }],
      models: [{ id: "p/m", provider: "p", context_window: 10_000, max_output_tokens: 1000, limits: limits.model }],
    }),
  );
  return rt.deployments as Map<string, Deployment>;
}

describe("acquireCapacity", () => {
  it("admits exactly rpm requests, then refuses with the time until a slot frees", async () => {
    const store = createMemoryStore();
    const d = deployments({ provider: { rpm: 3 } }).get("p/m")!;
    const wakeup = new Wakeup();
    for (let i = 0; i < 3; i++) assert.equal((await acquireCapacity(store, wakeup, d, 10)).ok, true);
    const refused = await acquireCapacity(store, wakeup, d, 10);
    assert.equal(refused.ok, false);
    if (!refused.ok) {
      assert.match(refused.reason, /provider p rpm 3/);
      assert.ok(refused.retryAfterMs > 0 && refused.retryAfterMs <= LIMIT_WINDOW_MS);
      assert.equal(refused.never, false);
    }
    await store.close();
  });

  it("reserves tokens before the call and reconciles them with what was used, waking waiters", async () => {
    const store = createMemoryStore();
    const d = deployments({ model: { tpm: 1000, rpm: 100 } }).get("p/m")!;
    const wakeup = new Wakeup();
    const first = await acquireCapacity(store, wakeup, d, 700);
    assert.ok(first.ok);
    const second = await acquireCapacity(store, wakeup, d, 700);
    assert.equal(second.ok, false, "700 + 700 > 1000");
    // A refused request takes nothing: its rpm unit was given back.
    assert.equal(await store.windowUsage("ratelimit:deployment:p/m:rpm", LIMIT_WINDOW_MS), 1);
    const woken = pause(10_000, new AbortController().signal, wakeup, ["ratelimit:deployment:p/m:tpm"]);
    await first.lease.settle(120);
    assert.equal(await woken, "woken");
    assert.equal(await store.windowUsage("ratelimit:deployment:p/m:tpm", LIMIT_WINDOW_MS), 120);
    assert.equal((await acquireCapacity(store, wakeup, d, 700)).ok, true);
    await store.close();
  });

  it("says a request larger than the tpm limit can never fit", async () => {
    const store = createMemoryStore();
    const d = deployments({ provider: { tpm: 500 } }).get("p/m")!;
    const r = await acquireCapacity(store, new Wakeup(), d, 900);
    assert.equal(r.ok, false);
    if (!r.ok) assert.equal(r.never, true);
    await store.close();
  });

  it("reserves the prompt estimate plus the output bound (capped when the request sets none)", () => {
    const d = deployments({}).get("p/m")!;
    const req = (max?: number) => ({ model: "p/m", messages: [], sampling: { maxOutputTokens: max }, routing: {}, metadata: {} });
    assert.equal(reservationTokens(d, req(200), 50), 250);
    assert.equal(reservationTokens(d, req(), 50), 1050);
  });
});

describe("rate limits shared through Redis (two replicas)", () => {
  const prefix = `test-limits-${randomUUID()}`;
  const open = (): StateStore => createRedisStore({ url: "redis://127.0.0.1:6379", keyPrefix: prefix, logger: pino({ level: "silent" }), commandTimeoutMs: 2000 });
  const a = open();
  const b = open();
  after(async () => {
    await a.close();
    await b.close();
    await deleteRedisKeys("redis://127.0.0.1:6379", prefix);
  });

  it("admits exactly the configured rpm between both, under concurrency", async () => {
    const d = deployments({ provider: { rpm: 7 } }).get("p/m")!;
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => acquireCapacity(i % 2 === 0 ? a : b, new Wakeup(), d, 1)));
    assert.equal(results.filter((r) => r.ok).length, 7);
  });
});
