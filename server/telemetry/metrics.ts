import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";
import type { LeaseStats } from "../state/leases.js";
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
  /** leaseStats, when given, is exported as llm_gateway_state_admissions_total (the state store in force; a new store starts from 0). */
  leaseStats?: () => LeaseStats;
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
  const leaseStats = options.leaseStats;
  if (leaseStats !== undefined) {
    new Counter({
      name: "llm_gateway_state_admissions_total",
      help: "Rate-limit (kind=windows, per window group) and budget (kind=budget, per budget) admissions, by where they were decided: from this replica's quota lease or by asking the state store.",
      labelNames: ["kind", "from"],
      registers: [registry],
      collect() {
        // Counted where they happen (leases.ts), copied here at scrape time.
        const s = leaseStats();
        this.reset();
        this.inc({ kind: "windows", from: "lease" }, s.windowsFromLease);
        this.inc({ kind: "windows", from: "store" }, s.windowsFromStore);
        this.inc({ kind: "budget", from: "lease" }, s.budgetsFromLease);
        this.inc({ kind: "budget", from: "store" }, s.budgetsFromStore);
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
