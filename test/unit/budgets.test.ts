import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import type { Caller } from "../../server/auth/keys.js";
import { budgetScopes, createBudgetLedger } from "../../server/budgets/ledger.js";
import { acquireLimits, limitScopes, limitUsage } from "../../server/budgets/limits.js";
import { periodWindow } from "../../server/budgets/periods.js";
import { configSchema } from "../../server/config/schema.js";
import { GatewayError } from "../../server/core/errors.js";
import { createMemoryStore } from "../../server/state/memory-store.js";

// Budget periods, the reservation ledger and per-key limits, on the memory
// store with an injected clock.

const utc = (s: string) => Date.parse(s);
const iso = (ms: number) => new Date(ms).toISOString();

describe("calendar periods (UTC)", () => {
  it("days, ISO weeks and months with their reset times", () => {
    const at = utc("2026-11-21T17:30:00Z"); // a Saturday
    assert.deepEqual(periodWindow("day", at), { id: "2026-11-21", startMs: utc("2026-11-21T00:00:00Z"), endMs: utc("2026-11-22T00:00:00Z") });
    const week = periodWindow("week", at);
    assert.equal(week.id, "2026-W47");
    assert.equal(iso(week.startMs), "2026-11-16T00:00:00.000Z");
    assert.equal(iso(week.endMs), "2026-11-23T00:00:00.000Z");
    assert.deepEqual(periodWindow("month", at), { id: "2026-11", startMs: utc("2026-11-01T00:00:00Z"), endMs: utc("2026-12-01T00:00:00Z") });
  });

  it("ISO week-years at year ends, and month ends", () => {
    // 2027-01-01 is a Friday: still week 53 of 2026. 2024-12-30 is a Monday: week 1 of 2025.
    assert.equal(periodWindow("week", utc("2027-01-01T12:00:00Z")).id, "2026-W53");
    assert.equal(periodWindow("week", utc("2024-12-30T00:00:00Z")).id, "2025-W01");
    assert.equal(periodWindow("week", utc("2026-11-22T23:59:59.999Z")).id, "2026-W47");
    assert.equal(periodWindow("week", utc("2026-11-23T00:00:00Z")).id, "2026-W48");
    assert.equal(iso(periodWindow("month", utc("2028-02-29T23:00:00Z")).endMs), "2028-03-01T00:00:00.000Z");
    assert.equal(periodWindow("day", utc("2026-12-31T23:59:59.999Z")).id, "2026-12-31");
  });

  it("moves to the next period at its first millisecond, and back for an earlier time (the last window is reused only inside it)", () => {
    const ids = ["2026-11-30T23:59:59.999Z", "2026-12-01T00:00:00Z", "2026-11-30T23:59:59.999Z", "2026-12-01T00:00:00Z", "2025-01-15T00:00:00Z"].map(
      (t) => [periodWindow("day", utc(t)).id, periodWindow("month", utc(t)).id],
    );
    assert.deepEqual(ids, [
      ["2026-11-30", "2026-11"],
      ["2026-12-01", "2026-12"],
      ["2026-11-30", "2026-11"],
      ["2026-12-01", "2026-12"],
      ["2025-01-15", "2025-01"],
    ]);
  });
});

const config = configSchema.parse({
  keys: [
    {
      id: "bot",
      key_sha256: "a".repeat(64),
      team: "support",
      budget: { usd: 1, period: "month", soft_limit: 0.5, degrade_to: "x" },
      limits: { rpm: 2, tpm: 1000 },
    },
  ],
  teams: [{ id: "support", budget: { usd: 0.5, period: "day" }, limits: { rpm: 3 } }],
});
const caller: Caller = { keyId: "bot", team: "support", key: config.keys[0], mayUse: () => true };
const NANO = 1_000_000_000n;

describe("budget ledger", () => {
  const stores: Array<{ close(): Promise<void> }> = [];
  after(() => Promise.all(stores.map((s) => s.close())));
  const store = () => {
    const s = createMemoryStore({ sweepIntervalMs: 0 });
    stores.push(s);
    return s;
  };

  it("lists the key's and the team's budgets with exact limits", () => {
    const scopes = budgetScopes(config, caller);
    assert.deepEqual(
      scopes.map((s) => [s.kind, s.id, s.limitNano, s.softNano]),
      [
        ["key", "bot", NANO, NANO / 2n],
        ["team", "support", NANO / 2n, undefined],
      ],
    );
  });

  it("reserves in every scope or none, and settles the actual cost", async () => {
    const s = store();
    const now = utc("2026-11-21T10:00:00Z");
    const ledger = createBudgetLedger({ now: () => now });
    const scopes = budgetScopes(config, caller);
    const a = await ledger.reserve(s, scopes, "a", 300_000_000n, 60_000);
    assert.equal(a.ok, true);
    // The team's $0.50 day budget has $0.20 left: a $0.25 worst case is refused by the team, and the key keeps nothing.
    const b = await ledger.reserve(s, scopes, "b", 250_000_000n, 60_000);
    assert.equal(b.ok, false);
    if (!b.ok) assert.deepEqual(b.refused.map((r) => [r.scope.kind, r.reservedNano]), [["team", 300_000_000n]]);
    const [key, team] = await ledger.status(s, scopes);
    assert.equal(key!.reservedNano, 300_000_000n);
    assert.equal(team!.remainingNano, 200_000_000n);
    if (a.ok) await a.release(120_000_000n);
    const after = await ledger.status(s, scopes);
    assert.deepEqual(after.map((x) => [x.committedNano, x.reservedNano, x.remainingNano]), [
      [120_000_000n, 0n, 880_000_000n],
      [120_000_000n, 0n, 380_000_000n],
    ]);
  });

  it("starts each calendar period from zero (injected clock across midnight and month end)", async () => {
    const s = store();
    let now = utc("2026-11-30T23:59:59Z");
    const ledger = createBudgetLedger({ now: () => now });
    const scopes = budgetScopes(config, caller);
    const spend = async (amount: bigint) => {
      const r = await ledger.reserve(s, scopes, `r${now}`, amount, 60_000);
      if (r.ok) await r.release(amount);
      return r.ok;
    };
    assert.equal(await spend(500_000_000n), true);
    assert.equal(await spend(1n), false, "the team's day budget is spent");
    const [, team] = await ledger.status(s, scopes);
    assert.equal(iso(team!.window.endMs), "2026-12-01T00:00:00.000Z");
    now = utc("2026-12-01T00:00:00Z");
    // A new day for the team and a new month for the key: both start from zero.
    const [key2, team2] = await ledger.status(s, scopes);
    assert.deepEqual([key2!.window.id, key2!.committedNano, team2!.window.id, team2!.committedNano], ["2026-12", 0n, "2026-12-01", 0n]);
    assert.equal(await spend(400_000_000n), true);
    now = utc("2026-12-01T18:00:00Z");
    assert.equal(await spend(200_000_000n), false, "same day: $0.40 + $0.20 > $0.50");
    now = utc("2026-12-02T00:00:01Z");
    assert.equal(await spend(200_000_000n), true);
    const [key3] = await ledger.status(s, scopes);
    assert.equal(key3!.committedNano, 600_000_000n, "the key's month kept counting across days");
  });
});

describe("per-key and per-team limits", () => {
  it("admits up to rpm, refuses with retry-after, and gives back what other windows took", async () => {
    const s = createMemoryStore({ sweepIntervalMs: 0 });
    try {
      const scopes = limitScopes(config, caller);
      assert.deepEqual(scopes.map((x) => [x.kind, x.limits]), [["key", { rpm: 2, tpm: 1000 }], ["team", { rpm: 3 }]]);
      const t1 = await acquireLimits(s, scopes, 100);
      await acquireLimits(s, scopes, 100);
      await assert.rejects(acquireLimits(s, scopes, 100), (err: unknown) => {
        assert.ok(err instanceof GatewayError);
        assert.equal(err.code, "resource_exhausted");
        assert.match(err.message, /rate limit: key "bot" is limited to 2 requests per minute; retry in \d+s/);
        assert.ok(err.retryAfterMs! > 0 && err.retryAfterMs! <= 60_000);
        return true;
      });
      const [key, team] = await limitUsage(s, scopes);
      // The refused request took nothing from the team's window or the key's tokens.
      assert.deepEqual([key!.rpmUsed, key!.tpmUsed, team!.rpmUsed], [2, 200, 2]);
      // Reconciling with actual usage replaces the estimate.
      await t1.reconcile(40);
      assert.equal((await limitUsage(s, scopes))[0]!.tpmUsed, 140);
    } finally {
      await s.close();
    }
  });

  it("refuses tokens over the TPM limit", async () => {
    const s = createMemoryStore({ sweepIntervalMs: 0 });
    try {
      const scopes = limitScopes(config, { ...caller, team: undefined });
      await acquireLimits(s, scopes, 900);
      await assert.rejects(acquireLimits(s, scopes, 200), /limited to 1000 tokens per minute \(this request needs about 200\)/);
    } finally {
      await s.close();
    }
  });
});
