import { nanoToUsdString } from "../pricing/cost.js";

/**
 * The per-request Prometheus series, aggregated by the gateway's own code
 * and rendered in the text exposition format at scrape time.
 *
 * Why not prom-client's Counter and Histogram for these: each of their
 * observations validates and hashes a label object, and a request makes
 * seven of them; that was measured at several percent of a request's CPU.
 * Here a request does one Map lookup for its series and a few additions;
 * the work of splitting series into each metric's label sets happens once
 * per scrape. prom-client still serves the process metrics and gauges.
 *
 * Label values come only from configuration (models, providers, keys) and
 * from the gateway's own status and outcome words, so series are bounded.
 */

/** RequestSample is one finished request, as the metrics see it. */
export interface RequestSample {
  edge: string;
  keyId: string;
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
  attempts: ReadonlyArray<{ provider: string; model: string; outcome: string; errorClass?: string }>;
}

/** LATENCY_BUCKETS are the duration and time-to-first-token histogram bounds, in seconds. */
export const LATENCY_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

const TOKEN_KINDS = ["input", "output", "cached_input", "reasoning"] as const;

/** Histogram counts: one per bucket (not cumulative) plus +Inf, with the sum and count. */
class Buckets {
  readonly counts = new Array<number>(LATENCY_BUCKETS.length + 1).fill(0);
  sum = 0;
  count = 0;

  observe(seconds: number): void {
    let i = 0;
    while (i < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[i]!) i++;
    this.counts[i]!++;
    this.sum += seconds;
    this.count++;
  }

  addTo(other: Buckets): void {
    for (let i = 0; i < this.counts.length; i++) other.counts[i]! += this.counts[i]!;
    other.sum += this.sum;
    other.count += this.count;
  }
}

/** One series: every request with the same edge, key, model, provider, status and stream flag. */
interface Series extends Pick<RequestSample, "edge" | "keyId" | "model" | "provider" | "status" | "stream"> {
  requests: number;
  duration: Buckets;
  ttft: Buckets;
  tokens: [number, number, number, number];
  costNano: bigint;
}

interface AttemptSeries {
  labels: [provider: string, model: string, outcome: string, errorClass: string];
  count: number;
}

/** RequestMetrics aggregates finished requests and renders them. */
export interface RequestMetrics {
  observe(s: RequestSample): void;
  /** render returns the exposition text of the request metrics (each family with its HELP and TYPE lines). */
  render(): string;
}

const SEP = "\u0001";

/** createRequestMetrics builds an empty aggregate. */
export function createRequestMetrics(): RequestMetrics {
  const series = new Map<string, Series>();
  const attempts = new Map<string, AttemptSeries>();

  function seriesFor(s: RequestSample): Series {
    const key = s.edge + SEP + s.keyId + SEP + s.model + SEP + s.provider + SEP + s.status + SEP + (s.stream ? "1" : "0");
    let x = series.get(key);
    if (x === undefined) {
      x = {
        edge: s.edge,
        keyId: s.keyId,
        model: s.model,
        provider: s.provider,
        status: s.status,
        stream: s.stream,
        requests: 0,
        duration: new Buckets(),
        ttft: new Buckets(),
        tokens: [0, 0, 0, 0],
        costNano: 0n,
      };
      series.set(key, x);
    }
    return x;
  }

  return {
    observe(s) {
      const x = seriesFor(s);
      x.requests++;
      x.duration.observe(s.durationMs / 1000);
      if (s.ttftMs !== undefined) x.ttft.observe(s.ttftMs / 1000);
      if (s.inputTokens !== undefined && s.inputTokens > 0) x.tokens[0] += s.inputTokens;
      if (s.outputTokens !== undefined && s.outputTokens > 0) x.tokens[1] += s.outputTokens;
      if (s.cachedInputTokens !== undefined && s.cachedInputTokens > 0) x.tokens[2] += s.cachedInputTokens;
      if (s.reasoningTokens !== undefined && s.reasoningTokens > 0) x.tokens[3] += s.reasoningTokens;
      if (s.costNanoUsd !== undefined && s.costNanoUsd > 0n) x.costNano += s.costNanoUsd;
      for (const a of s.attempts) {
        const errorClass = a.errorClass ?? "";
        const key = a.provider + SEP + a.model + SEP + a.outcome + SEP + errorClass;
        const y = attempts.get(key);
        if (y === undefined) attempts.set(key, { labels: [a.provider, a.model, a.outcome, errorClass], count: 1 });
        else y.count++;
      }
    },

    render() {
      const all = [...series.values()];
      const out: string[] = [];

      family(out, "llm_gateway_requests_total", "counter", "Finished requests by edge, resolved model, provider and status.");
      const requests = group(all, (x) => [x.edge, x.model, x.provider, x.status, x.stream ? "true" : "false"], () => ({ n: 0 }), (x, acc) => {
        acc.n += x.requests;
      });
      for (const [labels, acc] of requests) out.push(`llm_gateway_requests_total${labelText(["edge", "model", "provider", "status", "stream"], labels)} ${acc.n}`);

      const histogram = (name: string, help: string, names: string[], labelsOf: (x: Series) => string[], pick: (x: Series) => Buckets): void => {
        family(out, name, "histogram", help);
        const groups = group(all, labelsOf, () => new Buckets(), (x, acc) => pick(x).addTo(acc));
        for (const [labels, b] of groups) {
          if (b.count === 0) continue;
          let cumulative = 0;
          for (let i = 0; i <= LATENCY_BUCKETS.length; i++) {
            cumulative += b.counts[i]!;
            const le = i < LATENCY_BUCKETS.length ? String(LATENCY_BUCKETS[i]) : "+Inf";
            out.push(`${name}_bucket${labelText([...names, "le"], [...labels, le])} ${cumulative}`);
          }
          out.push(`${name}_sum${labelText(names, labels)} ${b.sum}`);
          out.push(`${name}_count${labelText(names, labels)} ${b.count}`);
        }
      };
      histogram(
        "llm_gateway_request_duration_seconds",
        "Time from request arrival to the last byte of the answer.",
        ["edge", "model", "provider"],
        (x) => [x.edge, x.model, x.provider],
        (x) => x.duration,
      );
      histogram(
        "llm_gateway_time_to_first_token_seconds",
        "Time from request arrival to the first streamed chunk.",
        ["model", "provider"],
        (x) => [x.model, x.provider],
        (x) => x.ttft,
      );

      family(out, "llm_gateway_tokens_total", "counter", "Tokens by kind (input includes cached; output includes reasoning).");
      const tokens = group(all, (x) => [x.model, x.provider], () => [0, 0, 0, 0], (x, acc) => {
        for (let i = 0; i < 4; i++) acc[i]! += x.tokens[i]!;
      });
      for (const [labels, acc] of tokens) {
        TOKEN_KINDS.forEach((kind, i) => {
          if (acc[i]! > 0) out.push(`llm_gateway_tokens_total${labelText(["model", "provider", "kind"], [...labels, kind])} ${acc[i]}`);
        });
      }

      family(out, "llm_gateway_cost_usd_total", "counter", "Spend in USD by key, model and provider (accumulated from integer nano-USD).");
      const cost = group(all, (x) => [x.keyId, x.model, x.provider], () => ({ nano: 0n }), (x, acc) => {
        acc.nano += x.costNano;
      });
      for (const [labels, acc] of cost) {
        if (acc.nano > 0n) out.push(`llm_gateway_cost_usd_total${labelText(["key", "model", "provider"], labels)} ${nanoToUsdString(acc.nano)}`);
      }

      family(out, "llm_gateway_upstream_attempts_total", "counter", "Upstream attempts by provider, model, outcome and error class.");
      for (const a of attempts.values()) {
        out.push(`llm_gateway_upstream_attempts_total${labelText(["provider", "model", "outcome", "error_class"], a.labels)} ${a.count}`);
      }
      return out.join("\n") + "\n";
    },
  };
}

/** family appends a metric family's HELP and TYPE lines. */
export function family(out: string[], name: string, type: string, help: string): void {
  out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
}

/** group folds series into one accumulator per distinct label list, in first-seen order. */
function group<A>(all: readonly Series[], labelsOf: (x: Series) => string[], init: () => A, add: (x: Series, acc: A) => void): Array<[string[], A]> {
  const groups = new Map<string, [string[], A]>();
  for (const x of all) {
    const labels = labelsOf(x);
    const key = labels.join(SEP);
    let g = groups.get(key);
    if (g === undefined) {
      g = [labels, init()];
      groups.set(key, g);
    }
    add(x, g[1]);
  }
  return [...groups.values()];
}

// Label values escape backslash, double quote and newline, as the text format requires.
function escapeLabel(v: string): string {
  return v.replace(/[\\"\n]/g, (c) => (c === "\n" ? "\\n" : `\\${c}`));
}

function labelText(names: readonly string[], values: readonly string[]): string {
  return `{${names.map((n, i) => `${n}="${escapeLabel(values[i]!)}"`).join(",")}}`;
}
