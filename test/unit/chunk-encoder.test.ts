import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ChunkEncoder } from "../../server/openai/response.js";

// ChunkEncoder.forward: upstream OpenAI-format chunks pass through byte for
// byte except their head, which becomes the gateway's id, created and model.

describe("ChunkEncoder.forward", () => {
  const enc = () => new ChunkEncoder("gw1", 1700000000, "oai/chat");
  const head = '{"id":"chatcmpl-gw1","object":"chat.completion.chunk","created":1700000000,"model":"oai/chat"';

  it("swaps the upstream id, created and model and keeps the rest verbatim", () => {
    const tail = ',"system_fingerprint":"fp_x","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}';
    const upstream = `{"id":"chatcmpl-up\\"9","object":"chat.completion.chunk","created":1690000000,"model":"gpt-4o-2024-08-06"${tail}`;
    assert.equal(enc().forward(upstream), head + tail);
    const spaced = `{"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "m"${tail}`;
    assert.equal(enc().forward(spaced), head + tail);
  });

  it("declines chunks whose head is in another order, so the caller re-encodes them", () => {
    const e = enc();
    assert.equal(e.forward('{"object":"chat.completion.chunk","id":"x","created":1,"model":"m","choices":[]}'), undefined);
    assert.equal(e.forward('{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[]}'), undefined);
    // Declined chunks did not send the role, so the re-encoded delta carries it.
    assert.match(e.delta([{ type: "text", text: "Hi" }])!, /"role":"assistant"/);
  });

  it("counts a forwarded chunk as having sent the role", () => {
    const e = enc();
    e.forward('{"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant"}}]}');
    assert.doesNotMatch(e.delta([{ type: "text", text: "Hi" }])!, /"role"/);
  });
});
