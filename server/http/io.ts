import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import { CancelController, type Cancellation } from "../core/cancel.js";
import { GatewayError } from "../core/errors.js";

/**
 * Small request/response helpers shared by the plain-HTTP endpoints (the
 * REST shim, health checks), for both HTTP/1.1 and HTTP/2 compat objects.
 */

/** HttpRequest is an HTTP/1.1 or HTTP/2 server request. */
export type HttpRequest = IncomingMessage | Http2ServerRequest;
/** HttpResponse is an HTTP/1.1 or HTTP/2 server response. */
export type HttpResponse = ServerResponse | Http2ServerResponse;

/**
 * readBody reads a request body up to maxBytes. Larger bodies are refused
 * with a 413-mapped error as soon as the limit is known to be exceeded,
 * without buffering the rest. Events rather than an async iterator: the
 * iterator's machinery cost more than the read itself.
 */
export function readBody(req: HttpRequest, maxBytes: number): Promise<Buffer> {
  const tooLarge = () =>
    new GatewayError("invalid_argument", `request body exceeds the ${maxBytes}-byte limit`, { param: "body", openaiCode: "request_too_large" });
  const declared = Number(req.headers["content-length"]);
  if (Number.isFinite(declared) && declared > maxBytes) return Promise.reject(tooLarge());
  if (req.readableEnded) return Promise.resolve(Buffer.alloc(0));
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (): void => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onError);
      req.off("close", onClose);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBytes) {
        // The rest is discarded as it arrives; the 413 answer closes an HTTP/1.1 connection (sendJson).
        done();
        req.resume();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
      // The declared length is all there is (the HTTP parser enforces it): no need to wait a tick for "end".
      if (size === declared) onEnd();
    };
    const onEnd = (): void => {
      done();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    };
    const onError = (err: Error): void => {
      done();
      reject(err);
    };
    // Closed before the end: the caller went away mid-body.
    const onClose = (): void => {
      done();
      reject(new GatewayError("canceled", "the caller closed the connection before sending the whole body"));
    };
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onError);
    req.on("close", onClose);
  });
}

/** parseJsonBody parses a body as JSON, with a clear error naming the problem. */
export function parseJsonBody(body: Buffer): unknown {
  if (body.length === 0) throw new GatewayError("invalid_argument", "request body is empty: expected a JSON object", { param: "body" });
  try {
    return JSON.parse(body.toString("utf8"));
  } catch (err) {
    throw new GatewayError("invalid_argument", `request body is not valid JSON: ${(err as Error).message}`, { param: "body" });
  }
}

/** sendJson writes a whole JSON response. */
export function sendJson(res: HttpResponse, status: number, body: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const head: Record<string, string | number> = { "content-type": "application/json", "content-length": Buffer.byteLength(body), ...headers };
  // A body refused for its size may still be arriving: close an HTTP/1.1 connection rather than read it all to reuse it.
  if (status === 413 && (res as ServerResponse).req?.httpVersionMajor === 1) head.connection = "close";
  (res as ServerResponse).writeHead(status, head);
  res.end(body);
}

/**
 * write writes to a streaming response and waits for drain when the socket
 * buffer is full, so a slow reader applies backpressure to the upstream
 * instead of growing memory. It resolves false when the response closed.
 */
export function write(res: HttpResponse, data: string): Promise<boolean> | boolean {
  if (res.destroyed || res.writableEnded) return false;
  if ((res as ServerResponse).write(data)) return true;
  return new Promise((resolve) => {
    const done = (ok: boolean) => {
      res.off("drain", onDrain);
      res.off("close", onClose);
      resolve(ok);
    };
    const onDrain = () => done(true);
    const onClose = () => done(false);
    res.on("drain", onDrain);
    res.on("close", onClose);
  });
}

/** callerSignal aborts when the response closes before it was finished (the caller left). */
export function callerSignal(res: HttpResponse): Cancellation {
  const ac = new CancelController();
  res.once("close", () => {
    if (!res.writableFinished) ac.abort(new GatewayError("canceled", "the caller closed the connection"));
  });
  return ac.signal;
}

/** header reads one request header as a string. */
export function header(req: HttpRequest, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}
