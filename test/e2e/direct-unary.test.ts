import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { CompleteRequestSchema } from "../../gen/llmgateway/v1/gateway_service_pb.js";
import { connect as http2Connect } from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { createGatewayClient, userText } from "../../clients/index.js";
import { simulatedProvider, startTestGateway, type TestGateway } from "../support/gateway.js";

// Unary Complete with a binary body, over Connect or gRPC, takes the
// gateway's direct path (server/rpc/direct-unary.ts); a JSON body or a
// compressed one goes through connect-node. Both must be the same protocol
// on the wire.

const path = "/llmgateway.v1.GatewayService/Complete";

describe("Connect unary Complete: the direct path and connect-node agree", () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startTestGateway({
      providers: [simulatedProvider("sim"), simulatedProvider("slow", { first_token_ms: 2000 })],
      models: [
        { id: "sim/echo", provider: "sim", context_window: 8000, max_output_tokens: 100, pricing: { input: 1, output: 2 } },
        { id: "slow/echo", provider: "slow", context_window: 8000, max_output_tokens: 100 },
      ],
    });
  });
  after(() => gw.close());

  const binary = (model: string) => toBinary(CompleteRequestSchema, create(CompleteRequestSchema, { model, messages: [userText("hello there")] }));
  const post = (body: Uint8Array | string, headers: Record<string, string>) =>
    fetch(`${gw.url}${path}`, { method: "POST", headers: { "connect-protocol-version": "1", ...headers }, body });

  it("answers a binary call with the same headers as a JSON one", async () => {
    const viaDirect = await post(binary("sim/echo"), { "content-type": "application/proto" });
    const viaConnect = await post(JSON.stringify({ model: "sim/echo", messages: [{ role: "ROLE_USER", parts: [{ text: "hello there" }] }] }), {
      "content-type": "application/json",
    });
    assert.equal(viaDirect.status, 200, await viaDirect.clone().text());
    assert.equal(viaConnect.status, 200, await viaConnect.clone().text());
    assert.equal(viaDirect.headers.get("content-type"), "application/proto");
    for (const name of ["x-request-id", "x-gateway-provider", "x-gateway-model"]) {
      assert.ok(viaDirect.headers.get(name), `direct path lacks ${name}`);
      assert.ok(viaConnect.headers.get(name), `connect-node lacks ${name}`);
    }
    assert.equal(viaDirect.headers.get("x-gateway-model"), viaConnect.headers.get("x-gateway-model"));
    assert.equal(Number(viaDirect.headers.get("content-length")), (await viaDirect.arrayBuffer()).byteLength);
  });

  it("refuses a body that is not a CompleteRequest with invalid_argument, not a 500", async () => {
    const res = await post(new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f]), { "content-type": "application/proto" });
    assert.equal(res.status, 400);
    assert.equal(res.headers.get("content-type"), "application/json");
    const body = (await res.json()) as { code: string; message: string };
    assert.equal(body.code, "invalid_argument");
    assert.match(body.message, /parse binary/);
  });

  it("reports errors in Connect's JSON shape with their metadata", async () => {
    const res = await post(binary("no/such-model"), { "content-type": "application/proto" });
    assert.equal(res.status, 404);
    const body = (await res.json()) as { code: string; message: string };
    assert.equal(body.code, "not_found");
    assert.ok(res.headers.get("x-request-id"));
  });

  it("refuses a malformed connect-timeout-ms and honours a real one", async () => {
    const bad = await post(binary("sim/echo"), { "content-type": "application/proto", "connect-timeout-ms": "soon" });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { code: string }).code, "invalid_argument");
    const t0 = performance.now();
    const late = await post(binary("slow/echo"), { "content-type": "application/proto", "connect-timeout-ms": "150" });
    const took = performance.now() - t0;
    assert.equal(((await late.json()) as { code: string }).code, "deadline_exceeded");
    assert.ok(took < 1500, `the deadline should end the call early (took ${Math.round(took)} ms)`);
  });

  it("leaves compressed bodies to connect-node", async () => {
    const { gzipSync } = await import("node:zlib");
    const res = await post(gzipSync(binary("sim/echo")), { "content-type": "application/proto", "content-encoding": "gzip" });
    assert.equal(res.status, 200, await res.clone().text());
  });

  // One gRPC call over a raw HTTP/2 session: the status and message arrive in trailers.
  async function grpcCall(body: Uint8Array, headers: Record<string, string> = {}): Promise<{ status: string; message: string; data: Buffer; contentType: string }> {
    const session = http2Connect(gw.url);
    try {
      return await new Promise((resolve, reject) => {
        const stream = session.request({ ":method": "POST", ":path": path, "content-type": "application/grpc+proto", te: "trailers", ...headers });
        const chunks: Buffer[] = [];
        let contentType = "";
        stream.on("response", (h) => (contentType = String(h["content-type"] ?? "")));
        stream.on("data", (c: Buffer) => chunks.push(c));
        stream.on("trailers", (t) => resolve({ status: String(t["grpc-status"]), message: decodeURIComponent(String(t["grpc-message"] ?? "")), data: Buffer.concat(chunks), contentType }));
        stream.on("error", reject);
        stream.end(body);
      });
    } finally {
      session.close();
    }
  }

  const envelope = (message: Uint8Array): Uint8Array => {
    const out = Buffer.alloc(5 + message.byteLength);
    out.writeUInt32BE(message.byteLength, 1);
    out.set(message, 5);
    return out;
  };

  it("answers a gRPC call with one framed message and grpc-status 0", async () => {
    const r = await grpcCall(envelope(binary("sim/echo")));
    assert.equal(r.status, "0");
    assert.equal(r.contentType, "application/grpc+proto");
    assert.equal(r.data[0], 0);
    assert.equal(r.data.readUInt32BE(1), r.data.length - 5);
  });

  it("reports gRPC protocol errors in trailers: a bad frame, two messages, a compressed flag", async () => {
    const bad = await grpcCall(new Uint8Array([0, 0, 0, 0, 9, 1]));
    assert.equal(bad.status, String(Code.InvalidArgument));
    const msg = binary("sim/echo");
    const two = await grpcCall(Buffer.concat([envelope(msg), envelope(msg)]));
    assert.equal(two.status, String(Code.InvalidArgument));
    assert.match(two.message, /exactly one/);
    const flagged = envelope(msg);
    flagged[0] = 1;
    assert.equal((await grpcCall(flagged)).status, String(Code.InvalidArgument));
  });

  it("gives the generated gRPC client typed errors and deadlines", async () => {
    const client = createGatewayClient({ baseUrl: gw.url, protocol: "grpc" });
    await assert.rejects(client.complete({ model: "no/such-model", messages: [userText("x")] }), (e: unknown) => ConnectError.from(e).code === Code.NotFound);
    const bad = await grpcCall(envelope(binary("slow/echo")), { "grpc-timeout": "150m" });
    assert.equal(bad.status, String(Code.DeadlineExceeded), bad.message);
  });
});
