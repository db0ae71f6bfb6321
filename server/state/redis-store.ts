import { Redis, ReplyError } from "ioredis";
import type { Socket as NetStream } from "node:net";
import type { Logger } from "pino";
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
  windowGroup,
} from "./args.js";
import { createMemoryStore } from "./memory-store.js";
import { createReadCache } from "./read-cache.js";
import { batchArguments, buildBatchScript, type BatchOp, type RedisOp } from "./redis-scripts.js";
import type { LatencyStats, ReserveResult, StateStore, WindowRequest, WindowResult, WindowsAcquireOptions, WindowsResult } from "./store.js";

/**
 * The Redis state store: N replicas on one Redis share every window,
 * budget, breaker and latency statistic. Each multi-step operation is one
 * Lua function of the batch script (redis-scripts.ts); the operations
 * issued in one turn of the event loop run in one EVALSHA, re-sent with
 * EVAL when the server does not have the script cached (a restarted Redis).
 *
 * Failing fast and falling back: the client has no offline queue and a
 * short command timeout, so a down or stuck Redis fails a call within
 * commandTimeoutMs instead of hanging the request. Such a failure switches
 * the store to a local memory store (healthy() false, one warn line); while
 * local, calls do not touch Redis at all. ioredis reconnects in the
 * background with bounded backoff, and a probe (PING every probeIntervalMs,
 * and at once on reconnect) switches back (one info line). Local counts are
 * discarded on return, not merged: limits are briefly per replica, never
 * unlimited. A call that timed out may still have been applied in Redis;
 * it is then counted in both places, which errs towards limiting.
 */

/** RedisStoreOptions configures createRedisStore. */
export interface RedisStoreOptions {
  /** url is the redis:// or rediss:// URL. */
  url: string;
  /** keyPrefix starts every key, so several gateways can share one Redis. */
  keyPrefix: string;
  /** logger receives one line per transition between Redis and local state. */
  logger: Logger;
  /** connectTimeoutMs bounds each connection attempt (default 1000). */
  connectTimeoutMs?: number;
  /** commandTimeoutMs bounds each command, after which the call is served locally (default 1000). */
  commandTimeoutMs?: number;
  /** probeIntervalMs is how often a store serving locally checks whether Redis answers again (default 1000). */
  probeIntervalMs?: number;
  /** maxReconnectDelayMs caps ioredis's reconnect backoff (default 2000). */
  maxReconnectDelayMs?: number;
  /** leaseMs is how long a quota lease lasts (leases.ts; default DEFAULT_LEASE_MS, 0 = no leases). */
  leaseMs?: number;
}

/** DEFAULT_COMMAND_TIMEOUT_MS is the default bound on one Redis command. */
// Long enough that an event-loop stall under load is not mistaken for a dead Redis (which would
// make limits per-replica for a while), short enough that a hung Redis costs one slow request.
export const DEFAULT_COMMAND_TIMEOUT_MS = 1000;

/**
 * DEFAULT_LEASE_MS is how long a quota lease lasts by default: long enough
 * that a busy replica asks Redis a few times a second rather than once per
 * request, short enough that a lease's entries counting up to this much
 * longer, and capacity an idle replica holds, do not matter next to a
 * one-minute window.
 */
export const DEFAULT_LEASE_MS = 500;

/**
 * MAX_BATCH_OPS bounds the operations in one call of the batch script:
 * Redis runs a script to its end before any other client's command, so an
 * unbounded batch (a burst of thousands of requests in one turn) would
 * hold every other replica up for as long.
 */
const MAX_BATCH_OPS = 64;

/** PendingOp is a script operation waiting for its turn's batch to be sent. */
interface PendingOp extends BatchOp {
  resolve(reply: unknown): void;
  reject(err: unknown): void;
}

// Replies that mean "this server cannot serve now", not "the script is wrong".
const UNAVAILABLE_REPLY = /^(BUSY|LOADING|MASTERDOWN|READONLY|CLUSTERDOWN|TRYAGAIN)\b/;

function isUnavailable(err: unknown): boolean {
  if (err instanceof ReplyError) return UNAVAILABLE_REPLY.test((err as Error).message);
  // Connection refused or reset, command timeout, "stream isn't writeable".
  return true;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// Where Redis is, without credentials, for log lines.
function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || "6379"}${u.pathname === "/" ? "" : u.pathname}`;
  } catch {
    return "(unparsable url)";
  }
}

/** RedisStateStore is the Redis store, which also says whether its JSON reads are being cached (read-cache.ts). */
export interface RedisStateStore extends StateStore {
  readCacheActive(): boolean;
}

/** createRedisStore returns a StateStore on Redis, falling back to local state while Redis is unreachable. */
export function createRedisStore(options: RedisStoreOptions): RedisStateStore {
  const { keyPrefix, logger } = options;
  const where = describeUrl(options.url);
  const commandTimeoutMs = options.commandTimeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  const connectTimeoutMs = options.connectTimeoutMs ?? 1000;
  const probeIntervalMs = options.probeIntervalMs ?? 1000;
  const maxReconnectDelayMs = options.maxReconnectDelayMs ?? 2000;
  const batchScript = buildBatchScript();

  const client = new Redis(options.url, {
    connectTimeout: connectTimeoutMs,
    commandTimeout: commandTimeoutMs,
    enableOfflineQueue: false,
    // Commands in flight when the connection drops fail at once (served locally) instead of being retried.
    maxRetriesPerRequest: 0,
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 10), maxReconnectDelayMs),
    lazyConnect: false,
  });

  const reads = createReadCache({ main: client, url: options.url, connectTimeoutMs, maxReconnectDelayMs, logger, where });

  let mode: "redis" | "local" = "redis";
  let fallback: StateStore | undefined;
  let probeTimer: NodeJS.Timeout | undefined;
  let probing = false;
  let closed = false;

  function degrade(err: unknown): void {
    if (mode === "local" || closed) return;
    mode = "local";
    reads.clear();
    fallback = createMemoryStore();
    logger.warn(
      { redis: where, err: errorMessage(err) },
      "state: redis unreachable, serving limits, budgets and breakers from local state (per replica) until it returns",
    );
    probeTimer = setInterval(probe, probeIntervalMs);
    probeTimer.unref();
  }

  function recover(): void {
    if (mode === "redis" || closed) return;
    mode = "redis";
    if (probeTimer !== undefined) clearInterval(probeTimer);
    probeTimer = undefined;
    const old = fallback;
    fallback = undefined;
    void old?.close();
    logger.info({ redis: where }, "state: redis reachable again, back on shared state");
  }

  function probe(): void {
    if (mode === "redis" || closed || probing || client.status !== "ready") return;
    probing = true;
    client
      .ping()
      .then(recover, () => undefined)
      .finally(() => {
        probing = false;
      });
  }

  // The first connection gets connectTimeoutMs before calls give up on it;
  // after that, a down Redis is noticed by failing calls and by "close".
  let starting: Promise<void> | undefined = new Promise<void>((resolve) => {
    const done = () => {
      clearTimeout(timer);
      client.off("ready", done);
      client.off("close", done);
      resolve();
    };
    const timer = setTimeout(done, connectTimeoutMs);
    timer.unref();
    client.once("ready", done);
    client.once("close", done);
  }).then(() => {
    starting = undefined;
    if (client.status !== "ready") degrade(new Error(`no connection within ${connectTimeoutMs} ms`));
  });

  // ioredis reports every failed reconnect as "error"; the transitions above are the useful signal.
  client.on("error", (err) => logger.debug({ redis: where, err: errorMessage(err) }, "state: redis connection error"));
  client.on("close", () => {
    if (starting === undefined) degrade(new Error("connection closed"));
  });
  client.on("ready", probe);

  function key(logical: string, suffix: string): string {
    // The hash tag is everything up to the first "}" after the first "{";
    // it depends only on prefix and logical key, so every suffix of one
    // logical key lands in the same Cluster slot.
    return `${keyPrefix}:{${logical}}:${suffix}`;
  }

  // A window's tag is its group (windowGroup), so a group's windows share a slot.
  function windowKeys(logical: string): [string, string] {
    const group = windowGroup(logical);
    const base = group === logical ? `${keyPrefix}:{${logical}}` : `${keyPrefix}:{${group}}${logical.slice(group.length)}`;
    return [`${base}:w`, `${base}:wm`];
  }

  // Commands issued in one turn of the event loop leave in one write: the
  // socket is corked at the first and uncorked in the loop's check phase
  // (setImmediate), after every callback of this turn's I/O and the promise
  // chains they started have issued theirs. Under load one turn handles
  // several requests' I/O, so their admissions and settlements share a
  // write; a write to Redis also wakes Redis, and it was the costliest call
  // of the Redis-backed gateway (c=16, bench config: writes 4.0 → 2.2 per
  // request, two of them the HTTP answer and upstream call; CPU per request
  // 339 → 280 µs). At c=1 a turn holds one request: p50 675 vs 662 µs,
  // within the noise. Unlike ioredis's auto-pipelining (which also defers
  // to setImmediate), commands are never held back while an earlier batch
  // is in flight, and no Pipeline object is built.
  //
  // Script operations issued in the turn go further: they travel as one
  // call of the batch script (redis-scripts.ts), so a request's admission
  // (the provider's windows, the key's windows, the budget reservation) is
  // one EVALSHA instead of three, and so is its settlement. Each EVALSHA
  // costs a client command (a promise, a timer, its encoding and reply
  // parsing) and a script call in Redis, whatever it does. Every operation
  // keeps its own atomicity and its own reply or error; a batch only makes
  // operations that already ran back to back run as one. A plain command
  // (GET, SET) sends the batch so far before itself, so commands still
  // reach Redis in the order they were issued.
  let corked: NetStream | undefined;
  let turnEnding = false;
  let pending: PendingOp[] = [];

  function endTurn(): void {
    turnEnding = false;
    flushOps();
    const stream = corked;
    corked = undefined;
    stream?.uncork();
  }

  function holdTurn(): void {
    if (!turnEnding) {
      turnEnding = true;
      setImmediate(endTurn);
    }
    if (corked !== undefined) return;
    const stream = client.stream as NetStream | undefined;
    if (stream === undefined || typeof stream.cork !== "function") return;
    stream.cork();
    corked = stream;
  }

  // plainCommand issues a command outside the batch script, after the operations issued before it.
  function plainCommand<T>(send: () => Promise<T>): Promise<T> {
    flushOps();
    holdTurn();
    return send();
  }

  function flushOps(): void {
    if (pending.length === 0) return;
    const ops = pending;
    pending = [];
    const args = batchArguments(ops);
    client
      .evalsha(batchScript.sha, ...args)
      .catch((err: unknown) => {
        if (err instanceof ReplyError && (err as Error).message.startsWith("NOSCRIPT")) return client.eval(batchScript.source, ...args);
        throw err;
      })
      .then(
        (replies) => {
          if (!Array.isArray(replies) || replies.length !== ops.length) {
            const err = new Error(`state store: the batch script answered ${Array.isArray(replies) ? replies.length : typeof replies} replies for ${ops.length} operations`);
            for (const o of ops) o.reject(err);
            return;
          }
          for (let i = 0; i < ops.length; i++) {
            const reply: unknown = replies[i];
            if (reply instanceof Error) ops[i]!.reject(reply);
            else ops[i]!.resolve(reply);
          }
        },
        (err: unknown) => {
          for (const o of ops) o.reject(err);
        },
      );
  }

  function callOp(op: RedisOp, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      holdTurn();
      pending.push({ op, keys, args, resolve, reject });
      // A bounded batch bounds how long one script call holds Redis.
      if (pending.length >= MAX_BATCH_OPS) flushOps();
    });
  }

  // run sends one call to Redis, or to local state while Redis is unreachable.
  function run<R>(viaRedis: () => Promise<unknown>, parse: (raw: unknown) => R, viaLocal: (local: StateStore) => Promise<R>): Promise<R> {
    if (closed) return Promise.reject(new Error("state store: used after close()"));
    if (starting !== undefined) return starting.then(() => run(viaRedis, parse, viaLocal));
    if (mode === "redis") {
      return viaRedis().then(parse, (err: unknown) => {
        if (!isUnavailable(err)) throw err;
        degrade(err);
        return viaLocal(localStore());
      });
    }
    return viaLocal(localStore());
  }

  function localStore(): StateStore {
    // Only a store closed while this call was in flight has no fallback.
    if (fallback === undefined) throw new Error("state store: used after close()");
    return fallback;
  }

  const ok = (): void => undefined;

  // async, so bad arguments reject rather than throw, as in every other call.
  async function windowsAcquire(requests: readonly WindowRequest[], windowMs: number, options?: WindowsAcquireOptions): Promise<WindowsResult> {
    checkWindowRequests(requests, windowMs);
    const holdMs = options?.holdMs ?? 0;
    checkNonNegative("holdMs", holdMs);
    const keys: string[] = [];
    const args: Array<number | string> = [windowMs, options?.usedUpperBound === true ? "lazy" : "exact", Math.ceil(holdMs)];
    for (const r of requests) {
      keys.push(...windowKeys(r.key));
      args.push(r.amount, r.limit);
    }
    return run(
      () => callOp("windowsAcquire", keys, args),
      (raw) => {
        const flat = raw as Array<number | string>;
        const at = flat[1] as number;
        const windows: WindowResult[] = requests.map((_, i) => {
          const w: WindowResult = { allowed: flat[4 * i + 2] === 1, used: Number(flat[4 * i + 3]), retryAfterMs: flat[4 * i + 4] as number };
          const seq = flat[4 * i + 5] as number;
          if (seq > 0) w.entry = { at, seq };
          return w;
        });
        return { allowed: flat[0] === 1, windows };
      },
      (local) => local.windowsAcquire(requests, windowMs, options),
    );
  }

  return {
    backend: "redis",
    leaseMs: options.leaseMs ?? DEFAULT_LEASE_MS,

    healthy() {
      return mode === "redis" && client.status === "ready";
    },

    readCacheActive: () => mode === "redis" && reads.active(),

    async windowAcquire(key, amount, limit, windowMs): Promise<WindowResult> {
      // One window is a group of one: the same script, and the same argument checks.
      return (await windowsAcquire([{ key, amount, limit }], windowMs)).windows[0]!;
    },

    windowsAcquire,

    async windowAdjust(logical, delta, windowMs, entry) {
      checkKey(logical);
      checkFinite("delta", delta);
      checkPositiveMs("windowMs", windowMs);
      if (delta === 0) return;
      return run(
        () => callOp("windowAdjust", windowKeys(logical), delta < 0 && entry !== undefined ? [delta, windowMs, entry.at, entry.seq] : [delta, windowMs]),
        ok,
        // An entry of Redis's means nothing to the local store: it gives back from its newest.
        (local) => local.windowAdjust(logical, delta, windowMs),
      );
    },

    async windowUsage(logical, windowMs) {
      checkKey(logical);
      checkPositiveMs("windowMs", windowMs);
      return run(
        () => callOp("windowUsage", windowKeys(logical), [windowMs]),
        (raw) => Number(raw as string),
        (local) => local.windowUsage(logical, windowMs),
      );
    },

    async reserve(logical, id, amount, limit, ttlMs, reservationTtlMs): Promise<ReserveResult> {
      checkKey(logical);
      checkId(id);
      checkNonNegativeBigint("amount", amount);
      checkNonNegativeBigint("limit", limit);
      checkPositiveMs("ttlMs", ttlMs);
      checkPositiveMs("reservationTtlMs", reservationTtlMs);
      return run(
        () =>
          callOp("reserve", [key(logical, "r")], [id, amount.toString(), limit.toString(), ttlMs, reservationTtlMs]),
        (raw) => {
          const [okFlag, committed, reserved] = raw as [number, string, string];
          return { ok: okFlag === 1, committed: BigInt(committed), reserved: BigInt(reserved) };
        },
        (local) => local.reserve(logical, id, amount, limit, ttlMs, reservationTtlMs),
      );
    },

    async settle(logical, id, actual, ttlMs, release) {
      checkKey(logical);
      checkId(id);
      checkNonNegativeBigint("actual", actual);
      checkPositiveMs("ttlMs", ttlMs);
      if (release !== undefined) checkNonNegativeBigint("release", release);
      const args = [id, actual.toString(), ttlMs];
      if (release !== undefined) args.push(release.toString());
      return run(
        () => callOp("settle", [key(logical, "r")], args),
        ok,
        (local) => local.settle(logical, id, actual, ttlMs, release),
      );
    },

    async readReserve(logical) {
      checkKey(logical);
      return run(
        () => callOp("readReserve", [key(logical, "r")], []),
        (raw) => {
          const [committed, reserved] = raw as [string, string];
          return { committed: BigInt(committed), reserved: BigInt(reserved) };
        },
        (local) => local.readReserve(logical),
      );
    },

    async getJson<T>(logical: string): Promise<T | undefined> {
      checkKey(logical);
      return run(
        () => {
          const k = key(logical, "j");
          const cached = reads.lookup(k);
          if (cached !== undefined) return Promise.resolve(cached);
          const ticket = reads.begin();
          const text = plainCommand(() => client.get(k));
          if (ticket === undefined) return text;
          return Promise.all([text, client.pttl(k)]).then(([t, pttl]) => {
            reads.complete(ticket, k, t, pttl);
            return t;
          });
        },
        // Parsed on every call, so callers never share (and mutate) one cached object.
        (raw) => (raw === null ? undefined : (JSON.parse(raw as string) as T)),
        (local) => local.getJson<T>(logical),
      );
    },

    async setJson<T>(logical: string, value: T, ttlMs: number) {
      checkKey(logical);
      checkPositiveMs("ttlMs", ttlMs);
      const text = jsonText("value", value);
      return run(
        () => {
          const k = key(logical, "j");
          reads.forget(k);
          return plainCommand(() => client.set(k, text, "PX", Math.ceil(ttlMs)));
        },
        ok,
        (local) => local.setJson(logical, value, ttlMs),
      );
    },

    async casJson<T>(logical: string, expected: T | undefined, next: T, ttlMs: number) {
      checkKey(logical);
      checkPositiveMs("ttlMs", ttlMs);
      const nextText = jsonText("next", next);
      const expectedText = expected === undefined ? "" : jsonText("expected", expected);
      return run(
        () => {
          const k = key(logical, "j");
          reads.forget(k);
          return callOp("casJson", [k], [expected === undefined ? "0" : "1", expectedText, nextText, ttlMs]);
        },
        (raw) => raw === 1,
        (local) => local.casJson(logical, expected, next, ttlMs),
      );
    },

    async recordLatency(logical, latencyMs, ttftMs, halfLifeMs) {
      checkKey(logical);
      checkNonNegative("latencyMs", latencyMs);
      if (ttftMs !== undefined) checkNonNegative("ttftMs", ttftMs);
      checkPositiveMs("halfLifeMs", halfLifeMs);
      return run(
        () =>
          callOp(
            "recordLatency",
            [key(logical, "l")],
            [latencyMs, ttftMs ?? "", halfLifeMs, halfLifeMs * LATENCY_TTL_HALF_LIVES],
          ),
        ok,
        (local) => local.recordLatency(logical, latencyMs, ttftMs, halfLifeMs),
      );
    },

    async readLatency(logical): Promise<LatencyStats | undefined> {
      checkKey(logical);
      return run(
        () => callOp("readLatency", [key(logical, "l")], []),
        (raw) => {
          if (raw === null) return undefined;
          const [samples, ewmaMs, ewmaTtftMs] = raw as [string, string, string];
          return { samples: Number(samples), ewmaMs: Number(ewmaMs), ewmaTtftMs: Number(ewmaTtftMs) };
        },
        (local) => local.readLatency(logical),
      );
    },

    async close() {
      if (closed) return;
      closed = true;
      // Operations issued before close() still go out, ahead of QUIT.
      flushOps();
      reads.close();
      if (probeTimer !== undefined) clearInterval(probeTimer);
      const local = fallback;
      fallback = undefined;
      await local?.close();
      if (client.status === "ready") {
        // QUIT lets replies in flight arrive; disconnect if Redis does not answer in time.
        const quit = client.quit().catch(() => undefined);
        const timer = setTimeout(() => client.disconnect(), commandTimeoutMs * 5);
        await quit;
        clearTimeout(timer);
      }
      client.disconnect();
    },
  };
}
