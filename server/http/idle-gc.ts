import { getHeapSpaceStatistics, getHeapStatistics, setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/**
 * Giving memory back when traffic stops. V8 collects garbage only as it
 * allocates, so a replica that goes quiet after a burst keeps the burst's
 * garbage, its grown young generation and the heap pages holding them for
 * as long as it stays quiet: tens of MB per replica that the kernel,
 * autoscalers and OOM accounting count as in use. Once no request has
 * started for idleMs and none is in flight, and the heap grew by
 * GROWTH_BYTES since the last time, full collections run, the first after
 * idleMs and then every idleMs / 2, until the heap stops shrinking. It
 * takes several: V8 shrinks its young generation only once it has seen a
 * few seconds of low allocation (about 5 s in V8 11). Each
 * costs a few to a few tens of ms of CPU, once per quiet period, never
 * while a request or stream is in flight; health checks alone never
 * trigger it (they leave too little garbage to cross the threshold).
 */

/** GROWTH_BYTES is how much the heap (used or committed) must grow past its size after the last quiet period. */
const GROWTH_BYTES = 8 * 1024 * 1024;
/** SETTLED_BYTES: a collection that shrinks the committed heap by less than this (young generation back to size) ends the series. */
const SETTLED_BYTES = 1024 * 1024;
/** SETTLED_YOUNG_BYTES is the young generation's size back at rest (V8 starts it at 1–2 MB and grows it to 32 MB under load). */
const SETTLED_YOUNG_BYTES = 4 * 1024 * 1024;
/** MAX_COLLECTIONS bounds one quiet period's series. */
const MAX_COLLECTIONS = 8;

/** IdleGcOptions configure startIdleGc. */
export interface IdleGcOptions {
  /** idleMs is how long the gateway must be quiet before the first collection (twice the gap between the next ones). */
  idleMs: number;
  /** started counts the requests started so far (any change means activity). */
  started(): number;
  /** inFlight is how many requests are running now. */
  inFlight(): number;
  /** collected is told of each collection: how long it took, the used heap it freed, the committed heap after it. */
  collected?(ms: number, freedBytes: number, committedBytes: number): void;
}

/** IdleGc is a running idle collector. */
export interface IdleGc {
  /** stop ends the checks (the timer never holds the process open either way). */
  stop(): void;
}

/** startIdleGc checks a few times per idleMs whether the gateway went quiet after work, and then collects. */
export function startIdleGc(options: IdleGcOptions): IdleGc {
  const gc = fullCollector();
  let seen = options.started();
  let quietSince = performance.now();
  // Per quiet period: collections run so far; -1 once the period needs no more.
  let collections = 0;
  let base = getHeapStatistics();
  let lastCommitted = base.total_heap_size;

  const collect = (): void => {
    const t0 = performance.now();
    const before = getHeapStatistics().used_heap_size;
    gc();
    const after = getHeapStatistics();
    collections++;
    options.collected?.(performance.now() - t0, before - after.used_heap_size, after.total_heap_size);
    const settled = lastCommitted - after.total_heap_size < SETTLED_BYTES && youngGenerationSize() <= SETTLED_YOUNG_BYTES;
    lastCommitted = after.total_heap_size;
    if (settled || collections >= MAX_COLLECTIONS) {
      collections = -1;
      base = after;
    }
  };

  const check = (): void => {
    const now = performance.now();
    const started = options.started();
    if (started !== seen || options.inFlight() > 0) {
      seen = started;
      quietSince = now;
      collections = 0;
      return;
    }
    // The first collection after idleMs, then every idleMs / 2 until the heap settles.
    if (collections < 0 || now - quietSince < options.idleMs * (1 + collections / 2)) return;
    if (collections === 0) {
      const h = getHeapStatistics();
      if (h.used_heap_size - base.used_heap_size < GROWTH_BYTES && h.total_heap_size - base.total_heap_size < GROWTH_BYTES) {
        collections = -1;
        return;
      }
      lastCommitted = h.total_heap_size;
    }
    collect();
  };
  const timer = setInterval(check, Math.max(100, Math.floor(options.idleMs / 4)));
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/** youngGenerationSize is the committed size of V8's new space (it grows under load, shrinks only in some collections). */
function youngGenerationSize(): number {
  for (const s of getHeapSpaceStatistics()) if (s.space_name === "new_space") return s.space_size;
  return 0;
}

/**
 * fullCollector returns V8's full-collection function. Without --expose-gc
 * it is reached the way Jest's leak detector does: expose it for one fresh
 * context, take it from there, and turn the flag back off so no other
 * context sees a global gc().
 */
function fullCollector(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (typeof exposed === "function") return exposed;
  setFlagsFromString("--expose-gc");
  try {
    return runInNewContext("gc") as () => void;
  } finally {
    setFlagsFromString("--no-expose-gc");
  }
}
