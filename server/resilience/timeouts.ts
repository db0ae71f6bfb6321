import { UpstreamError } from "../core/errors.js";
import { CancelController, type Cancellation } from "../core/cancel.js";

/**
 * Per-attempt timeouts: first token, idle gap between chunks, and total.
 * undici's own header and body timeouts tick about every 500 ms, too
 * coarse for sub-second first-token limits, so each attempt gets one real
 * timer here. The attempt's AbortController is linked to the request's
 * signal (the caller leaving or its deadline cancels the attempt) and is
 * also how a hedge that lost is cancelled. One timer per attempt, re-armed
 * lazily: a chunk only records its arrival time, and the timer, when it
 * fires early, re-arms itself for what is left of the gap.
 */

/** AttemptLimits are one attempt's time limits in ms; unset means none. */
export interface AttemptLimits {
  /** firstTokenMs bounds the wait for the first chunk (streams). */
  firstTokenMs?: number;
  /** idleMs bounds the silence between two chunks after the first (streams). */
  idleMs?: number;
  /** totalMs bounds the whole attempt. */
  totalMs?: number;
}

/** AttemptTimer is one attempt's abort signal and timers. */
export interface AttemptTimer {
  /** signal aborts when the request's signal does, a limit passes, or cancel() is called. */
  readonly signal: Cancellation;
  /** firstToken switches from the first-token limit to the idle-gap limit. */
  firstToken(): void;
  /** touch records a chunk's arrival, or the moment the executor asks for the next one (the idle gap restarts). */
  touch(): void;
  /** hold pauses the idle limit while the caller is busy with a chunk (backpressure is not upstream silence). */
  hold(): void;
  /** timedOut is the timeout that cancelled the attempt, if one did. */
  timedOut(): UpstreamError | undefined;
  /** cancel aborts the attempt on the gateway's behalf (a hedge that lost). */
  cancel(reason: string): void;
  /** cancelled is the reason given to cancel(), if it was called. */
  cancelled(): string | undefined;
  /** dispose clears the timer and unlinks the request's signal; call it exactly when the attempt ends. */
  dispose(): void;
}

/** startAttemptTimer starts the clock of one attempt, now. */
export function startAttemptTimer(parent: Cancellation, limits: AttemptLimits): AttemptTimer {
  const controller = new CancelController();
  const started = performance.now();
  let lastChunk = started;
  let streaming = false;
  let held = false;
  let timer: NodeJS.Timeout | undefined;
  let fired: UpstreamError | undefined;
  let cancelReason: string | undefined;

  const onParentAbort = () => controller.abort(parent.reason);
  if (parent.aborted) controller.abort(parent.reason);
  else parent.addEventListener("abort", onParentAbort, { once: true });

  // The time (performance.now()) at which the earliest limit passes, and which one.
  function nextDeadline(): { at: number; what: "first" | "idle" | "total" } | undefined {
    let best: { at: number; what: "first" | "idle" | "total" } | undefined;
    if (limits.totalMs !== undefined) best = { at: started + limits.totalMs, what: "total" };
    const phase = streaming
      ? limits.idleMs === undefined
        ? undefined
        : { at: lastChunk + limits.idleMs, what: "idle" as const }
      : limits.firstTokenMs === undefined
        ? undefined
        : { at: started + limits.firstTokenMs, what: "first" as const };
    if (phase !== undefined && (best === undefined || phase.at < best.at)) best = phase;
    return best;
  }

  function arm(): void {
    const next = nextDeadline();
    if (next === undefined || controller.signal.aborted) return;
    const wait = Math.max(1, Math.ceil(next.at - performance.now()));
    timer = setTimeout(check, wait);
  }

  function check(): void {
    timer = undefined;
    const next = nextDeadline();
    if (next === undefined || controller.signal.aborted) return;
    if (performance.now() < next.at || (held && next.what === "idle")) {
      if (held && next.what === "idle") lastChunk = performance.now();
      arm();
      return;
    }
    const message =
      next.what === "first"
        ? `no first token within ${limits.firstTokenMs} ms`
        : next.what === "idle"
          ? `the stream was silent for more than ${limits.idleMs} ms`
          : `the attempt took longer than ${limits.totalMs} ms`;
    fired = new UpstreamError("timeout", message);
    controller.abort(fired);
  }

  arm();

  return {
    signal: controller.signal,
    firstToken() {
      streaming = true;
      lastChunk = performance.now();
      // The first-token limit is usually the tighter one: re-arm for the idle gap.
      if (timer !== undefined) {
        clearTimeout(timer);
        timer = undefined;
      }
      arm();
    },
    touch() {
      lastChunk = performance.now();
      held = false;
    },
    hold() {
      held = true;
    },
    timedOut: () => fired,
    cancel(reason) {
      if (controller.signal.aborted) return;
      cancelReason = reason;
      controller.abort(new UpstreamError("cancelled", reason));
    },
    cancelled: () => cancelReason,
    dispose() {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      parent.removeEventListener("abort", onParentAbort);
    },
  };
}
