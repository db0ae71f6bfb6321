import cluster, { type Worker } from "node:cluster";
import pino, { type Logger } from "pino";
import type { GatewayConfig } from "../config/schema.js";
import { createLogger, flushLogger, isoTime } from "../telemetry/logger.js";
import { createMetricsGatherer } from "./cluster-metrics.js";
import { createLineRelay, type LineRelay } from "./log-relay.js";
import { MAX_RESTARTS_PER_MINUTE, planRestart } from "./restart-policy.js";
import { isWorkerReadyMessage, perWorkerStateWarning, WORKER_SLOT_ENV } from "./workers.js";

/**
 * The primary process of `--workers N`: it forks N workers that each run
 * the whole gateway (main.ts, unchanged) on the same port, and serves no
 * request itself. node:cluster's primary accepts connections and hands them
 * to the workers round-robin; a keep-alive connection stays with the worker
 * it was given. Workers share limits, budgets and breakers only through the
 * state store, so memory state with N > 1 is warned about loudly.
 *
 * The primary owns the process-level duties: it gathers every worker's
 * metrics when one of them is scraped (cluster-metrics.ts), forwards
 * SIGHUP to every worker (each re-reads and validates the file, as the
 * single process does; each also watches the file itself), on
 * SIGTERM/SIGINT tells every worker
 * to drain and exits when all have, kills them on a second signal, and
 * restarts a worker that dies outside shutdown (restart-policy.ts: a
 * growing delay, a cap per minute). A worker that dies before the pool has
 * ever been fully up is a startup failure (a port in use, say): the primary
 * stops the others and exits 1, as the single process would.
 */

/** PrimaryOptions configure runPrimary. */
export interface PrimaryOptions {
  /** workers is how many worker processes to keep running (2 or more). */
  workers: number;
  /** config is the validated configuration at start; the primary reads only the host, the log level, the drain timeout and the state backend. */
  config: GatewayConfig;
  /**
   * logFile is GATEWAY_LOG_FILE. When set, every process appends to it
   * directly; when unset, each worker's stdout is relayed through the
   * primary whole lines at a time (see log-relay.ts).
   */
  logFile?: string;
}

/** LOG_CLOSE_MS bounds the wait for buffered log lines at exit (stdout may be blocked). */
const LOG_CLOSE_MS = 2_000;

interface Slot {
  /** id is the slot number 1..N, the `worker` field of that worker's log lines. */
  readonly id: number;
  /** worker is the running process in this slot, if any. */
  worker?: Worker;
  /** ready is set once the worker has reported that it serves. */
  ready: boolean;
  /** reloadPending remembers a SIGHUP that arrived while the worker was starting. */
  reloadPending: boolean;
  /** restarts are the times of this slot's restarts within the last minute. */
  restarts: number[];
  /** timer is a scheduled restart. */
  timer?: NodeJS.Timeout;
}

interface PrimaryLogging {
  logger: Logger;
  relay?: LineRelay;
  /** close writes out buffered lines. */
  close(): Promise<void>;
}

function primaryLogging(level: string, logFile: string | undefined): PrimaryLogging {
  if (logFile !== undefined) {
    const root = createLogger({ level, destination: logFile });
    return { logger: root.child({ role: "primary" }), close: async () => flushLogger(root) };
  }
  // One writer on stdout for the primary's own lines and the relayed ones, so they never splice.
  const out = pino.destination({ dest: 1, sync: false });
  const root = pino({ level, base: { service: "llm-gateway" }, timestamp: isoTime }, out);
  return {
    logger: root.child({ role: "primary" }),
    relay: createLineRelay(out),
    close: () =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, LOG_CLOSE_MS);
        out.once("close", () => {
          clearTimeout(timer);
          resolve();
        });
        out.end();
      }),
  };
}

function cleanShutdownExit(code: number | null, signal: string | null): boolean {
  // A worker still starting has no handler yet, so the SIGTERM it was sent (or a terminal's SIGINT) ends it: nothing was in flight.
  return code === 0 || signal === "SIGTERM" || signal === "SIGINT";
}

/** runPrimary starts the workers and supervises them until shutdown; it ends the process itself. */
export function runPrimary(options: PrimaryOptions): void {
  const { workers: count, config } = options;
  const logging = primaryLogging(config.server.log_level, options.logFile);
  const { logger } = logging;

  cluster.schedulingPolicy = cluster.SCHED_RR;
  cluster.setupPrimary({ stdio: ["inherit", logging.relay === undefined ? "inherit" : "pipe", "inherit", "ipc"] });

  const warning = perWorkerStateWarning(config.state, count);
  if (warning !== undefined) logger.warn(warning);

  const slots: Slot[] = Array.from({ length: count }, (_, i) => ({ id: i + 1, ready: false, reloadPending: false, restarts: [] }));
  /** running are the worker processes not yet fully closed (exited, with their output read). */
  const running = new Set<Promise<void>>();
  /** serving is set once every slot has reported ready; before that a worker's death is a startup failure. */
  let serving = false;
  let stopping = false;
  const uncleanExits: Array<{ worker: number; code: number | null; signal: string | null }> = [];

  const fork = (slot: Slot): void => {
    const worker = cluster.fork({ [WORKER_SLOT_ENV]: String(slot.id) });
    slot.worker = worker;
    slot.ready = false;
    if (logging.relay !== undefined && worker.process.stdout !== null) logging.relay.add(worker.process.stdout);
    const closed = new Promise<void>((resolve) => worker.process.once("close", () => resolve()));
    running.add(closed);
    void closed.then(() => running.delete(closed));
    worker.on("message", (message: unknown) => {
      if (isWorkerReadyMessage(message)) onReady(slot, worker, message.port);
      else metrics.onMessage(worker, message);
    });
    worker.once("exit", (code: number | null, signal: string | null) => onExit(slot, worker, code, signal));
  };

  const onReady = (slot: Slot, worker: Worker, port: number): void => {
    if (slot.worker !== worker) return;
    slot.ready = true;
    logger.info({ worker: slot.id, pid: worker.process.pid, port }, "worker ready");
    if (slot.reloadPending) {
      slot.reloadPending = false;
      worker.process.kill("SIGHUP");
    }
    if (!serving && slots.every((s) => s.ready)) {
      serving = true;
      logger.info({ host: config.server.host, port, workers: count }, `llm-gateway listening with ${count} workers (one port, round-robin)`);
    }
  };

  const onExit = (slot: Slot, worker: Worker, code: number | null, signal: string | null): void => {
    if (slot.worker !== worker) return;
    slot.worker = undefined;
    slot.ready = false;
    if (stopping) {
      if (!cleanShutdownExit(code, signal)) uncleanExits.push({ worker: slot.id, code, signal });
      return;
    }
    if (!serving) {
      void fail(`worker ${slot.id} exited (${signal ?? `code ${code}`}) before the gateway was up; its error is above`);
      return;
    }
    const plan = planRestart(slot.restarts, Date.now());
    slot.restarts = plan.recent;
    const fields = { worker: slot.id, pid: worker.process.pid, code, signal, restartsLastMinute: plan.recent.length, restartInMs: plan.delayMs };
    if (plan.capped) {
      logger.error(fields, `worker exited unexpectedly and was restarted ${MAX_RESTARTS_PER_MINUTE} times in the last minute; holding the next restart`);
    } else {
      logger.warn(fields, "worker exited unexpectedly; restarting it");
    }
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      if (stopping) return;
      slot.restarts.push(Date.now());
      fork(slot);
    }, plan.delayMs);
  };

  const live = (): Worker[] => slots.flatMap((s) => (s.worker === undefined ? [] : [s.worker]));
  // /metrics on any worker shows them all (cluster-metrics.ts); only serving workers are asked.
  const metrics = createMetricsGatherer(() => slots.flatMap((s) => (s.worker !== undefined && s.ready ? [{ slot: s.id, worker: s.worker }] : [])), count);

  const stopAll = async (signal: NodeJS.Signals): Promise<void> => {
    stopping = true;
    for (const slot of slots) {
      if (slot.timer !== undefined) clearTimeout(slot.timer);
      slot.timer = undefined;
    }
    for (const w of live()) w.process.kill(signal);
    await Promise.all(running);
  };

  const exit = async (code: number): Promise<never> => {
    await logging.close();
    process.exit(code);
  };

  const fail = async (reason: string): Promise<void> => {
    logger.error({ reason }, "cannot start");
    await stopAll("SIGTERM");
    process.stderr.write(`llm-gateway: cannot start: ${reason}\n`);
    await exit(1);
  };

  let signalled = false;
  const shutdown = async (signal: string): Promise<void> => {
    if (signalled) {
      logger.warn({ signal }, "second signal: killing every worker without waiting for in-flight requests");
      for (const w of live()) w.process.kill("SIGKILL");
      await exit(1);
    }
    signalled = true;
    logger.info({ signal, workers: live().length, drainTimeoutMs: config.server.drain_timeout_ms }, "shutting down: every worker drains its in-flight requests");
    await stopAll("SIGTERM");
    if (uncleanExits.length > 0) {
      logger.error({ exits: uncleanExits }, "stopped; some workers did not exit cleanly");
      await exit(1);
    }
    logger.info("stopped");
    await exit(0);
  };

  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
  process.on("SIGHUP", () => {
    if (stopping) return;
    for (const slot of slots) {
      if (slot.worker === undefined) continue; // a pending restart reads the file afresh
      if (slot.ready) slot.worker.process.kill("SIGHUP");
      else slot.reloadPending = true;
    }
    logger.info({ workers: live().length }, "SIGHUP: every worker reloads its configuration");
  });

  for (const slot of slots) fork(slot);
}
