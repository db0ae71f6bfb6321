import { Agent, errors as undiciErrors, type Dispatcher } from "undici";
import { UpstreamError } from "../core/errors.js";
import type { Cancellation } from "../core/cancel.js";

/**
 * Upstream HTTP for every adapter: one keep-alive connection pool per
 * provider (undici Agent), timeouts mapped to the gateway's error classes,
 * and responses handed back with their body still streaming.
 *
 * Requests go through undici's dispatch() with a handler of our own rather
 * than its request() API: request() wraps every body in a Node Readable,
 * and reading it through an async iterator cost more CPU than the rest of
 * the upstream call. Here body chunks land in a small queue (UpstreamBody)
 * that a whole answer reads in one step (text()) and a stream iterates.
 * Backpressure still reaches the socket: past BODY_HIGH_WATER bytes queued,
 * the connection is paused until the reader catches up.
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

/** UpstreamBody is a response body being received. Iterate it, or read it whole with text(); not both. */
export interface UpstreamBody extends AsyncIterable<Buffer> {
  /** text resolves with the rest of the body decoded as UTF-8. */
  text(): Promise<string>;
  /** destroy stops receiving (the connection is closed, not reused) and drops what was queued; harmless after the end. */
  destroy(): void;
}

/** UpstreamResponse is a response whose body has not been read yet. */
export interface UpstreamResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: UpstreamBody;
}

/** UpstreamHttp is a pooled HTTP client for one provider. */
export interface UpstreamHttp {
  /**
   * post sends a body to origin+path and returns the response as soon as
   * headers arrive. origin is scheme://host[:port]; path starts with "/".
   */
  post(origin: string, path: string, headers: Record<string, string>, body: string, signal: Cancellation): Promise<UpstreamResponse>;
  /** get sends a GET and returns the response as soon as headers arrive. */
  get(origin: string, path: string, headers: Record<string, string>, signal: Cancellation): Promise<UpstreamResponse>;
  /** close drains and closes the pool. */
  close(): Promise<void>;
}

/** IDLE_KEEPALIVE_MS is how long an idle pooled connection is kept open. */
const IDLE_KEEPALIVE_MS = 5_000;

/** BODY_HIGH_WATER is how many unread body bytes are queued before the connection is paused. */
const BODY_HIGH_WATER = 256 * 1024;

/**
 * Exchange is one request's dispatch handler and, once headers arrive, its
 * response body: a queue of chunks with one waiting reader at most.
 */
class Exchange implements Dispatcher.DispatchHandler, UpstreamBody, AsyncIterator<Buffer> {
  private controller: Dispatcher.DispatchController | undefined;
  private chunks: Buffer[] = [];
  private queued = 0;
  private ended = false;
  private failure: unknown;
  private destroyed = false;
  private started = false;
  // The reader waiting for the next chunk or the end, if any.
  private wake: (() => void) | undefined;

  constructor(
    private readonly signal: Cancellation,
    private readonly onStart: (res: UpstreamResponse) => void,
    private readonly onFail: (err: UpstreamError) => void,
  ) {}

  // The caller's signal cancels the exchange at any stage.
  readonly onAbort = (): void => {
    this.controller?.abort(this.signal.reason instanceof Error ? this.signal.reason : new Error("aborted"));
  };

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.controller = controller;
    if (this.signal.aborted || this.destroyed) this.onAbort();
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>): void {
    // 1xx answers (100 Continue) are not the response.
    if (statusCode < 200) return;
    this.started = true;
    this.onStart({ status: statusCode, headers, body: this });
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.destroyed) return;
    this.chunks.push(chunk);
    this.queued += chunk.length;
    if (this.queued > BODY_HIGH_WATER) controller.pause();
    this.notify();
  }

  onResponseEnd(): void {
    this.ended = true;
    this.finish();
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.finish();
    if (!this.started) {
      this.onFail(toUpstreamError(err, this.signal));
      return;
    }
    if (this.ended || this.destroyed) return;
    this.failure = err;
    this.notify();
  }

  private finish(): void {
    this.signal.removeEventListener("abort", this.onAbort);
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  // take removes and returns what is queued, resuming a paused connection.
  private take(): Buffer[] {
    const taken = this.chunks;
    this.chunks = [];
    this.queued = 0;
    if (this.controller?.paused === true) this.controller.resume();
    return taken;
  }

  // settled resolves once there is a chunk, the end or a failure to report.
  private settled(): Promise<void> | undefined {
    if (this.chunks.length > 0 || this.ended || this.failure !== undefined || this.destroyed) return undefined;
    return new Promise<void>((resolve) => (this.wake = resolve));
  }

  async text(): Promise<string> {
    const parts: Buffer[] = [];
    for (;;) {
      const wait = this.settled();
      if (wait !== undefined) await wait;
      for (const c of this.take()) parts.push(c);
      if (this.failure !== undefined) throw this.failure;
      if (this.ended || this.destroyed) break;
    }
    return parts.length === 1 ? parts[0]!.toString("utf8") : Buffer.concat(parts).toString("utf8");
  }

  // The body is its own iterator: a hand-written next() costs less per chunk than an async generator.
  [Symbol.asyncIterator](): AsyncIterator<Buffer> {
    return this;
  }

  next(): Promise<IteratorResult<Buffer, undefined>> {
    const wait = this.settled();
    if (wait !== undefined) return wait.then(() => this.next());
    const taken = this.take();
    if (taken.length > 0) return Promise.resolve({ value: taken.length === 1 ? taken[0]! : Buffer.concat(taken), done: false });
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return Promise.resolve({ value: undefined, done: true });
  }

  // Leaving a loop over the body early (break, throw) closes it, as with a Node stream.
  return(): Promise<IteratorResult<Buffer, undefined>> {
    if (!this.ended) this.destroy();
    return Promise.resolve({ value: undefined, done: true });
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.chunks = [];
    this.queued = 0;
    if (!this.ended) this.controller?.abort(new Error("the response body was not read to its end"));
    this.finish();
    this.notify();
  }
}

/** createUpstreamHttp returns a pooled client; call close() when the provider goes away. */
export function createUpstreamHttp(options: UpstreamHttpOptions): UpstreamHttp {
  const agent = new Agent({
    connections: options.maxConnections,
    // Idle connections are kept 5 s (the OpenAI SDK's httpx default; a server's Keep-Alive hint may
    // only shorten it): steady traffic keeps its connections busy, and a burst's
    // hundreds of sockets do not stay open, and in memory, long after it.
    keepAliveTimeout: IDLE_KEEPALIVE_MS,
    keepAliveMaxTimeout: IDLE_KEEPALIVE_MS,
    headersTimeout: options.headersTimeoutMs,
    bodyTimeout: options.idleTimeoutMs,
    connect: { timeout: options.connectTimeoutMs },
  });

  function send(
    method: "GET" | "POST",
    origin: string,
    path: string,
    headers: Record<string, string>,
    body: string | undefined,
    signal: Cancellation,
  ): Promise<UpstreamResponse> {
    if (signal.aborted) return Promise.reject(toUpstreamError(signal.reason, signal));
    return new Promise<UpstreamResponse>((resolve, reject) => {
      const exchange = new Exchange(signal, resolve, reject);
      signal.addEventListener("abort", exchange.onAbort, { once: true });
      agent.dispatch({ origin, path, method, headers, body }, exchange);
    });
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
export function toUpstreamError(err: unknown, signal?: Cancellation): UpstreamError {
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
