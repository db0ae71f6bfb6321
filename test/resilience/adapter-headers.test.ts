import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { ChatRequest } from "../../server/core/chat.js";
import type { ModelConfig, ProviderConfig } from "../../server/config/schema.js";
import type { ProviderAdapter } from "../../server/providers/adapter.js";
import { createAnthropicAdapter } from "../../server/providers/anthropic.js";
import { createGeminiAdapter } from "../../server/providers/gemini.js";
import { createOpenAICompatibleAdapter } from "../../server/providers/openai-compatible.js";
import { parseRateLimitHeaders } from "../../server/resilience/rate-headers.js";
import type { Simulator } from "../simulators/harness.js";
import { startAnthropicSimulator } from "../simulators/anthropic.js";
import { startGeminiSimulator } from "../simulators/gemini.js";
import { startOpenAISimulator } from "../simulators/openai.js";

// Every adapter reports the upstream's status and headers (successes and
// errors, whole and streamed), which is how the router learns rate limits.

type Row = { name: string; start: () => Promise<Simulator>; adapter: (url: string) => ProviderAdapter; model: string; headers: Record<string, string> };

const base = { timeout_ms: 5000, connect_timeout_ms: 2000, idle_timeout_ms: 5000, max_connections: 4 };

const rows: Row[] = [
  {
    name: "openai",
    start: () => startOpenAISimulator(),
    adapter: (url) => createOpenAICompatibleAdapter({ id: "o", type: "openai", base_url: `${url}/v1`, api_key: "k", ...base } as ProviderConfig),
    model: "gpt-4o",
    headers: { "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2s" },
  },
  {
    name: "anthropic",
    start: () => startAnthropicSimulator(),
    adapter: (url) => createAnthropicAdapter({ id: "a", type: "anthropic", base_url: url, api_key: "k", ...base } as ProviderConfig),
    model: "claude-sim",
    headers: { "anthropic-ratelimit-requests-remaining": "0", "anthropic-ratelimit-requests-reset": new Date(Date.now() + 60_000).toISOString() },
  },
  {
    name: "gemini",
    start: () => startGeminiSimulator(),
    adapter: (url) => createGeminiAdapter({ id: "g", type: "gemini", base_url: url, api_key: "k", ...base } as ProviderConfig),
    model: "gemini-sim",
    headers: { "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2s" },
  },
];

for (const row of rows) {
  describe(`${row.name} adapter reports response headers`, () => {
    let sim: Simulator;
    let adapter: ProviderAdapter;
    before(async () => {
      sim = await row.start();
      adapter = row.adapter(sim.url);
    });
    after(async () => {
      await adapter.close();
      await sim.close();
    });

    const model: ModelConfig = { id: `x/${row.model}`, provider: "x", upstream: row.model, context_window: 100_000, max_output_tokens: 1000, capabilities: [] };
    const request: ChatRequest = { model: model.id, messages: [{ role: "user", content: [{ type: "text", text: "hello" }] }], sampling: {}, routing: {}, metadata: {} };

    function call(seen: Array<{ status: number; headers: Record<string, string | string[] | undefined> }>) {
      return { request, model, upstreamModel: row.model, signal: new AbortController().signal, onResponseHeaders: (status: number, headers: Record<string, string | string[] | undefined>) => void seen.push({ status, headers }) };
    }

    it("on a whole answer, with rate-limit headers the router can read", async () => {
      sim.faults.add({ model: row.model, headers: row.headers });
      const seen: Array<{ status: number; headers: Record<string, string | string[] | undefined> }> = [];
      await adapter.complete(call(seen));
      assert.equal(seen.length, 1);
      assert.equal(seen[0]!.status, 200);
      assert.equal(parseRateLimitHeaders(seen[0]!.headers, Date.now())?.requestsRemaining, 0);
    });

    it("on a stream and on an error", async () => {
      const seen: Array<{ status: number; headers: Record<string, string | string[] | undefined> }> = [];
      for await (const _ of adapter.stream(call(seen))) void _;
      sim.faults.add({ model: row.model, status: 429, headers: { "retry-after": "3" } });
      await assert.rejects(adapter.complete(call(seen)));
      assert.deepEqual(seen.map((s) => s.status), [200, 429]);
      assert.equal(seen[1]!.headers["retry-after"], "3");
    });
  });
}
