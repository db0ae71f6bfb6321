import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo, Socket } from "node:net";

/**
 * The shared harness of the provider simulators: a real HTTP server on
 * loopback, a log of every request received (so tests can count hits and
 * inspect what the gateway sent), and a queue of faults to inject. Each
 * protocol simulator (openai.ts, anthropic.ts, gemini.ts) supplies only its
 * routes and its wire format.
 */

/** Fault is one injected misbehaviour, applied to the next matching request(s). */
export interface Fault {
  /** model restricts the fault to requests for this upstream model. */
  model?: string;
  /** times is how many requests it applies to; default 1, Infinity for all. */
  times?: number;
  /** status answers with this HTTP status instead of a normal answer. */
  status?: number;
  /** body is the error body (object → JSON, string → sent as is); a protocol default otherwise. */
  body?: unknown;
  /** headers are added to the response, such as retry-after. */
  headers?: Record<string, string>;
  /** firstTokenDelayMs delays the response headers (and so the first token). */
  firstTokenDelayMs?: number;
  /** chunkDelayMs delays every streamed chunk after the first. */
  chunkDelayMs?: number;
  /** cutAfterChunks destroys the connection after this many streamed chunks. */
  cutAfterChunks?: number;
  /** malformedChunkAt replaces streamed chunk N (0-based) with invalid JSON. */
  malformedChunkAt?: number;
  /** errorEventAfterChunks sends the protocol's in-stream error after N chunks, then ends. */
  errorEventAfterChunks?: number;
  /** errorEvent is the in-stream error payload; a protocol default otherwise. */
  errorEvent?: unknown;
  /** resetConnection destroys the socket without answering. */
  resetConnection?: boolean;
}

/** RecordedRequest is one request the simulator received. */
export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
  /** body is the parsed JSON body, or the raw text when it was not JSON. */
  body: unknown;
  /** closedEarly becomes true when the client went away before the response was finished. */
  closedEarly: boolean;
}

/** FaultQueue holds faults until requests consume them. */
export class FaultQueue {
  private faults: Array<Fault & { left: number }> = [];

  /** add queues a fault. */
  add(fault: Fault): void {
    this.faults.push({ ...fault, left: fault.times ?? 1 });
  }

  /** clear drops every queued fault. */
  clear(): void {
    this.faults = [];
  }

  /** take returns the first fault matching this model and consumes one use of it. */
  take(model: string | undefined): Fault | undefined {
    const i = this.faults.findIndex((f) => f.model === undefined || f.model === model);
    if (i < 0) return undefined;
    const f = this.faults[i]!;
    f.left -= 1;
    if (f.left <= 0) this.faults.splice(i, 1);
    return f;
  }
}

/** SimContext is what a protocol handler gets for one request. */
export interface SimContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  /** body is the parsed JSON body (undefined when empty or not JSON). */
  body: unknown;
  /** rawBody is the body text. */
  rawBody: string;
  /** fault is the fault chosen for this request, if any; the handler applies it. */
  takeFault(model: string | undefined): Fault | undefined;
}

/** Simulator is a running simulator. */
export interface Simulator {
  /** url is the base URL, such as http://127.0.0.1:43123. */
  url: string;
  /** requests logs every request received, oldest first. */
  requests: RecordedRequest[];
  /** faults is the injection queue. */
  faults: FaultQueue;
  /** hits counts requests to paths that generate (not model listings). */
  hits(): number;
  /** close stops the server and destroys open connections. */
  close(): Promise<void>;
}

/** startSimulator starts a simulator on an ephemeral loopback port. */
export async function startSimulator(
  handler: (ctx: SimContext) => Promise<void> | void,
  isGeneration: (path: string) => boolean,
): Promise<Simulator> {
  const requests: RecordedRequest[] = [];
  const faults = new FaultQueue();
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const rawBody = Buffer.concat(chunks).toString("utf8");
      let body: unknown;
      try {
        body = rawBody === "" ? undefined : JSON.parse(rawBody);
      } catch {
        body = undefined;
      }
      const url = new URL(req.url ?? "/", "http://sim");
      const record: RecordedRequest = { method: req.method ?? "", path: url.pathname + url.search, headers: req.headers, body: body ?? rawBody, closedEarly: false };
      requests.push(record);
      res.once("close", () => {
        if (!res.writableFinished) record.closedEarly = true;
      });
      const ctx: SimContext = { req, res, url, body, rawBody, takeFault: (m) => faults.take(m) };
      Promise.resolve(handler(ctx)).catch((err: unknown) => {
        if (!res.headersSent) {
          res.writeHead(500, { "content-type": "application/json" });
          res.end(JSON.stringify({ error: { message: String(err) } }));
        } else {
          res.destroy();
        }
      });
    });
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    faults,
    hits: () => requests.filter((r) => isGeneration(r.path)).length,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** sleep waits, but never on the gateway's side: only simulators use it. */
export function sleep(ms: number): Promise<void> {
  return ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve();
}

/** sendJson writes a JSON response. */
export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(text);
}

/**
 * answerText derives a deterministic answer from the prompt, so tests can
 * predict it: "Echo: <last user text>" cut to `tokens` words.
 */
export function answerText(prompt: string, tokens: number): string {
  const words = `Echo: ${prompt}`.split(/\s+/).filter((w) => w !== "");
  while (words.length < tokens) words.push(`w${words.length}`);
  return words.slice(0, tokens).join(" ");
}

/** countTokens is the simulators' tokenizer: one token per whitespace-separated word, at least 1. */
export function countTokens(text: string): number {
  const n = text.split(/\s+/).filter((w) => w !== "").length;
  return Math.max(1, n);
}
