import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { answerText } from "../simulators/harness.js";
import {
  CHANNEL_LABELS,
  channels,
  MODEL_IDS,
  PROVIDER_IDS,
  startStack,
  StreamFailure,
  WRONG_KEY_MODEL_IDS,
  WRONG_KEYS,
  type Channel,
  type ObservedError,
  type Stack,
} from "./cross-protocol-stack.js";
import { ERROR_SCENARIOS, MID_STREAM_FAULTS, MID_STREAM_PROMPT, PROTOCOLS, PROVIDER_KEYS, UPSTREAM_MODELS, type ExpectedError } from "./scenarios.js";

// Issue 3, item 7: the error rows of the one scenario table. Each upstream
// error class, injected in each protocol's own wire format, must reach the
// caller as the same error, through the OpenAI SDK and the generated client,
// whole and streamed, with the retry hint where there is one and without any
// provider key.

const allKeys = [...Object.values(PROVIDER_KEYS), ...Object.values(WRONG_KEYS)];

function assertNoKeys(text: string): void {
  for (const key of allKeys) assert.ok(!text.includes(key), `a provider key reached the caller: ${text}`);
}

async function failure(channel: Channel, model: string, prompt: string): Promise<ObservedError> {
  let thrown: unknown;
  try {
    await channel.ask(model, { turns: [{ role: "user", text: prompt }] });
  } catch (err) {
    thrown = err;
  }
  assert.ok(thrown !== undefined, "the request should have failed");
  return channel.describeError(thrown);
}

// Classes another attempt may cure; the others are the provider's final word.
const transient = new Set(["rate_limited", "overloaded", "server_error", "connection"]);

// The SDK error class a status raises, so SDK users catch what they expect.
const sdkClasses: Record<number, string> = { 400: "BadRequestError", 404: "NotFoundError", 429: "RateLimitError", 503: "InternalServerError" };

function assertCallerError(seen: ObservedError, expected: ExpectedError, channel: Channel): void {
  if (channel.rest) {
    assert.equal(seen.code, String(expected.http));
    assert.equal(seen.sdkClass, sdkClasses[expected.http]);
    assert.equal(seen.restCode, expected.restCode);
    assert.equal(seen.retryAfterMs, expected.retryAfterMs);
    assert.equal(seen.retryAfterSeconds, expected.retryAfterMs === undefined ? undefined : Math.ceil(expected.retryAfterMs / 1000));
    // The SDK retries 429 and 5xx by default; a dead key or quota must tell it not to.
    assert.equal(seen.shouldRetry, transient.has(expected.errorClass) ? undefined : "false");
  } else {
    assert.equal(seen.code, expected.rpc);
    assert.equal(seen.retryAfterMs, expected.retryAfterMs);
  }
  assert.equal(seen.errorClass, expected.errorClass);
  if (expected.messageIncludes !== undefined) assert.ok(seen.message.includes(expected.messageIncludes), seen.message);
  assertNoKeys(seen.everything);
}

describe("upstream errors across OpenAI, Anthropic and Gemini", () => {
  let stack: Stack;
  let chans: Channel[];

  before(async () => {
    stack = await startStack();
    chans = channels(stack);
  });
  after(() => stack.close());

  for (const scenario of ERROR_SCENARIOS) {
    describe(scenario.name, () => {
      for (const protocol of PROTOCOLS) {
        const fault = scenario.faults[protocol];
        if (fault === null) continue;
        CHANNEL_LABELS.forEach((label, i) => {
          it(`${protocol} · ${label}`, async () => {
            const sim = stack.sims[protocol];
            // Every attempt fails, so the outcome does not depend on how often the router retries.
            sim.faults.add({ ...fault, model: UPSTREAM_MODELS[protocol], times: Infinity });
            const hits = sim.hits();
            try {
              const seen = await failure(chans[i]!, MODEL_IDS[protocol], `trigger ${scenario.name}`);
              assertCallerError(seen, scenario.expect, chans[i]!);
              // The caller's own mistakes and dead accounts are never retried.
              if (!transient.has(scenario.expect.errorClass)) assert.equal(sim.hits() - hits, 1);
            } finally {
              sim.faults.clear();
            }
          });
        });
      }
    });
  }

  describe("a provider key the upstream refuses (the simulators' own auth check)", () => {
    for (const protocol of PROTOCOLS) {
      CHANNEL_LABELS.forEach((label, i) => {
        it(`${protocol} · ${label}`, async () => {
          const seen = await failure(chans[i]!, WRONG_KEY_MODEL_IDS[protocol], "who am I");
          assertCallerError(seen, { errorClass: "auth", rpc: "Unavailable", http: 503, restCode: "unavailable" }, chans[i]!);
          // The message says which provider refused, so an operator knows which key to fix.
          assert.ok(seen.message.includes(`${PROVIDER_IDS[protocol]}-bad`), seen.message);
        });
      });
    }
  });

  describe("a failure after the stream began", () => {
    const threeWords = answerText(MID_STREAM_PROMPT, 12).split(" ").slice(0, 3).join(" ");
    for (const protocol of PROTOCOLS) {
      const { fault, errorClass } = MID_STREAM_FAULTS[protocol];
      CHANNEL_LABELS.forEach((label, i) => {
        if (!label.endsWith("streamed")) return;
        it(`${protocol} · ${label}: the partial text, then an error naming the class`, async () => {
          const channel = chans[i]!;
          stack.sims[protocol].faults.add({ ...fault, model: UPSTREAM_MODELS[protocol] });
          let thrown: unknown;
          try {
            await channel.ask(MODEL_IDS[protocol], { turns: [{ role: "user", text: MID_STREAM_PROMPT }] });
          } catch (err) {
            thrown = err;
          }
          assert.ok(thrown instanceof StreamFailure, "the stream should have failed");
          const { partial } = thrown;
          assert.equal(partial.provider, PROVIDER_IDS[protocol]);
          assert.equal(partial.text, threeWords);
          const seen = channel.describeError(thrown);
          assertNoKeys(seen.everything);
          if (channel.rest) {
            // OpenAI's own convention: an in-band `data: {"error": ...}` event and no [DONE].
            assert.equal(seen.code, "in-band");
            assert.equal(seen.restCode, errorClass);
          } else {
            // The finish event reports the failure and the partial usage, then the call ends Unavailable.
            assert.equal(partial.finish, "error");
            assert.equal(partial.streamErrorClass, errorClass);
            assert.ok(partial.usage !== undefined);
            assert.equal(seen.code, "Unavailable");
          }
        });
      });
    }
  });

  it("no provider key appears in any log line", () => {
    const raw = stack.gateway.rawLogs();
    assert.ok(raw.includes("upstream") || raw.includes("error"), "the failures were logged");
    assertNoKeys(raw);
  });
});
