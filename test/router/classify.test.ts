import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ChatRequest } from "../../server/core/chat.js";
import { estimatePromptTokens } from "../../server/pricing/estimate.js";
import { classifyTask } from "../../server/router/classify.js";

// The auto strategy's classifier: one verdict per kind of request, with
// reasons a person can read in the route trace.

function ask(text: string, extra: Partial<ChatRequest> = {}): ChatRequest {
  return { model: "auto", messages: [{ role: "user", content: [{ type: "text", text }] }], sampling: {}, routing: {}, metadata: {}, ...extra };
}

function verdict(r: ChatRequest) {
  return classifyTask(r, estimatePromptTokens(r));
}

describe("classifyTask", () => {
  it("code: code blocks and code-like lines", () => {
    const v = verdict(ask("Why does this fail?\n```python\nimport os\ndef main():\n    return os.getcwd(\n```"));
    assert.equal(v.taskClass, "code");
    assert.ok(v.reasons.some((r) => /code block/.test(r)), v.reasons.join("; "));
  });

  it("math: LaTeX, math words and arithmetic", () => {
    const v = verdict(ask("Prove that \\sum_{k=1}^{n} k = n(n+1)/2 for every n."));
    assert.equal(v.taskClass, "math");
    assert.ok(v.reasons.includes("LaTeX math"));
    assert.equal(verdict(ask("Solve for x: 3x + 5 = 20")).taskClass, "math");
  });

  it("long_document: a large prompt, more so when asked to summarize", () => {
    const doc = "The committee met on Tuesday and discussed the budget at length. ".repeat(600);
    const v = verdict(ask(`Summarize the following report:\n${doc}`));
    assert.equal(v.taskClass, "long_document");
    assert.ok(v.reasons.some((r) => /prompt tokens/.test(r)));
    assert.ok(v.reasons.some((r) => /summarize/i.test(r)));
  });

  it("translation: asked to translate, or mostly CJK text", () => {
    assert.equal(verdict(ask("Translate this into French: good morning, how are you?")).taskClass, "translation");
    const cjk = verdict(ask("请帮我写一封给客户的感谢信，内容要简短而真诚。"));
    assert.equal(cjk.taskClass, "translation");
    assert.ok(cjk.reasons.some((r) => /CJK text/.test(r)));
  });

  it("extraction: a JSON answer format wins over the words in the prompt", () => {
    const v = verdict(ask("Extract the name and date from: Ada met Bob on 3 May.", { responseFormat: { type: "json_schema", name: "x", schema: { type: "object" } } }));
    assert.equal(v.taskClass, "extraction");
    assert.deepEqual(v.reasons.slice(0, 1), ["asks for a JSON schema answer"]);
  });

  it("chat: a short message with no stronger signal", () => {
    const v = verdict(ask("hi there, how was your weekend?"));
    assert.equal(v.taskClass, "chat");
    assert.ok(v.reasons.some((r) => /short prompt/.test(r)));
  });

  it("scans a bounded sample, so a huge prompt costs about the same as a page", () => {
    const huge = ask("word ".repeat(2_000_000));
    const started = process.hrtime.bigint();
    verdict(huge);
    // Not a timing assertion on speed: only that the sample bound holds (the whole text would take far longer than a second).
    assert.ok(process.hrtime.bigint() - started < 1_000_000_000n);
  });
});
