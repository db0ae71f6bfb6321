import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { GatewayService } from "../gen/llmgateway/v1/gateway_service_pb.js";

/**
 * The typed client for llm-gateway: a Connect client of GatewayService with
 * the gateway key attached, over Connect (HTTP/1.1 or HTTP/2), gRPC or
 * gRPC-Web, all on the gateway's one port.
 *
 *   const gw = createGatewayClient({ baseUrl: "http://127.0.0.1:8080", apiKey });
 *   const res = await gw.complete({ model: "smart", messages: [userText("Hi")] });
 */

/** GatewayClientOptions configure createGatewayClient. */
export interface GatewayClientOptions {
  /** baseUrl is the gateway's address, such as http://127.0.0.1:8080. */
  baseUrl: string;
  /** apiKey is the gateway key, sent as `Authorization: Bearer <apiKey>`; omit in open mode. */
  apiKey?: string;
  /** protocol is the wire protocol; "connect" by default. */
  protocol?: "connect" | "grpc" | "grpc-web";
  /** httpVersion is "1.1" or "2" for Connect and gRPC-Web; gRPC always uses HTTP/2. */
  httpVersion?: "1.1" | "2";
  /** binary selects protobuf binary (default) or JSON for Connect and gRPC-Web. */
  binary?: boolean;
  /** interceptors run on every call after the key is attached. */
  interceptors?: Interceptor[];
}

/** GatewayClient is the typed client of GatewayService. */
export type GatewayClient = Client<typeof GatewayService>;

/** createGatewayClient returns a typed client. */
export function createGatewayClient(options: GatewayClientOptions): GatewayClient {
  const auth: Interceptor = (next) => async (req) => {
    if (options.apiKey !== undefined) req.header.set("authorization", `Bearer ${options.apiKey}`);
    return next(req);
  };
  const interceptors = [auth, ...(options.interceptors ?? [])];
  const useBinaryFormat = options.binary ?? true;
  const protocol = options.protocol ?? "connect";
  const transport =
    protocol === "grpc"
      ? createGrpcTransport({ baseUrl: options.baseUrl, interceptors })
      : protocol === "grpc-web"
        ? createGrpcWebTransport({ baseUrl: options.baseUrl, httpVersion: options.httpVersion ?? "1.1", useBinaryFormat, interceptors })
        : createConnectTransport({ baseUrl: options.baseUrl, httpVersion: options.httpVersion ?? "1.1", useBinaryFormat, interceptors });
  return createClient(GatewayService, transport);
}

export { userText, systemText } from "./messages.js";
