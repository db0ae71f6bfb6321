import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { createGatewayClient, userText } from "../../clients/index.js";
import { sha256Hex } from "../../server/auth/keys.js";
import { parseChatRequest } from "../../server/openai/request.js";
import { nanoToUsdString } from "../../server/pricing/cost.js";
import { startAnthropicSimulator } from "../simulators/anthropic.js";
import { countTokens, type Simulator } from "../simulators/harness.js";
import { startOpenAISimulator } from "../simulators/openai.js";
import { simulatedProvider, startTestGateway, type TestGateway } from "../support/gateway.js";

// Cost end to end: bills from independent upstreams reporting known usage
// (cached, reasoning, past a tier) checked against hand-computed figures on
// every surface; EstimateCost against the bill; budgets (hard limit, soft
// limit degrade), per-key limits and spend visibility through both edges.

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

describe("cost, budgets and limits end to end", () => {
  let openai: Simulator;
  let anthropic: Simulator;
  let gw: TestGateway;

  before(async () => {
    openai = await startOpenAISimulator({ apiKey: "sk-up" });
    anthropic = await startAnthropicSimulator({ apiKey: "sk-ant" });
    gw = await startTestGateway({
      providers: [
        { id: "up", type: "openai", base_url: `${openai.url}/v1`, api_key: "sk-up" },
        { id: "ant", type: "anthropic", base_url: anthropic.url, api_key: "sk-ant" },
        simulatedProvider("sim"),
        simulatedProvider("slow", { tokens_per_second: 100, answer_tokens: 300 }),
      ],
      models: [
        {
          id: "up/gpt",
          provider: "up",
          upstream: "gpt-4o",
          context_window: 1_000_000,
          max_output_tokens: 400_000,
          capabilities: ["reasoning"],
          pricing: { input: 1.25, output: 10, cached_input: 0.125, tiers: [{ above_input_tokens: 200_000, input: 2.5, output: 15, cached_input: 0.25 }] },
        },
        {
          id: "ant/sonnet",
          provider: "ant",
          upstream: "claude-sonnet-4-5",
          context_window: 1_000_000,
          max_output_tokens: 64_000,
          pricing: { input: 3, output: 15, cached_input: 0.3, cache_write: 3.75, tiers: [{ above_input_tokens: 200_000, input: 6, output: 22.5, cached_input: 0.6, cache_write: 7.5 }] },
        },
        { id: "sim/a", provider: "sim", context_window: 32_000, max_output_tokens: 4096, pricing: { input: 2, output: 8 } },
        { id: "sim/cheap", provider: "sim", context_window: 32_000, max_output_tokens: 4096, pricing: { input: 0.1, output: 0.4 } },
        { id: "slow/m", provider: "slow", context_window: 32_000, max_output_tokens: 4096, capabilities: ["tools"], pricing: { input: 1, output: 1 } },
        { id: "sim/tiny", provider: "sim", context_window: 50, max_output_tokens: 20, pricing: { input: 1, output: 1 } },
      ],
      routes: [
        { id: "cheap", targets: ["sim/cheap"] },
        { id: "mixed", targets: ["slow/m", "sim/a", "sim/tiny"] },
      ],
      keys: [
        { id: "open", key_sha256: sha256Hex("k-open") },
        { id: "payer", key_sha256: sha256Hex("k-payer"), budget: { usd: 0.0005, period: "month" } },
        { id: "soft", key_sha256: sha256Hex("k-soft"), models: ["sim/a"], budget: { usd: 0.001, period: "day", soft_limit: 0.1, degrade_to: "cheap" } },
        { id: "limited", key_sha256: sha256Hex("k-limited"), limits: { rpm: 2 } },
        { id: "stingy", key_sha256: sha256Hex("k-stingy"), limits: { tpm: 50 } },
        { id: "streamer", key_sha256: sha256Hex("k-streamer"), budget: { usd: 10, period: "week" } },
      ],
    });
  });
  after(async () => {
    await gw.close();
    await openai.close();
    await anthropic.close();
  });

  async function chat(token: string, body: Record<string, unknown>): Promise<Response> {
    return fetch(`${gw.url}/v1/chat/completions`, { method: "POST", headers: { ...bearer(token), "content-type": "application/json" }, body: JSON.stringify(body) });
  }

  it("bills cached and reasoning tokens past a tier exactly, the same on every surface", async () => {
    // The OpenAI simulator counts a word as a token; CACHED makes half the prompt cached, THINK adds reasoning.
    const prompt = `CACHED THINK ${"w ".repeat(200_100).trim()}`;
    const input = countTokens(prompt); // 200,102: past the 200k tier
    const cached = Math.floor(input / 2);
    const reasoning = countTokens(`Thinking about: ${prompt}`);
    const output = 12 + reasoning;
    // Tier rates for the whole request: $2.50 uncached, $0.25 cached, $15 output (reasoning included), in nano-USD per token × 1000.
    const expected = BigInt(input - cached) * 2500n + BigInt(cached) * 250n + BigInt(output) * 15_000n;

    const res = await chat("k-open", { model: "up/gpt", messages: [{ role: "user", content: prompt }] });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { usage: { prompt_tokens: number; completion_tokens: number; completion_tokens_details: { reasoning_tokens: number } }; x_gateway: { cost_nano_usd: string; cost_usd: string } };
    assert.equal(body.usage.prompt_tokens, input);
    assert.equal(body.usage.completion_tokens, output);
    assert.equal(body.usage.completion_tokens_details.reasoning_tokens, reasoning);
    assert.equal(BigInt(body.x_gateway.cost_nano_usd), expected);
    assert.equal(res.headers.get("x-gateway-cost-usd"), nanoToUsdString(expected));
    const line = gw.logs.find((l) => l.msg === "request" && l.model === "up/gpt" && l.inputTokens === input);
    assert.equal(line?.costNanoUsd, expected.toString());
  });

  it("bills an Anthropic cache read past the 200k tier at the tier's cached rate", async () => {
    const prompt = `CACHED ${"x ".repeat(210_000).trim()}`;
    const input = countTokens(prompt);
    const cached = Math.floor(input / 2);
    const expected = BigInt(input - cached) * 6000n + BigInt(cached) * 600n + 12n * 22_500n;
    const res = await createGatewayClient({ baseUrl: gw.url, apiKey: "k-open" }).complete({ model: "ant/sonnet", messages: [userText(prompt)] });
    assert.equal(res.usage?.inputTokens, input);
    assert.equal(res.usage?.cachedInputTokens, cached);
    assert.equal(res.cost?.totalNanoUsd, expected);
    assert.equal(res.cost?.cachedInputNanoUsd, BigInt(cached) * 600n);
  });

  it("puts the cost in the final SSE usage chunk and the RPC stream's finish event", async () => {
    const prompt = "CACHED THINK stream me please";
    const input = countTokens(prompt);
    const cached = Math.floor(input / 2);
    const output = 12 + countTokens(`Thinking about: ${prompt}`);
    const expected = BigInt(input - cached) * 1250n + BigInt(cached) * 125n + BigInt(output) * 10_000n;

    const res = await chat("k-open", { model: "up/gpt", stream: true, stream_options: { include_usage: true }, messages: [{ role: "user", content: prompt }] });
    const events = (await res.text()).split("\n\n").filter((e) => e.startsWith("data: {"));
    const last = JSON.parse(events.at(-1)!.slice(6)) as { choices: unknown[]; x_gateway: { cost_usd: string; cost_nano_usd: string } };
    assert.deepEqual(last.choices, []);
    assert.equal(last.x_gateway.cost_usd, nanoToUsdString(expected));
    assert.equal(BigInt(last.x_gateway.cost_nano_usd), expected);

    let finishCost: bigint | undefined;
    for await (const ev of createGatewayClient({ baseUrl: gw.url, apiKey: "k-open", protocol: "grpc" }).streamComplete({ model: "up/gpt", messages: [userText(prompt)] })) {
      if (ev.event.case === "finish") finishCost = ev.event.value.cost?.totalNanoUsd;
    }
    assert.equal(finishCost, expected);
  });

  it("EstimateCost and the bill that follows agree to the nano-dollar", async () => {
    const body = { model: "sim/a", max_tokens: 12, messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "How much will this cost, exactly?" }] };
    const est = await fetch(`${gw.url}/v1/cost/estimate`, { method: "POST", headers: { ...bearer("k-open"), "content-type": "application/json" }, body: JSON.stringify(body) });
    assert.equal(est.status, 200);
    const e = (await est.json()) as { object: string; candidates: Array<{ model: string; input_tokens: number; max_output_tokens: number; max_cost_nano_usd: string; max_cost_usd: string; eligible: boolean }> };
    assert.equal(e.object, "cost.estimate");
    const [c] = e.candidates;
    assert.equal(c!.model, "sim/a");
    assert.equal(c!.max_output_tokens, 12);
    assert.equal(BigInt(c!.max_cost_nano_usd), BigInt(c!.input_tokens) * 2000n + 12n * 8000n);

    const bill = (await (await chat("k-open", body)).json()) as { usage: { prompt_tokens: number; completion_tokens: number }; x_gateway: { cost_nano_usd: string } };
    assert.equal(bill.usage.prompt_tokens, c!.input_tokens);
    assert.equal(bill.usage.completion_tokens, 12);
    assert.equal(bill.x_gateway.cost_nano_usd, c!.max_cost_nano_usd);

    // The RPC answers the same, candidates cheapest first.
    const rpc = await createGatewayClient({ baseUrl: gw.url, apiKey: "k-open" }).estimateCost({ model: "cheap", messages: [userText("hi")] });
    assert.deepEqual(rpc.estimates.map((x) => x.model), ["sim/cheap"]);
    assert.ok(rpc.estimates[0]!.maxCostNanoUsd >= rpc.estimates[0]!.expectedCostNanoUsd);
  });

  it("a hard budget admits exactly what it can afford, then refuses with a reset time on both edges", async () => {
    const body = { model: "sim/a", max_tokens: 12, messages: [{ role: "user", content: "spend a little" }] };
    const first = await chat("k-payer", body);
    assert.equal(first.status, 200);
    const cost = BigInt(((await first.json()) as { x_gateway: { cost_nano_usd: string } }).x_gateway.cost_nano_usd);
    assert.ok(first.headers.get("x-gateway-budget-remaining-usd") !== null);
    assert.equal(first.headers.get("x-gateway-budget-remaining-usd"), nanoToUsdString(500_000n - cost));
    const affordable = Number(500_000n / cost);
    let admitted = 1;
    let refused: Response | undefined;
    for (let i = 0; i < affordable + 2 && refused === undefined; i++) {
      const r = await chat("k-payer", body);
      if (r.status === 200) {
        admitted++;
        await r.arrayBuffer();
      } else refused = r;
    }
    assert.equal(admitted, affordable);
    assert.equal(refused!.status, 429);
    const err = (await refused!.json()) as { error: { message: string; code: string } };
    assert.equal(err.error.code, "insufficient_quota");
    assert.match(err.error.message, /budget exhausted: key "payer" has spent \$[\d.]+ of its \$0\.0005 month budget \(\d{4}-\d{2}\); .* resets at \d{4}-\d{2}-01T00:00:00\.000Z/);
    assert.ok(Number(refused!.headers.get("retry-after")) > 0);

    await assert.rejects(createGatewayClient({ baseUrl: gw.url, apiKey: "k-payer" }).complete({ model: "sim/a", messages: [userText("x")], sampling: { maxOutputTokens: 12 } }), (e: unknown) => {
      const ce = ConnectError.from(e);
      return ce.code === Code.ResourceExhausted && /budget exhausted/.test(ce.rawMessage) && Number(ce.metadata.get("retry-after-ms")) > 0;
    });

    const spend = (await (await fetch(`${gw.url}/v1/spend`, { headers: bearer("k-payer") })).json()) as {
      object: string;
      key: { id: string; budget: { spent_nano_usd: string; reserved_nano_usd: string; remaining_nano_usd: string; limit_usd: string; period: string; resets_at: string; exhausted: boolean } };
      team: unknown;
    };
    assert.equal(spend.object, "spend");
    assert.equal(spend.key.id, "payer");
    assert.equal(BigInt(spend.key.budget.spent_nano_usd), BigInt(affordable) * cost);
    assert.equal(spend.key.budget.reserved_nano_usd, "0");
    assert.equal(BigInt(spend.key.budget.remaining_nano_usd), 500_000n - BigInt(affordable) * cost);
    assert.equal(spend.key.budget.limit_usd, "0.000500000");
    assert.match(spend.key.budget.resets_at, /^\d{4}-\d{2}-01T00:00:00\.000Z$/);
    assert.equal(spend.team, null);
    let listed: string | null = null;
    await createGatewayClient({ baseUrl: gw.url, apiKey: "k-payer" }).listModels({}, { onHeader: (h) => (listed = h.get("x-gateway-budget-remaining-usd")) });
    assert.equal(listed, nanoToUsdString(500_000n - BigInt(affordable) * cost));

    // EstimateCost says why the candidate is out now.
    const est = (await (await fetch(`${gw.url}/v1/cost/estimate`, { method: "POST", headers: bearer("k-payer"), body: JSON.stringify(body) })).json()) as { candidates: Array<{ eligible: boolean; ineligible_reason: string }> };
    assert.equal(est.candidates[0]!.eligible, false);
    assert.match(est.candidates[0]!.ineligible_reason, /^budget: worst-case cost \$[\d.]+ exceeds the \$[\d.]+ left in key "payer"'s \$0\.0005 month budget/);
  });

  it("past the soft limit a request is degraded to the budget's route, and says so", async () => {
    const body = { model: "sim/a", max_tokens: 12, messages: [{ role: "user", content: "first one is full price" }] };
    const first = await chat("k-soft", body);
    assert.equal(first.status, 200);
    assert.equal(first.headers.get("x-gateway-model"), "sim/a");
    assert.equal(first.headers.get("x-gateway-degraded"), null);
    await first.arrayBuffer();
    const second = await chat("k-soft", body);
    assert.equal(second.status, 200);
    assert.equal(second.headers.get("x-gateway-degraded"), "budget");
    assert.equal(second.headers.get("x-gateway-model"), "sim/cheap");
    const json = (await second.json()) as { model: string; x_gateway: { route: { reason: string } } };
    assert.equal(json.model, "sim/cheap");
    assert.match(json.x_gateway.route.reason, /^degraded from "sim\/a" to "cheap" by budget: key "soft" has spent \$[\d.]+ of its \$0\.001 day budget \(soft limit 10%\)/);

    const rpc = await createGatewayClient({ baseUrl: gw.url, apiKey: "k-soft" }).complete({ model: "sim/a", messages: [userText("rpc too")], sampling: { maxOutputTokens: 12 } });
    assert.equal(rpc.model, "sim/cheap");
    assert.match(rpc.route!.reason, /^degraded from "sim\/a" to "cheap" by budget/);

    const spend = (await (await fetch(`${gw.url}/v1/spend`, { headers: bearer("k-soft") })).json()) as { key: { budget: { degraded: boolean; degrade_to: string } } };
    assert.equal(spend.key.budget.degraded, true);
    assert.equal(spend.key.budget.degrade_to, "cheap");
  });

  it("per-key RPM and TPM limits refuse before any provider is called", async () => {
    const before = openai.requests.length;
    const body = { model: "up/gpt", messages: [{ role: "user", content: "limited" }] };
    assert.equal((await chat("k-limited", body)).status, 200);
    assert.equal((await chat("k-limited", body)).status, 200);
    const third = await chat("k-limited", body);
    assert.equal(third.status, 429);
    assert.match(((await third.json()) as { error: { message: string } }).error.message, /rate limit: key "limited" is limited to 2 requests per minute/);
    assert.equal(openai.requests.length, before + 2);
    assert.ok(Number(third.headers.get("retry-after")) >= 1);

    // 50 tokens a minute: one request's estimate (prompt + up to 512 expected output) takes the window.
    const ok = await chat("k-stingy", { ...body, max_tokens: 12 });
    assert.equal(ok.status, 200);
    await ok.arrayBuffer();
    const spend = (await (await fetch(`${gw.url}/v1/spend`, { headers: bearer("k-stingy") })).json()) as { key: { limits: { tpm: { limit: number; used: number } } } };
    // Reconciled with the tokens the upstream reported.
    assert.equal(spend.key.limits.tpm.used, countTokens("limited") + 12);
    assert.equal((await chat("k-stingy", { ...body, max_tokens: 12 })).status, 200);
    const refused = await chat("k-stingy", { ...body, max_tokens: 40 });
    assert.equal(refused.status, 429);
    assert.equal(openai.requests.length, before + 4);
  });

  it("GET /v1/spend needs a key; the cost routes name their method", async () => {
    assert.equal((await fetch(`${gw.url}/v1/spend`)).status, 401);
    assert.equal((await fetch(`${gw.url}/v1/spend`, { method: "POST", headers: bearer("k-open") })).status, 405);
    assert.equal((await fetch(`${gw.url}/v1/cost/estimate`, { headers: bearer("k-open") })).status, 405);
    const bad = await fetch(`${gw.url}/v1/cost/estimate`, { method: "POST", headers: bearer("k-open"), body: JSON.stringify({ model: "sim/a" }) });
    assert.equal(bad.status, 400);
    const open = (await (await fetch(`${gw.url}/v1/spend`, { headers: bearer("k-open") })).json()) as { key: { id: string; budget: null; limits: null } };
    assert.deepEqual(open.key, { id: "open", budget: null, limits: null });
  });

  /** reservedOnceSettled polls the key's spend until nothing is reserved (settlement follows the answer), up to 2 s. */
  async function reservedOnceSettled(token: string): Promise<string> {
    let reserved = "?";
    for (let i = 0; i < 100 && reserved !== "0"; i++) {
      const s = (await (await fetch(`${gw.url}/v1/spend`, { headers: bearer(token) })).json()) as { key: { budget: { reserved_nano_usd: string } } };
      reserved = s.key.budget.reserved_nano_usd;
      if (reserved !== "0") await new Promise((r) => setTimeout(r, 20));
    }
    return reserved;
  }

  it("a stream the caller abandons midway releases its reservation (settled with the usage seen so far)", async () => {
    const ac = new AbortController();
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: "POST",
      headers: bearer("k-streamer"),
      body: JSON.stringify({ model: "slow/m", stream: true, max_tokens: 300, messages: [{ role: "user", content: "a long answer please" }] }),
      signal: ac.signal,
    });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    await reader.read();
    const during = (await (await fetch(`${gw.url}/v1/spend`, { headers: bearer("k-streamer") })).json()) as { key: { budget: { reserved_nano_usd: string } } };
    // While it runs, its worst case (prompt + 300 tokens at $1/M) is held.
    assert.ok(BigInt(during.key.budget.reserved_nano_usd) >= 300_000n);
    ac.abort();
    assert.equal(await reservedOnceSettled("k-streamer"), "0");
    const line = gw.logs.find((l) => l.msg === "request" && l.keyId === "streamer");
    assert.equal(line?.status, "canceled");
  });

  it("a stream left right after its start event is cancelled and billed for its prompt", async () => {
    const caller = gw.gateway.authenticate("Bearer k-streamer");
    const { request } = parseChatRequest({ model: "slow/m", stream: true, max_tokens: 300, messages: [{ role: "user", content: "leave at once" }] });
    const requestId = "left-after-start";
    const events = gw.gateway.stream(request, { requestId, edge: "rest", caller, signal: new AbortController().signal, startedAt: performance.now() });
    const first = await events.next();
    assert.equal(first.value?.type, "start");
    await events.return();
    // The request line is written with the settlement.
    assert.equal(await reservedOnceSettled("k-streamer"), "0");
    const line = gw.logs.find((l) => l.msg === "request" && l.requestId === requestId);
    assert.equal(line?.status, "canceled");
    assert.ok(Number(line?.inputTokens) > 0, "the prompt is billed");
    assert.ok(BigInt(String(line?.costNanoUsd)) > 0n);
  });

  it("EstimateCost lists every candidate, cheapest first, with why each is not eligible", async () => {
    const est = async (token: string, body: Record<string, unknown>) =>
      ((await (await fetch(`${gw.url}/v1/cost/estimate`, { method: "POST", headers: bearer(token), body: JSON.stringify(body) })).json()) as {
        candidates: Array<{ model: string; eligible: boolean; ineligible_reason: string | null; expected_cost_nano_usd: string; tokenizer: string }>;
      }).candidates;
    const tools = [{ type: "function", function: { name: "lookup", parameters: { type: "object", properties: {} } } }];
    const c = await est("k-open", { model: "mixed", max_tokens: 30, tools, messages: [{ role: "user", content: "hello there" }] });
    assert.deepEqual(c.map((x) => x.model).sort(), ["sim/a", "sim/tiny", "slow/m"]);
    const costs = c.map((x) => BigInt(x.expected_cost_nano_usd));
    assert.deepEqual(costs, [...costs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    const byModel = new Map(c.map((x) => [x.model, x]));
    assert.equal(byModel.get("slow/m")!.eligible, true);
    assert.equal(byModel.get("slow/m")!.tokenizer, "simulated");
    assert.equal(byModel.get("sim/a")!.ineligible_reason, "lacks capability tools");
    assert.match(byModel.get("sim/tiny")!.ineligible_reason!, /^(lacks capability tools|context window 50 < \d+ tokens needed|max_output_tokens 30 > model limit 20)$/);
    const denied = await est("k-soft", { model: "cheap", messages: [{ role: "user", content: "x" }] });
    assert.equal(denied[0]!.eligible, false);
    assert.equal(denied[0]!.ineligible_reason, 'key soft is not allowed to use "cheap"');
  });
});
