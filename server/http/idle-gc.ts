import { getHeapSpaceStatistics, getHeapStatistics, setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/**
 * Giving memory back when traffic stops. V8 collects garbage only as it
 * allocates, so a replica that goes quiet after a burst keeps the burst's
 * garbage, and the heap pages holding it, for as long as it stays quiet:
 * tens of MB per replica that the kernel, autoscalers and OOM accounting
 * count as in use. Once no request has started for idleMs and none is in
 * flight, and the heap has grown by GROWTH_BYTES since the last time, a
 * short series of full collections runs: the first frees the garbage; V8
 * shrinks its young generation (32 MB under load, 1 MB at rest) only in a
 * collection that follows 5 s of low allocation, so the second (and last)
 * comes SHRINK_DELAY_MS later, unless the first already left the heap at
 * rest. Each costs a few to tens of ms of CPU, only while
 * nothing is in flight; health checks alone never trigger a series (they
 * leave too little garbage to cross the threshold).
 *
 * Ordinary full collections, and only two, not V8's low-memory collection
 * (reachable through the inspector's HeapProfiler.collectGarbage) nor a
 * longer series: with either, the next burst ran at about twice the CPU
 * per request while V8 recompiled. Even one ordinary collection in a quiet
 * second cost the next round about 1.5× the CPU at concurrency 1 in the
 * bench, so idleMs should be well above the gaps between bursts (30 s by
 * default).
 */

/** GROWTH_BYTES is how much the heap (used or committed) must grow past its size after the last series. */
const GROWTH_BYTES = 8 * 1024 * 1024;
/** SETTLED_BYTES: a first collection that shrinks the committed heap by less than this, with the young generation at rest, needs no second. */
const SETTLED_BYTES = 1024 * 1024;
/** SETTLED_YOUNG_BYTES is the young generation's size back at rest (V8 starts it at 1–2 MB). */
const SETTLED_YOUNG_BYTES = 4 * 1024 * 1024;
/**
 * MAX_COLLECTIONS bounds one series. Two: a series of five in one quiet
 * period doubled the next burst's CPU per request (V8 ages the bytecode of
 * functions not run across full collections, and flushes it once old).
 */
const MAX_COLLECTIONS = 2;
/** SHRINK_DELAY_MS: V8 (11.x) looks at the last 5 s of allocation before it shrinks the young generation. */
const SHRINK_DELAY_MS = 5_500;

/** Collection is what one collection did. */
export interface Collection {
  /** ms is how long it took. */
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
  /** shrinkDelayMs is the wait between a series' first and second collections; SHRINK_DELAY_MS unless testing. */
  shrinkDelayMs?: number;
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

/** startIdleGc checks a few times per idleMs whether the gateway is quiet with a grown heap, and collects if so. */
export function startIdleGc(options: IdleGcOptions): IdleGc {
  const gc = fullCollector();
  const shrinkDelayMs = options.shrinkDelayMs ?? SHRINK_DELAY_MS;
  let seen = options.started();
  let quietSince = performance.now();
  // Collections in this quiet period's series; -1 once the period needs no more.
  let collections = 0;
  // Nothing collected yet: the first quiet period collects (startup leaves garbage and a grown heap too).
  let base = { used_heap_size: 0, total_heap_size: 0 };
  let lastCommitted = 0;

  // How far into a quiet period collection n (from 0) of its series is due.
  const dueAfter = (n: number): number => (n === 0 ? options.idleMs : options.idleMs + shrinkDelayMs);

  const collect = (): void => {
    const t0 = performance.now();
    const before = getHeapStatistics().used_heap_size;
    gc();
    const after = getHeapStatistics();
    const young = youngGenerationSize();
    collections++;
    options.collected?.({
      ms: performance.now() - t0,
      freedBytes: before - after.used_heap_size,
      committedBytes: after.total_heap_size,
      youngBytes: young,
    });
    const settled = lastCommitted - after.total_heap_size < SETTLED_BYTES && young <= SETTLED_YOUNG_BYTES;
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
    if (collections < 0 || now - quietSince < dueAfter(collections)) return;
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
  const timer = setInterval(check, Math.max(50, Math.floor(Math.min(options.idleMs, shrinkDelayMs) / 4)));
  timer.unref();
  return { stop: () => clearInterval(timer) };
}

/** youngGenerationSize is the committed size of V8's new space. */
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
  if (collector !== undefined) return collector;
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (typeof exposed === "function") return (collector = exposed);
  setFlagsFromString("--expose-gc");
  try {
    return (collector = runInNewContext("gc") as () => void);
  } finally {
    setFlagsFromString("--no-expose-gc");
  }
}

// One per process: every server started in it (tests start many) shares it rather than making a context each.
let collector: (() => void) | undefined;
