import { parseArgs } from "node:util";
import { startGatewayServer } from "./app.js";
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
 */

const { values } = parseArgs({
  options: {
    config: { type: "string" },
    host: { type: "string" },
    port: { type: "string" },
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

let config: GatewayConfig;
try {
  config = load();
} catch (err) {
  process.stderr.write(`llm-gateway: cannot start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
}

const logger = createLogger({ level: config.server.log_level, destination: process.env.GATEWAY_LOG_FILE });
const server = await startGatewayServer({ config, logger, processMetrics: true });

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
  config = next;
  logger.info({ reason, providers: next.providers.length, models: next.models.length, routes: next.routes.length }, "config reloaded");
}

const watcher = watchConfigFile(configPath, () => reload("file changed"));
process.on("SIGHUP", () => reload("SIGHUP"));

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) {
    logger.warn({ signal }, "second signal: exiting without waiting for in-flight requests");
    flushLogger(logger);
    process.exit(1);
  }
  stopping = true;
  logger.info({ signal, drainTimeoutMs: config.server.drain_timeout_ms }, "shutting down: draining in-flight requests");
  watcher.close();
  await server.close();
  logger.info("stopped");
  flushLogger(logger);
  process.exit(0);
}
process.on("SIGTERM", () => void shutdown("SIGTERM"));
process.on("SIGINT", () => void shutdown("SIGINT"));
