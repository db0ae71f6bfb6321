import { Agent, createServer, request, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

/**
 * The floor: a bare node:http reverse proxy that pipes each request to the
 * upstream over a keep-alive agent and pipes the answer back, nothing else
 * (no parsing, no auth, no logging). Whatever the gateway adds beyond this
 * is the gateway's own cost; what this adds over going direct is the cost of
 * any Node HTTP hop.
 *
 * Run as a process: `node --import tsx bench/proxy.ts --target
 * http://127.0.0.1:PORT --port 0`; it prints `{"port":N}` when listening.
 */

/** ProxyOptions configure startProxy. */
export interface ProxyOptions {
  /** target is the upstream origin, such as http://127.0.0.1:9000. */
  target: string;
  port?: number;
  host?: string;
}

/** Proxy is a running pipe proxy. */
export interface Proxy {
  readonly origin: string;
  readonly port: number;
  close(): Promise<void>;
}

// Hop-by-hop headers belong to one connection and are not forwarded (RFC 9110 §7.6.1).
function forwardable(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out = { ...headers };
  delete out.connection;
  delete out["keep-alive"];
  return out;
}

/** startProxy starts the proxy and resolves once it is listening. */
export async function startProxy(options: ProxyOptions): Promise<Proxy> {
  const target = new URL(options.target);
  const agent = new Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 4096 });
  const server: Server = createServer({ keepAliveTimeout: 65_000, noDelay: true }, (req, res) => {
    const up = request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: forwardable(req.headers), agent },
      (ur) => {
        res.writeHead(ur.statusCode ?? 502, forwardable(ur.headers));
        ur.pipe(res);
      },
    );
    up.on("error", () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    res.on("close", () => {
      if (!res.writableFinished) up.destroy();
    });
    req.pipe(up);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", resolve);
  });
  const port = (server.address() as AddressInfo).port;
  return {
    origin: `http://${options.host ?? "127.0.0.1"}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        agent.destroy();
      }),
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { target: { type: "string" }, port: { type: "string" }, host: { type: "string" } } });
  if (values.target === undefined) {
    process.stderr.write("usage: proxy.ts --target http://127.0.0.1:PORT [--port N]\n");
    process.exit(2);
  }
  const proxy = await startProxy({ target: values.target, port: Number(values.port ?? 0), host: values.host });
  process.stdout.write(`${JSON.stringify({ port: proxy.port })}\n`);
  const stop = (): void => void proxy.close().then(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
