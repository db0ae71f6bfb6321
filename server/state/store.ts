/**
 * The state store: everything that must agree across gateway replicas —
 * rate-limit windows, budget spend, circuit-breaker state, latency
 * statistics — goes through this interface. Two implementations:
 * memory-store.ts (one process, the default) and redis-store.ts (ioredis,
 * atomic Lua scripts, Cluster-safe hash-tagged keys). N replicas on one
 * Redis behave as one gateway: a limit of 100 rpm admits 100, not 100×N.
 *
 * Every operation is atomic with respect to every other replica. Keys are
 * logical names ("ratelimit:key:support-bot:rpm"); implementations add
 * their own prefix and hash tags. A window's group is its logical key
 * without the last ":" segment ("ratelimit:key:support-bot"): windows of
 * one group can be acquired together (windowsAcquire), and the Redis store
 * keeps them in one Cluster slot.
 *
 * When Redis is unreachable the Redis store keeps serving from a local
 * memory store (healthy() is false, and the change is logged) and goes
 * back to Redis when it returns; local counts made meanwhile are not
 * merged back (limits are briefly per-replica, never unlimited).
 */

/** WindowResult is the outcome of a sliding-window acquire. */
export interface WindowResult {
  /** allowed is true when the amount was admitted (and counted). */
  allowed: boolean;
  /** used is the window's total after this call (including the amount when allowed). */
  used: number;
  /** retryAfterMs is, when not allowed, how long until enough capacity frees up. */
  retryAfterMs: number;
  /**
   * entry names the entry this call added to the window (when it counted
   * an amount), so a give-back can take from that entry rather than from
   * the window's newest (see windowAdjust).
   */
  entry?: WindowEntry;
}

/**
 * WindowEntry names one entry of a window: `at` is the time it counts from
 * leaving (epoch ms, on the store's clock), `seq` tells it from other
 * entries at the same time. Opaque to callers: pass it back to windowAdjust.
 */
export interface WindowEntry {
  readonly at: number;
  readonly seq: number;
}

/** WindowRequest is one window of a windowsAcquire call. */
export interface WindowRequest {
  key: string;
  amount: number;
  limit: number;
}

/** WindowsAcquireOptions tune a windowsAcquire call. */
export interface WindowsAcquireOptions {
  /**
   * usedUpperBound lets `used` of a window that had room still count
   * entries that left it less than windowMs/600 ago (an upper bound on
   * its total), so that the Redis store drops a window's departed entries
   * once per windowMs/600 rather than on every call. Whether a window has
   * room is always decided on its exact total, and a window without room
   * reports its exact total. For callers that read `used` only as a hint
   * (rate limits); counters whose totals decide something (the circuit
   * breaker's) leave it unset. The memory store is always exact.
   */
  usedUpperBound?: boolean;
  /**
   * holdMs times the counted entries holdMs after now: they count from now
   * until holdMs + windowMs later. For capacity taken ahead of its use
   * (quota leases, leases.ts): an amount spent from it any time in the next
   * holdMs still counts for a whole window after it was spent. Default 0.
   */
  holdMs?: number;
}

/** USED_UPPER_BOUND is the options object of callers that read `used` only as a hint (see usedUpperBound). */
export const USED_UPPER_BOUND: WindowsAcquireOptions = Object.freeze({ usedUpperBound: true });

/** WindowsResult is the outcome of a windowsAcquire call. */
export interface WindowsResult {
  /** allowed is true when every window had room: then every amount was counted; otherwise none was. */
  allowed: boolean;
  /**
   * windows are the outcomes per window, in call order: `allowed` is
   * whether that window had room, `used` its total after the call, and
   * `retryAfterMs`, for a window without room, how long until it has.
   */
  windows: WindowResult[];
}

/** ReserveResult is the outcome of a reservation against a limit. */
export interface ReserveResult {
  /** ok is true when the reservation was made. */
  ok: boolean;
  /** committed is the settled total so far in this period. */
  committed: bigint;
  /** reserved is the total currently reserved by in-flight work (including this one when ok). */
  reserved: bigint;
}

/** LatencyStats is a decayed view of a deployment's recent latency. */
export interface LatencyStats {
  /** samples is how many observations contributed (decayed weight, rounded). */
  samples: number;
  /** ewmaMs is the exponentially weighted mean latency. */
  ewmaMs: number;
  /** ewmaTtftMs is the exponentially weighted mean time to first token (0 if never streamed). */
  ewmaTtftMs: number;
}

/** StateStore is the shared-state contract. */
export interface StateStore {
  /** backend names the implementation: "memory" or "redis". */
  readonly backend: "memory" | "redis";

  /**
   * leaseMs is how long this replica may hold capacity it took ahead of
   * use (quota leases, leases.ts); 0 means never. The memory store's is 0:
   * its state is local and exact already.
   */
  readonly leaseMs: number;

  /** healthy is false while a Redis store is serving from its local fallback. */
  healthy(): boolean;

  /**
   * windowAcquire admits `amount` into a sliding window of `windowMs` if the
   * window's total plus amount stays within `limit`, atomically. Sliding
   * means the limit holds over any windowMs span, not per calendar minute.
   * An amount larger than limit is never admitted (retryAfterMs = windowMs:
   * reject it as too large rather than retry). Amounts, limits and windows
   * must be finite and >= 0 (windowMs > 0); bad arguments reject with a
   * RangeError or TypeError in both implementations.
   */
  windowAcquire(key: string, amount: number, limit: number, windowMs: number): Promise<WindowResult>;

  /**
   * windowsAcquire is windowAcquire over several windows at once, all or
   * nothing: every amount is counted when every window has room, and none
   * otherwise, atomically (one Redis call), so a refusal leaves nothing to
   * give back. The keys must be distinct and share one group (see above);
   * otherwise, and for the arguments windowAcquire refuses, the call
   * rejects with a TypeError or RangeError.
   */
  windowsAcquire(requests: readonly WindowRequest[], windowMs: number, options?: WindowsAcquireOptions): Promise<WindowsResult>;

  /**
   * windowAdjust adds delta (negative to give back) to a window without a
   * limit check: used to reconcile a token reservation with actual usage.
   * A negative delta is taken from `entry` when given (the entry the amount
   * was counted in: at most its amount, and nothing once it has left the
   * window), otherwise from the newest entries; a window never goes below
   * zero. A positive delta is a new entry, timed now.
   */
  windowAdjust(key: string, delta: number, windowMs: number, entry?: WindowEntry): Promise<void>;

  /** windowUsage reads a window's current total. */
  windowUsage(key: string, windowMs: number): Promise<number>;

  /**
   * reserve atomically adds `amount` to the key's reserved total when
   * committed + reserved + amount <= limit. The key lasts `ttlMs` after its
   * last write (the Redis store keeps it up to an eighth of ttlMs, at most
   * a minute, longer, so that it need not renew the expiry on every write):
   * periods end, and a crashed replica's reservations must not live
   * forever — reservations also expire individually after reservationTtlMs.
   * Reserving an id that is already reserved replaces its amount. Totals are
   * exact at any size (no int64 or 2^53 ceiling).
   */
  reserve(key: string, id: string, amount: bigint, limit: bigint, ttlMs: number, reservationTtlMs: number): Promise<ReserveResult>;

  /**
   * settle releases reservation `id` and adds `actual` to the committed
   * total, atomically (actual may exceed the reservation; it is always
   * recorded: spend that happened is never dropped). With `release`, only
   * that much of the reservation is released (all of it when it holds no
   * more) and the rest stays reserved, with its expiry: how a quota lease
   * (leases.ts) settles one request at a time.
   */
  settle(key: string, id: string, actual: bigint, ttlMs: number, release?: bigint): Promise<void>;

  /** readReserve reads a key's committed and reserved totals. */
  readReserve(key: string): Promise<{ committed: bigint; reserved: bigint }>;

  /**
   * getJson/setJson/casJson hold small JSON documents (circuit-breaker
   * state). casJson writes `next` only if the stored value still equals
   * `expected` (by its JSON text; undefined means absent) and returns whether
   * it did: the building block of "exactly one half-open probe". Compare
   * with a value read by getJson (JSON.parse keeps key order), or build
   * `expected` with the same key order as the stored one. ttlMs must be > 0.
   */
  getJson<T>(key: string): Promise<T | undefined>;
  setJson<T>(key: string, value: T, ttlMs: number): Promise<void>;
  casJson<T>(key: string, expected: T | undefined, next: T, ttlMs: number): Promise<boolean>;

  /** recordLatency folds one observation into a key's decayed statistics (half-life halfLifeMs). */
  recordLatency(key: string, latencyMs: number, ttftMs: number | undefined, halfLifeMs: number): Promise<void>;

  /** readLatency reads a key's decayed statistics, or undefined if none. */
  readLatency(key: string): Promise<LatencyStats | undefined>;

  /** close releases connections. */
  close(): Promise<void>;
}
