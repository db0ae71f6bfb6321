import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { createGatewayClient, userText, type GatewayClient } from "../../clients/index.js";
import { BreakerState } from "../../gen/llmgateway/v1/gateway_service_pb.js";
import { startOpenAISimulator, type OpenAISimulator } from "../simulators/openai.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { deleteRedisKeys, rpcFailure } from "../support/routing.js";

// Two gateway replicas sharing one real Redis (127.0.0.1:6379) behave as
// one gateway: a provider's rpm is admitted once between them, a breaker
// one opens is open for the other, and rate-limit headers one learns
// steer the other.

const REDIS_URL = "redis://127.0.0.1:6379";

function model(id: string, provider: string) {
  return { id, provider, upstream: "gpt-4o", context_window: 128_000, max_output_tokens: 4096, pricing: { input: 1, output: 2 } };
}

describe("two replicas on one Redis", () => {
  const prefix = `test-replicas-${randomUUID()}`;
  let a: OpenAISimulator;
  let b: OpenAISimulator;
  let limited: OpenAISimulator;
  const gateways: TestGateway[] = [];
  const clients: GatewayClient[] = [];

  before(async () => {
    [a, b, limited] = await Promise.all([startOpenAISimulator(), startOpenAISimulator(), startOpenAISimulator()]);
    const config = {
      state: { backend: "redis", url: REDIS_URL, key_prefix: prefix },
      providers: [
        { id: "pa", type: "openai", base_url: `${a.url}/v1`, api_key: "k", breaker: { consecutive_failures: 2, cooldown_ms: 60_000 } },
        { id: "pb", type: "openai", base_url: `${b.url}/v1`, api_key: "k" },
        { id: "pl", type: "openai", base_url: `${limited.url}/v1`, api_key: "k", limits: { rpm: 5 } },
      ],
      models: [model("pa/gpt-4o", "pa"), model("pb/gpt-4o", "pb"), model("pl/gpt-4o", "pl")],
      routes: [
        { id: "pair", targets: ["pa/gpt-4o", "pb/gpt-4o"] },
        { id: "steer", targets: ["pb/gpt-4o", "pa/gpt-4o"] },
      ],
    };
    for (let i = 0; i < 2; i++) {
      const gw = await startTestGateway(config);
      gateways.push(gw);
      clients.push(createGatewayClient({ baseUrl: gw.url }));
    }
  });

  after(async () => {
    await Promise.all(gateways.map((g) => g.close()));
    await Promise.all([a.close(), b.close(), limited.close()]);
    await deleteRedisKeys(REDIS_URL, prefix);
  });

  it("admit exactly the configured rpm between them", async () => {
    const outcomes = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        clients[i % 2]!
          .complete({ model: "pl/gpt-4o", messages: [userText(`request ${i}`)] })
          .then(() => "ok" as const)
          .catch((err: unknown) => ConnectError.from(err).code),
      ),
    );
    assert.equal(outcomes.filter((o) => o === "ok").length, 5);
    assert.equal(limited.hits(), 5);
    // Every other request was refused as rate limited, by whichever replica it reached.
    assert.deepEqual(outcomes.filter((o) => o !== "ok"), Array(7).fill(Code.ResourceExhausted));
    const f = await rpcFailure(() => clients[1]!.complete({ model: "pl/gpt-4o", messages: [userText("one more")] }));
    assert.ok(f.retryAfterMs !== undefined && f.retryAfterMs > 0 && f.retryAfterMs <= 60_000);
  });

  it("see the same open breaker", async () => {
    a.faults.add({ model: "gpt-4o", status: 503, times: Infinity });
    try {
      // One failure through each replica: two consecutive failures in the shared counters.
      for (const c of clients) assert.equal((await c.complete({ model: "pair", messages: [userText("fail")] })).model, "pb/gpt-4o");
      assert.equal(a.hits(), 2);
      for (const c of clients) {
        const m = (await c.listModels({})).models.find((x) => x.id === "pa/gpt-4o")!;
        assert.equal(m.breaker, BreakerState.OPEN);
        assert.equal(m.available, false);
      }
      for (let i = 0; i < 6; i++) await clients[i % 2]!.complete({ model: "pair", messages: [userText("open")] });
      assert.equal(a.hits(), 2, "neither replica sends traffic to the open breaker");
    } finally {
      a.faults.clear();
    }
  });

  it("share what the providers' rate-limit headers said", async () => {
    b.faults.add({ model: "gpt-4o", headers: { "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "30s" } });
    assert.equal((await clients[0]!.complete({ model: "steer", messages: [userText("learn")] })).model, "pb/gpt-4o");
    const hits = b.hits();
    // pa's breaker is open and pb is known to be out of requests: pb is still tried as the last resort.
    const res = await clients[1]!.complete({ model: "steer", messages: [userText("steered")] });
    assert.match(res.route!.reason, /kept for last: pb\/gpt-4o \(the provider reports 0 requests remaining/);
    assert.equal(b.hits(), hits + 1);
  });
});
