import { createRequire } from "node:module";
import { getHeapSpaceStatistics, getHeapStatistics } from "node:v8";

/**
 * Giving memory back when traffic stops. V8 collects garbage only as it
 * allocates, so a replica that goes quiet after a burst keeps the burst's
 * garbage, its young generation grown to 32 MB and the heap pages holding
 * them for as long as it stays quiet: tens of MB per replica that the
 * kernel, autoscalers and OOM accounting count as in use. Once no request
 * has started for idleMs and none is in flight, and the heap has grown by
 * GROWTH_BYTES since the last collection, one memory-reducing collection
 * runs. It is the collection V8 does under memory pressure
 * (Isolate::LowMemoryNotification, reached through the in-process
 * inspector's HeapProfiler.collectGarbage): full, compacting, and it
 * shrinks the young generation back to 1 MB, which an ordinary full
 * collection does only after seeing 5 s of low allocation. It costs tens
 * of ms of CPU once per quiet period and never runs while a request or
 * stream is in flight; health checks alone never trigger it (they leave
 * too little garbage to cross the threshold).
 */

/** GROWTH_BYTES is how much the heap (used or committed) must grow past its size after the last collection. */
const GROWTH_BYTES = 8 * 1024 * 1024;

/** Collection is what one collection did. */
export interface Collection {
  /** ms is how long it took, from the request to V8's answer. */
  ms: number;
  /** freedBytes is how much less heap is in use after it. */
  freedBytes: number;
  /** committedBytes is the heap's committed size after it. */
  committedBytes: number;
  /** youngBytes is the young generation's committed size after it. */
  youngBytes: number;
}

/** IdleGcOptions configure startIdleGc. */
export interface IdleGcOptions {
  /** idleMs is how long the gateway must be quiet (nothing started, nothing in flight) before collecting. */
  idleMs: number;
  /** started counts the requests started so far (any change means activity). */
  started(): number;
  /** inFlight is how many requests are running now. */
  inFlight(): number;
  /** collected is told of each collection. */
  collected?(c: Collection): void;
}

/** IdleGc is a running idle collector. */
export interface IdleGc {
  /** stop ends the checks (the timer never holds the process open either way). */
  stop(): void;
}

/**
 * startIdleGc checks a few times per idleMs whether the gateway is quiet
 * with a grown heap, and collects if so. It returns undefined when this
 * Node has no inspector (a build without it), so no collection is possible.
 */
export function startIdleGc(options: IdleGcOptions): IdleGc | undefined {
  const inspector = loadInspector();
  if (inspector === undefined) return undefined;
  let seen = options.started();
  let quietSince = performance.now();
  let running = false;
  // Nothing collected yet: the first quiet period collects (startup leaves garbage and a grown heap too).
  let base = { used_heap_size: 0, total_heap_size: 0 };

  const collect = (): void => {
    running = true;
    const t0 = performance.now();
    const before = getHeapStatistics().used_heap_size;
    const session = new inspector.Session();
    try {
      session.connect();
    } catch {
      // Another in-process session can refuse ours; collection is an optimization, so it simply stops.
      clearInterval(timer);
      return;
    }
    // The collection runs on the inspector's next dispatch, not inside post(); the callback comes after it.
    session.post("HeapProfiler.collectGarbage", () => {
      // Disconnecting inside the callback deadlocks Node 20's inspector; a turn later it does not.
      setImmediate(() => session.disconnect());
      running = false;
      base = getHeapStatistics();
      options.collected?.({
        ms: performance.now() - t0,
        freedBytes: before - base.used_heap_size,
        committedBytes: base.total_heap_size,
        youngBytes: youngGenerationSize(),
      });
    });
  };

  const check = (): void => {
    const now = performance.now();
    const started = options.started();
    if (started !== seen || options.inFlight() > 0) {
      seen = started;
      quietSince = now;
      return;
    }
    if (running || now - quietSince < options.idleMs) return;
    const h = getHeapStatistics();
    if (h.used_heap_size - base.used_heap_size < GROWTH_BYTES && h.total_heap_size - base.total_heap_size < GROWTH_BYTES) return;
    collect();
  };
  const timer = setInterval(check, Math.max(50, Math.floor(options.idleMs / 4)));
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/** youngGenerationSize is the committed size of V8's new space. */
function youngGenerationSize(): number {
  for (const s of getHeapSpaceStatistics()) if (s.space_name === "new_space") return s.space_size;
  return 0;
}

/** loadInspector returns node:inspector, or undefined on a Node built without it (importing it would throw). */
function loadInspector(): typeof import("node:inspector") | undefined {
  try {
    return createRequire(import.meta.url)("node:inspector") as typeof import("node:inspector");
  } catch {
    return undefined;
  }
}
