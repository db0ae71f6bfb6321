import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { createServer } from "node:net";
import { once } from "node:events";
import { after, describe, it } from "node:test";
import { Redis } from "ioredis";
import { configSchema } from "../../server/config/schema.js";
import { startTestGateway, simulatedProvider, type TestGateway } from "../support/gateway.js";

// The state store as the app wires it: one store per config.state, shared
// by every runtime, reported by /readyz, replaced only when config.state changes.

const prefix = `test-appstate-${randomUUID().replaceAll("-", "")}`;
const base = { providers: [simulatedProvider()], models: [{ id: "sim/m", provider: "sim", context_window: 1000, max_output_tokens: 100 }] };

async function readyz(gw: TestGateway): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${gw.url}/readyz`);
  return { status: res.status, body: await res.json() };
}

async function deadPort(): Promise<number> {
  const server = createServer().listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  server.close();
  await once(server, "close");
  assert.ok(address !== null && typeof address === "object");
  return address.port;
}

describe("app state wiring", () => {
  const gateways: TestGateway[] = [];
  after(async () => {
    await Promise.all(gateways.map((g) => g.close()));
    const admin = new Redis("redis://127.0.0.1:6379");
    const keys = await admin.keys(`${prefix}*`);
    if (keys.length > 0) await admin.del(...keys);
    await admin.quit();
  });

  it("defaults to the memory store, hands it to the runtime and reports it on /readyz", async () => {
    const gw = await startTestGateway(base);
    gateways.push(gw);
    assert.equal(gw.stateStore.backend, "memory");
    assert.equal(gw.gateway.runtime().state, gw.stateStore);
    assert.deepEqual(await readyz(gw), { status: 200, body: { status: "ready", state: "memory" } });
  });

  it("uses Redis when configured, keeps the store across reloads, and replaces it when config.state changes", async () => {
    const gw = await startTestGateway({ ...base, state: { backend: "redis", url: "redis://127.0.0.1:6379", key_prefix: `${prefix}-a` } });
    gateways.push(gw);
    const first = gw.stateStore;
    assert.equal(first.backend, "redis");
    await first.windowAcquire("probe", 1, 10, 60_000); // waits for the first connection
    assert.deepEqual(await readyz(gw), { status: 200, body: { status: "ready", state: "redis" } });

    gw.apply(configSchema.parse({ ...base, models: [{ id: "sim/m2", provider: "sim", context_window: 1000, max_output_tokens: 100 }], state: { backend: "redis", url: "redis://127.0.0.1:6379", key_prefix: `${prefix}-a` } }));
    assert.equal(gw.stateStore, first);
    assert.equal(gw.gateway.runtime().state, first);

    gw.apply(configSchema.parse({ ...base, state: { backend: "redis", url: "redis://127.0.0.1:6379", key_prefix: `${prefix}-b` } }));
    assert.notEqual(gw.stateStore, first);
    assert.equal(gw.gateway.runtime().state, gw.stateStore);
    // The old store closes once the old runtime has no requests left (none here).
    await gw.gateway.runtime().state!.windowUsage("probe", 60_000);
    await assert.rejects(async () => {
      for (let i = 0; i < 100; i++) {
        await first.windowUsage("probe", 60_000);
        await new Promise((r) => setTimeout(r, 10));
      }
    }, /after close/);
  });

  it("stays ready on local state when Redis is unreachable, and says so", async () => {
    const port = await deadPort();
    const gw = await startTestGateway({ ...base, state: { backend: "redis", url: `redis://127.0.0.1:${port}`, key_prefix: prefix } });
    gateways.push(gw);
    assert.equal((await gw.stateStore.windowAcquire("k", 1, 1, 60_000)).allowed, true);
    assert.deepEqual(await readyz(gw), { status: 200, body: { status: "ready", state: "degraded: redis unreachable, using local state" } });
    assert.equal(gw.logs.filter((l) => l.level === 40 && /redis unreachable/.test(String(l.msg))).length, 1);
  });
});
