import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import { createGatewayClient, userText, type GatewayClient } from "../../clients/index.js";
import { ResponseFormatType } from "../../gen/llmgateway/v1/chat_pb.js";
import { answerText } from "../simulators/harness.js";
import { startOpenAISimulator, type OpenAISimulator } from "../simulators/openai.js";
import { startTestGateway, type TestGateway } from "../support/gateway.js";
import { attemptsOf, rpcFailure } from "../support/routing.js";

// Routing and failover through a real gateway and two OpenAI simulators
// (providers "pa" and "pb") with injected faults: failover that never waits
// on a long retry hint, learning from rate-limit headers, stream failover
// before the first token, hedging, windows, retries and deadlines.

const price = { input: 1, output: 2 };

function model(id: string, provider: string, extra: Record<string, unknown> = {}) {
  return { id, provider, upstream: "gpt-4o", context_window: 128_000, max_output_tokens: 4096, pricing: price, ...extra };
}

interface Rig {
  a: OpenAISimulator;
  b: OpenAISimulator;
  gw: TestGateway;
  client: GatewayClient;
  close(): Promise<void>;
}

/** rig starts two simulators and a gateway whose providers pa and pb point at them. */
async function rig(config: { providers?: Record<string, unknown>; models?: unknown[]; routes?: unknown[]; routing?: unknown } = {}): Promise<Rig> {
  const [a, b] = await Promise.all([startOpenAISimulator(), startOpenAISimulator()]);
  const gw = await startTestGateway({
    providers: [
      { id: "pa", type: "openai", base_url: `${a.url}/v1`, api_key: "k", ...config.providers?.pa as object },
      { id: "pb", type: "openai", base_url: `${b.url}/v1`, api_key: "k", ...config.providers?.pb as object },
    ],
    models: config.models ?? [model("pa/gpt-4o", "pa"), model("pb/gpt-4o", "pb")],
    routes: config.routes ?? [{ id: "pair", targets: ["pa/gpt-4o", "pb/gpt-4o"] }],
    ...(config.routing === undefined ? {} : { routing: config.routing }),
  });
  return {
    a,
    b,
    gw,
    client: createGatewayClient({ baseUrl: gw.url }),
    close: async () => {
      await gw.close();
      await Promise.all([a.close(), b.close()]);
    },
  };
}

describe("failover on rate limits", () => {
  let r: Rig;
  before(async () => (r = await rig()));
  after(() => r.close());

  it("a 429 with a 30 s retry-after fails over at once, then steers the next requests away", async () => {
    r.a.faults.add({ model: "gpt-4o", status: 429, headers: { "retry-after": "30" } });
    const started = performance.now();
    const res = await r.client.complete({ model: "pair", messages: [userText("fail over now")] });
    const elapsed = performance.now() - started;
    // A correctness bound: waiting out the hint would take 30 s.
    assert.ok(elapsed < 1000, `took ${Math.round(elapsed)} ms`);
    assert.equal(res.model, "pb/gpt-4o");
    assert.equal(res.message?.text, answerText("fail over now", 12));
    assert.deepEqual(
      attemptsOf(res.route).map((x) => [x.model, x.outcome, x.errorClass, x.retryAfterMs]),
      [
        ["pa/gpt-4o", "failed", "rate_limited", 30_000],
        ["pb/gpt-4o", "succeeded", undefined, undefined],
      ],
    );
    // The 429 was learned: the next request goes to pb first, without touching pa.
    const hitsA = r.a.hits();
    const next = await r.client.complete({ model: "pair", messages: [userText("again")] });
    assert.equal(next.model, "pb/gpt-4o");
    assert.equal(r.a.hits(), hitsA);
    assert.match(next.route!.reason, /kept for last: pa\/gpt-4o \(the provider answered 429/);
  });

  it("with no other candidate, the caller gets ResourceExhausted and the provider's hint, at once", async () => {
    r.b.faults.add({ model: "gpt-4o", status: 429, headers: { "retry-after": "20" } });
    const started = performance.now();
    const f = await rpcFailure(() => r.client.complete({ model: "pb/gpt-4o", messages: [userText("x")] }));
    assert.ok(performance.now() - started < 1000);
    assert.equal(f.code, Code.ResourceExhausted);
    assert.equal(f.retryAfterMs, 20_000);
  });
});

describe("learning from rate-limit headers", () => {
  let r: Rig;
  before(async () => (r = await rig()));
  after(() => r.close());

  it("a 200 that says no requests remain moves the next request elsewhere before any 429", async () => {
    r.a.faults.add({ model: "gpt-4o", headers: { "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "20s", "x-ratelimit-remaining-tokens": "90000" } });
    const first = await r.client.complete({ model: "pair", messages: [userText("one")] });
    assert.equal(first.model, "pa/gpt-4o");
    const hitsA = r.a.hits();
    const second = await r.client.complete({ model: "pair", messages: [userText("two")] });
    assert.equal(second.model, "pb/gpt-4o");
    assert.equal(r.a.hits(), hitsA, "pa was not called");
    assert.match(second.route!.reason, /the provider reports 0 requests remaining/);
    // Learned limits only steer: with no alternative, pa is still tried (it may have capacity again).
    const direct = await r.client.complete({ model: "pa/gpt-4o", messages: [userText("three")] });
    assert.equal(direct.model, "pa/gpt-4o");
  });

  it("quota_exhausted marks the provider unavailable for the next requests", async () => {
    r.b.faults.add({ model: "gpt-4o", status: 429, body: { error: { message: "You exceeded your current quota", type: "insufficient_quota", param: null, code: "insufficient_quota" } } });
    const f = await rpcFailure(() => r.client.complete({ model: "pb/gpt-4o", messages: [userText("q")] }));
    assert.equal(attemptsOf(f.trace)[0]?.errorClass, "quota_exhausted");
    const listed = await r.client.listModels({});
    assert.ok(listed.models.find((m) => m.id === "pb/gpt-4o")?.available, "a quota mark steers; it is not a breaker");
  });
});

describe("streams fail over until the first token", () => {
  let r: Rig;
  before(
    async () =>
      (r = await rig({
        providers: { pa: { first_token_timeout_ms: 250 } },
        routes: [{ id: "pair", targets: ["pa/gpt-4o", "pb/gpt-4o"] }],
      })),
  );
  after(() => r.close());

  async function stream(model: string, text: string) {
    const kinds: string[] = [];
    let body = "";
    let start;
    let finish;
    for await (const ev of r.client.streamComplete({ model, messages: [userText(text)] })) {
      kinds.push(ev.event.case ?? "");
      if (ev.event.case === "start") start = ev.event.value;
      if (ev.event.case === "textDelta") body += ev.event.value.text;
      if (ev.event.case === "finish") finish = ev.event.value;
    }
    return { kinds, body, start: start!, finish: finish! };
  }

  for (const [name, fault] of [
    ["a 503", { status: 503 }],
    ["a reset connection", { resetConnection: true }],
    ["a stream cut before its first token", { cutAfterChunks: 0 }],
  ] as const) {
    it(`${name} before the first token is invisible to the caller`, async () => {
      r.a.faults.add({ model: "gpt-4o", ...fault });
      const s = await stream("pair", `stream past ${name}`);
      assert.equal(s.kinds[0], "start");
      assert.equal(s.kinds.filter((k) => k === "start").length, 1);
      assert.equal(s.start.model, "pb/gpt-4o");
      assert.equal(s.body, answerText(`stream past ${name}`, 12));
      assert.equal(s.finish.error, undefined);
      const seen = attemptsOf(s.finish.route);
      assert.deepEqual(seen.map((x) => [x.model, x.outcome]), [["pa/gpt-4o", "failed"], ["pb/gpt-4o", "succeeded"]]);
    });
  }

  it("no first token within first_token_timeout_ms is a timeout, and fails over", async () => {
    r.a.faults.add({ model: "gpt-4o", firstTokenDelayMs: 3000 });
    const s = await stream("pair", "slow start");
    assert.equal(s.start.model, "pb/gpt-4o");
    const [first] = attemptsOf(s.finish.route);
    assert.equal(first?.errorClass, "timeout");
    assert.match(first!.errorMessage, /pa: no first token within 250 ms/);
  });

  it("after the first token, a failure ends the stream with an error and the partial usage, never a second answer", async () => {
    r.a.faults.add({ model: "gpt-4o", cutAfterChunks: 3 });
    const kinds: string[] = [];
    let finish;
    let thrown: unknown;
    try {
      for await (const ev of r.client.streamComplete({ model: "pair", messages: [userText("cut me off")] })) {
        kinds.push(ev.event.case ?? "");
        if (ev.event.case === "finish") finish = ev.event.value;
      }
    } catch (err) {
      thrown = err;
    }
    assert.ok(thrown !== undefined, "the call ends with an error status");
    assert.equal(kinds.filter((k) => k === "start").length, 1);
    assert.ok(finish !== undefined && finish.error !== undefined);
    assert.deepEqual(attemptsOf(finish.route).map((x) => x.model), ["pa/gpt-4o"]);
  });
});

describe("hedging", () => {
  let r: Rig;
  before(
    async () =>
      (r = await rig({
        routes: [
          { id: "hedged", targets: ["pa/gpt-4o", "pb/gpt-4o"], hedge: { after_ms: 150 } },
          { id: "hedged-p95", targets: ["pa/gpt-4o", "pb/gpt-4o"], hedge: { after_ms: "p95", p95_fallback_ms: 150 } },
        ],
      })),
  );
  after(() => r.close());

  it("a hedge started after the threshold wins against a slow first token; the loser is cancelled and billed", async () => {
    r.a.faults.add({ model: "gpt-4o", firstTokenDelayMs: 2500 });
    const aborts = r.a.clientAborts();
    let start;
    let finish;
    let text = "";
    const started = performance.now();
    for await (const ev of r.client.streamComplete({ model: "hedged", messages: [userText("race me")] })) {
      if (ev.event.case === "start") start = ev.event.value;
      if (ev.event.case === "textDelta") text += ev.event.value.text;
      if (ev.event.case === "finish") finish = ev.event.value;
    }
    assert.ok(performance.now() - started < 2500, "the slow attempt was not waited for");
    assert.equal(start!.model, "pb/gpt-4o");
    assert.equal(text, answerText("race me", 12));
    const seen = attemptsOf(finish!.route);
    assert.deepEqual(
      seen.map((x) => [x.model, x.outcome, x.hedged]),
      [
        ["pa/gpt-4o", "cancelled", false],
        ["pb/gpt-4o", "succeeded", true],
      ],
    );
    assert.match(seen[0]!.errorMessage, /lost the hedge race to pb\/gpt-4o/);
    // The winner's tokens plus the loser's prompt (estimated): more than the answer alone.
    const u = finish!.usage!;
    const winnerOnly = BigInt(u.inputTokens) * 1000n + BigInt(u.outputTokens) * 2000n;
    assert.ok(finish!.cost!.totalNanoUsd > winnerOnly, `${finish!.cost!.totalNanoUsd} vs ${winnerOnly}`);
    await waitFor(() => r.a.clientAborts() > aborts);
  });

  it("the caller leaving cancels every attempt, the hedge included", async () => {
    r.a.faults.add({ model: "gpt-4o", firstTokenDelayMs: 3000 });
    r.b.faults.add({ model: "gpt-4o", firstTokenDelayMs: 3000 });
    const [abortsA, abortsB, hitsB] = [r.a.clientAborts(), r.b.clientAborts(), r.b.hits()];
    const leave = new AbortController();
    const call = (async () => {
      for await (const _ of r.client.streamComplete({ model: "hedged", messages: [userText("never mind")] }, { signal: leave.signal })) void _;
    })();
    await waitFor(() => r.b.hits() > hitsB);
    leave.abort();
    await assert.rejects(call);
    await waitFor(() => r.a.clientAborts() > abortsA && r.b.clientAborts() > abortsB);
  });

  it("hedges whole requests too, and a fast first attempt needs no hedge", async () => {
    r.a.faults.add({ model: "gpt-4o", firstTokenDelayMs: 2500 });
    const res = await r.client.complete({ model: "hedged-p95", messages: [userText("whole race")] });
    assert.equal(res.model, "pb/gpt-4o");
    assert.deepEqual(attemptsOf(res.route).map((x) => [x.outcome, x.hedged]), [["cancelled", false], ["succeeded", true]]);
    const quick = await r.client.complete({ model: "hedged", messages: [userText("no race")] });
    assert.deepEqual(attemptsOf(quick.route).map((x) => [x.model, x.outcome, x.hedged]), [["pa/gpt-4o", "succeeded", false]]);
  });
});

describe("windows, retries and deadlines", () => {
  let r: Rig;
  before(
    async () =>
      (r = await rig({
        providers: { pb: { retry: { base_ms: 20, cap_ms: 100, max_retries: 2 } } },
        models: [
          model("pa/small", "pa", { context_window: 400 }),
          model("pa/mid", "pa", { context_window: 8000 }),
          model("pa/gpt-4o", "pa"),
          model("pb/gpt-4o", "pb"),
        ],
        routes: [
          { id: "windows", targets: ["pa/small", "pa/mid", "pb/gpt-4o"] },
          { id: "overflow", targets: ["pa/mid", "pa/small", "pb/gpt-4o"] },
          { id: "pair", targets: ["pa/gpt-4o", "pb/gpt-4o"] },
        ],
      })),
  );
  after(() => r.close());

  for (const [status, errorClass] of [[401, "auth"], [403, "auth"], [404, "not_found"], [400, "invalid_request"]] as const) {
    it(`an upstream ${status} ends the route: no failover, and the caller is told whose fault it is`, async () => {
      r.a.faults.add({ model: "gpt-4o", status });
      const hitsB = r.b.hits();
      const failure = await rpcFailure(() => r.client.complete({ model: "pair", messages: [userText("no failover")] }));
      assert.equal(r.b.hits(), hitsB, "the second target must not be tried");
      assert.equal(failure.code, status === 400 ? Code.InvalidArgument : Code.Unavailable);
      if (errorClass === "auth") assert.match(failure.message, /rejected the gateway's credentials/);
      if (errorClass === "not_found") assert.match(failure.message, /does not know the configured upstream model/);
      assert.deepEqual(attemptsOf(failure.trace).map((x) => [x.model, x.errorClass]), [["pa/gpt-4o", errorClass]]);
    });
  }

  it("a prompt larger than a model's window skips it without calling it", async () => {
    const hits = r.a.hits();
    const res = await r.client.complete({ model: "windows", messages: [userText("word ".repeat(500))], sampling: { maxOutputTokens: 50 } });
    assert.equal(res.model, "pa/mid");
    assert.equal(r.a.hits() - hits, 1);
    assert.ok(res.route!.skipped.some((s) => s.model === "pa/small" && /context window 400/.test(s.reason)));
  });

  it("context_length_exceeded from a provider moves to a larger window", async () => {
    r.a.faults.add({
      model: "gpt-4o",
      status: 400,
      body: { error: { message: "This model's maximum context length is 8000 tokens.", type: "invalid_request_error", param: "messages", code: "context_length_exceeded" } },
    });
    const res = await r.client.complete({ model: "overflow", messages: [userText("longer than it looks")] });
    assert.equal(res.model, "pb/gpt-4o");
    assert.deepEqual(attemptsOf(res.route).map((x) => [x.model, x.errorClass]), [["pa/mid", "context_length_exceeded"], ["pb/gpt-4o", undefined]]);
    assert.ok(res.route!.skipped.some((s) => s.model === "pa/small" && /too small \(a smaller-or-equal window overflowed\)/.test(s.reason)));
  });

  it("retries the same deployment after a backoff when nothing else is left", async () => {
    r.b.faults.add({ model: "gpt-4o", status: 503, times: 2 });
    const res = await r.client.complete({ model: "pb/gpt-4o", messages: [userText("third time lucky")] });
    assert.deepEqual(attemptsOf(res.route).map((x) => [x.model, x.outcome]), [
      ["pb/gpt-4o", "failed"],
      ["pb/gpt-4o", "failed"],
      ["pb/gpt-4o", "succeeded"],
    ]);
  });

  it("never waits for a retry hint beyond the request's deadline", async () => {
    r.b.faults.add({ model: "gpt-4o", status: 503, headers: { "retry-after": "5" } });
    const started = performance.now();
    const f = await rpcFailure(() => r.client.complete({ model: "pb/gpt-4o", messages: [userText("x")], routing: { latencyBudgetMs: 2000 } }));
    assert.ok(performance.now() - started < 1000, "failed at once instead of sleeping");
    assert.equal(f.code, Code.Unavailable);
    // The wait is what is left of the 5 s hint when the retry is considered: a few ms less on a busy machine.
    const wait = /waiting (\d+) ms for retrying pb\/gpt-4o would exceed the request's deadline/.exec(f.message);
    assert.ok(wait !== null, f.message);
    assert.ok(Number(wait[1]) > 4000 && Number(wait[1]) <= 5000, `waited ${wait[1]} ms of a 5000 ms hint`);
  });

  it("never retries the caller's own mistakes", async () => {
    r.b.faults.add({ model: "gpt-4o", status: 400, body: { error: { message: "bad field", type: "invalid_request_error", param: null, code: null } } });
    const hits = r.b.hits();
    const f = await rpcFailure(() => r.client.complete({ model: "pb/gpt-4o", messages: [userText("x")] }));
    assert.equal(f.code, Code.InvalidArgument);
    assert.equal(r.b.hits() - hits, 1);
  });

  it("the latency budget bounds a slow upstream", async () => {
    r.b.faults.add({ model: "gpt-4o", firstTokenDelayMs: 3000 });
    const started = performance.now();
    const f = await rpcFailure(() => r.client.complete({ model: "pb/gpt-4o", messages: [userText("x")], routing: { latencyBudgetMs: 200 } }));
    assert.ok(performance.now() - started < 2000);
    assert.equal(f.code, Code.DeadlineExceeded);
  });
});

describe("fastest", () => {
  let r: Rig;
  before(async () => (r = await rig({ routes: [{ id: "fast", strategy: "fastest", targets: ["pa/gpt-4o", "pb/gpt-4o"] }] })));
  after(() => r.close());

  it("explores each unobserved deployment once, then prefers the one with the lower decayed latency", async () => {
    r.a.faults.add({ model: "gpt-4o", firstTokenDelayMs: 200, times: Infinity });
    const first = await r.client.complete({ model: "fast", messages: [userText("one")] });
    assert.equal(first.model, "pa/gpt-4o");
    assert.match(first.route!.reason, /pa\/gpt-4o=unobserved \(explored first\), pb\/gpt-4o=unobserved/);
    const second = await r.client.complete({ model: "fast", messages: [userText("two")] });
    assert.equal(second.model, "pb/gpt-4o", "pb had not been observed yet");
    for (let i = 0; i < 3; i++) {
      const res = await r.client.complete({ model: "fast", messages: [userText(`then ${i}`)] });
      assert.equal(res.model, "pb/gpt-4o");
      assert.match(res.route!.reason, /fastest by latency: pb\/gpt-4o=\d+ms, pa\/gpt-4o=\d+ms/);
    }
    r.a.faults.clear();
  });
});

describe("cheapest and auto through the gateway", () => {
  let r: Rig;
  before(
    async () =>
      (r = await rig({
        models: [
          model("pa/gpt-4o", "pa", { pricing: { input: 2.5, output: 10 }, capabilities: ["json", "json_schema"] }),
          model("pb/gpt-4o", "pb", { pricing: { input: 0.15, output: 0.6 } }),
        ],
        routes: [
          { id: "cheap", strategy: "cheapest", targets: ["pa/gpt-4o", "pb/gpt-4o"] },
          { id: "auto", strategy: "auto", targets: ["pa/gpt-4o", "pb/gpt-4o"] },
        ],
        routing: { auto: { classes: { code: ["pa/gpt-4o", "pb/gpt-4o"], extraction: ["pa/gpt-4o", "pb/gpt-4o"] } } },
      })),
  );
  after(() => r.close());

  it("cheapest answers from the model the trace names, with the costs that decided it", async () => {
    const res = await r.client.complete({ model: "cheap", messages: [userText("hello")], sampling: { maxOutputTokens: 100 } });
    assert.equal(res.model, "pb/gpt-4o");
    assert.match(res.route!.reason, /^cheapest first by worst-case cost: pb\/gpt-4o=\d+, pa\/gpt-4o=\d+$/);
  });

  it("auto says the task class and why, and picks the cheapest capable", async () => {
    const code = await r.client.complete({ model: "auto", messages: [userText("```ts\nconst x: number = f();\n```\nwhy is this a type error?")] });
    assert.equal(code.model, "pb/gpt-4o");
    assert.match(code.route!.reason, /auto: task class "code" \(1 code block.*\); ranked \[pa\/gpt-4o, pb\/gpt-4o\]; chose pb\/gpt-4o, the cheapest capable/);
    const json = await r.client.complete({
      model: "auto",
      messages: [userText("Extract the city from: I live in Paris.")],
      responseFormat: { type: ResponseFormatType.JSON_SCHEMA, schemaName: "city", schema: { type: "object" } },
    });
    assert.equal(json.model, "pa/gpt-4o", "only pa can do JSON schema");
    assert.match(json.route!.reason, /auto: task class "extraction"/);
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out waiting for a condition");
    await new Promise((r) => setTimeout(r, 10));
  }
}
