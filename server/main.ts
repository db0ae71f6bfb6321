import cluster from "node:cluster";
import { parseArgs } from "node:util";
import type { Logger } from "pino";
import { startGatewayServer } from "./app.js";
import { runPrimary } from "./cluster/primary.js";
import { currentWorkerSlot, parseWorkerCount, perWorkerStateWarning, reportWorkerReady } from "./cluster/workers.js";
import { ConfigError, loadConfigFile } from "./config/load.js";
import type { GatewayConfig } from "./config/schema.js";
import { watchConfigFile } from "./config/watch.js";
import { createLogger, flushLogger } from "./telemetry/logger.js";

/**
 * The gateway process: load the configuration, serve, reload on SIGHUP or
 * when the file changes (an invalid file is rejected and the old
 * configuration kept), and drain in-flight requests on SIGTERM/SIGINT.
 *
 * Flags: --config <file> (or GATEWAY_CONFIG, default ./gateway.yaml),
 * --host/--port (or HOST/PORT) override server.host/port.
 * GATEWAY_LOG_FILE sends logs to a file instead of stdout.
 * --workers N (or GATEWAY_WORKERS, default 1) runs N worker processes on the
 * same port: this file is then the primary (cluster/primary.ts supervises)
 * and, in each worker, the gateway exactly as below, its log lines tagged
 * `worker: <slot>`. With 1 it is the single process, as it always was.
 */

const { values } = parseArgs({
  options: {
    config: { type: "string" },
    host: { type: "string" },
    port: { type: "string" },
    workers: { type: "string" },
  },
  strict: true,
});

const configPath = values.config ?? process.env.GATEWAY_CONFIG ?? "./gateway.yaml";

function load(): GatewayConfig {
  const config = loadConfigFile(configPath, process.env);
  const host = values.host ?? process.env.HOST;
  const port = values.port ?? process.env.PORT;
  if (host !== undefined && host !== "") config.server.host = host;
  if (port !== undefined && port !== "") {
    const n = Number(port);
    if (!Number.isInteger(n) || n < 0 || n > 65535) throw new ConfigError(configPath, [`port: expected 0-65535, got ${JSON.stringify(port)}`]);
    config.server.port = n;
  }
  return config;
}

/** cannotStart ends the process with a one-line reason, before it serves anything. */
function cannotStart(err: unknown): never {
  process.stderr.write(`llm-gateway: cannot start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}

let config: GatewayConfig;
let workers: number;
try {
  workers = parseWorkerCount(values.workers ?? process.env.GATEWAY_WORKERS);
  config = load();
} catch (err) {
  cannotStart(err);
}

if (workers > 1 && cluster.isPrimary) {
  try {
    runPrimary({ workers, config, logFile: process.env.GATEWAY_LOG_FILE });
  } catch (err) {
    cannotStart(err);
  }
} else await serve();

/** openLogger creates the process logger, or ends the process with a clear message (an unwritable GATEWAY_LOG_FILE). */
function openLogger(): Logger {
  try {
    return createLogger({ level: config.server.log_level, destination: process.env.GATEWAY_LOG_FILE });
  } catch (err) {
    cannotStart(err);
  }
}

async function serve(): Promise<void> {
  const slot = currentWorkerSlot();
  const rootLogger = openLogger();
  const logger = slot === undefined ? rootLogger : rootLogger.child({ worker: slot });
  const server = await startGatewayServer({ config, logger, processMetrics: true, workerSlot: slot });

  function reload(reason: string): void {
    let next: GatewayConfig;
    try {
      next = load();
    } catch (err) {
      const issues = err instanceof ConfigError ? err.issues : [String(err)];
      logger.error({ reason, issues }, "config reload rejected; the current configuration stays in force");
      return;
    }
    if (next.server.host !== config.server.host || next.server.port !== config.server.port) {
      logger.warn("server.host/port changes take effect on restart");
    }
    server.apply(next);
    // The primary warned at start; a reload that moves the workers onto memory state must say so too.
    const perWorker = slot !== undefined && config.state.backend !== "memory" ? perWorkerStateWarning(next.state, workers) : undefined;
    if (perWorker !== undefined) logger.warn(perWorker);
    config = next;
    logger.info({ reason, providers: next.providers.length, models: next.models.length, routes: next.routes.length }, "config reloaded");
  }

  const watcher = watchConfigFile(configPath, () => reload("file changed"));
  process.on("SIGHUP", () => reload("SIGHUP"));

  let stopping = false;
  async function shutdown(signal: string): Promise<void> {
    if (stopping) {
      // In a worker the primary owns the second signal (it kills every worker); a repeat here is
      // usually the primary relaying the Ctrl-C that the terminal also sent to this worker.
      if (slot !== undefined) return;
      logger.warn({ signal }, "second signal: exiting without waiting for in-flight requests");
      flushLogger(rootLogger);
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal, drainTimeoutMs: config.server.drain_timeout_ms }, "shutting down: draining in-flight requests");
    watcher.close();
    await server.close();
    logger.info("stopped");
    flushLogger(rootLogger);
    process.exit(0);
  }
  process.on("SIGTERM", () => void shutdown("SIGTERM"));
  process.on("SIGINT", () => void shutdown("SIGINT"));
  // Only now, with the handlers in place, may the primary forward signals to this worker.
  if (slot !== undefined) reportWorkerReady(server.port);
}
