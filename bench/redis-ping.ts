import { Redis } from "ioredis";
import { pathToFileURL } from "node:url";

/**
 * A Redis round-trip probe: times sequential PINGs over one ioredis
 * connection (the gateway's client) and prints
 * `{"p50Us":…,"p99Us":…}`. The bench runs it pinned to the servers' CPU,
 * so it crosses the same path as the gateway's state calls: the transport
 * share of "Redis state: p50 over memory state".
 *
 * Run as a process: `node bench/redis-ping.js <redis-url> <count>`.
 */

/** pingRoundTrips times `count` PINGs after a warm-up and returns their p50 and p99 in µs. */
export async function pingRoundTrips(url: string, count: number): Promise<{ p50Us: number; p99Us: number }> {
  // No reconnecting: a Redis that cannot be reached fails the probe (its first command rejects).
  const client = new Redis(url, { maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on("error", () => undefined);
  try {
    for (let i = 0; i < 200; i++) await client.ping();
    const us: number[] = [];
    for (let i = 0; i < count; i++) {
      const t = process.hrtime.bigint();
      await client.ping();
      us.push(Number(process.hrtime.bigint() - t) / 1000);
    }
    us.sort((a, b) => a - b);
    return { p50Us: us[Math.floor(count / 2)]!, p99Us: us[Math.min(count - 1, Math.floor(count * 0.99))]! };
  } finally {
    client.disconnect();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const [url, count] = process.argv.slice(2);
  if (url === undefined) throw new Error("usage: redis-ping <redis-url> [count]");
  process.stdout.write(`${JSON.stringify(await pingRoundTrips(url, Number(count ?? 2000)))}\n`);
}
