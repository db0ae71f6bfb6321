import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { readSse } from "../../server/providers/sse.js";

// readSse decodes reads that end on a line feed directly and others through
// a streaming TextDecoder: whatever the split, the events must be the same.

async function* reads(parts: Uint8Array[]): AsyncGenerator<Uint8Array> {
  for (const p of parts) yield p;
}

async function dataOf(parts: Uint8Array[]): Promise<string[]> {
  const out: string[] = [];
  for await (const batch of readSse(reads(parts))) for (const e of batch) out.push(e.data);
  return out;
}

const stream = "data: héllo wörld 😀\n\ndata: 汉字 and ascii\n\ndata: last ✓\n\n";
const bytes = Buffer.from(stream, "utf8");
const expected = ["héllo wörld 😀", "汉字 and ascii", "last ✓"];

describe("readSse decoding", () => {
  it("yields the same events for every split of the body into two reads", async () => {
    for (let i = 1; i < bytes.length; i++) {
      assert.deepEqual(await dataOf([bytes.subarray(0, i), bytes.subarray(i)]), expected, `split at byte ${i}`);
    }
  });

  it("yields the same events for every split into three reads, one ending mid-character and the next on a line feed", async () => {
    const lf = [...bytes.keys()].filter((i) => bytes[i] === 0x0a).map((i) => i + 1);
    for (let i = 1; i < bytes.length; i++) {
      for (const j of lf) {
        if (j <= i || j >= bytes.length) continue;
        assert.deepEqual(await dataOf([bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)]), expected, `split at ${i} and ${j}`);
      }
    }
  });

  it("accepts plain Uint8Arrays as well as Buffers", async () => {
    const copy = new Uint8Array(bytes.length + 4).subarray(2, bytes.length + 2);
    copy.set(bytes);
    const cut = stream.indexOf("\n\n") + 2;
    assert.deepEqual(await dataOf([copy.subarray(0, cut), copy.subarray(cut)]), expected);
  });

  it("drops a byte order mark at the start of the stream", async () => {
    assert.deepEqual(await dataOf([Buffer.from("\uFEFFdata: x\n\n", "utf8"), Buffer.from("data: y\n\n", "utf8")]), ["x", "y"]);
  });

  it("replaces invalid bytes as the decoder does, on either path", async () => {
    const bad = Buffer.concat([Buffer.from("data: a"), Buffer.from([0xff, 0xc3]), Buffer.from("b\n\n")]);
    assert.deepEqual(await dataOf([Buffer.from("data: first\n\n"), bad]), ["first", "a\uFFFD\uFFFDb"]);
    assert.deepEqual(await dataOf([Buffer.from("data: first"), bad]), ["firstdata: a\uFFFD\uFFFDb"]);
  });
});
