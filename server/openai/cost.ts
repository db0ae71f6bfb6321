import { spendToJson } from "../budgets/spend.js";
import type { Gateway } from "../core/gateway.js";
import { header, parseJsonBody, readBody, sendJson, type HttpRequest, type HttpResponse } from "../http/io.js";
import { nanoToUsdString } from "../pricing/cost.js";
import type { CandidateEstimate } from "../router/estimate.js";
import { parseChatRequest } from "./request.js";

/**
 * The REST shim's cost endpoints (both authenticated like every shim route):
 *
 * `POST /v1/cost/estimate` takes a chat-completions body (the same JSON as
 * `POST /v1/chat/completions`; `stream` is accepted and ignored) and answers
 * what EstimateCost answers:
 *
 *     {
 *       "object": "cost.estimate",
 *       "model": "smart",
 *       "candidates": [            // cheapest expected cost first
 *         {
 *           "model": "deepseek/deepseek-chat", "provider": "deepseek",
 *           "tokenizer": "deepseek",          // how input_tokens was counted
 *           "input_tokens": 1234,
 *           "expected_output_tokens": 512, "max_output_tokens": 8192,
 *           "expected_cost_usd": "0.000560560", "max_cost_usd": "0.003786160",
 *           "expected_cost_nano_usd": "560560", "max_cost_nano_usd": "3786160",
 *           "eligible": true, "ineligible_reason": null
 *         }
 *       ]
 *     }
 *
 * `GET /v1/spend` answers the caller's and its team's budgets and limit
 * usage (JSON documented at spendToJson in server/budgets/spend.ts).
 */

/** estimateToJson renders one candidate. */
export function estimateToJson(e: CandidateEstimate): Record<string, unknown> {
  return {
    model: e.model,
    provider: e.provider,
    tokenizer: e.tokenizer,
    input_tokens: e.inputTokens,
    expected_output_tokens: e.expectedOutputTokens,
    max_output_tokens: e.maxOutputTokens,
    expected_cost_usd: nanoToUsdString(e.expectedCostNanoUsd),
    max_cost_usd: nanoToUsdString(e.maxCostNanoUsd),
    expected_cost_nano_usd: e.expectedCostNanoUsd.toString(),
    max_cost_nano_usd: e.maxCostNanoUsd.toString(),
    eligible: e.eligible,
    ineligible_reason: e.eligible ? null : e.ineligibleReason,
  };
}

/** serveCostEstimate answers `POST /v1/cost/estimate`; errors propagate to the shim's error handler. */
export async function serveCostEstimate(gateway: Gateway, req: HttpRequest, res: HttpResponse, requestId: string, maxBodyBytes: number): Promise<void> {
  const caller = gateway.authenticate(header(req, "authorization"));
  const { request } = parseChatRequest(parseJsonBody(await readBody(req, maxBodyBytes)));
  const estimates = await gateway.estimate(request, caller);
  sendJson(res, 200, JSON.stringify({ object: "cost.estimate", model: request.model, candidates: estimates.map(estimateToJson) }), {
    "x-request-id": requestId,
  });
}

/** serveSpend answers `GET /v1/spend`. */
export async function serveSpend(gateway: Gateway, req: HttpRequest, res: HttpResponse, requestId: string): Promise<void> {
  const caller = gateway.authenticate(header(req, "authorization"));
  sendJson(res, 200, spendToJson(await gateway.spend(caller)), { "x-request-id": requestId });
}
