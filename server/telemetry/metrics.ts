import { Gauge, Registry, collectDefaultMetrics } from "prom-client";
import { createRequestMetrics, type RequestSample } from "./request-metrics.js";

/**
 * Prometheus metrics, served at GET /metrics on the gateway's port. One
 * Registry per gateway instance (tests run several in one process). Label
 * sets are bounded by configuration — models, providers, keys, statuses —
 * never by request content.
 */

/** RequestObservation is what the core reports once per finished request (model is the resolved model id, or the requested one when none was resolved). */
export type RequestObservation = RequestSample;

/** GatewayMetrics records observations and renders the exposition text. */
export interface GatewayMetrics {
  readonly registry: Registry;
  /** observeRequest records one finished request. */
  observeRequest(o: RequestObservation): void;
  /** render returns the Prometheus text exposition. */
  render(): Promise<string>;
}

/** MetricsOptions configure createMetrics. */
export interface MetricsOptions {
  /** processMetrics adds Node's process metrics (CPU, memory, event loop lag). */
  processMetrics?: boolean;
  /** stateHealthy, when given, is exported as the llm_gateway_state_healthy gauge. */
  stateHealthy?: () => boolean;
}

/** createMetrics builds a registry with the gateway's metrics (and Node's process metrics when asked). */
export function createMetrics(options: MetricsOptions = {}): GatewayMetrics {
  const registry = new Registry();
  if (options.processMetrics === true) collectDefaultMetrics({ register: registry, prefix: "llm_gateway_" });
  const stateHealthy = options.stateHealthy;
  if (stateHealthy !== undefined) {
    new Gauge({
      name: "llm_gateway_state_healthy",
      help: "1 while the shared state backend answers; 0 while a Redis store serves from its local fallback.",
      registers: [registry],
      collect() {
        this.set(stateHealthy() ? 1 : 0);
      },
    });
  }
  // The per-request series are aggregated by our own code (request-metrics.ts): prom-client's per-observation label hashing was measurable.
  const requests = createRequestMetrics();

  return {
    registry,
    observeRequest: (o) => requests.observe(o),
    render: async () => `${await registry.metrics()}\n${requests.render()}`,
  };
}
