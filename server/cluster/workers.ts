import cluster from "node:cluster";
import type { GatewayConfig } from "../config/schema.js";

/**
 * What the primary and its workers agree on in `--workers N` mode: how the
 * count is read, how a worker learns its slot (1..N, stable across
 * restarts, so `worker: 2` in the logs always means the same seat), and the
 * message a worker sends once it is serving and its signal handlers are in
 * place (the primary forwards SIGHUP only then, because a SIGHUP that
 * arrives before the handler exists would kill the worker).
 */

/** WORKER_SLOT_ENV is the environment variable the primary sets on each worker to its slot number. */
export const WORKER_SLOT_ENV = "LLM_GATEWAY_WORKER_SLOT";

/** WorkerReadyMessage is what a worker sends the primary once it serves. */
export interface WorkerReadyMessage {
  type: "llm-gateway:worker-ready";
  /** port is the bound port (the real one when started with port 0). */
  port: number;
}

/**
 * parseWorkerCount reads --workers / GATEWAY_WORKERS: unset or empty means
 * 1 (the single process); anything else must be a whole number ≥ 1.
 */
export function parseWorkerCount(raw: string | undefined): number {
  if (raw === undefined || raw.trim() === "") return 1;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--workers: expected a whole number ≥ 1, got ${JSON.stringify(raw)}`);
  return n;
}

/** currentWorkerSlot is this process's slot when it is a cluster worker of the gateway, else undefined. */
export function currentWorkerSlot(): number | undefined {
  if (!cluster.isWorker) return undefined;
  const slot = Number(process.env[WORKER_SLOT_ENV]);
  // A worker forked by something other than our primary still gets a usable id.
  return Number.isInteger(slot) && slot > 0 ? slot : cluster.worker?.id;
}

/** reportWorkerReady tells the primary that this worker serves on port. */
export function reportWorkerReady(port: number): void {
  const message: WorkerReadyMessage = { type: "llm-gateway:worker-ready", port };
  process.send?.(message);
}

/** isWorkerReadyMessage recognizes a WorkerReadyMessage. */
export function isWorkerReadyMessage(message: unknown): message is WorkerReadyMessage {
  return typeof message === "object" && message !== null && (message as { type?: unknown }).type === "llm-gateway:worker-ready";
}

/**
 * perWorkerStateWarning is the warning for memory state with several
 * workers: each worker then keeps its own rate-limit windows, budget spend
 * and breaker state, so every limit is enforced per worker. Undefined when
 * the combination is fine.
 */
export function perWorkerStateWarning(state: GatewayConfig["state"], workers: number): string | undefined {
  if (workers < 2 || state.backend !== "memory") return undefined;
  return (
    `state.backend is memory with ${workers} workers: every worker keeps its own rate-limit windows, budget spend and circuit breakers, ` +
    `so limits and budgets are enforced per worker (up to ${workers}× the configured values). Use state.backend: redis to share them.`
  );
}
