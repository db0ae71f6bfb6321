import {
  checkFinite,
  checkId,
  checkKey,
  checkNonNegative,
  checkNonNegativeBigint,
  checkPositiveMs,
  checkWindowRequests,
  jsonText,
  LATENCY_TTL_HALF_LIVES,
} from "./args.js";
import type { LatencyStats, ReserveResult, StateStore, WindowRequest, WindowResult, WindowsAcquireOptions, WindowsResult } from "./store.js";

/**
 * The in-process state store: exact semantics for one process, and the
 * Redis store's fallback while Redis is unreachable.
 *
 * Sliding windows are logs: one (time, amount) entry per admitted amount,
 * oldest first. An entry counts while `now - time < windowMs`, so a limit
 * holds over every windowMs span (not per calendar minute), and
 * retryAfterMs is exact: the time until the oldest entries whose release
 * makes room expire. Admissions in the same millisecond share one entry
 * (they count, and leave, together), so memory per window is bounded by
 * the limit for request counts and by windowMs entries (one per
 * millisecond) however fast requests come.
 *
 * Keys expire lazily when read and through a periodic sweep on an unref'd
 * timer, so memory stays bounded by live keys.
 */

/** MemoryStoreOptions configures createMemoryStore. */
export interface MemoryStoreOptions {
  /** now is the clock in milliseconds (default Date.now); tests inject one to move time. */
  now?: () => number;
  /** sweepIntervalMs is how often expired keys are dropped (default 30 s); 0 disables the sweep. */
  sweepIntervalMs?: number;
}

/** WindowLog is one sliding window: parallel arrays from `head`, times non-decreasing. */
interface WindowLog {
  times: number[];
  amounts: number[];
  head: number;
  sum: number;
  /** expiresAt is when every entry has aged out (last write + windowMs). */
  expiresAt: number;
}

interface Reservation {
  amount: bigint;
  expiresAt: number;
}

interface ReserveEntry {
  committed: bigint;
  reservations: Map<string, Reservation>;
  /** reserved is the sum of the reservations' amounts, kept as they come and go (O(1) per request, not O(in flight)). */
  reserved: bigint;
  /** nextLapse is the earliest a reservation may lapse: before it, none has, and the map is not scanned. */
  nextLapse: number;
  expiresAt: number;
}

interface JsonEntry {
  text: string;
  expiresAt: number;
}

interface LatencyEntry {
  /** weight and mean of all latencies; ttft has its own weight since not every call streams. */
  weight: number;
  mean: number;
  ttftWeight: number;
  ttftMean: number;
  /** at is the last observation's time, halfLifeMs its half-life (readLatency decays to now with it). */
  at: number;
  halfLifeMs: number;
  expiresAt: number;
}

/** createMemoryStore returns a StateStore that lives in this process. */
export function createMemoryStore(options: MemoryStoreOptions = {}): StateStore {
  const now = options.now ?? Date.now;
  const windows = new Map<string, WindowLog>();
  const reserves = new Map<string, ReserveEntry>();
  const jsons = new Map<string, JsonEntry>();
  const latencies = new Map<string, LatencyEntry>();
  let closed = false;

  // Entries whose time is <= now - windowMs have left the window.
  function trim(log: WindowLog, t: number, windowMs: number): void {
    const cutoff = t - windowMs;
    let head = log.head;
    while (head < log.times.length && log.times[head]! <= cutoff) {
      log.sum -= log.amounts[head]!;
      head++;
    }
    if (head === log.times.length) {
      log.times.length = 0;
      log.amounts.length = 0;
      log.head = 0;
      // Reset instead of trusting the running sum, so float drift cannot accumulate.
      log.sum = 0;
      return;
    }
    // Compact once the dead prefix dominates, keeping trims amortized O(1).
    if (head > 64 && head * 2 > log.times.length) {
      log.times = log.times.slice(head);
      log.amounts = log.amounts.slice(head);
      head = 0;
    }
    log.head = head;
  }

  function liveWindow(key: string, t: number, windowMs: number): WindowLog | undefined {
    const log = windows.get(key);
    if (log === undefined) return undefined;
    if (log.expiresAt <= t) {
      windows.delete(key);
      return undefined;
    }
    trim(log, t, windowMs);
    return log;
  }

  // append counts amount at time t (or at the window's newest time, if later) and returns the entry's time.
  function append(log: WindowLog, t: number, amount: number, windowMs: number): number {
    // Times stay non-decreasing even if the clock steps back, or after an
    // entry held ahead (holdMs): an entry then lives slightly longer, which
    // can only under-admit, never over-admit.
    const live = log.times.length > log.head;
    const last = live ? log.times[log.times.length - 1]! : t;
    const at = Math.max(t, last);
    if (live && at === last) {
      // Same time, same expiry: one entry holds both. A busy window grows by
      // at most one entry per millisecond instead of one per admission, and
      // giving back from the newest entries takes the same amounts either way.
      const i = log.amounts.length - 1;
      log.amounts[i] = log.amounts[i]! + amount;
    } else {
      log.times.push(at);
      log.amounts.push(amount);
    }
    log.sum += amount;
    log.expiresAt = Math.max(log.expiresAt, at + windowMs);
    return at;
  }

  // count adds an admitted amount to a window (creating it) at time t, and returns the window's total and the entry.
  function count(key: string, log: WindowLog | undefined, t: number, amount: number, windowMs: number): WindowResult {
    if (amount <= 0) return { allowed: true, used: log?.sum ?? 0, retryAfterMs: 0 };
    const target = log ?? { times: [], amounts: [], head: 0, sum: 0, expiresAt: 0 };
    if (log === undefined) windows.set(key, target);
    const at = append(target, t, amount, windowMs);
    return { allowed: true, used: target.sum, retryAfterMs: 0, entry: { at, seq: 0 } };
  }

  // takeBack gives back up to amount from entry `from` and the ones before it, newest first.
  function takeBack(log: WindowLog, amount: number, from: number): void {
    let remaining = amount;
    let i = from;
    while (remaining > 0 && i >= log.head) {
      const held = log.amounts[i]!;
      const take = Math.min(held, remaining);
      log.amounts[i] = held - take;
      log.sum -= take;
      remaining -= take;
      if (log.amounts[i] === 0) {
        log.times.splice(i, 1);
        log.amounts.splice(i, 1);
      }
      i--;
    }
  }

  // refusal says when a window without room for amount will have it: once enough of its oldest entries leave.
  function refusal(log: WindowLog | undefined, used: number, amount: number, limit: number, windowMs: number, t: number): WindowResult {
    // An amount above the limit can never fit; the caller should reject it
    // as too large rather than retry, so a full window is the honest answer.
    if (amount > limit || log === undefined) return { allowed: false, used, retryAfterMs: Math.ceil(windowMs) };
    const needed = used + amount - limit;
    let freed = 0;
    for (let i = log.head; i < log.times.length; i++) {
      freed += log.amounts[i]!;
      if (freed >= needed) return { allowed: false, used, retryAfterMs: Math.max(1, Math.ceil(log.times[i]! + windowMs - t)) };
    }
    return { allowed: false, used, retryAfterMs: Math.ceil(windowMs) };
  }

  function liveReserve(key: string, t: number): ReserveEntry | undefined {
    const entry = reserves.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= t) {
      reserves.delete(key);
      return undefined;
    }
    // A crashed caller never settles: its reservation lapses on its own.
    if (entry.nextLapse <= t) {
      let reserved = 0n;
      let nextLapse = Infinity;
      for (const [id, r] of entry.reservations) {
        if (r.expiresAt <= t) {
          entry.reservations.delete(id);
        } else {
          reserved += r.amount;
          if (r.expiresAt < nextLapse) nextLapse = r.expiresAt;
        }
      }
      entry.reserved = reserved;
      entry.nextLapse = nextLapse;
    }
    return entry;
  }

  function newReserveEntry(): ReserveEntry {
    return { committed: 0n, reservations: new Map(), reserved: 0n, nextLapse: Infinity, expiresAt: 0 };
  }

  function liveJson(key: string, t: number): JsonEntry | undefined {
    const entry = jsons.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= t) {
      jsons.delete(key);
      return undefined;
    }
    return entry;
  }

  function liveLatency(key: string, t: number): LatencyEntry | undefined {
    const entry = latencies.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= t) {
      latencies.delete(key);
      return undefined;
    }
    return entry;
  }

  function sweep(): void {
    const t = now();
    for (const [key, log] of windows) if (log.expiresAt <= t) windows.delete(key);
    for (const [key, entry] of reserves) if (entry.expiresAt <= t) reserves.delete(key);
    for (const [key, entry] of jsons) if (entry.expiresAt <= t) jsons.delete(key);
    for (const [key, entry] of latencies) if (entry.expiresAt <= t) latencies.delete(key);
  }

  const sweepIntervalMs = options.sweepIntervalMs ?? 30_000;
  const timer = sweepIntervalMs > 0 ? setInterval(sweep, sweepIntervalMs) : undefined;
  timer?.unref();

  function checkOpen(): void {
    if (closed) throw new Error("state store: used after close()");
  }

  // async, so bad arguments reject rather than throw, as in every other call. Always exact (usedUpperBound need not apply).
  async function windowsAcquire(requests: readonly WindowRequest[], windowMs: number, options?: WindowsAcquireOptions): Promise<WindowsResult> {
    checkOpen();
    checkWindowRequests(requests, windowMs);
    const holdMs = options?.holdMs ?? 0;
    checkNonNegative("holdMs", holdMs);
    const t = now();
    const logs = requests.map((r) => liveWindow(r.key, t, windowMs));
    let allowed = true;
    for (let i = 0; i < requests.length; i++) if ((logs[i]?.sum ?? 0) + requests[i]!.amount > requests[i]!.limit) allowed = false;
    const windows = requests.map((r, i): WindowResult => {
      const log = logs[i];
      if (allowed) return count(r.key, log, t + holdMs, r.amount, windowMs);
      const used = log?.sum ?? 0;
      return used + r.amount <= r.limit ? { allowed: true, used, retryAfterMs: 0 } : refusal(log, used, r.amount, r.limit, windowMs, t);
    });
    return { allowed, windows };
  }

  return {
    backend: "memory",
    leaseMs: 0,

    healthy() {
      return true;
    },

    async windowAcquire(key, amount, limit, windowMs): Promise<WindowResult> {
      // One window is a group of one, as in the Redis store: the same code and argument checks.
      return (await windowsAcquire([{ key, amount, limit }], windowMs)).windows[0]!;
    },

    windowsAcquire,

    async windowAdjust(key, delta, windowMs, entry) {
      checkOpen();
      checkKey(key);
      checkFinite("delta", delta);
      checkPositiveMs("windowMs", windowMs);
      if (delta === 0) return;
      const t = now();
      let log = liveWindow(key, t, windowMs);
      if (delta > 0) {
        if (log === undefined) {
          log = { times: [], amounts: [], head: 0, sum: 0, expiresAt: 0 };
          windows.set(key, log);
        }
        append(log, t, delta, windowMs);
        return;
      }
      if (log === undefined) return;
      // Give back from the entry named (the amount was counted there) or
      // else from the newest entries, and never below zero. Entries of one
      // time share one slot here, so the named entry is the slot of its time.
      if (entry !== undefined) {
        const i = log.times.lastIndexOf(entry.at);
        if (i >= log.head) takeBack(log, Math.min(-delta, log.amounts[i]!), i);
      } else {
        takeBack(log, -delta, log.times.length - 1);
      }
      if (log.times.length === log.head) windows.delete(key);
    },

    async windowUsage(key, windowMs) {
      checkOpen();
      checkKey(key);
      checkPositiveMs("windowMs", windowMs);
      return liveWindow(key, now(), windowMs)?.sum ?? 0;
    },

    async reserve(key, id, amount, limit, ttlMs, reservationTtlMs): Promise<ReserveResult> {
      checkOpen();
      checkKey(key);
      checkId(id);
      checkNonNegativeBigint("amount", amount);
      checkNonNegativeBigint("limit", limit);
      checkPositiveMs("ttlMs", ttlMs);
      checkPositiveMs("reservationTtlMs", reservationTtlMs);
      const t = now();
      let entry = liveReserve(key, t);
      const committed = entry?.committed ?? 0n;
      // Reserving an id again replaces its amount (a retried call must not double-reserve).
      const previous = entry?.reservations.get(id)?.amount ?? 0n;
      const others = (entry?.reserved ?? 0n) - previous;
      if (committed + others + amount > limit) {
        return { ok: false, committed, reserved: others + previous };
      }
      if (entry === undefined) {
        entry = newReserveEntry();
        reserves.set(key, entry);
      }
      const lapsesAt = t + reservationTtlMs;
      entry.reservations.set(id, { amount, expiresAt: lapsesAt });
      entry.reserved = others + amount;
      if (lapsesAt < entry.nextLapse) entry.nextLapse = lapsesAt;
      entry.expiresAt = t + ttlMs;
      return { ok: true, committed, reserved: others + amount };
    },

    async settle(key, id, actual, ttlMs, release) {
      checkOpen();
      checkKey(key);
      checkId(id);
      checkNonNegativeBigint("actual", actual);
      checkPositiveMs("ttlMs", ttlMs);
      if (release !== undefined) checkNonNegativeBigint("release", release);
      const t = now();
      let entry = liveReserve(key, t);
      if (entry === undefined) {
        entry = newReserveEntry();
        reserves.set(key, entry);
      }
      const held = entry.reservations.get(id);
      if (held !== undefined) {
        if (release !== undefined && release < held.amount) {
          // A partial release keeps the rest reserved, with its expiry.
          held.amount -= release;
          entry.reserved -= release;
        } else {
          entry.reservations.delete(id);
          entry.reserved -= held.amount;
        }
      }
      entry.committed += actual;
      entry.expiresAt = t + ttlMs;
    },

    async readReserve(key) {
      checkOpen();
      checkKey(key);
      const entry = liveReserve(key, now());
      if (entry === undefined) return { committed: 0n, reserved: 0n };
      return { committed: entry.committed, reserved: entry.reserved };
    },

    async getJson<T>(key: string): Promise<T | undefined> {
      checkOpen();
      checkKey(key);
      const entry = liveJson(key, now());
      // Parse the stored text each time so callers never share (and mutate) one object.
      return entry === undefined ? undefined : (JSON.parse(entry.text) as T);
    },

    async setJson<T>(key: string, value: T, ttlMs: number) {
      checkOpen();
      checkKey(key);
      checkPositiveMs("ttlMs", ttlMs);
      jsons.set(key, { text: jsonText("value", value), expiresAt: now() + ttlMs });
    },

    async casJson<T>(key: string, expected: T | undefined, next: T, ttlMs: number) {
      checkOpen();
      checkKey(key);
      checkPositiveMs("ttlMs", ttlMs);
      const nextText = jsonText("next", next);
      const expectedText = expected === undefined ? undefined : jsonText("expected", expected);
      const t = now();
      const current = liveJson(key, t);
      if (current?.text !== expectedText) return false;
      jsons.set(key, { text: nextText, expiresAt: t + ttlMs });
      return true;
    },

    async recordLatency(key, latencyMs, ttftMs, halfLifeMs) {
      checkOpen();
      checkKey(key);
      checkNonNegative("latencyMs", latencyMs);
      if (ttftMs !== undefined) checkNonNegative("ttftMs", ttftMs);
      checkPositiveMs("halfLifeMs", halfLifeMs);
      const t = now();
      const entry = liveLatency(key, t);
      const decay = entry === undefined ? 0 : 0.5 ** (Math.max(0, t - entry.at) / halfLifeMs);
      const weight = (entry?.weight ?? 0) * decay;
      const ttftWeight = (entry?.ttftWeight ?? 0) * decay;
      const next: LatencyEntry = {
        weight: weight + 1,
        mean: ((entry?.mean ?? 0) * weight + latencyMs) / (weight + 1),
        ttftWeight,
        ttftMean: entry?.ttftMean ?? 0,
        at: Math.max(t, entry?.at ?? t),
        halfLifeMs,
        expiresAt: t + halfLifeMs * LATENCY_TTL_HALF_LIVES,
      };
      if (ttftMs !== undefined) {
        next.ttftMean = (next.ttftMean * ttftWeight + ttftMs) / (ttftWeight + 1);
        next.ttftWeight = ttftWeight + 1;
      }
      latencies.set(key, next);
    },

    async readLatency(key): Promise<LatencyStats | undefined> {
      checkOpen();
      checkKey(key);
      const t = now();
      const entry = liveLatency(key, t);
      if (entry === undefined) return undefined;
      const decay = 0.5 ** (Math.max(0, t - entry.at) / entry.halfLifeMs);
      return {
        samples: Math.round(entry.weight * decay),
        ewmaMs: entry.mean,
        ewmaTtftMs: entry.ttftWeight > 0 ? entry.ttftMean : 0,
      };
    },

    async close() {
      closed = true;
      if (timer !== undefined) clearInterval(timer);
      windows.clear();
      reserves.clear();
      jsons.clear();
      latencies.clear();
    },
  };
}
