import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { anyOf, CancelController, withTimeout, type Cancellation } from "../../server/core/cancel.js";

// The request path's cancellation must behave as AbortSignal does where the
// gateway relies on it: once, in order, never for late listeners.

describe("CancelController", () => {
  it("aborts once, runs listeners in order once each, and keeps the first reason", () => {
    const c = new CancelController();
    const calls: string[] = [];
    const a = () => calls.push("a");
    c.signal.addEventListener("abort", a);
    c.signal.addEventListener("abort", a);
    c.signal.addEventListener("abort", () => calls.push("b"), { once: true });
    const removed = () => calls.push("removed");
    c.signal.addEventListener("abort", removed);
    c.signal.removeEventListener("abort", removed);
    assert.equal(c.signal.aborted, false);
    c.abort("first");
    c.abort("second");
    assert.deepEqual(calls, ["a", "b"]);
    assert.equal(c.signal.aborted, true);
    assert.equal(c.signal.reason, "first");
    // As with an EventTarget, a listener added after the abort is never called.
    c.signal.addEventListener("abort", () => calls.push("late"));
    assert.deepEqual(calls, ["a", "b"]);
  });

  it("gives an AbortError when no reason is given, as AbortController does", () => {
    const c = new CancelController();
    c.abort();
    const reason = c.signal.reason as DOMException;
    assert.equal(reason.name, "AbortError");
    const real = new AbortController();
    real.abort();
    assert.equal((real.signal.reason as DOMException).name, reason.name);
  });

  it("runs the other listeners when one throws, then throws the first failure", () => {
    const c = new CancelController();
    const boom = new Error("listener failed");
    let ran = false;
    c.signal.addEventListener("abort", () => {
      throw boom;
    });
    c.signal.addEventListener("abort", () => (ran = true));
    assert.throws(() => c.abort(), boom);
    assert.equal(ran, true);
    assert.equal(c.signal.aborted, true);
  });
});

describe("anyOf", () => {
  it("aborts with the reason of whichever input aborts first, real AbortSignals included", () => {
    const ours = new CancelController();
    const real = new AbortController();
    const both = anyOf([ours.signal, real.signal]);
    assert.equal(both.aborted, false);
    real.abort("deadline");
    ours.abort("caller left");
    assert.equal(both.aborted, true);
    assert.equal(both.reason, "deadline");
  });

  it("is aborted from the start when an input already is", () => {
    const done = new CancelController();
    done.abort("gone");
    const s = anyOf([new CancelController().signal, done.signal]);
    assert.equal(s.aborted, true);
    assert.equal(s.reason, "gone");
  });
});

describe("withTimeout", () => {
  const abortedWith = (s: Cancellation) => new Promise<unknown>((resolve) => s.addEventListener("abort", () => resolve(s.reason), { once: true }));

  it("aborts with a TimeoutError when the time runs out", async () => {
    const b = withTimeout(new CancelController().signal, 20);
    // The budget's timer is unref'd, as AbortSignal.timeout's: something else must keep the test's process up.
    const keepAlive = setTimeout(() => undefined, 5_000);
    try {
      const reason = (await abortedWith(b.signal)) as DOMException;
      assert.equal(reason.name, "TimeoutError");
    } finally {
      clearTimeout(keepAlive);
      b.dispose();
    }
  });

  it("follows its parent, and after dispose neither the timer nor the parent aborts it", async () => {
    const parent = new CancelController();
    const followed = withTimeout(parent.signal, 10_000);
    parent.abort("caller left");
    assert.equal(followed.signal.reason, "caller left");
    followed.dispose();

    const other = new CancelController();
    const disposed = withTimeout(other.signal, 10);
    disposed.dispose();
    other.abort("late");
    await new Promise((r) => setTimeout(r, 40));
    assert.equal(disposed.signal.aborted, false);
  });
});
