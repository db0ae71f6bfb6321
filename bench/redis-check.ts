import { readFileSync } from "node:fs";
import { Redis } from "ioredis";

/**
 * Redis helpers for the gateway+Redis run: is Redis there, did the gateway
 * actually write state under its key prefix (so a gateway that ignores
 * `state.backend: redis` is reported as not measured instead of being
 * passed off as a Redis figure), and cleanup of the prefix afterwards.
 */

function client(url: string): Redis {
  return new Redis(url, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 1, retryStrategy: () => null, enableOfflineQueue: false });
}

async function withRedis<T>(url: string, fn: (r: Redis) => Promise<T>): Promise<T> {
  const r = client(url);
  // Connection errors are reported through the awaited calls; the event would otherwise be unhandled.
  r.on("error", () => {});
  try {
    await r.connect();
    return await fn(r);
  } finally {
    r.disconnect();
  }
}

/** redisReachable tells whether a PING succeeds within a second. */
export async function redisReachable(url: string): Promise<boolean> {
  try {
    return (await withRedis(url, (r) => r.ping())) === "PONG";
  } catch {
    return false;
  }
}

async function scanKeys(r: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = "0";
  do {
    const [next, batch] = await r.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== "0");
  return keys;
}

/** countKeysContaining counts keys whose name contains text (hash tags may wrap the prefix). */
export async function countKeysContaining(url: string, text: string): Promise<number> {
  return withRedis(url, async (r) => (await scanKeys(r, `*${text}*`)).length);
}

/** deleteKeysContaining deletes the keys countKeysContaining would count. */
export async function deleteKeysContaining(url: string, text: string): Promise<number> {
  return withRedis(url, async (r) => {
    const keys = await scanKeys(r, `*${text}*`);
    for (let i = 0; i < keys.length; i += 500) await r.del(...keys.slice(i, i + 500));
    return keys.length;
  });
}

/**
 * localRedisPid returns the pid of the Redis server at url when it runs on
 * this machine (INFO's process_id names a redis-server in /proc), so the
 * benchmark can pin it; undefined otherwise (a container, another host).
 */
export async function localRedisPid(url: string): Promise<number | undefined> {
  try {
    const info = await withRedis(url, (r) => r.info("server"));
    const pid = Number(/^process_id:(\d+)/m.exec(info)?.[1]);
    if (!Number.isInteger(pid) || pid <= 0) return undefined;
    return readFileSync(`/proc/${pid}/comm`, "utf8").startsWith("redis") ? pid : undefined;
  } catch {
    return undefined;
  }
}
