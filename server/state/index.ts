import type { Logger } from "pino";
import type { GatewayConfig } from "../config/schema.js";
import { leasesOf } from "./leases.js";
import { createMemoryStore } from "./memory-store.js";
import { createRedisStore } from "./redis-store.js";
import type { StateStore } from "./store.js";

export type { LatencyStats, ReserveResult, StateStore, WindowResult } from "./store.js";
export { createMemoryStore, type MemoryStoreOptions } from "./memory-store.js";
export { createRedisStore, type RedisStoreOptions } from "./redis-store.js";

/** createStateStore builds the store config.state names: memory by default, or Redis. */
export function createStateStore(config: GatewayConfig["state"], logger: Logger): StateStore {
  if (config.backend === "memory") return createMemoryStore();
  return createRedisStore({
    url: config.url,
    keyPrefix: config.key_prefix,
    logger,
    commandTimeoutMs: config.command_timeout_ms,
    leaseMs: config.lease_ms,
  });
}

/**
 * closeStateStore retires a store: its quota leases give back what they
 * hold at once (they admit no one new), and the store closes once `drained`
 * (the requests still using it) has settled.
 */
export async function closeStateStore(store: StateStore, drained: Promise<unknown>): Promise<void> {
  await leasesOf(store).close();
  await drained;
  await store.close();
}

/** sameStateConfig reports whether two state configs would build the same store (a reload keeps it then). */
export function sameStateConfig(a: GatewayConfig["state"], b: GatewayConfig["state"]): boolean {
  if (a.backend === "memory" || b.backend === "memory") return a.backend === b.backend;
  return a.url === b.url && a.key_prefix === b.key_prefix && a.command_timeout_ms === b.command_timeout_ms && a.lease_ms === b.lease_ms;
}

/** describeState is the /readyz view of a store: its backend, or that it is degraded. */
export function describeState(store: StateStore): string {
  if (!store.healthy()) return "degraded: redis unreachable, using local state";
  return store.backend;
}
