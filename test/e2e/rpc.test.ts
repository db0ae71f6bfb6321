import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { createGatewayClient, userText, type GatewayClientOptions } from "../../clients/index.js";
import { FinishReason, Capability } from "../../gen/llmgateway/v1/chat_pb.js";
import { RouteTraceSchema, AttemptOutcome, ErrorClass } from "../../gen/llmgateway/v1/trace_pb.js";
import { sha256Hex } from "../../server/auth/keys.js";
import { answerText, countTokens, type Simulator } from "../simulators/harness.js";
import { startOpenAISimulator } from "../simulators/openai.js";
import { simulatedProvider, startTestGateway, type TestGateway } from "../support/gateway.js";

// The typed RPCs through the generated client, over every protocol the one
// port speaks: Connect on HTTP/1.1 and HTTP/2, gRPC, and gRPC-Web.

const transports: Array<Omit<GatewayClientOptions, "baseUrl">> = [
  { protocol: "connect", httpVersion: "1.1" },
  { protocol: "connect", httpVersion: "2" },
  { protocol: "connect", httpVersion: "1.1", binary: false },
  { protocol: "grpc" },
  { protocol: "grpc-web", httpVersion: "1.1" },
];

describe("GatewayService RPCs", () => {
  let sim: Simulator;
  let gw: TestGateway;

  before(async () => {
    sim = await startOpenAISimulator({ apiKey: "sk-up" });
    gw = await startTestGateway({
      providers: [{ id: "up", type: "openai", base_url: `${sim.url}/v1`, api_key: "sk-up" }, simulatedProvider("sim")],
      models: [
        { id: "up/gpt-4o", provider: "up", upstream: "gpt-4o", context_window: 128000, max_output_tokens: 16384, capabilities: ["tools"], pricing: { input: 2.5, output: 10 } },
        { id: "sim/echo", provider: "sim", context_window: 32000, max_output_tokens: 4096, pricing: { input: 1, output: 2 } },
      ],
      routes: [{ id: "smart", targets: ["up/gpt-4o", "sim/echo"] }],
      keys: [{ id: "svc", key_sha256: sha256Hex("gw-rpc-key"), models: ["*"] }],
    });
  });
  after(async () => {
    await gw.close();
    await sim.close();
  });

  for (const t of transports) {
    const label = `${t.protocol} ${t.httpVersion ?? "2"}${t.binary === false ? " json" : ""}`;
    describe(label, () => {
      const client = () => createGatewayClient({ baseUrl: gw.url, apiKey: "gw-rpc-key", ...t });

      it("Complete returns the answer, usage, cost and trace", async () => {
        const res = await client().complete({ model: "up/gpt-4o", messages: [userText("Hello rpc")] });
        assert.equal(res.message?.text, answerText("Hello rpc", 12));
        assert.equal(res.finishReason, FinishReason.STOP);
        assert.equal(res.usage?.inputTokens, countTokens("Hello rpc"));
        assert.equal(res.usage?.outputTokens, 12);
        assert.equal(res.usage?.totalTokens, countTokens("Hello rpc") + 12);
        assert.equal(res.cost?.totalNanoUsd, 2n * 2500n + 12n * 10000n);
        assert.equal(res.provider, "up");
        assert.equal(res.model, "up/gpt-4o");
        assert.equal(res.route?.attempts[0]?.outcome, AttemptOutcome.SUCCEEDED);
      });

      it("StreamComplete streams start, deltas and a finish with usage", async () => {
        const kinds: string[] = [];
        let text = "";
        let finish;
        for await (const ev of client().streamComplete({ model: "up/gpt-4o", messages: [userText("Stream rpc")] })) {
          kinds.push(ev.event.case ?? "");
          if (ev.event.case === "textDelta") text += ev.event.value.text;
          if (ev.event.case === "finish") finish = ev.event.value;
        }
        assert.equal(kinds[0], "start");
        assert.equal(kinds.at(-1), "finish");
        assert.equal(text, answerText("Stream rpc", 12));
        assert.equal(finish!.finishReason, FinishReason.STOP);
        assert.equal(finish!.usage?.outputTokens, 12);
        assert.ok(finish!.cost!.totalNanoUsd > 0n);
      });

      it("names the field of a bad request, and the known models for an unknown one", async () => {
        await assert.rejects(client().complete({ model: "up/gpt-4o", messages: [userText("x")], sampling: { temperature: 7 } }), (e: unknown) => {
          const ce = ConnectError.from(e);
          return ce.code === Code.InvalidArgument && ce.rawMessage.startsWith("sampling.temperature");
        });
        await assert.rejects(client().complete({ model: "nope", messages: [userText("x")] }), (e: unknown) => {
          const ce = ConnectError.from(e);
          return ce.code === Code.NotFound && ce.rawMessage.includes("smart");
        });
        await assert.rejects(client().complete({ model: "up/gpt-4o", messages: [] }), (e: unknown) => ConnectError.from(e).code === Code.InvalidArgument);
      });
    });
  }

  it("rejects a missing or wrong key with Unauthenticated", async () => {
    const anon = createGatewayClient({ baseUrl: gw.url });
    await assert.rejects(anon.listModels({}), (e: unknown) => ConnectError.from(e).code === Code.Unauthenticated);
    const wrong = createGatewayClient({ baseUrl: gw.url, apiKey: "nope", protocol: "grpc" });
    await assert.rejects(wrong.listModels({}), (e: unknown) => ConnectError.from(e).code === Code.Unauthenticated);
  });

  it("returns Unavailable with the route trace when every candidate fails", async () => {
    sim.faults.add({ model: "gpt-4o", status: 500, times: 1 });
    const client = createGatewayClient({ baseUrl: gw.url, apiKey: "gw-rpc-key" });
    await assert.rejects(client.complete({ model: "up/gpt-4o", messages: [userText("x")] }), (e: unknown) => {
      const ce = ConnectError.from(e);
      const [trace] = ce.findDetails(RouteTraceSchema);
      return ce.code === Code.Unavailable && trace?.attempts[0]?.errorClass === ErrorClass.SERVER_ERROR;
    });
  });

  it("ListModels and EstimateCost describe models, routes and prices", async () => {
    const client = createGatewayClient({ baseUrl: gw.url, apiKey: "gw-rpc-key", protocol: "grpc" });
    const list = await client.listModels({});
    const gpt = list.models.find((m) => m.id === "up/gpt-4o")!;
    assert.deepEqual(gpt.capabilities, [Capability.TOOLS]);
    assert.equal(gpt.pricing?.inputNanoUsdPerMtok, 2_500_000_000n);
    assert.deepEqual(list.routes.map((r) => [r.id, r.targets]), [["smart", ["up/gpt-4o", "sim/echo"]]]);
    const est = await client.estimateCost({ model: "smart", messages: [userText("How much will this cost?")], sampling: { maxOutputTokens: 100 } });
    assert.deepEqual(est.estimates.map((e) => e.model), ["sim/echo", "up/gpt-4o"]);
    const [cheap] = est.estimates;
    assert.equal(cheap!.maxOutputTokens, 100);
    assert.ok(cheap!.maxCostNanoUsd >= cheap!.expectedCostNanoUsd);
    assert.equal(cheap!.eligible, true);
  });

  it("cancelling a stream cancels the upstream request", async () => {
    sim.faults.add({ model: "gpt-4o", chunkDelayMs: 100 });
    const client = createGatewayClient({ baseUrl: gw.url, apiKey: "gw-rpc-key", protocol: "grpc" });
    const ac = new AbortController();
    let deltas = 0;
    await assert.rejects(
      (async () => {
        for await (const ev of client.streamComplete({ model: "up/gpt-4o", messages: [userText("cancel me")] }, { signal: ac.signal })) {
          if (ev.event.case === "textDelta" && ++deltas === 2) ac.abort();
        }
      })(),
      (e: unknown) => ConnectError.from(e).code === Code.Canceled,
    );
    const upstream = sim.requests.at(-1)!;
    for (let i = 0; i < 50 && !upstream.closedEarly; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(upstream.closedEarly, true);
  });
});
