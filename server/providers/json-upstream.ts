import type { ProviderConfig } from "../config/schema.js";
import { UpstreamError } from "../core/errors.js";
import { createUpstreamHttp, type UpstreamResponse } from "./http.js";
import { readText } from "./sse.js";
import type { Cancellation } from "../core/cancel.js";

/**
 * The plumbing shared by the adapters of JSON-over-HTTP protocols that are
 * not OpenAI's (Anthropic Messages, Gemini): one pooled client per provider,
 * the base URL split into origin and path, protocol and configured headers
 * merged, and every non-2xx answer turned into a classified UpstreamError by
 * the protocol's own classifier.
 */

/** HeaderBag is a response's headers as undici gives them. */
export type HeaderBag = Record<string, string | string[] | undefined>;

/** JsonUpstreamOptions configure a JsonUpstream. */
export interface JsonUpstreamOptions {
  /** provider is the configured provider (base URL, headers, timeouts, pool size). */
  provider: ProviderConfig;
  /** defaultBaseUrl is used when the provider sets no base_url. */
  defaultBaseUrl: string;
  /** headers are the protocol's own headers, authentication included. */
  headers: Record<string, string>;
  /** classify turns a non-2xx response (status, headers, body text) into an UpstreamError. */
  classify(status: number, headers: HeaderBag, bodyText: string): UpstreamError;
}

/** JsonUpstream posts JSON to one provider. */
export interface JsonUpstream {
  /** basePath is the base URL's path without a trailing slash ("" for a bare host). */
  readonly basePath: string;
  /**
   * postJson sends body as JSON to basePath-relative `path` and resolves with
   * a 2xx response whose body is still unread; any other status rejects with
   * the classifier's UpstreamError, transport failures with a classified one.
   */
  postJson(path: string, body: unknown, signal: Cancellation, onHeaders?: (status: number, headers: HeaderBag) => void): Promise<UpstreamResponse>;
  /** close releases the pooled connections. */
  close(): Promise<void>;
}

/** createJsonUpstream builds the pooled client of one provider. */
export function createJsonUpstream(options: JsonUpstreamOptions): JsonUpstream {
  const { provider } = options;
  const base = new URL(provider.base_url ?? options.defaultBaseUrl);
  const origin = base.origin;
  const basePath = base.pathname.replace(/\/+$/, "");
  const http = createUpstreamHttp({
    connectTimeoutMs: provider.connect_timeout_ms,
    headersTimeoutMs: provider.timeout_ms,
    idleTimeoutMs: provider.idle_timeout_ms,
    maxConnections: provider.max_connections,
  });
  // Lower-cased so a configured "Content-Type" replaces ours instead of duplicating it;
  // configured headers win on purpose (an operator pinning anthropic-version, say).
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(options.headers)) headers[k.toLowerCase()] = v;
  for (const [k, v] of Object.entries(provider.headers ?? {})) headers[k.toLowerCase()] = v;

  return {
    basePath,
    async postJson(path, body, signal, onHeaders) {
      const res = await http.post(origin, basePath + path, headers, JSON.stringify(body), signal);
      onHeaders?.(res.status, res.headers);
      if (res.status >= 200 && res.status < 300) return res;
      const text = await readText(res.body, signal);
      throw options.classify(res.status, res.headers, text);
    },
    close: () => http.close(),
  };
}

/**
 * readJson reads a whole response body as JSON. A body that is not JSON is
 * a malformed_response (retryable: a proxy's HTML error page, a cut body).
 */
export async function readJson(res: UpstreamResponse, providerId: string, signal: Cancellation): Promise<unknown> {
  const text = await readText(res.body, signal);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new UpstreamError("malformed_response", `${providerId}: the response body is not valid JSON`, {
      status: res.status,
      cause: err,
    });
  }
}

/** parseJsonData parses one streamed event's data, or throws a malformed_response UpstreamError. */
export function parseJsonData(data: string, providerId: string): unknown {
  try {
    return JSON.parse(data);
  } catch (err) {
    throw new UpstreamError("malformed_response", `${providerId}: a streamed event is not valid JSON`, { status: 200, cause: err });
  }
}

/** parseJsonOrUndefined parses an error body that may not be JSON at all (a proxy's HTML page): undefined when it is not. */
export function parseJsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** isObject tells whether a parsed JSON value is a plain object. */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
