import { createServer as createHttp1Server, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttp2Server, type Http2ServerRequest, type Http2ServerResponse, type Http2Session } from "node:http2";
import { createServer as createTcpServer, type AddressInfo, type Socket } from "node:net";

/**
 * One port for every protocol. Node's HTTP/2 server does not speak
 * HTTP/1.1 on cleartext, so each new connection is sniffed: a connection
 * that opens with the HTTP/2 preface ("PRI * HTTP/2.0…") goes to the h2c
 * server (gRPC, Connect over h2), anything else to the HTTP/1.1 server
 * (Connect, gRPC-Web, the REST shim, health checks). The first bytes are put
 * back on the socket, so neither server knows it was sniffed.
 */

/** RequestHandler serves one request on either HTTP version. */
export type RequestHandler = (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => void;

/** ListenerOptions configure the listener. */
export interface ListenerOptions {
  host: string;
  port: number;
  handler: RequestHandler;
}

/** Listener is a running one-port server. */
export interface Listener {
  /** port is the bound port (useful with port 0). */
  readonly port: number;
  /** host is the bound address. */
  readonly host: string;
  /** inFlight is the number of requests not yet finished. */
  inFlight(): number;
  /** started is the number of requests received since the listener started. */
  started(): number;
  /**
   * close stops accepting connections, lets in-flight requests and streams
   * finish for up to drainMs, then closes whatever is left.
   */
  close(drainMs: number): Promise<void>;
}

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

/** listen starts the one-port server. */
export async function listen(options: ListenerOptions): Promise<Listener> {
  let inFlight = 0;
  let started = 0;
  let idle: (() => void) | undefined;
  const counted: RequestHandler = (req, res) => {
    inFlight++;
    started++;
    res.once("close", () => {
      inFlight--;
      if (inFlight === 0) idle?.();
    });
    options.handler(req, res);
  };

  // keepAliveTimeout above common load-balancer idle timeouts (60 s), so the LB closes first.
  const h1 = createHttp1Server({ keepAliveTimeout: 65_000, headersTimeout: 66_000, requestTimeout: 0 }, counted);
  const h2 = createHttp2Server({}, counted);
  const sockets = new Set<Socket>();
  const sessions = new Set<Http2Session>();
  h2.on("session", (s) => {
    sessions.add(s);
    s.once("close", () => sessions.delete(s));
  });

  const tcp = createTcpServer({ noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    let seen: Buffer = Buffer.alloc(0);
    const onData = (data: Buffer) => {
      seen = seen.length === 0 ? data : Buffer.concat([seen, data]);
      const n = Math.min(seen.length, PREFACE.length);
      const isH2 = seen.subarray(0, n).equals(PREFACE.subarray(0, n));
      // Undecided until the bytes either diverge from the preface or cover all of it.
      if (isH2 && n < PREFACE.length) return;
      socket.off("data", onData);
      socket.pause();
      socket.unshift(seen);
      (isH2 ? h2 : h1).emit("connection", socket);
      process.nextTick(() => socket.resume());
    };
    socket.on("data", onData);
    socket.on("error", () => socket.destroy());
  });

  await new Promise<void>((resolve, reject) => {
    tcp.once("error", reject);
    tcp.listen(options.port, options.host, () => {
      tcp.off("error", reject);
      resolve();
    });
  });
  const address = tcp.address() as AddressInfo;

  return {
    port: address.port,
    host: address.address,
    inFlight: () => inFlight,
    started: () => started,
    async close(drainMs) {
      const closed = new Promise<void>((resolve) => tcp.close(() => resolve()));
      // Idle keep-alive connections would hold the port open; busy ones finish their request first.
      h1.closeIdleConnections();
      // GOAWAY: HTTP/2 clients open no new streams, running ones complete.
      for (const s of sessions) s.close();
      if (inFlight > 0) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, drainMs);
          idle = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}
