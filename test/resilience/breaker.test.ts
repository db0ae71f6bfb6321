import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, describe, it } from "node:test";
import pino from "pino";
import {
  claimProbe,
  countsAgainstHealth,
  DEFAULT_BREAKER,
  judgeBreaker,
  openBreaker,
  PROBE_STALE_MS,
  readBreakerStates,
  recordHealthFailure,
  recordHealthSuccess,
  settleProbe,
  stateOf,
  breakerKey,
  type BreakerDoc,
} from "../../server/resilience/breaker.js";
import { createMemoryStore } from "../../server/state/memory-store.js";
import { createRedisStore } from "../../server/state/redis-store.js";
import type { StateStore } from "../../server/state/store.js";
import { deleteRedisKeys } from "../support/routing.js";

// Circuit breakers in the shared store: the thresholds, the cooldown, and
// exactly one half-open probe across replicas (two Redis store instances
// stand for two gateway replicas).

const policy = { ...DEFAULT_BREAKER, consecutive_failures: 3, failure_rate: 0.5, min_requests: 6, window_ms: 60_000, cooldown_ms: 1000 };

async function doc(store: StateStore, id: string): Promise<BreakerDoc | undefined> {
  return store.getJson<BreakerDoc>(breakerKey(id));
}

describe("breaker thresholds (memory store)", () => {
  it("opens on N consecutive health failures; a success in between resets the streak", async () => {
    const store = createMemoryStore();
    const now = Date.now();
    assert.equal(await recordHealthFailure(store, "p/m", undefined, "HTTP 500", policy, now), undefined);
    assert.equal(await recordHealthFailure(store, "p/m", undefined, "HTTP 500", policy, now), undefined);
    await recordHealthSuccess(store, "p/m", 0, policy);
    assert.equal(await recordHealthFailure(store, "p/m", undefined, "HTTP 500", policy, now), undefined);
    assert.equal(await recordHealthFailure(store, "p/m", undefined, "HTTP 500", policy, now), undefined);
    const reason = await recordHealthFailure(store, "p/m", undefined, "HTTP 503", policy, now);
    assert.match(reason!, /3 consecutive failures \(last: HTTP 503\)/);
    const d = await doc(store, "p/m");
    assert.equal(d?.state, "open");
    assert.equal(d?.until, now + 1000);
    await store.close();
  });

  it("opens on a failure rate at or above the threshold once min_requests were seen", async () => {
    const store = createMemoryStore();
    const now = Date.now();
    const loose = { ...policy, consecutive_failures: 100 };
    // Alternate: never two failures in a row, but half of all requests fail.
    for (let i = 0; i < 2; i++) {
      await recordHealthSuccess(store, "p/m", 0, loose);
      assert.equal(await recordHealthFailure(store, "p/m", undefined, "x", loose, now), undefined);
    }
    await recordHealthSuccess(store, "p/m", 0, loose);
    const reason = await recordHealthFailure(store, "p/m", undefined, "x", loose, now);
    assert.match(reason!, /3 of 6 requests failed/);
    await store.close();
  });

  it("counts only upstream-health failures", () => {
    for (const c of ["overloaded", "server_error", "timeout", "connection", "malformed_response", "auth", "not_found"] as const) assert.ok(countsAgainstHealth(c), c);
    for (const c of ["invalid_request", "content_filtered", "context_length_exceeded", "cancelled", "rate_limited", "quota_exhausted"] as const) assert.ok(!countsAgainstHealth(c), c);
  });
});

describe("breaker states", () => {
  it("rejects while open, then admits a probe; a stale probe may be replaced", () => {
    const open: BreakerDoc = { state: "open", epoch: 0, since: 1000, until: 2000, reason: "r" };
    assert.deepEqual(judgeBreaker(open, 1999), { kind: "open", until: 2000, reason: "r" });
    assert.equal(judgeBreaker(open, 2000).kind, "probe");
    const probing: BreakerDoc = { state: "half_open", epoch: 0, since: 3000, until: 0, reason: "p" };
    assert.equal(judgeBreaker(probing, 3000 + PROBE_STALE_MS - 1).kind, "probing");
    assert.equal(judgeBreaker(probing, 3000 + PROBE_STALE_MS).kind, "probe");
    assert.equal(stateOf(undefined, 0), "closed");
    assert.equal(stateOf(open, 1500), "open");
    assert.equal(stateOf(open, 2500), "half_open");
  });

  it("a probe's success closes with fresh counters; its failure re-opens for another cooldown", async () => {
    const store = createMemoryStore();
    const t0 = Date.now();
    await openBreaker(store, "p/m", undefined, "storm", policy, t0);
    const opened = (await doc(store, "p/m"))!;
    const probe = (await claimProbe(store, "p/m", opened, policy, t0 + 1000))!;
    assert.equal(probe.state, "half_open");
    await settleProbe(store, "p/m", probe, "failure", policy, t0 + 1100, "HTTP 500");
    const reopened = (await doc(store, "p/m"))!;
    assert.equal(reopened.state, "open");
    assert.equal(reopened.until, t0 + 2100);
    const second = (await claimProbe(store, "p/m", reopened, policy, t0 + 2100))!;
    await settleProbe(store, "p/m", second, "success", policy, t0 + 2200);
    const closed = (await doc(store, "p/m"))!;
    assert.equal(closed.state, "closed");
    assert.equal(closed.epoch, t0 + 2200);
    // The old generation's failures do not count against the new one.
    for (let i = 0; i < 2; i++) assert.equal(await recordHealthFailure(store, "p/m", closed, "x", policy, t0 + 2300), undefined);
    await store.close();
  });

  it("a neutral probe (cancelled) hands the probe to the next request at once", async () => {
    const store = createMemoryStore();
    const t0 = Date.now();
    await openBreaker(store, "p/m", undefined, "storm", policy, t0);
    const probe = (await claimProbe(store, "p/m", (await doc(store, "p/m"))!, policy, t0 + 1000))!;
    await settleProbe(store, "p/m", probe, "neutral", policy, t0 + 1001);
    assert.equal(judgeBreaker(await doc(store, "p/m"), t0 + 1001).kind, "probe");
    await store.close();
  });
});

describe("breakers shared through Redis (two replicas)", () => {
  const prefix = `test-breaker-${randomUUID()}`;
  const open = () => createRedisStore({ url: "redis://127.0.0.1:6379", keyPrefix: prefix, logger: pino({ level: "silent" }), commandTimeoutMs: 2000 });
  const a = open();
  const b = open();
  after(async () => {
    await a.close();
    await b.close();
    await deleteRedisKeys("redis://127.0.0.1:6379", prefix);
  });

  it("one replica opens it, the other sees it open; exactly one of many concurrent probes wins", async () => {
    const t0 = Date.now();
    const id = `p/m-${randomUUID()}`;
    // Failures reported by both replicas count together.
    assert.equal(await recordHealthFailure(a, id, undefined, "x", policy, t0), undefined);
    assert.equal(await recordHealthFailure(b, id, undefined, "x", policy, t0), undefined);
    assert.ok(await recordHealthFailure(a, id, undefined, "x", policy, t0));
    const seen = await doc(b, id);
    assert.equal(seen?.state, "open");
    const states = await readBreakerStates(b, [{ id, provider: { id: "p", type: "openai", timeout_ms: 1, connect_timeout_ms: 1, idle_timeout_ms: 1, max_connections: 1 } }], { breaker: policy }, t0);
    assert.equal(states.get(id), "open");
    const claims = await Promise.all(Array.from({ length: 10 }, (_, i) => claimProbe(i % 2 === 0 ? a : b, id, seen!, policy, t0 + 1000)));
    assert.equal(claims.filter((c) => c !== undefined).length, 1);
  });
});
