import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { createAuthenticator } from "../../server/auth/keys.js";
import type { ChatRequest } from "../../server/core/chat.js";
import { configSchema } from "../../server/config/schema.js";
import { ConfigError, parseConfig } from "../../server/config/load.js";
import { buildRuntime } from "../../server/core/runtime.js";
import { resolveRoute } from "../../server/router/resolve.js";

// Routes as ordered tiers of strategies, the auto table, and the plan's
// resilience settings.

const runtime = buildRuntime(
  configSchema.parse({
    providers: [
      { id: "a", type: "simulated" },
      { id: "b", type: "simulated" },
    ],
    models: [
      { id: "a/premium", provider: "a", context_window: 200_000, max_output_tokens: 4000, capabilities: ["tools", "json", "json_schema"], pricing: { input: 10, output: 30 } },
      { id: "a/coder", provider: "a", context_window: 64_000, max_output_tokens: 4000, capabilities: ["tools"], pricing: { input: 1, output: 4 } },
      { id: "b/coder", provider: "b", context_window: 64_000, max_output_tokens: 4000, capabilities: ["tools"], pricing: { input: 0.5, output: 2 } },
      { id: "b/tiny", provider: "b", context_window: 300, max_output_tokens: 100, pricing: { input: 0.01, output: 0.02 } },
      { id: "b/mid", provider: "b", context_window: 32_000, max_output_tokens: 4000, capabilities: ["json", "json_schema"], pricing: { input: 0.3, output: 1 } },
    ],
    routes: [
      {
        id: "tiered",
        tiers: [
          { strategy: "cheapest", targets: ["a/coder", "b/coder"] },
          { strategy: "fallback", targets: ["a/premium"] },
        ],
        hedge: { after_ms: "p95" },
        retry: { max_attempts_per_target: 2, max_wait_ms: 500 },
      },
      { id: "split", tiers: [{ strategy: "weighted", targets: [{ model: "a/coder", weight: 1 }, { model: "b/coder", weight: 4 }] }, { targets: ["a/premium"] }] },
      { id: "auto", strategy: "auto", targets: ["b/tiny", "b/mid", "a/premium"] },
      { id: "fast", strategy: "fastest", targets: ["a/coder", "b/coder"] },
    ],
    routing: {
      auto: {
        classes: {
          code: ["a/premium", "a/coder", "b/coder"],
          extraction: ["a/premium", "b/mid"],
        },
      },
    },
  }),
);
const open = createAuthenticator([]).authenticate(undefined);

function req(model: string, text = "hello", extra: Partial<ChatRequest> = {}): ChatRequest {
  return { model, messages: [{ role: "user", content: [{ type: "text", text }] }], sampling: {}, routing: {}, metadata: {}, ...extra };
}

describe("tiers", () => {
  it("orders each tier by its strategy, tier after tier, and says how", () => {
    const plan = resolveRoute(runtime, req("tiered", "hi", { sampling: { maxOutputTokens: 100 } }), open);
    assert.deepEqual(plan.candidates.map((d) => d.id), ["b/coder", "a/coder", "a/premium"]);
    assert.deepEqual(plan.tiers.map((t) => [t.strategy, t.candidates.map((d) => d.id)]), [
      ["cheapest", ["b/coder", "a/coder"]],
      ["fallback", ["a/premium"]],
    ]);
    assert.equal(plan.strategy, "cheapest>fallback");
    assert.match(plan.reason, /^tier 1 cheapest first by worst-case cost: b\/coder=\d+, a\/coder=\d+; tier 2 fallback: targets in listed order$/);
    assert.deepEqual(plan.hedge, { afterMs: "p95", max: 1, p95FallbackMs: 2000 });
    assert.equal(plan.maxAttemptsPerTarget, 2);
    assert.equal(plan.maxRetryWaitMs, 500);
  });

  it("splits a weighted tier within tolerance (seeded) and keeps the next tier last", () => {
    let seed = 7;
    const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
    const n = 5000;
    let bFirst = 0;
    for (let i = 0; i < n; i++) {
      const plan = resolveRoute(runtime, req("split"), open, { random });
      if (plan.candidates[0]!.id === "b/coder") bFirst++;
      assert.equal(plan.candidates[2]!.id, "a/premium");
    }
    // Expected 4/5; three standard deviations of a binomial(5000, 0.8) is ±0.017.
    assert.ok(Math.abs(bFirst / n - 0.8) < 0.017, `b/coder first in ${bFirst}/${n}`);
  });

  it("leaves a fastest tier in listed order for the executor to sort by latency", () => {
    const plan = resolveRoute(runtime, req("fast"), open);
    assert.deepEqual(plan.candidates.map((d) => d.id), ["a/coder", "b/coder"]);
    assert.equal(plan.reason, "fastest first by observed latency");
  });
});

describe("auto", () => {
  it("classifies, then picks the cheapest capable of the class's ranked models, and says why", () => {
    const plan = resolveRoute(runtime, req("auto", "Fix this:\n```js\nconst x = f(;\n```", { sampling: { maxOutputTokens: 50 } }), open);
    assert.equal(plan.taskClass, "code");
    assert.deepEqual(plan.candidates.map((d) => d.id), ["b/coder", "a/premium", "a/coder", "b/tiny", "b/mid"]);
    assert.match(plan.reason, /^auto: task class "code" \(1 code block; .*\); ranked \[a\/premium, a\/coder, b\/coder\]; chose b\/coder, the cheapest capable at \d+ nano-USD worst case/);
  });

  it("only capable models count: a JSON schema request skips those without json_schema", () => {
    const plan = resolveRoute(runtime, req("auto", "Extract the fields", { responseFormat: { type: "json_schema", name: "x", schema: { type: "object" } } }), open);
    assert.equal(plan.taskClass, "extraction");
    assert.equal(plan.candidates[0]!.id, "b/mid");
    assert.ok(plan.skipped.some((s) => s.model === "b/tiny" && /lacks capability json_schema/.test(s.reason)));
  });

  it("a class without a table row falls back to the route's targets, cheapest first", () => {
    const plan = resolveRoute(runtime, req("auto", "hi!"), open);
    assert.equal(plan.taskClass, "chat");
    assert.equal(plan.candidates[0]!.id, "b/tiny");
    assert.match(plan.reason, /no ranked models for this class: route targets cheapest first/);
  });

  it("a prompt larger than one model's window skips it", () => {
    const plan = resolveRoute(runtime, req("auto", "word ".repeat(600)), open);
    assert.ok(!plan.candidates.some((d) => d.id === "b/tiny"));
    assert.ok(plan.skipped.some((s) => s.model === "b/tiny" && /context window 300 </.test(s.reason)));
  });
});

describe("route configuration", () => {
  const base = `
providers: [{ id: sim, type: simulated }]
models:
  - { id: sim/a, provider: sim, context_window: 1000, max_output_tokens: 100 }
  - { id: sim/b, provider: sim, context_window: 1000, max_output_tokens: 100 }
`;
  function issues(text: string): readonly string[] {
    try {
      parseConfig(text, {}, "gateway.yaml");
      return [];
    } catch (err) {
      return (err as ConfigError).issues;
    }
  }

  it("checks every tier's targets and the auto tables against the models", () => {
    assert.deepEqual(
      issues(`${base}routes:
  - id: r
    tiers:
      - { strategy: fastest, targets: [sim/a, sim/x] }
      - { targets: [sim/a] }
    auto: { classes: { code: [sim/b, nope/c] } }
routing:
  auto: { classes: { math: [sim/z] } }
`),
      [
        'routes[0].tiers[0].targets[1]: unknown model "sim/x" (did you mean "sim/a"? known: sim/a, sim/b)',
        'routes[0].tiers[1].targets[0]: "sim/a" is listed twice (also tiers[0].targets[0])',
        'routes[0].auto.classes.code[1]: unknown model "nope/c" (known: sim/a, sim/b)',
        'routing.auto.classes.math[0]: unknown model "sim/z" (did you mean "sim/a"? known: sim/a, sim/b)',
      ],
    );
  });

  it("needs targets or tiers, not both, and names unknown classes", () => {
    assert.deepEqual(issues(`${base}routes: [{ id: r }]\n`), ["routes[0].targets: required: a route needs `targets` (one tier) or `tiers`"]);
    assert.deepEqual(issues(`${base}routes: [{ id: r, targets: [sim/a], tiers: [{ targets: [sim/b] }] }]\n`), [
      "routes[0].tiers: give either `targets` (one tier) or `tiers`, not both",
    ]);
    const bad = issues(`${base}routing: { auto: { classes: { poetry: [sim/a] } } }\n`);
    assert.equal(bad.length, 1);
    assert.match(bad[0]!, /^routing\.auto\.classes/);
  });

  it("accepts hedging, retries, breakers and limits", () => {
    const config = parseConfig(
      `${base.replace("{ id: sim, type: simulated }", "{ id: sim, type: simulated, retry: { max_retries: 2 }, breaker: { consecutive_failures: 3 }, limits: { rpm: 10 } }")}
routes:
  - { id: r, strategy: fastest, targets: [sim/a, sim/b], hedge: { after_ms: 250 } }
`,
      {},
      "gateway.yaml",
    );
    assert.deepEqual(config.providers[0]!.retry, { base_ms: 1000, cap_ms: 30_000, max_retries: 2 });
    assert.deepEqual(config.providers[0]!.breaker, { consecutive_failures: 3, failure_rate: 0.5, min_requests: 20, window_ms: 60_000, cooldown_ms: 30_000 });
    assert.deepEqual(config.routes[0]!.hedge, { after_ms: 250, max: 1, p95_fallback_ms: 2000 });
  });
});
