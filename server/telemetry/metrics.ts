import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/**
 * Prometheus metrics, served at GET /metrics on the gateway's port. One
 * Registry per gateway instance (tests run several in one process). Label
 * sets are bounded by configuration — models, providers, keys, statuses —
 * never by request content.
 */

/** RequestObservation is what the core reports once per finished request. */
export interface RequestObservation {
  edge: "rpc" | "rest";
  keyId: string;
  /** model is the resolved model id, or the requested one when none was resolved. */
  model: string;
  provider: string;
  status: string;
  stream: boolean;
  durationMs: number;
  ttftMs?: number;
  inputTokens?: number;
  outputTokens?: number;
  cachedInputTokens?: number;
  reasoningTokens?: number;
  costNanoUsd?: bigint;
  attempts: Array<{ provider: string; model: string; outcome: string; errorClass?: string }>;
}

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

const latencyBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

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
  const requests = new Counter({
    name: "llm_gateway_requests_total",
    help: "Finished requests by edge, resolved model, provider and status.",
    labelNames: ["edge", "model", "provider", "status", "stream"] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: "llm_gateway_request_duration_seconds",
    help: "Time from request arrival to the last byte of the answer.",
    labelNames: ["edge", "model", "provider"] as const,
    buckets: latencyBuckets,
    registers: [registry],
  });
  const ttft = new Histogram({
    name: "llm_gateway_time_to_first_token_seconds",
    help: "Time from request arrival to the first streamed chunk.",
    labelNames: ["model", "provider"] as const,
    buckets: latencyBuckets,
    registers: [registry],
  });
  const tokens = new Counter({
    name: "llm_gateway_tokens_total",
    help: "Tokens by kind (input includes cached; output includes reasoning).",
    labelNames: ["model", "provider", "kind"] as const,
    registers: [registry],
  });
  const cost = new Counter({
    name: "llm_gateway_cost_usd_total",
    help: "Spend in USD by key, model and provider (accumulated from integer nano-USD).",
    labelNames: ["key", "model", "provider"] as const,
    registers: [registry],
  });
  const attempts = new Counter({
    name: "llm_gateway_upstream_attempts_total",
    help: "Upstream attempts by provider, model, outcome and error class.",
    labelNames: ["provider", "model", "outcome", "error_class"] as const,
    registers: [registry],
  });

  // prom-client hashes the label object on every call; label sets repeat, so keep each child once.
  const children = new Map<string, { inc(n?: number): void } & { observe?(v: number): void }>();
  function child<T extends { inc(n?: number): void } | { observe(v: number): void }>(
    metric: string,
    labels: Record<string, string>,
    make: (labels: Record<string, string>) => T,
  ): T {
    let key = metric;
    for (const v of Object.values(labels)) key += `\u0001${v}`;
    let c = children.get(key) as T | undefined;
    if (c === undefined) {
      c = make(labels);
      children.set(key, c as never);
    }
    return c;
  }

  return {
    registry,
    observeRequest(o) {
      const stream = o.stream ? "true" : "false";
      child("req", { edge: o.edge, model: o.model, provider: o.provider, status: o.status, stream }, (l) => requests.labels(l)).inc();
      child("dur", { edge: o.edge, model: o.model, provider: o.provider }, (l) => duration.labels(l)).observe(o.durationMs / 1000);
      if (o.ttftMs !== undefined) child("ttft", { model: o.model, provider: o.provider }, (l) => ttft.labels(l)).observe(o.ttftMs / 1000);
      const add = (kind: string, n: number | undefined) => {
        if (n !== undefined && n > 0) child("tok", { model: o.model, provider: o.provider, kind }, (l) => tokens.labels(l)).inc(n);
      };
      add("input", o.inputTokens);
      add("output", o.outputTokens);
      add("cached_input", o.cachedInputTokens);
      add("reasoning", o.reasoningTokens);
      if (o.costNanoUsd !== undefined && o.costNanoUsd > 0n) {
        child("cost", { key: o.keyId, model: o.model, provider: o.provider }, (l) => cost.labels(l)).inc(Number(o.costNanoUsd) / 1e9);
      }
      for (const a of o.attempts) {
        child("att", { provider: a.provider, model: a.model, outcome: a.outcome, error_class: a.errorClass ?? "" }, (l) => attempts.labels(l)).inc();
      }
    },
    render: () => registry.metrics(),
  };
}
