import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { Redis } from "ioredis";
import { sha256Hex } from "../../server/auth/keys.js";
import { simulatedProvider, startTestGateway, type TestGateway } from "../support/gateway.js";

// Two gateway replicas sharing one Redis behave as one gateway: a small
// budget hammered by 200 concurrent requests split across both stops at the
// budget, and a per-key RPM limit admits its limit, not twice it.

const prefix = `test-budgets-${randomUUID().replaceAll("-", "")}`;
const LEASE_MS = 300;
const body = (maxTokens: number) => JSON.stringify({ model: "sim/a", max_tokens: maxTokens, messages: [{ role: "user", content: "the same question every time" }] });

interface Spend {
  key: { budget: { spent_nano_usd: string; reserved_nano_usd: string; limit_nano_usd: string } | null; limits: { rpm: { used: number }; tpm?: { used: number } } | null };
  team: { budget: { spent_nano_usd: string; reserved_nano_usd: string } | null } | null;
}

describe("budgets and limits across two replicas on one Redis", () => {
  const gateways: TestGateway[] = [];
  let cost = 0n;

  // A budget of 37.5 requests, at the cost of one request (the simulator answers 12 tokens).
  const config = (unitCost: bigint) => ({
    // A generous command timeout: a loaded test machine's event-loop stall must not send a replica to its
    // local fallback (per-replica budgets, tested elsewhere) in the middle of a count.
    state: { backend: "redis", url: "redis://127.0.0.1:6379", key_prefix: prefix, command_timeout_ms: 10_000, lease_ms: LEASE_MS },
    providers: [simulatedProvider("sim", { first_token_ms: 2 })],
    models: [{ id: "sim/a", provider: "sim", context_window: 32_000, max_output_tokens: 4096, pricing: { input: 2, output: 8 } }],
    keys: [
      { id: "probe", key_sha256: sha256Hex("k-probe") },
      { id: "exact", key_sha256: sha256Hex("k-exact"), budget: { usd: Number(unitCost * 75n / 2n) / 1e9, period: "day" } },
      { id: "alice", key_sha256: sha256Hex("k-alice"), team: "ops" },
      { id: "bob", key_sha256: sha256Hex("k-bob"), team: "ops" },
      { id: "rpm", key_sha256: sha256Hex("k-rpm"), limits: { rpm: 50 } },
      // Far from exhaustion: served from the replicas' quota leases.
      { id: "roomy", key_sha256: sha256Hex("k-roomy"), limits: { rpm: 100_000, tpm: 100_000_000 }, budget: { usd: 1000, period: "day" } },
    ],
    teams: [{ id: "ops", budget: { usd: Number(unitCost * 75n / 2n) / 1e9, period: "week" } }],
  });

  before(async () => {
    // Learn one request's cost from a replica without budgets, then start the two replicas.
    const probe = await startTestGateway(config(1000n));
    const r = await fetch(`${probe.url}/v1/chat/completions`, { method: "POST", headers: { authorization: "Bearer k-probe" }, body: body(12) });
    cost = BigInt(((await r.json()) as { x_gateway: { cost_nano_usd: string } }).x_gateway.cost_nano_usd);
    await probe.close();
    assert.ok(cost > 0n);
    gateways.push(await startTestGateway(config(cost)), await startTestGateway(config(cost)));
  });

  after(async () => {
    await Promise.all(gateways.map((g) => g.close()));
    const admin = new Redis("redis://127.0.0.1:6379");
    const keys = await admin.keys(`${prefix}*`);
    if (keys.length > 0) await admin.del(...keys);
    await admin.quit();
  });

  async function hammer(token: string, n: number, maxTokens: number): Promise<number[]> {
    return Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const gw = gateways[i % 2]!;
        const res = await fetch(`${gw.url}/v1/chat/completions`, { method: "POST", headers: { authorization: `Bearer ${token}` }, body: body(maxTokens) });
        await res.arrayBuffer();
        return res.status;
      }),
    );
  }

  // Warnings that a replica left Redis for its local state (which would make the counts per replica).
  const fallbacks = () => gateways.flatMap((g) => g.logs.filter((l) => /redis unreachable/.test(String(l.msg))).map((l) => String(l.err)));

  async function spend(token: string, gw = gateways[0]!): Promise<Spend> {
    return (await (await fetch(`${gw.url}/v1/spend`, { headers: { authorization: `Bearer ${token}` } })).json()) as Spend;
  }

  it("200 concurrent requests against a 37.5-request budget: exactly 37 admitted, spend never over", async () => {
    // Each request reserves its worst case, which here equals its actual cost (max_tokens = the answer's length).
    const statuses = await hammer("k-exact", 200, 12);
    const admitted = statuses.filter((s) => s === 200).length;
    assert.deepEqual(fallbacks(), [], "both replicas stayed on Redis");
    assert.equal(admitted, 37);
    assert.deepEqual([...new Set(statuses.filter((s) => s !== 200))], [429]);
    for (const gw of gateways) {
      const b = (await spend("k-exact", gw)).key.budget!;
      assert.equal(BigInt(b.spent_nano_usd), 37n * cost);
      assert.equal(b.reserved_nano_usd, "0");
      assert.ok(BigInt(b.spent_nano_usd) <= BigInt(b.limit_nano_usd));
    }
  });

  it("a team budget shared by two keys on two replicas, with worst cases above the actual cost, never overspends", async () => {
    // max_tokens 40 reserves more than the 12 tokens answered: admission is bounded by the arithmetic on both sides.
    const reserve = cost + 28n * 8000n;
    const budget = (cost * 75n) / 2n;
    const statuses = await Promise.all([hammer("k-alice", 100, 40), hammer("k-bob", 100, 40)]);
    const admitted = statuses.flat().filter((s) => s === 200).length;
    const lowest = Number(budget / reserve);
    const highest = Number((budget - reserve) / cost) + 1;
    assert.ok(admitted >= lowest && admitted <= highest, `admitted ${admitted}, expected ${lowest}..${highest}`);
    const team = (await spend("k-alice", gateways[1])).team!.budget!;
    assert.equal(BigInt(team.spent_nano_usd), BigInt(admitted) * cost);
    assert.ok(BigInt(team.spent_nano_usd) <= budget);
    assert.equal(team.reserved_nano_usd, "0");
  });

  it("limits and a budget far from exhaustion, served from leases: spend is recorded as requests end, and usage is exact once the leases end", async () => {
    // Waves, so that leases are taken, used up, renewed and replaced on both replicas.
    let ok = 0;
    for (let wave = 0; wave < 5; wave++) ok += (await hammer("k-roomy", 40, 12)).filter((s) => s === 200).length;
    assert.equal(ok, 200);
    assert.deepEqual(fallbacks(), [], "both replicas stayed on Redis");
    // Spend is in Redis as soon as each request settled (just after its answer), leases or not.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const during = (await spend("k-roomy", gateways[1])).key;
    assert.equal(BigInt(during.budget!.spent_nano_usd), 200n * cost);
    // What the leases hold goes back when they end: nothing stays reserved, and the windows count exactly the requests and their tokens.
    await new Promise((resolve) => setTimeout(resolve, 3 * LEASE_MS));
    const settled = (await spend("k-roomy", gateways[0])).key;
    assert.equal(settled.budget!.reserved_nano_usd, "0");
    assert.equal(BigInt(settled.budget!.spent_nano_usd), 200n * cost);
    assert.equal(settled.limits!.rpm.used, 200);
    const single = (await spend("k-roomy", gateways[0])).key.limits!.tpm!.used / 200;
    assert.ok(Number.isInteger(single) && single > 0, `tpm used ${single * 200} is 200 requests' actual tokens`);
    // And leases admitted some of them on each replica, as its metrics say. (Bursts of 20 at once: the
    // requests that arrive while a replica's first lease is on its way ask Redis, so not all.)
    for (const gw of gateways) {
      const text = await (await fetch(`${gw.url}/metrics`)).text();
      const count = (kind: string, from: string) => Number(new RegExp(`^llm_gateway_state_admissions_total\\{kind="${kind}",from="${from}"\\} (\\d+)$`, "m").exec(text)?.[1] ?? NaN);
      // Only this test's key has rate limits: its 100 requests per replica are every window admission.
      assert.equal(count("windows", "lease") + count("windows", "store"), 100);
      for (const kind of ["windows", "budget"]) assert.ok(count(kind, "lease") > 0, `${kind}: ${count(kind, "lease")} from leases, ${count(kind, "store")} from Redis`);
    }
  });

  it("a 50 rpm key limit admits 50 of 80 across both replicas", async () => {
    const statuses = await hammer("k-rpm", 80, 12);
    assert.equal(statuses.filter((s) => s === 200).length, 50);
    assert.equal(statuses.filter((s) => s === 429).length, 30);
    assert.equal((await spend("k-rpm", gateways[1])).key.limits!.rpm.used, 50);
  });
});
