import type { StreamChunk } from "../core/chat.js";
import type { ProviderConfig } from "../config/schema.js";
import type { ProviderAdapter } from "./adapter.js";
import { geminiHttpError } from "./gemini/errors.js";
import { buildGeminiRequest } from "./gemini/request.js";
import { parseGeminiResponse } from "./gemini/response.js";
import { createGeminiStreamDecoder } from "./gemini/stream.js";
import { createJsonUpstream, readJson } from "./json-upstream.js";
import { readSse } from "./sse.js";

/**
 * The Gemini (Generative Language API) adapter. Request mapping, schema
 * cleaning, response mapping, stream decoding and error classification live
 * in ./gemini/; this module wires them to the pooled HTTP client.
 */

/** GEMINI_BASE_URL is the default base URL of the Generative Language API. */
export const GEMINI_BASE_URL = "https://generativelanguage.googleapis.com";

/**
 * createGeminiAdapter builds the adapter of a `gemini` provider. It posts to
 * {base}/v1beta/models/{model}:generateContent and
 * :streamGenerateContent?alt=sse (the version segment is not repeated when
 * base_url already ends in /v1beta or /v1), with the key in
 * `x-goog-api-key`, never in the URL.
 */
export function createGeminiAdapter(provider: ProviderConfig): ProviderAdapter {
  const secrets = [provider.api_key];
  const headers: Record<string, string> = { "content-type": "application/json", accept: "application/json" };
  if (provider.api_key !== undefined && provider.api_key !== "") headers["x-goog-api-key"] = provider.api_key;
  const upstream = createJsonUpstream({
    provider,
    defaultBaseUrl: GEMINI_BASE_URL,
    headers,
    classify: (status, responseHeaders, text) => geminiHttpError(provider.id, status, responseHeaders, text, secrets),
  });
  const versioned = /\/v1(beta\d*|alpha\d*)?$/.test(upstream.basePath);

  function modelPath(upstreamModel: string, method: string): string {
    // Config may name the model as the API lists it ("models/gemini-2.5-flash").
    const name = upstreamModel.replace(/^models\//, "");
    return `${versioned ? "" : "/v1beta"}/models/${encodeURIComponent(name)}:${method}`;
  }

  return {
    providerId: provider.id,

    async complete(call) {
      const body = buildGeminiRequest(call, provider.id);
      const res = await upstream.postJson(modelPath(call.upstreamModel, "generateContent"), body, call.signal, call.onResponseHeaders);
      return parseGeminiResponse(await readJson(res, provider.id, call.signal), provider.id);
    },

    async *stream(call): AsyncGenerator<StreamChunk> {
      const body = buildGeminiRequest(call, provider.id);
      const res = await upstream.postJson(`${modelPath(call.upstreamModel, "streamGenerateContent")}?alt=sse`, body, call.signal, call.onResponseHeaders);
      const decoder = createGeminiStreamDecoder(provider.id, secrets);
      let drained = false;
      try {
        for await (const batch of readSse(res.body, call.signal)) {
          for (const event of batch) {
            const events = decoder.push(event.data);
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
