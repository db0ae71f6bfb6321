import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { stringLiteralOf } from "../../server/core/json-text.js";

describe("stringLiteralOf", () => {
  const answer = (content: unknown, extra = "") =>
    `{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":${JSON.stringify(content)}${extra}},"finish_reason":"stop"}]}`;

  it("returns the literal as the source wrote it, for plain and escaped texts", () => {
    for (const text of ["plain words", 'quoted "words"', "line\nbreak\ttab", "back\\slash\\", "ends with a backslash \\", "ünïcødé ✓ 😀", "\u2028 and \u0001"]) {
      const json = answer(text);
      const literal = stringLiteralOf(json, "content", text);
      assert.equal(literal, JSON.stringify(text), text);
      assert.equal(JSON.parse(literal!), text);
    }
  });

  it("keeps the source's own escapes, which decode to the same text", () => {
    const json = '{"message":{"content": "a\\/b \\u00e9 \\"q\\""}}';
    assert.equal(stringLiteralOf(json, "content", 'a/b é "q"'), '"a\\/b \\u00e9 \\"q\\""');
  });

  it("refuses a literal that does not encode the text", () => {
    assert.equal(stringLiteralOf(answer("one text"), "content", "another text"), undefined);
    assert.equal(stringLiteralOf(answer("same length!"), "content", "same lengtH!"), undefined);
    assert.equal(stringLiteralOf(answer('esc "x"'), "content", 'esc "y"'), undefined);
  });

  it("finds nothing where the first such member is not a string", () => {
    assert.equal(stringLiteralOf(answer(null), "content", "x"), undefined);
    assert.equal(stringLiteralOf(answer([{ type: "text", text: "x" }]), "content", "x"), undefined);
    assert.equal(stringLiteralOf('{"other":"x"}', "content", "x"), undefined);
    assert.equal(stringLiteralOf('{"content":"unterminated', "content", "unterminated"), undefined);
  });

  it("is not fooled by the member name inside a string", () => {
    // The name appears escaped inside the first string; the member is the later one.
    const json = `{"note":${JSON.stringify('"content":"fake"')},"content":"real"}`;
    assert.equal(stringLiteralOf(json, "content", "real"), '"real"');
    assert.equal(stringLiteralOf(json, "content", "fake"), undefined);
  });
});
