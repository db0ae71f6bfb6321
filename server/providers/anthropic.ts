import type { StreamChunk } from "../core/chat.js";
import type { ProviderConfig } from "../config/schema.js";
import type { ProviderAdapter } from "./adapter.js";
import { buildAnthropicRequest } from "./anthropic/request.js";
import { parseAnthropicMessage } from "./anthropic/response.js";
import { anthropicHttpError } from "./anthropic/errors.js";
import { createAnthropicStreamDecoder } from "./anthropic/stream.js";
import { createJsonUpstream, readJson } from "./json-upstream.js";
import { readSse } from "./sse.js";

/**
 * The Anthropic Messages adapter. Request mapping, response mapping, stream
 * decoding and error classification live in ./anthropic/; this module wires
 * them to the pooled HTTP client.
 */

/** ANTHROPIC_BASE_URL is the default base URL of the Messages API. */
export const ANTHROPIC_BASE_URL = "https://api.anthropic.com";

/** ANTHROPIC_VERSION is the API version header sent unless the provider's headers set another. */
export const ANTHROPIC_VERSION = "2023-06-01";

/**
 * createAnthropicAdapter builds the adapter of an `anthropic` provider. It
 * posts to {base}/v1/messages (or {base}/messages when base_url already ends
 * in /v1) with `x-api-key` and `anthropic-version`; configured headers are
 * added and win.
 */
export function createAnthropicAdapter(provider: ProviderConfig): ProviderAdapter {
  const secrets = [provider.api_key];
  const headers: Record<string, string> = {
    "content-type": "application/json",
    accept: "application/json",
    "anthropic-version": ANTHROPIC_VERSION,
  };
  if (provider.api_key !== undefined && provider.api_key !== "") headers["x-api-key"] = provider.api_key;
  const upstream = createJsonUpstream({
    provider,
    defaultBaseUrl: ANTHROPIC_BASE_URL,
    headers,
    classify: (status, responseHeaders, text) => anthropicHttpError(provider.id, status, responseHeaders, text, secrets),
  });
  const path = upstream.basePath.endsWith("/v1") ? "/messages" : "/v1/messages";

  return {
    providerId: provider.id,

    async complete(call) {
      const body = buildAnthropicRequest(call, provider.id, false);
      const res = await upstream.postJson(path, body, call.signal, call.onResponseHeaders);
      return parseAnthropicMessage(await readJson(res, provider.id, call.signal), provider.id);
    },

    async *stream(call): AsyncGenerator<StreamChunk> {
      const body = buildAnthropicRequest(call, provider.id, true);
      const res = await upstream.postJson(path, body, call.signal, call.onResponseHeaders);
      const decoder = createAnthropicStreamDecoder(provider.id, secrets);
      let drained = false;
      try {
        for await (const batch of readSse(res.body, call.signal)) {
          for (const event of batch) {
            const events = decoder.push(event.event ?? "", event.data);
            if (events.length > 0) yield { events };
          }
        }
        drained = true;
        decoder.end();
      } finally {
        // The caller stopped early or the stream failed: close the upstream request.
        if (!drained) res.body.destroy();
      }
    },

    close: () => upstream.close(),
  };
}
