import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { mergeExpositions } from "../../server/cluster/metrics-merge.js";

// Merging workers' expositions for /metrics under --workers N: every sample
// labelled with its worker, each family's lines together under one HELP/TYPE.

describe("mergeExpositions", () => {
  const one = [
    "# HELP llm_gateway_requests_total Finished requests.",
    "# TYPE llm_gateway_requests_total counter",
    'llm_gateway_requests_total{edge="rest",status="ok"} 3',
    "# HELP llm_gateway_latency_seconds Latency.",
    "# TYPE llm_gateway_latency_seconds histogram",
    'llm_gateway_latency_seconds_bucket{le="0.1"} 2',
    'llm_gateway_latency_seconds_bucket{le="+Inf"} 3',
    "llm_gateway_latency_seconds_sum 0.25",
    "llm_gateway_latency_seconds_count 3",
    "",
  ].join("\n");
  const two = [
    "# HELP llm_gateway_requests_total Finished requests.",
    "# TYPE llm_gateway_requests_total counter",
    'llm_gateway_requests_total{edge="rest",status="ok"} 5',
    "# HELP llm_gateway_state_healthy State answers.",
    "# TYPE llm_gateway_state_healthy gauge",
    "llm_gateway_state_healthy 1",
    "# HELP llm_gateway_latency_seconds Latency.",
    "# TYPE llm_gateway_latency_seconds histogram",
    'llm_gateway_latency_seconds_bucket{le="0.1"} 1',
    'llm_gateway_latency_seconds_bucket{le="+Inf"} 1',
    "llm_gateway_latency_seconds_sum 0.05",
    "llm_gateway_latency_seconds_count 1",
    "",
  ].join("\n");

  it("labels every sample with its worker and keeps each family together", () => {
    assert.equal(
      mergeExpositions([
        { worker: 1, text: one },
        { worker: 2, text: two },
      ]),
      [
        "# HELP llm_gateway_requests_total Finished requests.",
        "# TYPE llm_gateway_requests_total counter",
        'llm_gateway_requests_total{worker="1",edge="rest",status="ok"} 3',
        'llm_gateway_requests_total{worker="2",edge="rest",status="ok"} 5',
        "# HELP llm_gateway_latency_seconds Latency.",
        "# TYPE llm_gateway_latency_seconds histogram",
        'llm_gateway_latency_seconds_bucket{worker="1",le="0.1"} 2',
        'llm_gateway_latency_seconds_bucket{worker="1",le="+Inf"} 3',
        'llm_gateway_latency_seconds_sum{worker="1"} 0.25',
        'llm_gateway_latency_seconds_count{worker="1"} 3',
        'llm_gateway_latency_seconds_bucket{worker="2",le="0.1"} 1',
        'llm_gateway_latency_seconds_bucket{worker="2",le="+Inf"} 1',
        'llm_gateway_latency_seconds_sum{worker="2"} 0.05',
        'llm_gateway_latency_seconds_count{worker="2"} 1',
        "# HELP llm_gateway_state_healthy State answers.",
        "# TYPE llm_gateway_state_healthy gauge",
        'llm_gateway_state_healthy{worker="2"} 1',
        "",
      ].join("\n"),
    );
  });

  it("handles empty label sets, timestamps, label values with braces or blanks, and samples before any HELP", () => {
    const text = ['up{} 1', 'x{path="/a b{c}"} 2 1700000000000', "# a free comment", "# TYPE y gauge", "y 3 1700000000000"].join("\n");
    assert.equal(
      mergeExpositions([{ worker: 3, text }]),
      ['up{worker="3"} 1', 'x{worker="3",path="/a b{c}"} 2 1700000000000', "# TYPE y gauge", 'y{worker="3"} 3 1700000000000', ""].join("\n"),
    );
  });

  it("gives nothing for nothing", () => {
    assert.equal(mergeExpositions([]), "");
    assert.equal(mergeExpositions([{ worker: 1, text: "\n\n" }]), "");
  });
});
