import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { getTextEncoding } from "@bufbuild/protobuf/wire";
import { UsageSchema } from "../../gen/llmgateway/v1/chat_pb.js";
import { CompleteResponseSchema } from "../../gen/llmgateway/v1/gateway_service_pb.js";
import { useBufferUtf8Encoding } from "../../server/rpc/text-encoding.js";

// protobuf-es's string encoding is swapped for Buffer.from on the RPC hot
// path; the bytes must be exactly what TextEncoder gives, for any string.

describe("useBufferUtf8Encoding", () => {
  it("encodes every string to the bytes TextEncoder gives, lone surrogates included", () => {
    useBufferUtf8Encoding();
    const encode = getTextEncoding().encodeUtf8;
    const te = new TextEncoder();
    for (const s of ["", "ascii", "é ✓ 😀", "\u0000\u007f\u0080\u07ff\u0800\uffff", "lone \ud83d high", "lone \ude00 low", "x".repeat(5000)]) {
      assert.deepEqual(Buffer.from(encode(s)), Buffer.from(te.encode(s)), JSON.stringify(s.slice(0, 20)));
    }
  });

  it("leaves messages round-tripping through the generated schemas", () => {
    useBufferUtf8Encoding();
    const message = create(CompleteResponseSchema, { id: "chatcmpl-ü", model: "mödel/😀", usage: create(UsageSchema, { inputTokens: 3, outputTokens: 4 }) });
    const back = fromBinary(CompleteResponseSchema, toBinary(CompleteResponseSchema, message));
    assert.equal(back.id, "chatcmpl-ü");
    assert.equal(back.model, "mödel/😀");
    assert.equal(back.usage?.outputTokens, 4);
  });
});
