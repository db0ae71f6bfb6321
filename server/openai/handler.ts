import type { Logger } from "pino";
import type { Gateway, RequestContext } from "../core/gateway.js";
import { requestIdFrom } from "../core/ids.js";
import { callerSignal, header, parseJsonBody, readBody, sendJson, write, type HttpRequest, type HttpResponse } from "../http/io.js";
import { nanoToUsdString } from "../pricing/cost.js";
import { budgetHeaders } from "../budgets/spend.js";
import { serveCostEstimate, serveSpend } from "./cost.js";
import { toOpenAIError } from "./errors.js";
import { listModels } from "./models.js";
import { parseChatRequest } from "./request.js";
import { ChunkEncoder, completionToOpenAI, gatewayJson } from "./response.js";

/**
 * The OpenAI-compatible REST shim: `POST /v1/chat/completions` (whole and
 * SSE) and `GET /v1/models`, over the same core as the RPCs. Where the
 * upstream speaks OpenAI's format, stream chunks are forwarded byte for
 * byte; only the usage chunk is rebuilt, to carry the gateway's cost.
 */

/** OpenAIHandlerOptions configure the shim. */
export interface OpenAIHandlerOptions {
  /** maxBodyBytes is the largest request body accepted. */
  maxBodyBytes: number;
  logger: Logger;
}

/** OpenAIHandler serves a request if its path is one of the shim's; it returns false otherwise. */
export type OpenAIHandler = (req: HttpRequest, res: HttpResponse) => boolean;

/** createOpenAIHandler builds the shim. */
export function createOpenAIHandler(gateway: Gateway, options: OpenAIHandlerOptions): OpenAIHandler {
  async function chatCompletions(req: HttpRequest, res: HttpResponse, requestId: string, startedAt: number): Promise<void> {
    const caller = gateway.authenticate(header(req, "authorization"));
    const { request, stream, includeUsage } = parseChatRequest(parseJsonBody(await readBody(req, options.maxBodyBytes)));
    const traceparent = header(req, "traceparent");
    const ctx: RequestContext = {
      requestId,
      edge: "rest",
      caller,
      signal: callerSignal(res),
      startedAt,
      traceHeaders: traceparent === undefined ? undefined : { traceparent, tracestate: header(req, "tracestate") },
    };
    const created = Math.floor(Date.now() / 1000);

    if (!stream) {
      const out = await gateway.complete(request, ctx);
      const body = completionToOpenAI({
        id: out.id,
        created,
        model: out.deployment.id,
        output: out.result.output,
        finishReason: out.result.finishReason,
        usage: out.result.usage,
        gateway: gatewayJson(out.deployment.provider.id, out.deployment.id, out.cost, out.trace),
      });
      sendJson(res, 200, body, {
        "x-request-id": requestId,
        "x-gateway-provider": out.deployment.provider.id,
        "x-gateway-model": out.deployment.id,
        "x-gateway-attempts": String(out.trace.attempts.length),
        "x-gateway-cost-usd": nanoToUsdString(out.cost.total),
        ...budgetHeaders(out),
      });
      return;
    }

    const events = gateway.stream(request, ctx);
    let encoder: ChunkEncoder | undefined;
    try {
      for await (const e of events) {
        if (e.type === "start") {
          encoder = new ChunkEncoder(e.id, created, e.deployment.id);
          (res as import("node:http").ServerResponse).writeHead(200, {
            "content-type": "text/event-stream; charset=utf-8",
            "cache-control": "no-cache",
            "x-request-id": requestId,
            "x-gateway-provider": e.deployment.provider.id,
            "x-gateway-model": e.deployment.id,
            "x-gateway-attempts": String(e.attempts),
            ...budgetHeaders(e),
          });
          // No flushHeaders(): "start" comes with the first token already in hand, and the headers
          // leave in the same write as that token's chunk (one syscall, not two, before the first token).
        } else if (e.type === "chunk") {
          const { chunk } = e;
          // Forward OpenAI-format bytes (rebranded) where possible; the usage chunk is rebuilt to carry the cost.
          const data =
            chunk.openaiTail !== undefined && !chunk.events.some((x) => x.type === "usage") ? encoder!.forward(chunk.openaiTail) : encoder!.delta(chunk.events);
          if (data !== undefined) {
            // Awaited only when the socket is full: an await per chunk costs a microtask turn.
            const written = write(res, `data: ${data}\n\n`);
            if (written === false || (written !== true && !(await written))) break;
          }
        } else {
          if (e.error !== undefined) {
            const err = { error: { message: e.error.message, type: "server_error", param: null, code: e.error.errorClass } };
            await write(res, `data: ${JSON.stringify(err)}\n\n`);
          } else if (includeUsage) {
            const d = e.trace.attempts[e.trace.attempts.length - 1];
            await write(res, `data: ${encoder!.usage(e.usage, gatewayJson(d?.provider ?? "", d?.model ?? "", e.cost, e.trace))}\n\n`);
          }
          if (e.error === undefined) await write(res, "data: [DONE]\n\n");
        }
      }
    } finally {
      await events.return();
      // Before "start" nothing was sent: leave the response to fail(), which answers with the error's status.
      if (res.headersSent && !res.writableEnded && !res.destroyed) res.end();
    }
  }

  function fail(res: HttpResponse, requestId: string, err: unknown): void {
    const reply = toOpenAIError(err);
    if (res.headersSent) {
      // A failure after the stream began: report it in-band, as OpenAI does.
      if (!res.writableEnded) res.end(`data: ${reply.body}\n\n`);
      return;
    }
    if (reply.status === 500) options.logger.error({ err, requestId }, "unexpected error in the REST shim");
    sendJson(res, reply.status, reply.body, { ...reply.headers, "x-request-id": requestId });
  }

  return (req, res) => {
    const path = req.url ?? "";
    const q = path.indexOf("?");
    const pathname = q < 0 ? path : path.slice(0, q);
    const startedAt = performance.now();
    if (pathname === "/v1/chat/completions") {
      const requestId = requestIdFrom(req.headers["x-request-id"]);
      if (req.method !== "POST") {
        sendJson(res, 405, JSON.stringify({ error: { message: "use POST", type: "invalid_request_error", param: null, code: "method_not_allowed" } }), { allow: "POST" });
        return true;
      }
      chatCompletions(req, res, requestId, startedAt).catch((err: unknown) => fail(res, requestId, err));
      return true;
    }
    if (pathname === "/v1/cost/estimate" || pathname === "/v1/spend") {
      const requestId = requestIdFrom(req.headers["x-request-id"]);
      const method = pathname === "/v1/spend" ? "GET" : "POST";
      if (req.method !== method) {
        sendJson(res, 405, JSON.stringify({ error: { message: `use ${method}`, type: "invalid_request_error", param: null, code: "method_not_allowed" } }), { allow: method });
        return true;
      }
      const served = method === "GET" ? serveSpend(gateway, req, res, requestId) : serveCostEstimate(gateway, req, res, requestId, options.maxBodyBytes);
      served.catch((err: unknown) => fail(res, requestId, err));
      return true;
    }
    if (pathname === "/v1/models" || pathname.startsWith("/v1/models/")) {
      const requestId = requestIdFrom(req.headers["x-request-id"]);
      try {
        const caller = gateway.authenticate(header(req, "authorization"));
        const one = pathname.length > "/v1/models/".length ? decodeURIComponent(pathname.slice("/v1/models/".length)) : undefined;
        sendJson(res, 200, listModels(gateway.runtime(), caller, one), { "x-request-id": requestId });
      } catch (err) {
        fail(res, requestId, err);
      }
      return true;
    }
    return false;
  };
}
