import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { CHANNEL_LABELS, channels, expectedCost, MODEL_IDS, PROVIDER_IDS, startStack, type Channel, type Observed, type Stack } from "./cross-protocol-stack.js";
import { answerText } from "../simulators/harness.js";
import { ANSWER_SCENARIOS, PROTOCOLS, PROVIDER_KEYS, type AnswerScenario, type ExpectedAnswer, type Protocol, type Turn } from "./scenarios.js";

// Issue 3, item 7: the answer rows of the one scenario table, against the
// three protocols, through the OpenAI SDK and the generated client, whole and
// streamed. Callers must not be able to tell which provider answered, except
// by the provider field (and the opaque tool-call ids).

function assertSame(seen: Observed, expected: ExpectedAnswer, protocol: Protocol, scenario: AnswerScenario): void {
  const usage = { ...expected.usage, ...scenario.usageDifferences?.[protocol] };
  assert.deepEqual(
    {
      provider: seen.provider,
      model: seen.model,
      text: seen.text,
      reasoning: seen.reasoning,
      toolCalls: seen.toolCalls.map((c) => ({ name: c.name, arguments: c.arguments })),
      finish: seen.finish,
      usage: seen.usage,
      costNanoUsd: seen.costNanoUsd,
    },
    {
      provider: PROVIDER_IDS[protocol],
      // The gateway's model id, never the upstream's name for it.
      model: MODEL_IDS[protocol],
      text: expected.text,
      reasoning: expected.reasoning,
      toolCalls: expected.toolCalls,
      finish: expected.finish,
      usage,
      costNanoUsd: expectedCost(usage),
    },
  );
  const ids = seen.toolCalls.map((c) => c.id);
  assert.ok(ids.every((id) => id !== ""), "every tool call has an id");
  assert.equal(new Set(ids).size, ids.length, "tool call ids are distinct");
}

describe("one scenario table across OpenAI, Anthropic and Gemini", () => {
  let stack: Stack;
  let chans: Channel[];

  before(async () => {
    stack = await startStack();
    chans = channels(stack);
  });
  after(() => stack.close());

  for (const scenario of ANSWER_SCENARIOS) {
    describe(scenario.name, () => {
      for (const protocol of PROTOCOLS) {
        if (scenario.only !== undefined && !scenario.only.includes(protocol)) continue;
        CHANNEL_LABELS.forEach((label, i) => {
          it(`${protocol} · ${label}`, async () => {
            const channel = chans[i]!;
            const model = MODEL_IDS[protocol];
            const first = await channel.ask(model, scenario.request);
            assertSame(first, scenario.expect, protocol, scenario);
            if (scenario.followUp === undefined) return;
            // The caller feeds the results back under the ids it was given, as a real caller would.
            const turns: Turn[] = [
              ...scenario.request.turns,
              { role: "assistant", toolCalls: first.toolCalls },
              ...first.toolCalls.map((c, k): Turn => ({ role: "tool", toolCallId: c.id, text: scenario.followUp!.toolResults[k]! })),
            ];
            const second = await channel.ask(model, { ...scenario.request, turns });
            assertSame(second, scenario.followUp.expect, protocol, scenario);
          });
        });
      }
    });
  }

  describe("usage in streams", () => {
    for (const protocol of PROTOCOLS) {
      it(`${protocol} · the REST stream carries usage only when stream_options.include_usage is set; the log line always has it`, async () => {
        const restStream = chans[CHANNEL_LABELS.indexOf("OpenAI SDK, streamed")]!;
        const prompt = `quiet stream from ${protocol}`;
        const quiet = await restStream.ask(MODEL_IDS[protocol], { turns: [{ role: "user", text: prompt }] }, { includeUsage: false });
        assert.equal(quiet.text, answerText(prompt, 12));
        assert.equal(quiet.finish, "stop");
        assert.equal(quiet.usage, undefined);
        const line = stack.gateway.logs.filter((l) => l.msg === "request").at(-1)!;
        assert.equal(line.provider, PROVIDER_IDS[protocol]);
        assert.equal(line.outputTokens, 12);
        assert.equal(line.inputTokens, 4);
        const loud = await restStream.ask(MODEL_IDS[protocol], { turns: [{ role: "user", text: prompt }] }, { includeUsage: true });
        assert.deepEqual(loud.usage, { input: 4, output: 12, cached: 0, reasoning: 0 });
      });
      // The RPC side is asserted on every streamed row above: rpcStream throws when a finish event lacks usage.
    }
  });

  it("no provider key appears in any log line", () => {
    const raw = stack.gateway.rawLogs();
    assert.ok(raw.length > 0);
    for (const key of Object.values(PROVIDER_KEYS)) assert.ok(!raw.includes(key), "a provider key was logged");
  });
});
