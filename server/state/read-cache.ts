import { Redis, ReplyError } from "ioredis";
import type { Logger } from "pino";

/**
 * Server-assisted caching of the Redis store's JSON reads (Redis client
 * tracking, RESP2 with redirect). Every request reads its candidates'
 * health documents — learned rate limits, provider availability marks,
 * breaker states — and they change rarely, so each replica keeps the
 * last value it read and Redis tells it when that value changes.
 *
 * How: a second connection subscribes to `__redis__:invalidate`; the main
 * connection runs `CLIENT TRACKING ON REDIRECT <its id> OPTIN`, and a
 * read to be cached is sent as `CLIENT CACHING yes`, `GET`, `PTTL` in
 * one write, so Redis remembers that this replica holds that key (and
 * only that one) and sends its name on the subscription when anyone
 * writes it, deletes it or it expires. A cached value also lapses with the
 * key's own TTL and after MAX_AGE_MS at the latest.
 *
 * Never stale for longer than an invalidation takes to arrive:
 * - a read whose reply arrives after any invalidation, or after tracking
 *   was lost, since it was sent is used but not cached (the invalidation
 *   may have been for it and overtaken its reply);
 * - when either connection closes, the cache is emptied and stays off
 *   until both are back and tracking is on again;
 * - this replica's own writes drop the key before they are sent, so the
 *   next read goes to Redis and sees them.
 * Where tracking is unavailable (Redis < 6, ACLs), reads simply go to
 * Redis every time, as without the cache.
 */

/** MAX_AGE_MS bounds how long a value is served from the cache without asking Redis again. */
export const MAX_AGE_MS = 10_000;

/** MAX_ENTRIES bounds the cache (keys are per deployment and provider, so it stays far below). */
const MAX_ENTRIES = 10_000;

const CHANNEL = "__redis__:invalidate";

/** RETRY_MS is how soon turning tracking on is tried again after a timeout. */
const RETRY_MS = 1000;

/** ReadTicket is a read sent with tracking on; hand it back with the reply. */
export interface ReadTicket {
  readonly seq: number;
}

/** ReadCacheOptions configure createReadCache. */
export interface ReadCacheOptions {
  /** main is the store's connection; tracking is turned on for it. */
  main: Redis;
  /** url is where the invalidation connection connects (the main connection's URL). */
  url: string;
  connectTimeoutMs: number;
  maxReconnectDelayMs: number;
  logger: Logger;
  /** where names the Redis server in log lines (no credentials). */
  where: string;
}

/** ReadCache holds the tracked values. */
export interface ReadCache {
  /** lookup returns the cached JSON text (null: the key is absent), or undefined when not cached. */
  lookup(key: string): string | null | undefined;
  /** begin sends `CLIENT CACHING yes` for the read the caller sends next, or returns undefined when tracking is off. */
  begin(): ReadTicket | undefined;
  /** complete caches a tracked read's reply (text null: absent; pttlMs as PTTL answers) unless it may be stale. */
  complete(ticket: ReadTicket, key: string, text: string | null, pttlMs: number): void;
  /** forget drops a key before this replica writes it. */
  forget(key: string): void;
  /** clear drops everything (the store stopped using Redis). */
  clear(): void;
  /** active tells whether reads are being cached. */
  active(): boolean;
  close(): void;
}

interface Entry {
  text: string | null;
  until: number;
}

/** createReadCache starts the invalidation connection and turns tracking on once both connections are ready. */
export function createReadCache(options: ReadCacheOptions): ReadCache {
  const { main, logger, where } = options;
  const entries = new Map<string, Entry>();
  // seq moves on every invalidation and every loss of tracking: a read sent before it moved is not cached.
  let seq = 0;
  let tracking = false;
  let subId: number | undefined;
  let closed = false;
  let reportedUnavailable = false;
  let retry: NodeJS.Timeout | undefined;

  const sub = new Redis(options.url, {
    connectTimeout: options.connectTimeoutMs,
    // SUBSCRIBE is sent again by hand after CLIENT ID, which a subscribed connection cannot send.
    autoResubscribe: false,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 10), options.maxReconnectDelayMs),
    connectionName: "llmgw-invalidations",
    // RESP2: Redis then sends invalidations as Pub/Sub messages, which ioredis emits (as RESP3 pushes of type "invalidate" they would be dropped).
    protocol: 2,
  });
  sub.on("error", (err: Error) => logger.debug({ redis: where, err: err.message }, "state: redis invalidation connection error"));

  function stop(): void {
    tracking = false;
    seq++;
    entries.clear();
  }

  async function enable(): Promise<void> {
    if (closed || subId === undefined || main.status !== "ready") return;
    const id = subId;
    try {
      await main.client("TRACKING", "ON", "REDIRECT", String(id), "OPTIN");
    } catch (err) {
      if (err instanceof ReplyError) {
        // The server refuses it (before Redis 6, or an ACL): reads go to Redis, as without a cache.
        if (!reportedUnavailable) {
          reportedUnavailable = true;
          logger.info({ redis: where, err: (err as Error).message }, "state: redis client tracking unavailable; health reads go to redis every time");
        }
        return;
      }
      // A timeout or a dropped connection: try again shortly (a reconnect also tries).
      logger.debug({ redis: where, err: (err as Error).message }, "state: could not turn on redis client tracking");
      if (!closed && retry === undefined) {
        retry = setTimeout(() => {
          retry = undefined;
          void enable();
        }, RETRY_MS);
        retry.unref();
      }
      return;
    }
    // Either connection may have dropped while the command was in flight.
    if (closed || subId !== id || main.status !== "ready") return;
    seq++;
    tracking = true;
  }

  sub.on("ready", () => {
    void (async () => {
      const id = Number(await sub.client("ID"));
      await sub.subscribe(CHANNEL);
      subId = id;
      await enable();
    })().catch((err: unknown) => logger.debug({ redis: where, err: (err as Error).message }, "state: could not start redis invalidations"));
  });
  sub.on("close", () => {
    subId = undefined;
    stop();
  });
  sub.on("messageBuffer", (channel: Buffer, message: unknown) => {
    if (channel.toString() !== CHANNEL) return;
    seq++;
    // A null message means Redis forgot what it tracked (FLUSHALL, FLUSHDB): drop everything.
    if (!Array.isArray(message)) {
      entries.clear();
      return;
    }
    for (const k of message) entries.delete(String(k));
  });

  const onMainReady = () => void enable();
  const onMainClose = () => stop();
  main.on("ready", onMainReady);
  main.on("close", onMainClose);

  return {
    lookup(key) {
      if (!tracking) return undefined;
      const e = entries.get(key);
      if (e === undefined) return undefined;
      if (e.until <= performance.now()) {
        entries.delete(key);
        return undefined;
      }
      return e.text;
    },

    begin() {
      if (!tracking) return undefined;
      main.client("CACHING", "YES").catch(() => undefined);
      return { seq };
    },

    complete(ticket, key, text, pttlMs) {
      if (!tracking || ticket.seq !== seq) return;
      // Expired between the GET and the PTTL: the value is gone, so it is not kept.
      if (text !== null && pttlMs === -2) return;
      if (entries.size >= MAX_ENTRIES) entries.clear();
      // PTTL: -2 absent, -1 no expiry, else milliseconds left.
      const ttl = pttlMs >= 0 ? Math.min(pttlMs, MAX_AGE_MS) : MAX_AGE_MS;
      entries.set(key, { text, until: performance.now() + ttl });
    },

    forget(key) {
      seq++;
      entries.delete(key);
    },

    clear() {
      seq++;
      entries.clear();
    },

    active: () => tracking,

    close() {
      closed = true;
      if (retry !== undefined) clearTimeout(retry);
      stop();
      main.off("ready", onMainReady);
      main.off("close", onMainClose);
      sub.disconnect();
    },
  };
}
