import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ChunkEncoder } from "../../server/openai/response.js";

// ChunkEncoder.forward: upstream OpenAI-format chunks pass through byte for
// byte except their head, which becomes the gateway's id, created and model
// (the head is split off by the adapter: see openai-chunk.test.ts).

describe("ChunkEncoder.forward", () => {
  const enc = () => new ChunkEncoder("gw1", 1700000000, "oai/chat");
  const head = '{"id":"chatcmpl-gw1","object":"chat.completion.chunk","created":1700000000,"model":"oai/chat"';

  it("puts the gateway's id, created and model before the upstream chunk's tail, kept verbatim", () => {
    const tail = ',"system_fingerprint":"fp_x","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}';
    assert.equal(enc().forward(tail), head + tail);
  });

  it("counts a forwarded chunk as having sent the role", () => {
    const e = enc();
    e.forward(',"choices":[{"index":0,"delta":{"role":"assistant"}}]}');
    assert.doesNotMatch(e.delta([{ type: "text", text: "Hi" }])!, /"role"/);
    // Without a forwarded chunk first, the re-encoded delta carries the role.
    assert.match(enc().delta([{ type: "text", text: "Hi" }])!, /"role":"assistant"/);
  });
});
