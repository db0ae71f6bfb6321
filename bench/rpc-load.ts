import { create, toBinary } from "@bufbuild/protobuf";
import { connect, type ClientHttp2Session } from "node:http2";
import { CompleteRequestSchema } from "../gen/llmgateway/v1/gateway_service_pb.js";
import { userText } from "../clients/messages.js";
import type { HttpRequestSpec, Send } from "./load.js";

/**
 * Request builders and senders for the gateway's RPC edge, so Connect and
 * gRPC can be measured against the REST shim with the same closed loop.
 * Connect unary (binary protobuf over HTTP/1.1) is a plain POST and goes
 * through the same undici client as REST; gRPC needs HTTP/2 and uses a raw
 * node:http2 session (one connection, streams multiplexed, like a gRPC
 * client). Answers are read as bytes and not decoded, as on the REST side.
 */

/** COMPLETE_PATH is the Connect/gRPC path of GatewayService.Complete. */
export const COMPLETE_PATH = "/llmgateway.v1.GatewayService/Complete";

/** completeRequestBytes encodes a CompleteRequest for a model with one user message. */
export function completeRequestBytes(model: string, prompt: string): Uint8Array {
  return toBinary(CompleteRequestSchema, create(CompleteRequestSchema, { model, messages: [userText(prompt)] }));
}

/** connectUnarySpec is a Connect unary call with a binary body, as an HTTP request to send. */
export function connectUnarySpec(model: string, prompt: string, authorization: string): HttpRequestSpec {
  return {
    path: COMPLETE_PATH,
    headers: { "content-type": "application/proto", "connect-protocol-version": "1", authorization },
    body: completeRequestBytes(model, prompt),
  };
}

/** openGrpcSession opens one HTTP/2 (h2c) connection to the gateway. */
export async function openGrpcSession(origin: string): Promise<ClientHttp2Session> {
  const session = connect(origin);
  await new Promise<void>((resolve, reject) => {
    session.once("connect", () => resolve());
    session.once("error", reject);
  });
  // Errors after connect surface on the streams; an unhandled session error would crash the harness.
  session.on("error", () => {});
  return session;
}

/**
 * grpcUnarySender sends a gRPC unary call (length-prefixed protobuf, te:
 * trailers) and reads the answer; a grpc-status other than 0 is an error.
 */
export function grpcUnarySender(session: ClientHttp2Session, path: string, message: Uint8Array, authorization: string): Send {
  const frame = Buffer.alloc(5 + message.length);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  const headers = {
    ":method": "POST",
    ":path": path,
    "content-type": "application/grpc+proto",
    te: "trailers",
    authorization,
  };
  return () =>
    new Promise((resolve) => {
      const t0 = performance.now();
      let grpcStatus: string | undefined;
      let grpcMessage = "";
      let bytes = 0;
      const stream = session.request(headers);
      stream.on("response", (h) => {
        // A trailers-only answer (an error) carries grpc-status in the headers.
        if (h["grpc-status"] !== undefined) {
          grpcStatus = String(h["grpc-status"]);
          grpcMessage = String(h["grpc-message"] ?? "");
        }
      });
      stream.on("trailers", (t) => {
        grpcStatus = String(t["grpc-status"] ?? grpcStatus);
        grpcMessage = String(t["grpc-message"] ?? grpcMessage);
      });
      stream.on("data", (b: Buffer) => {
        bytes += b.length;
      });
      stream.on("end", () => {
        const latencyUs = (performance.now() - t0) * 1000;
        if (grpcStatus !== "0") resolve({ ok: false, latencyUs, error: `grpc-status ${grpcStatus ?? "missing"}: ${decodeURIComponent(grpcMessage)}` });
        else if (bytes === 0) resolve({ ok: false, latencyUs, error: "empty gRPC answer" });
        else resolve({ ok: true, latencyUs });
      });
      stream.on("error", (err: Error) => resolve({ ok: false, latencyUs: (performance.now() - t0) * 1000, error: err.message }));
      stream.end(frame);
    });
}
