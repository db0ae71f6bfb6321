import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Logger } from "pino";
import type { GatewayConfig } from "./config/schema.js";
import { createGateway, type Gateway } from "./core/gateway.js";
import { buildRuntime } from "./core/runtime.js";
import { sendJson, type HttpResponse } from "./http/io.js";
import { startIdleGc } from "./http/idle-gc.js";
import { listen, type Listener, type RequestHandler } from "./http/listener.js";
import { joinClusterMetrics } from "./cluster/cluster-metrics.js";
import { createOpenAIHandler } from "./openai/handler.js";
import { closeStateStore, createStateStore, describeState, sameStateConfig } from "./state/index.js";
import { leasesOf } from "./state/leases.js";
import type { StateStore } from "./state/store.js";
import { registerGatewayService } from "./rpc/service.js";
import { createDirectUnaryHandler } from "./rpc/direct-unary.js";
import { useBufferUtf8Encoding } from "./rpc/text-encoding.js";
import { createMetrics } from "./telemetry/metrics.js";

/**
 * The assembled gateway: the core, both edges and the health endpoints on
 * one listener. main.ts runs it as a process; tests start it in-process on
 * an ephemeral port.
 */

/** GatewayServerOptions configure a gateway server. */
export interface GatewayServerOptions {
  /** config is the validated configuration to start with. */
  config: GatewayConfig;
  logger: Logger;
  /** processMetrics adds Node's process metrics (CPU, memory, event loop) to /metrics; main.ts turns it on. */
  processMetrics?: boolean;
  /** host and port override config.server (port 0 picks a free port). */
  host?: string;
  port?: number;
  /**
   * workerSlot is set in a `--workers N` worker: /metrics then shows every
   * worker's metrics, gathered through the primary (cluster/cluster-metrics.ts).
   */
  workerSlot?: number;
}

/** GatewayServer is a running gateway. */
export interface GatewayServer {
  /** url is the base URL, such as http://127.0.0.1:8080. */
  readonly url: string;
  readonly port: number;
  readonly gateway: Gateway;
  /** stateStore is the shared state store in force (replaced only when a reload changes config.state). */
  readonly stateStore: StateStore;
  /** apply swaps in a new validated configuration without dropping in-flight requests. */
  apply(config: GatewayConfig): void;
  /** close drains in-flight requests (up to server.drain_timeout_ms) and stops. */
  close(): Promise<void>;
}

const notFoundBody = JSON.stringify({ error: { message: "no such endpoint", type: "invalid_request_error", param: null, code: "not_found" } });

/** startGatewayServer builds the runtime from config and starts listening. */
export async function startGatewayServer(options: GatewayServerOptions): Promise<GatewayServer> {
  const { logger } = options;
  useBufferUtf8Encoding();
  let stateConfig = options.config.state;
  let stateStore = createStateStore(stateConfig, logger);
  const initial = buildRuntime(options.config, stateStore);
  for (const w of initial.warnings) logger.warn(w);
  const metrics = createMetrics({
    processMetrics: options.processMetrics ?? false,
    stateHealthy: () => stateStore.healthy(),
    leaseStats: () => leasesOf(stateStore).stats(),
  });
  const gateway = createGateway(initial, logger, metrics);
  const clusterMetrics = options.workerSlot === undefined ? undefined : joinClusterMetrics(options.workerSlot, () => metrics.render());
  const scrape = clusterMetrics?.scrape ?? (() => metrics.render());
  let draining = false;

  const openai = createOpenAIHandler(gateway, { maxBodyBytes: options.config.server.max_body_bytes, logger });
  // A plain unary Complete (Connect or gRPC, binary) skips connect-node's generic machinery (rpc/direct-unary.ts); everything else goes through it.
  const directUnary = createDirectUnaryHandler(gateway, { readMaxBytes: options.config.server.max_body_bytes, logger });
  const connectHandler = connectNodeAdapter({
    routes: (router) => registerGatewayService(router, gateway, logger),
    readMaxBytes: options.config.server.max_body_bytes,
    fallback(req, nodeRes) {
      // connect-node's response type omits write() only to unify overloads; both variants have it.
      const res = nodeRes as HttpResponse;
      const path = req.url ?? "";
      if (path === "/healthz") return sendJson(res, 200, '{"status":"ok"}');
      if (path === "/metrics") {
        scrape().then(
          (text) => {
            (res as import("node:http").ServerResponse).writeHead(200, { "content-type": metrics.registry.contentType });
            res.end(text);
          },
          (err: unknown) => {
            logger.error({ err }, "rendering /metrics failed");
            sendJson(res, 500, JSON.stringify({ error: { message: "metrics are unavailable", type: "server_error", param: null, code: "internal" } }));
          },
        );
        return;
      }
      if (path === "/readyz") {
        // Degraded state still answers 200: draining every replica at once when Redis blips would be worse.
        if (draining) return sendJson(res, 503, '{"status":"draining"}');
        return sendJson(res, 200, JSON.stringify({ status: "ready", state: describeState(stateStore) }));
      }
      sendJson(res, 404, notFoundBody);
    },
  });

  const host = options.host ?? options.config.server.host;
  // The REST shim's paths first: connect-node would only look each one up among the RPC routes and hand it back.
  const handler: RequestHandler = (req, res) => {
    if (!directUnary(req, res) && !openai(req, res as HttpResponse)) connectHandler(req, res);
  };
  const listener: Listener = await listen({ host, port: options.port ?? options.config.server.port, handler });
  const idleGcMs = options.config.server.idle_gc_ms;
  const idleGc =
    idleGcMs > 0
      ? startIdleGc({
          idleMs: idleGcMs,
          started: listener.started,
          inFlight: listener.inFlight,
          collected: (c) => logger.debug({ ...c, ms: Math.round(c.ms) }, "collected garbage after a quiet period"),
        })
      : undefined;
  const urlHost = host.includes(":") ? `[${host}]` : host;
  logger.info({ host, port: listener.port }, "llm-gateway listening (gRPC, Connect, gRPC-Web, OpenAI REST on one port)");

  return {
    url: `http://${urlHost}:${listener.port}`,
    port: listener.port,
    gateway,
    get stateStore() {
      return stateStore;
    },
    apply(config) {
      const previousStore = stateStore;
      const storeChanged = !sameStateConfig(stateConfig, config.state);
      const nextStore = storeChanged ? createStateStore(config.state, logger) : stateStore;
      let next;
      try {
        next = buildRuntime(config, nextStore);
      } catch (err) {
        if (storeChanged) void nextStore.close();
        throw err;
      }
      for (const w of next.warnings) logger.warn(w);
      const old = gateway.runtime();
      gateway.swap(next);
      if (storeChanged) {
        stateConfig = config.state;
        stateStore = nextStore;
        logger.info({ backend: nextStore.backend }, "state store replaced by config reload");
        // Requests still on the old runtime keep using the old store until they finish;
        // its leases admit no one new, so what they hold goes back now.
        void closeStateStore(previousStore, old.retire());
      }
    },
    async close() {
      draining = true;
      idleGc?.stop();
      clusterMetrics?.stop();
      await listener.close(options.config.server.drain_timeout_ms);
      await closeStateStore(stateStore, gateway.runtime().retire());
    },
  };
}
