import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Cancellation } from "../../server/core/cancel.js";
import { startAttemptTimer } from "../../server/resilience/timeouts.js";
import { pause, Wakeup } from "../../server/resilience/wait.js";

// Per-attempt timers (first token, idle gap, total) and the abortable wait.
// Limits are short so the tests are quick; they assert what fired, not how fast.

/** aborted resolves when signal aborts. */
function aborted(signal: Cancellation): Promise<void> {
  return new Promise((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
}

describe("startAttemptTimer", () => {
  it("cancels an attempt with no first token in time, as a timeout", async () => {
    const t = startAttemptTimer(new AbortController().signal, { firstTokenMs: 30 });
    await aborted(t.signal);
    assert.equal(t.timedOut()?.errorClass, "timeout");
    assert.match(t.timedOut()!.message, /no first token within 30 ms/);
    t.dispose();
  });

  it("after the first token, bounds the silence between chunks instead", async () => {
    const t = startAttemptTimer(new AbortController().signal, { firstTokenMs: 10_000, idleMs: 40 });
    t.firstToken();
    for (let i = 0; i < 4; i++) {
      await new Promise((r) => setTimeout(r, 15));
      t.touch();
    }
    assert.equal(t.signal.aborted, false, "chunks kept arriving within the gap");
    await aborted(t.signal);
    assert.match(t.timedOut()!.message, /silent for more than 40 ms/);
    t.dispose();
  });

  it("does not count the caller's own slowness (hold) as upstream silence", async () => {
    const t = startAttemptTimer(new AbortController().signal, { idleMs: 20 });
    t.firstToken();
    t.hold();
    await new Promise((r) => setTimeout(r, 80));
    assert.equal(t.signal.aborted, false);
    t.touch();
    await aborted(t.signal);
    assert.equal(t.timedOut()?.errorClass, "timeout");
    t.dispose();
  });

  it("bounds the whole attempt with totalMs", async () => {
    const t = startAttemptTimer(new AbortController().signal, { totalMs: 30, idleMs: 10_000 });
    t.firstToken();
    await aborted(t.signal);
    assert.match(t.timedOut()!.message, /longer than 30 ms/);
    t.dispose();
  });

  it("follows the request's signal, and cancel() says why without being a timeout", () => {
    const parent = new AbortController();
    const t = startAttemptTimer(parent.signal, { firstTokenMs: 10_000 });
    parent.abort();
    assert.equal(t.signal.aborted, true);
    assert.equal(t.timedOut(), undefined);
    t.dispose();
    const u = startAttemptTimer(new AbortController().signal, {});
    u.cancel("lost the hedge race");
    assert.equal(u.signal.aborted, true);
    assert.equal(u.cancelled(), "lost the hedge race");
    u.dispose();
  });

  it("leaves nothing behind once disposed", async () => {
    const parent = new AbortController();
    const t = startAttemptTimer(parent.signal, { firstTokenMs: 20 });
    t.dispose();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(t.signal.aborted, false, "a disposed timer never fires");
    parent.abort();
    assert.equal(t.signal.aborted, false, "a disposed attempt is unlinked from the request");
  });
});

describe("pause", () => {
  it("ends when the time is up, when woken by name, or when aborted", async () => {
    const never = new AbortController().signal;
    assert.equal(await pause(5, never), "elapsed");
    const wakeup = new Wakeup();
    const woken = pause(10_000, never, wakeup, ["ratelimit:x:tpm"]);
    wakeup.wake("ratelimit:other");
    wakeup.wake("ratelimit:x:tpm");
    assert.equal(await woken, "woken");
    const ac = new AbortController();
    const aborted = pause(10_000, ac.signal, wakeup, ["k"]);
    ac.abort();
    assert.equal(await aborted, "aborted");
    assert.equal(await pause(10_000, ac.signal), "aborted");
  });
});
