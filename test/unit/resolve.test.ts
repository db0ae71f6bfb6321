import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createAuthenticator, sha256Hex } from "../../server/auth/keys.js";
import type { ChatRequest } from "../../server/core/chat.js";
import { GatewayError } from "../../server/core/errors.js";
import { buildRuntime } from "../../server/core/runtime.js";
import { configSchema } from "../../server/config/schema.js";
import { resolveRoute } from "../../server/router/resolve.js";

// Candidate resolution: which deployments a request may use, in what
// order, and what the caller is told when none fits.

const runtime = buildRuntime(
  configSchema.parse({
    providers: [
      { id: "a", type: "simulated" },
      { id: "b", type: "simulated" },
      { id: "off", type: "anthropic", api_key: "" },
    ],
    models: [
      { id: "a/big", provider: "a", context_window: 100_000, max_output_tokens: 4000, capabilities: ["tools", "vision"], pricing: { input: 5, output: 15 } },
      { id: "a/small", provider: "a", context_window: 200, max_output_tokens: 100, capabilities: ["tools"], pricing: { input: 0.1, output: 0.4 } },
      { id: "b/mid", provider: "b", context_window: 50_000, max_output_tokens: 4000, pricing: { input: 1, output: 2 } },
      { id: "off/claude", provider: "off", context_window: 200_000, max_output_tokens: 8000 },
    ],
    routes: [
      { id: "chain", targets: ["off/claude", "a/small", "b/mid", "a/big"] },
      { id: "cheap", strategy: "cheapest", targets: ["a/big", "b/mid", "a/small"] },
      { id: "split", strategy: "weighted", targets: [{ model: "a/big", weight: 3 }, { model: "b/mid", weight: 1 }] },
      { id: "dead", targets: ["off/claude"] },
    ],
  }),
);
const open = createAuthenticator([]).authenticate(undefined);

function req(model: string, text = "hello", extra: Partial<ChatRequest> = {}): ChatRequest {
  return { model, messages: [{ role: "user", content: [{ type: "text", text }] }], sampling: {}, routing: {}, metadata: {}, ...extra };
}

describe("resolveRoute", () => {
  it("keeps listed order for fallback and records why candidates were skipped", () => {
    const plan = resolveRoute(runtime, req("chain"), open);
    assert.deepEqual(plan.candidates.map((d) => d.id), ["a/small", "b/mid", "a/big"]);
    assert.match(plan.skipped[0]!.reason, /provider off disabled/);
  });

  it("skips a model whose window is too small for the prompt", () => {
    const plan = resolveRoute(runtime, req("chain", "word ".repeat(400)), open);
    assert.deepEqual(plan.candidates.map((d) => d.id), ["b/mid", "a/big"]);
    assert.ok(plan.skipped.some((s) => s.model === "a/small" && /context window 200/.test(s.reason)));
  });

  it("filters by capabilities the request implies", () => {
    const image = req("chain");
    image.messages[0]!.content.push({ type: "image", url: "https://example.com/cat.png" });
    assert.deepEqual(resolveRoute(runtime, image, open).candidates.map((d) => d.id), ["a/big"]);
  });

  it("orders cheapest first by this request's worst-case cost", () => {
    const plan = resolveRoute(runtime, req("cheap", "hi", { sampling: { maxOutputTokens: 50 } }), open);
    assert.deepEqual(plan.candidates.map((d) => d.id), ["a/small", "b/mid", "a/big"]);
    assert.match(plan.reason, /cheapest first/);
  });

  it("splits weighted routes by weight", () => {
    let seed = 1;
    const random = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
    let first = 0;
    for (let i = 0; i < 4000; i++) if (resolveRoute(runtime, req("split"), open, { random }).candidates[0]!.id === "a/big") first++;
    assert.ok(Math.abs(first / 4000 - 0.75) < 0.03, `a/big first in ${first}/4000`);
  });

  it("honours provider allow and deny lists and the cost cap", () => {
    assert.deepEqual(resolveRoute(runtime, req("chain", "x", { routing: { allowedProviders: ["b"] } }), open).candidates.map((d) => d.id), ["b/mid"]);
    assert.deepEqual(resolveRoute(runtime, req("chain", "x", { routing: { deniedProviders: ["a"] } }), open).candidates.map((d) => d.id), ["b/mid"]);
    const capped = resolveRoute(runtime, req("chain", "x", { sampling: { maxOutputTokens: 100 }, routing: { maxCostNanoUsd: 100_000n } }), open);
    assert.deepEqual(capped.candidates.map((d) => d.id), ["a/small"]);
  });

  it("answers NotFound naming the known ids, PermissionDenied for a key, Unavailable when nothing is usable", () => {
    assert.throws(() => resolveRoute(runtime, req("nope"), open), (e: unknown) => e instanceof GatewayError && e.code === "not_found" && /chain/.test(e.message));
    const caller = createAuthenticator([{ id: "k", key_sha256: sha256Hex("t"), models: ["a/*"] }]).authenticate("Bearer t");
    assert.throws(() => resolveRoute(runtime, req("b/mid"), caller), (e: unknown) => e instanceof GatewayError && e.code === "permission_denied");
    assert.equal(resolveRoute(runtime, req("a/big"), caller).candidates[0]!.id, "a/big");
    assert.throws(() => resolveRoute(runtime, req("dead"), open), (e: unknown) => e instanceof GatewayError && e.code === "unavailable");
    assert.throws(
      () => resolveRoute(runtime, req("a/small", "word ".repeat(400)), open),
      (e: unknown) => e instanceof GatewayError && e.code === "invalid_argument" && e.openaiCode === "context_length_exceeded",
    );
  });
});
