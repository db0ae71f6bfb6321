import type { ChatRequest, ChatResult, StreamChunk } from "../core/chat.js";
import type { ModelConfig, ProviderConfig } from "../config/schema.js";
import type { Cancellation } from "../core/cancel.js";

/**
 * The provider adapter contract. An adapter speaks one wire protocol; it
 * turns a normalized ChatRequest into the provider's request, and the
 * provider's response or stream back into normalized results and events. It
 * throws UpstreamError (classified, sanitized) for every failure.
 */

/** AdapterCall is one upstream call. */
export interface AdapterCall {
  /** request is the normalized request. */
  request: ChatRequest;
  /** model is the deployment's configuration (limits, capabilities). */
  model: ModelConfig;
  /** upstreamModel is the provider's name for the model. */
  upstreamModel: string;
  /** signal aborts the upstream work (caller left, deadline, hedge lost). */
  signal: Cancellation;
  /** promptTokens is the gateway's estimate of the prompt, the figure the request was routed by (when routed). */
  promptTokens?: number;
  /**
   * onResponseHeaders, when set, is called once with the upstream's status
   * and headers as soon as they arrive, for errors too: the router learns
   * the provider's rate-limit headers from it. It must not throw.
   */
  onResponseHeaders?: (status: number, headers: Record<string, string | string[] | undefined>) => void;
}

/** ProviderAdapter is one provider's implementation of the wire protocol. */
export interface ProviderAdapter {
  /** providerId is the provider's id from the configuration. */
  readonly providerId: string;
  /**
   * complete performs a non-streaming call. It resolves with the whole
   * answer or rejects with an UpstreamError.
   */
  complete(call: AdapterCall): Promise<ChatResult>;
  /**
   * stream performs a streaming call. The returned iterable rejects with an
   * UpstreamError before the first chunk for failures the router may fail
   * over from, and mid-stream for failures after tokens arrived. Usage is
   * always requested from the provider and delivered as a "usage" event.
   * Breaking out of the iteration cancels the upstream request.
   */
  stream(call: AdapterCall): AsyncIterable<StreamChunk>;
  /** close releases pooled connections. */
  close(): Promise<void>;
}

/** AdapterFactory builds an adapter for one configured provider. */
export type AdapterFactory = (provider: ProviderConfig) => ProviderAdapter;
