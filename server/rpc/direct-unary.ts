import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { codeToHttpStatus, contentTypeUnaryJson, contentTypeUnaryProto, errorToJsonBytes, parseContentType, parseTimeout } from "@connectrpc/connect/protocol-connect";
import {
  contentTypeProto as grpcContentTypeProto,
  grpcStatusOk,
  parseContentType as parseGrpcContentType,
  parseTimeout as parseGrpcTimeout,
  setTrailerStatus,
} from "@connectrpc/connect/protocol-grpc";
import type { ServerResponse } from "node:http";
import type { Http2ServerResponse } from "node:http2";
import type { Logger } from "pino";
import { CompleteRequestSchema, CompleteResponseSchema, GatewayService } from "../../gen/llmgateway/v1/gateway_service_pb.js";
import type { Gateway } from "../core/gateway.js";
import { GatewayError } from "../core/errors.js";
import { callerSignal, header, readBody, type HttpRequest, type HttpResponse } from "../http/io.js";
import { completeRpc, deadlineFrom, rpcError, type RpcCall } from "./service.js";
import { withTimeout } from "../core/cancel.js";

/**
 * A direct path for the hottest call: unary `Complete` with a binary
 * (protobuf) body, in the Connect protocol (HTTP/1.1 or HTTP/2) and in
 * gRPC (HTTP/2).
 *
 * connect-node's generic handlers cost about as much CPU per call as the
 * whole gateway pipeline behind them (measured: ~100 µs per Connect call
 * for a handler that returns a canned answer, against ~17 µs for a bare
 * node:http one; gRPC more, its unary calls run through the streaming
 * pipeline): every request gets WHATWG Headers objects, a parsed URL, two
 * linked AbortControllers, async-iterable body plumbing, and an AbortError
 * built with a stack trace when the call ends normally. This path reads the
 * body with the same helpers as the REST shim and runs the same
 * `completeRpc` as the registered handler, using the library's own
 * protocol pieces for content types, timeouts, status codes, the Connect
 * error body and the gRPC trailers, so the wire is the same.
 *
 * Only the plain case is taken: POST, a binary body, no compression.
 * JSON, compressed bodies, GET, gRPC-Web and every other method are left to
 * connect-node. Responses are never compressed (both protocols let a
 * server decline).
 */

/** COMPLETE_PATH is the request path of GatewayService.Complete. */
export const COMPLETE_PATH = `/${GatewayService.typeName}/${GatewayService.method.complete.name}`;

/** DirectUnaryOptions configure the direct path. */
export interface DirectUnaryOptions {
  /** readMaxBytes is the largest request message accepted, as connect-node's option of that name. */
  readMaxBytes: number;
  logger: Logger;
}

/** DirectUnaryHandler serves a request if it is a plain unary Complete and returns false otherwise. */
export type DirectUnaryHandler = (req: HttpRequest, res: HttpResponse) => boolean;

// gRPC frames each message: a flags byte (bit 0: compressed) and a big-endian 32-bit length.
const ENVELOPE_HEADER = 5;

function tooLarge(readMaxBytes: number, size?: number): ConnectError {
  return new ConnectError(`message size ${size === undefined ? "" : `${size} `}is larger than configured readMaxBytes ${readMaxBytes}`, Code.ResourceExhausted);
}

function headersToObject(h: Headers): Record<string, string> {
  const out: Record<string, string> = {};
  h.forEach((value, key) => void (out[key] = value));
  return out;
}

/** createDirectUnaryHandler builds the direct path over the gateway. */
export function createDirectUnaryHandler(gateway: Gateway, options: DirectUnaryOptions): DirectUnaryHandler {
  const { readMaxBytes } = options;

  /** read reads the request body, mapping an oversized one to ResourceExhausted. */
  async function read(req: HttpRequest, limit: number): Promise<Buffer> {
    try {
      return await readBody(req, limit);
    } catch (err) {
      if (err instanceof GatewayError && err.openaiCode === "request_too_large") throw tooLarge(readMaxBytes);
      throw err;
    }
  }

  /** complete decodes the request message, runs the call within the caller's deadline, and encodes the answer. */
  async function complete(req: HttpRequest, res: HttpResponse, message: Uint8Array, timeoutMs: number | undefined, responseHeaders: Record<string, string>): Promise<Uint8Array> {
    let request;
    try {
      request = fromBinary(CompleteRequestSchema, message);
    } catch (err) {
      throw new ConnectError(`parse binary: ${err instanceof Error ? err.message : String(err)}`, Code.InvalidArgument);
    }
    // The caller leaving, or its deadline passing, cancels the call (as connect-node's context signal does).
    // The deadline's abort carries a TimeoutError, so the core reports deadline_exceeded however late the timer ran.
    const deadlineAt = deadlineFrom(timeoutMs);
    const deadline = timeoutMs === undefined ? undefined : withTimeout(callerSignal(res), timeoutMs);
    const signal = deadline === undefined ? callerSignal(res) : deadline.signal;
    const call: RpcCall = {
      requestHeader: (name) => header(req, name),
      setResponseHeader: (name, value) => (responseHeaders[name] = value),
      signal,
      deadlineAt,
    };
    try {
      return toBinary(CompleteResponseSchema, await completeRpc(gateway, request, call));
    } finally {
      deadline?.dispose();
    }
  }

  async function serveConnect(req: HttpRequest, res: HttpResponse, responseHeaders: Record<string, string>): Promise<Uint8Array> {
    const timeout = parseTimeout(header(req, "connect-timeout-ms") ?? null, Number.MAX_SAFE_INTEGER);
    if (timeout.error !== undefined) throw timeout.error;
    return complete(req, res, await read(req, readMaxBytes), timeout.timeoutMs, responseHeaders);
  }

  async function serveGrpc(req: HttpRequest, res: HttpResponse, responseHeaders: Record<string, string>): Promise<Uint8Array> {
    const timeout = parseGrpcTimeout(header(req, "grpc-timeout") ?? null, Number.MAX_SAFE_INTEGER);
    if (timeout.error !== undefined) throw timeout.error;
    const body = await read(req, readMaxBytes + ENVELOPE_HEADER);
    if (body.length < ENVELOPE_HEADER) throw new ConnectError("protocol error: missing request message", Code.InvalidArgument);
    if ((body[0]! & 1) !== 0) throw new ConnectError("protocol error: received a compressed message without grpc-encoding", Code.InvalidArgument);
    const size = body.readUInt32BE(1);
    if (size > readMaxBytes) throw tooLarge(readMaxBytes, size);
    if (body.length !== ENVELOPE_HEADER + size) {
      throw new ConnectError("protocol error: a unary call takes exactly one whole message", Code.InvalidArgument);
    }
    const reply = await complete(req, res, body.subarray(ENVELOPE_HEADER), timeout.timeoutMs, responseHeaders);
    const framed = Buffer.allocUnsafe(ENVELOPE_HEADER + reply.byteLength);
    framed[0] = 0;
    framed.writeUInt32BE(reply.byteLength, 1);
    framed.set(reply, ENVELOPE_HEADER);
    return framed;
  }

  function reply(res: HttpResponse, status: number, contentType: string, headers: Record<string, string>, body: Uint8Array, trailers?: Record<string, string>): void {
    if (res.headersSent || res.destroyed) return;
    const head: Record<string, string | number> = { ...headers, "content-type": contentType };
    if (trailers === undefined) head["content-length"] = body.byteLength;
    (res as ServerResponse).writeHead(status, head);
    if (trailers !== undefined) {
      if (body.byteLength > 0) (res as Http2ServerResponse).write(body);
      (res as Http2ServerResponse).addTrailers(trailers);
      res.end();
    } else {
      res.end(body);
    }
  }

  function fail(err: unknown): ConnectError {
    return rpcError(err, options.logger, "an RPC");
  }

  return (req, res) => {
    if (req.method !== "POST") return false;
    const url = req.url ?? "";
    if (url !== COMPLETE_PATH && !url.startsWith(`${COMPLETE_PATH}?`)) return false;
    const contentType = header(req, "content-type") ?? null;
    const responseHeaders: Record<string, string> = {};

    if (req.httpVersionMajor === 2 && contentType !== null && contentType.startsWith("application/grpc")) {
      if (parseGrpcContentType(contentType)?.binary !== true) return false;
      const encoding = header(req, "grpc-encoding");
      if (encoding !== undefined && encoding !== "identity") return false;
      serveGrpc(req, res, responseHeaders).then(
        (body) => reply(res, 200, grpcContentTypeProto, responseHeaders, body, { "grpc-status": grpcStatusOk }),
        (err: unknown) => reply(res, 200, grpcContentTypeProto, responseHeaders, new Uint8Array(0), headersToObject(setTrailerStatus(new Headers(), fail(err)))),
      );
      return true;
    }

    const type = parseContentType(contentType);
    if (type === undefined || type.stream || !type.binary) return false;
    const encoding = header(req, "content-encoding");
    if (encoding !== undefined && encoding !== "identity") return false;
    serveConnect(req, res, responseHeaders).then(
      (body) => reply(res, 200, contentTypeUnaryProto, responseHeaders, body),
      (err: unknown) => {
        const ce = fail(err);
        ce.metadata.forEach((value, key) => void (responseHeaders[key] = value));
        reply(res, codeToHttpStatus(ce.code), contentTypeUnaryJson, responseHeaders, errorToJsonBytes(ce, {}));
      },
    );
    return true;
  };
}
