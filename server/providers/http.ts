import { Agent, errors as undiciErrors, type Dispatcher } from "undici";
import { UpstreamError } from "../core/errors.js";

/**
 * Upstream HTTP for every adapter: one keep-alive connection pool per
 * provider (undici Agent), timeouts mapped to the gateway's error classes,
 * and responses handed back with their body still streaming.
 */

/** UpstreamHttpOptions configure one provider's pool and timeouts. */
export interface UpstreamHttpOptions {
  /** connectTimeoutMs bounds the TCP/TLS connect. */
  connectTimeoutMs: number;
  /** headersTimeoutMs bounds the wait for response headers (the first byte). */
  headersTimeoutMs: number;
  /** idleTimeoutMs bounds the silence between two body chunks. */
  idleTimeoutMs: number;
  /** maxConnections caps the pool per origin. */
  maxConnections: number;
}

/** UpstreamResponse is a response whose body has not been read yet. */
export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData["body"];
}

/** UpstreamHttp is a pooled HTTP client for one provider. */
export interface UpstreamHttp {
  /**
   * post sends a body to origin+path and returns the response as soon as
   * headers arrive. origin is scheme://host[:port]; path starts with "/".
   */
  post(origin: string, path: string, headers: Record<string, string>, body: string, signal: AbortSignal): Promise<UpstreamResponse>;
  /** get sends a GET and returns the response as soon as headers arrive. */
  get(origin: string, path: string, headers: Record<string, string>, signal: AbortSignal): Promise<UpstreamResponse>;
  /** close drains and closes the pool. */
  close(): Promise<void>;
}

/** createUpstreamHttp returns a pooled client; call close() when the provider goes away. */
export function createUpstreamHttp(options: UpstreamHttpOptions): UpstreamHttp {
  const agent = new Agent({
    connections: options.maxConnections,
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 300_000,
    headersTimeout: options.headersTimeoutMs,
    bodyTimeout: options.idleTimeoutMs,
    connect: { timeout: options.connectTimeoutMs },
  });

  async function send(
    method: "GET" | "POST",
    origin: string,
    path: string,
    headers: Record<string, string>,
    body: string | undefined,
    signal: AbortSignal,
  ): Promise<UpstreamResponse> {
    try {
      const res = await agent.request({ origin, path, method, headers, body, signal });
      return { status: res.statusCode, headers: res.headers, body: res.body };
    } catch (err) {
      throw toUpstreamError(err, signal);
    }
  }

  return {
    post: (origin, path, headers, body, signal) => send("POST", origin, path, headers, body, signal),
    get: (origin, path, headers, signal) => send("GET", origin, path, headers, undefined, signal),
    close: () => agent.close(),
  };
}

/**
 * toUpstreamError classifies a transport failure (refused, reset, timed out,
 * aborted). It never includes the URL, which may carry credentials.
 */
export function toUpstreamError(err: unknown, signal?: AbortSignal): UpstreamError {
  if (err instanceof UpstreamError) return err;
  if (signal?.aborted) {
    return new UpstreamError("cancelled", "the request was cancelled", { cause: err });
  }
  if (err instanceof undiciErrors.HeadersTimeoutError) {
    return new UpstreamError("timeout", "the provider sent no response in time", { cause: err });
  }
  if (err instanceof undiciErrors.BodyTimeoutError) {
    return new UpstreamError("timeout", "the provider stopped sending mid-response", { cause: err });
  }
  if (err instanceof undiciErrors.ConnectTimeoutError) {
    return new UpstreamError("timeout", "connecting to the provider timed out", { cause: err });
  }
  const code = (err as { code?: string } | null)?.code ?? "";
  const detail = code !== "" ? ` (${code})` : "";
  return new UpstreamError("connection", `the connection to the provider failed${detail}`, { cause: err });
}
