import assert from "node:assert/strict";
import { request } from "node:http";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { createGatewayClient, userText } from "../../clients/index.js";
import { simulatedProvider, startTestGateway, type TestGateway } from "../support/gateway.js";

// Malformed requests get a clear 4xx in the caller's protocol, never a
// crash, a hang or a 500, and the gateway keeps serving afterwards.

async function post(url: string, body: string | Buffer, headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: Headers }> {
  const res = await fetch(url, { method: "POST", body, headers: { "content-type": "application/json", ...headers } });
  return { status: res.status, body: await res.text(), headers: res.headers };
}

describe("bad input", () => {
  let gw: TestGateway;
  let chat: string;

  before(async () => {
    gw = await startTestGateway({
      server: { max_body_bytes: 64 * 1024 },
      providers: [simulatedProvider("sim")],
      models: [{ id: "sim/echo", provider: "sim", context_window: 1000, max_output_tokens: 100 }],
    });
    chat = `${gw.url}/v1/chat/completions`;
  });
  after(() => gw.close());

  const cases: Array<[string, string, number, RegExp]> = [
    ["malformed JSON", "{\"model\": ", 400, /not valid JSON/],
    ["an empty body", "", 400, /empty/],
    ["a JSON array", "[]", 400, /expected a JSON object/],
    ["a missing model", JSON.stringify({ messages: [{ role: "user", content: "x" }] }), 400, /model: expected a string/],
    ["messages of the wrong type", JSON.stringify({ model: "sim/echo", messages: "hi" }), 400, /messages: expected a non-empty array/],
    ["an unknown role", JSON.stringify({ model: "sim/echo", messages: [{ role: "wizard", content: "x" }] }), 400, /messages\[0\]\.role/],
    ["max_tokens as a string", JSON.stringify({ model: "sim/echo", messages: [{ role: "user", content: "x" }], max_tokens: "10" }), 400, /max_tokens: expected a number/],
    ["an unknown field", JSON.stringify({ model: "sim/echo", messages: [{ role: "user", content: "x" }], frobnicate: 1 }), 400, /unrecognized request argument supplied: frobnicate/],
    ["an unknown model", JSON.stringify({ model: "gpt-17", messages: [{ role: "user", content: "x" }] }), 404, /unknown model "gpt-17".*sim\/echo/],
    ["a prompt larger than every window", JSON.stringify({ model: "sim/echo", messages: [{ role: "user", content: "word ".repeat(6000) }] }), 400, /context window 1000/],
  ];
  for (const [name, body, status, message] of cases) {
    it(`answers ${name} with ${status} and an OpenAI-shaped error`, async () => {
      const res = await post(chat, body);
      assert.equal(res.status, status, res.body);
      const parsed = JSON.parse(res.body) as { error: { message: string; type: string } };
      assert.match(parsed.error.message, message);
      assert.ok(parsed.error.type.length > 0);
    });
  }

  it("refuses an oversized body with 413 without reading it all", async () => {
    const res = await post(chat, Buffer.alloc(200 * 1024, 0x20));
    assert.equal(res.status, 413);
    assert.match(res.body, /exceeds the 65536-byte limit/);
  });

  it("refuses an oversized chunked body with 413", async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(chat, { method: "POST", headers: { "content-type": "application/json" } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      for (let i = 0; i < 100; i++) req.write(Buffer.alloc(1024, 0x20));
      req.end();
    });
    assert.equal(status, 413);
  });

  it("answers an unknown path with 404 and a wrong method with 405", async () => {
    assert.equal((await fetch(`${gw.url}/v1/nothing`)).status, 404);
    assert.equal((await fetch(chat)).status, 405);
  });

  it("answers a bad Connect request with invalid_argument", async () => {
    const res = await post(`${gw.url}/llmgateway.v1.GatewayService/Complete`, "{not json");
    assert.equal(res.status, 400);
    assert.match(res.body, /invalid_argument/);
  });

  it("refuses an oversized RPC with ResourceExhausted over Connect and gRPC", async () => {
    for (const protocol of ["connect", "grpc"] as const) {
      const client = createGatewayClient({ baseUrl: gw.url, protocol });
      await assert.rejects(client.complete({ model: "sim/echo", messages: [userText("x".repeat(100 * 1024))] }), (e: unknown) => {
        const ce = ConnectError.from(e);
        return ce.code === Code.ResourceExhausted && /readMaxBytes 65536/.test(ce.rawMessage);
      });
    }
  });

  it("is still healthy afterwards", async () => {
    const res = await fetch(`${gw.url}/healthz`);
    assert.equal(res.status, 200);
    assert.equal((await fetch(`${gw.url}/readyz`)).status, 200);
  });
});
