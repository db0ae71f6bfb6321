import type { Cancellation } from "../core/cancel.js";
/**
 * Waiting without polling. The executor waits in two cases only: before
 * retrying the same deployment after a backoff (when no other candidate is
 * left), and when a batch-priority request waits for rate-limit capacity.
 * Either wait ends early when the request is cancelled, and a capacity wait
 * also ends as soon as this replica gives capacity back (a reservation
 * reconciled with a smaller actual usage), instead of sleeping until the
 * window slides.
 */

/** Wakeup lets waiters be woken by name (a rate-limit key) when capacity frees up. */
export class Wakeup {
  private readonly waiters = new Map<string, Set<() => void>>();

  /** subscribe calls fn the next time any of names is woken; the returned function unsubscribes. */
  subscribe(names: readonly string[], fn: () => void): () => void {
    for (const n of names) {
      let set = this.waiters.get(n);
      if (set === undefined) {
        set = new Set();
        this.waiters.set(n, set);
      }
      set.add(fn);
    }
    return () => {
      for (const n of names) {
        const set = this.waiters.get(n);
        if (set === undefined) continue;
        set.delete(fn);
        if (set.size === 0) this.waiters.delete(n);
      }
    };
  }

  /** wake calls every waiter of name. */
  wake(name: string): void {
    const set = this.waiters.get(name);
    if (set === undefined) return;
    for (const fn of [...set]) fn();
  }
}

/** PauseEnd says why a pause ended. */
export type PauseEnd = "elapsed" | "woken" | "aborted";

/**
 * pause waits ms, ending early when signal aborts or (with wakeup and
 * names) when one of names is woken. It never rejects and leaves no timer or
 * listener behind.
 */
export function pause(ms: number, signal: Cancellation, wakeup?: Wakeup, names: readonly string[] = []): Promise<PauseEnd> {
  if (signal.aborted) return Promise.resolve("aborted");
  return new Promise<PauseEnd>((resolve) => {
    let unsubscribe: (() => void) | undefined;
    const finish = (why: PauseEnd) => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      unsubscribe?.();
      resolve(why);
    };
    const onAbort = () => finish("aborted");
    const timer = setTimeout(() => finish("elapsed"), Math.max(0, ms));
    signal.addEventListener("abort", onAbort, { once: true });
    if (wakeup !== undefined && names.length > 0) unsubscribe = wakeup.subscribe(names, () => finish("woken"));
  });
}
