import { jsonNumber, jsonString } from "../core/json-text.js";

/**
 * The one log line every request writes, built as JSON text field by field
 * in a fixed order (fields that are unset are left out, as pino leaves out
 * undefined). It goes through writeInfoLine rather than logger.info: pino
 * walking a twenty-field object was a measurable part of a request's CPU.
 * The line never carries prompt text or a key.
 */

/** RequestLine is what the request line says. */
export interface RequestLine {
  requestId: string;
  edge: "rpc" | "rest";
  keyId: string;
  stream: boolean;
  /** model is the model or route the caller asked for. */
  model: string;
  resolvedModel?: string;
  provider?: string;
  attempts: number;
  status: string;
  latencyMs: number;
  ttftMs?: number;
  inputTokens?: number;
  outputTokens?: number;
  cachedInputTokens?: number;
  reasoningTokens?: number;
  /** usageEstimated is set (true) only when the gateway billed its own estimate. */
  usageEstimated?: boolean;
  costNanoUsd?: bigint;
  degradedTo?: string;
  error?: string;
}

// Strings from outside (a caller's model name, an error message) go through JSON.stringify, which escapes them.
const str = jsonString;

function num(name: string, v: number | undefined): string {
  return v === undefined ? "" : `,"${name}":${jsonNumber(v)}`;
}

function text(name: string, v: string | undefined): string {
  return v === undefined ? "" : `,"${name}":${str(v)}`;
}

/** requestLineJson renders the fields as JSON object members (no braces), ready for writeInfoLine. */
export function requestLineJson(r: RequestLine): string {
  return (
    `"requestId":${str(r.requestId)},"edge":"${r.edge}","keyId":${str(r.keyId)},"stream":${r.stream},"model":${str(r.model)}` +
    text("resolvedModel", r.resolvedModel) +
    text("provider", r.provider) +
    `,"attempts":${r.attempts},"status":${str(r.status)}` +
    num("latencyMs", r.latencyMs) +
    num("ttftMs", r.ttftMs) +
    num("inputTokens", r.inputTokens) +
    num("outputTokens", r.outputTokens) +
    num("cachedInputTokens", r.cachedInputTokens) +
    num("reasoningTokens", r.reasoningTokens) +
    (r.usageEstimated === true ? `,"usageEstimated":true` : "") +
    (r.costNanoUsd === undefined ? "" : `,"costNanoUsd":"${r.costNanoUsd}"`) +
    text("degradedTo", r.degradedTo) +
    text("error", r.error)
  );
}
