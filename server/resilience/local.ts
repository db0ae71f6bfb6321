import type { StateStore } from "../state/store.js";
import { LocalLatency } from "./latency-window.js";
import type { WindowTotals } from "./rate-limits.js";
import { Wakeup } from "./wait.js";

/**
 * What one replica keeps for itself next to the shared store: recent
 * latency samples (for percentiles), the wakeup of local capacity
 * waiters, and the rate-limit window totals it last saw. It is keyed by
 * the store, which outlives configuration reloads, so a reload keeps the
 * samples.
 */

/** LocalResilience is one replica's local resilience state. */
export interface LocalResilience {
  latency: LocalLatency;
  wakeup: Wakeup;
  /** windowTotals are the provider and deployment limit windows' totals as last seen (see capacityLikely). */
  windowTotals: WindowTotals;
}

const byStore = new WeakMap<StateStore, LocalResilience>();

/** localFor returns the local state kept beside a store. */
export function localFor(store: StateStore): LocalResilience {
  let local = byStore.get(store);
  if (local === undefined) {
    local = { latency: new LocalLatency(), wakeup: new Wakeup(), windowTotals: new Map() };
    byStore.set(store, local);
  }
  return local;
}
