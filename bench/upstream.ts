import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

/**
 * The benchmark's upstream: a fast OpenAI Chat Completions server on
 * node:http. It does no validation (the strict simulators in test/ are for
 * correctness; this one must cost as little CPU as possible, because it
 * shares a core with the server being measured). Answers are prebuilt
 * buffers: a fixed ~1.4 KB completion with usage, or a stream of N chunks
 * followed by a finish chunk, a usage chunk and [DONE].
 *
 * The scenario comes from the requested model name, so one upstream serves
 * every scenario concurrently and the gateway needs no special headers:
 * `bench[-c<chunks>][-i<intervalMs>][-l<latencyMs>]`, e.g. `bench-c20-i2`
 * streams 20 content chunks 2 ms apart; `-i0` streams as fast as possible;
 * `-l5` waits 5 ms before answering (before the first chunk when streaming).
 *
 * Run as a process: `node --import tsx bench/upstream.ts --port 0
 * [--latency-ms N]`; it prints `{"port":N}` on stdout when listening.
 */

/** UpstreamOptions configure startUpstream. */
export interface UpstreamOptions {
  /** port to listen on; 0 picks a free port. */
  port?: number;
  /** host to listen on; 127.0.0.1 by default. */
  host?: string;
  /** latencyMs is the default delay before answering, when the model name sets none. */
  latencyMs?: number;
}

/** Upstream is a running benchmark upstream. */
export interface Upstream {
  /** origin is http://host:port. */
  readonly origin: string;
  readonly port: number;
  /** requests counts requests answered or started (streams count when they start). */
  requests(): number;
  close(): Promise<void>;
}

/** Scenario is what a model name asks the upstream to do. */
export interface Scenario {
  /** chunks is how many content chunks a stream has. */
  chunks: number;
  /** intervalMs is the gap between content chunks; 0 writes them back to back. */
  intervalMs: number;
  /** latencyMs is the delay before the answer (or the first chunk). */
  latencyMs: number;
}

/** ANSWER_TEXT is the fixed assistant text of a non-streamed answer (the whole body is ~1.4 KB). */
export const ANSWER_TEXT = (
  "The gateway benchmark answer. " +
  "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. " +
  "Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. " +
  "Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur. " +
  "Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt mollit anim id est laborum. "
).repeat(2).trimEnd();

/** CHUNK_TEXT is the content of every streamed chunk (a few tokens, like a real model's delta). */
export const CHUNK_TEXT = " lorem ipsum dolor";

const scenarioPattern = /^bench((?:-[cil]\d+)*)$/;

/**
 * parseScenario reads a scenario from a model name, with defaults: 16
 * chunks, no interval, defaultLatencyMs. Unknown names get the defaults.
 */
export function parseScenario(model: string, defaultLatencyMs = 0): Scenario {
  const s: Scenario = { chunks: 16, intervalMs: 0, latencyMs: defaultLatencyMs };
  const m = scenarioPattern.exec(model);
  if (m === null) return s;
  for (const part of m[1]!.split("-")) {
    if (part === "") continue;
    const n = Number(part.slice(1));
    if (part[0] === "c") s.chunks = Math.max(1, n);
    else if (part[0] === "i") s.intervalMs = n;
    else s.latencyMs = n;
  }
  return s;
}

/** Prebuilt is every byte a scenario answers with, built once per model name. */
interface Prebuilt {
  scenario: Scenario;
  completion: Buffer;
  first: Buffer;
  content: Buffer;
  tail: Buffer;
}

const created = 1_700_000_000;

function prebuild(model: string, defaultLatencyMs: number): Prebuilt {
  const scenario = parseScenario(model, defaultLatencyMs);
  const id = "chatcmpl-bench0000000000000000000000";
  const completion = JSON.stringify({
    id,
    object: "chat.completion",
    created,
    model,
    system_fingerprint: "fp_bench",
    choices: [{ index: 0, message: { role: "assistant", content: ANSWER_TEXT, refusal: null }, logprobs: null, finish_reason: "stop" }],
    usage: {
      prompt_tokens: 42,
      completion_tokens: 256,
      total_tokens: 298,
      prompt_tokens_details: { cached_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0 },
    },
  });
  const chunk = (choices: unknown[], extra: Record<string, unknown> = {}): string =>
    `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created, model, system_fingerprint: "fp_bench", choices, ...extra })}\n\n`;
  const first = chunk([{ index: 0, delta: { role: "assistant", content: CHUNK_TEXT }, logprobs: null, finish_reason: null }]);
  const content = chunk([{ index: 0, delta: { content: CHUNK_TEXT }, logprobs: null, finish_reason: null }]);
  const finish = chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: "stop" }]);
  const usage = chunk([], {
    usage: { prompt_tokens: 42, completion_tokens: scenario.chunks * 3, total_tokens: 42 + scenario.chunks * 3 },
  });
  return {
    scenario,
    completion: Buffer.from(completion),
    first: Buffer.from(first),
    content: Buffer.from(content),
    tail: Buffer.from(`${finish}${usage}data: [DONE]\n\n`),
  };
}

const modelField = /"model"\s*:\s*"([^"]*)"/;
const streamTrue = /"stream"\s*:\s*true/;

/** startUpstream starts the upstream and resolves once it is listening. */
export async function startUpstream(options: UpstreamOptions = {}): Promise<Upstream> {
  const defaultLatencyMs = options.latencyMs ?? 0;
  const cache = new Map<string, Prebuilt>();
  let requests = 0;

  function prebuilt(model: string): Prebuilt {
    let p = cache.get(model);
    if (p === undefined) {
      // Model names come from the harness; the bound only protects a long-running upstream from odd clients.
      if (cache.size > 1000) cache.clear();
      p = prebuild(model, defaultLatencyMs);
      cache.set(model, p);
    }
    return p;
  }

  function answer(res: ServerResponse, p: Prebuilt): void {
    res.writeHead(200, { "content-type": "application/json", "content-length": p.completion.length });
    res.end(p.completion);
  }

  function stream(res: ServerResponse, p: Prebuilt): void {
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    const { chunks, intervalMs } = p.scenario;
    if (intervalMs === 0) {
      res.write(p.first);
      for (let i = 1; i < chunks; i++) res.write(p.content);
      res.end(p.tail);
      return;
    }
    let sent = 1;
    let timer: NodeJS.Timeout | undefined;
    res.write(p.first);
    const tick = (): void => {
      if (sent < chunks) {
        res.write(p.content);
        sent++;
        timer = setTimeout(tick, intervalMs);
      } else {
        timer = undefined;
        res.end(p.tail);
      }
    };
    timer = setTimeout(tick, intervalMs);
    res.once("close", () => {
      if (timer !== undefined) clearTimeout(timer);
    });
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    if (req.method === "GET") {
      res.writeHead(200, { "content-type": "application/json", "content-length": 2 });
      res.end("{}");
      return;
    }
    const parts: Buffer[] = [];
    req.on("data", (b: Buffer) => parts.push(b));
    req.on("end", () => {
      requests++;
      const body = parts.length === 1 ? parts[0]!.toString("latin1") : Buffer.concat(parts).toString("latin1");
      const model = modelField.exec(body)?.[1] ?? "bench";
      const p = prebuilt(model);
      const go = streamTrue.test(body) ? stream : answer;
      if (p.scenario.latencyMs > 0) setTimeout(go, p.scenario.latencyMs, res, p);
      else go(res, p);
    });
  }

  const server: Server = createServer({ keepAliveTimeout: 65_000, noDelay: true }, handle);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", resolve);
  });
  const port = (server.address() as AddressInfo).port;
  return {
    origin: `http://${options.host ?? "127.0.0.1"}:${port}`,
    port,
    requests: () => requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { port: { type: "string" }, host: { type: "string" }, "latency-ms": { type: "string" } } });
  const up = await startUpstream({ port: Number(values.port ?? 0), host: values.host, latencyMs: Number(values["latency-ms"] ?? 0) });
  process.stdout.write(`${JSON.stringify({ port: up.port })}\n`);
  const stop = (): void => void up.close().then(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
