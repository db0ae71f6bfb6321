import { Pool } from "undici";
import { Samples } from "./stats.js";

/**
 * The load generator: a closed loop of `concurrency` workers, each sending
 * one request after another until the duration (or request count) is used
 * up. Every target is driven by the same client code (undici Pool with
 * keep-alive connections, one per worker), so the client's own overhead is
 * the same for direct, proxy and gateway and cancels out of the
 * differences the report quotes.
 */

/** Sample is the outcome of one request. */
export interface Sample {
  ok: boolean;
  /** latencyUs is from just before sending to the last byte of the answer. */
  latencyUs: number;
  /** ttftUs is, for a stream, the time to the first body bytes. */
  ttftUs?: number;
  /** gapsUs are, for a stream, the gaps between consecutive body reads. */
  gapsUs?: number[];
  /** error says what went wrong when ok is false. */
  error?: string;
}

/** Send issues one request and reports how it went; it must not throw. */
export type Send = () => Promise<Sample>;

/** LoadOptions configure runLoad. */
export interface LoadOptions {
  /** concurrency is the number of workers, each with at most one request in flight. */
  concurrency: number;
  /** durationMs stops starting new requests after this long. */
  durationMs?: number;
  /** requests stops after this many requests in total (whichever comes first). */
  requests?: number;
  send: Send;
  /** onProgress is called about every 250 ms with the requests finished so far. */
  onProgress?: (finished: number, elapsedMs: number) => void;
}

/** LoadResult is what one run measured. */
export interface LoadResult {
  /** requests is how many requests finished (ok or not). */
  requests: number;
  errors: number;
  /** firstError is the first error's description. */
  firstError?: string;
  /** elapsedMs is from the start to the last request's end. */
  elapsedMs: number;
  /** throughput is successful requests per second. */
  throughput: number;
  /** latency, ttft and gaps are in µs; ttft and gaps only for streams. */
  latency: Samples;
  ttft: Samples;
  gaps: Samples;
}

/** runLoad drives the closed loop and collects samples. */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const { concurrency, send } = options;
  if (options.durationMs === undefined && options.requests === undefined) throw new Error("runLoad needs durationMs or requests");
  const latency = new Samples();
  const ttft = new Samples();
  const gaps = new Samples();
  let started = 0;
  let finished = 0;
  let errors = 0;
  let firstError: string | undefined;
  const t0 = performance.now();
  const deadline = options.durationMs === undefined ? Number.POSITIVE_INFINITY : t0 + options.durationMs;
  const limit = options.requests ?? Number.POSITIVE_INFINITY;
  let lastEnd = t0;

  const progress =
    options.onProgress === undefined ? undefined : setInterval(() => options.onProgress!(finished, performance.now() - t0), 250);

  async function worker(): Promise<void> {
    while (started < limit && performance.now() < deadline) {
      started++;
      const s = await send();
      finished++;
      lastEnd = performance.now();
      if (s.ok) {
        latency.push(s.latencyUs);
        if (s.ttftUs !== undefined) ttft.push(s.ttftUs);
        if (s.gapsUs !== undefined) for (const g of s.gapsUs) gaps.push(g);
      } else {
        errors++;
        firstError ??= s.error;
      }
    }
  }

  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    if (progress !== undefined) clearInterval(progress);
  }
  const elapsedMs = lastEnd - t0;
  return {
    requests: finished,
    errors,
    firstError,
    elapsedMs,
    throughput: elapsedMs > 0 ? ((finished - errors) * 1000) / elapsedMs : 0,
    latency,
    ttft,
    gaps,
  };
}

/** createPool returns a keep-alive connection pool to one origin (connections open lazily, up to maxConnections). */
export function createPool(origin: string, maxConnections = 2048): Pool {
  return new Pool(origin, { connections: maxConnections, pipelining: 1, keepAliveTimeout: 60_000, keepAliveMaxTimeout: 600_000 });
}

/** HttpRequestSpec is one request to send repeatedly. */
export interface HttpRequestSpec {
  path: string;
  headers: Record<string, string>;
  body: string | Uint8Array;
}

function describe(err: unknown): string {
  const e = err as { code?: string; message?: string } | null;
  return `${e?.code ?? "error"}: ${e?.message ?? String(err)}`;
}

/**
 * unarySender sends a POST and reads the whole answer. A non-2xx status is an
 * error; its body's start is kept for the report.
 */
export function unarySender(pool: Pool, spec: HttpRequestSpec): Send {
  return async () => {
    const t0 = performance.now();
    try {
      const res = await pool.request({ method: "POST", path: spec.path, headers: spec.headers, body: spec.body });
      let bytes = 0;
      let head = "";
      for await (const b of res.body) {
        bytes += (b as Buffer).length;
        if (res.statusCode >= 300 && head.length < 300) head += (b as Buffer).toString("utf8");
      }
      const latencyUs = (performance.now() - t0) * 1000;
      if (res.statusCode >= 300) return { ok: false, latencyUs, error: `HTTP ${res.statusCode}: ${head.slice(0, 300)}` };
      if (bytes === 0) return { ok: false, latencyUs, error: "empty answer" };
      return { ok: true, latencyUs };
    } catch (err) {
      return { ok: false, latencyUs: (performance.now() - t0) * 1000, error: describe(err) };
    }
  };
}

const done = Buffer.from("data: [DONE]\n\n");

/**
 * streamSender sends a streaming POST and times every body read: the first
 * is the time to first token, the rest give the inter-chunk gaps. A stream
 * that does not end with `data: [DONE]` is an error (cut or failed).
 * onFirstChunk, when given, is called once per stream when its first bytes arrive.
 */
export function streamSender(pool: Pool, spec: HttpRequestSpec, onFirstChunk?: () => void): Send {
  return async () => {
    const t0 = performance.now();
    try {
      const res = await pool.request({ method: "POST", path: spec.path, headers: spec.headers, body: spec.body });
      let first = -1;
      let prev = 0;
      const gapsUs: number[] = [];
      let last: Buffer | undefined;
      let head = "";
      for await (const chunk of res.body) {
        const b = chunk as Buffer;
        const now = performance.now();
        if (first < 0) {
          first = now;
          onFirstChunk?.();
        } else {
          gapsUs.push((now - prev) * 1000);
        }
        prev = now;
        last = b;
        if (res.statusCode >= 300 && head.length < 300) head += b.toString("utf8");
      }
      const latencyUs = (performance.now() - t0) * 1000;
      if (res.statusCode >= 300) return { ok: false, latencyUs, error: `HTTP ${res.statusCode}: ${head.slice(0, 300)}` };
      if (last === undefined || last.length < done.length || !last.subarray(last.length - done.length).equals(done)) {
        return { ok: false, latencyUs, error: `stream did not end with [DONE]: ${last?.toString("utf8").slice(-200) ?? "(no body)"}` };
      }
      return { ok: true, latencyUs, ttftUs: (first - t0) * 1000, gapsUs };
    } catch (err) {
      return { ok: false, latencyUs: (performance.now() - t0) * 1000, error: describe(err) };
    }
  };
}

/** HeldStreams is a set of streams opened at once and kept open by a slow upstream. */
export interface HeldStreams {
  /** allStarted resolves when every stream has received its first bytes (or failed). */
  allStarted: Promise<void>;
  /** finished resolves with the run's result when every stream has ended. */
  finished: Promise<LoadResult>;
}

/** holdStreams opens n streams concurrently (one request per worker) and reports when all are flowing. */
export function holdStreams(pool: Pool, spec: HttpRequestSpec, n: number): HeldStreams {
  let started = 0;
  let resolveStarted!: () => void;
  const allStarted = new Promise<void>((r) => (resolveStarted = r));
  const bump = (): void => {
    if (++started === n) resolveStarted();
  };
  const send: Send = async () => {
    let fired = false;
    const s = await streamSender(pool, spec, () => {
      fired = true;
      bump();
    })();
    // A stream that failed before its first bytes still counts as started, so allStarted cannot hang.
    if (!fired) bump();
    return s;
  };
  const finished = runLoad({ concurrency: n, requests: n, send });
  return { allStarted, finished };
}
