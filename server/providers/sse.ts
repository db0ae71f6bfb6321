import { createParser, type EventSourceMessage } from "eventsource-parser";
import { toUpstreamError, type UpstreamBody } from "./http.js";
import type { Cancellation } from "../core/cancel.js";

const LF = 0x0a;

/**
 * readSse turns a streaming HTTP body into server-sent events, delivered in
 * batches: every event completed by one body read, in order (never an
 * empty batch). Separators may be `\n\n`, `\r\r` or `\r\n\r\n` (Gemini
 * uses all three); comments such as DeepSeek's `: keep-alive` are dropped;
 * a final event without its blank line still counts. Transport failures
 * mid-body are thrown as classified UpstreamErrors. Leaving the loop early
 * closes the body.
 *
 * A plain iterator over the body's rather than an async generator: this
 * runs once per streamed chunk, and each generator layer costs a promise
 * and a resumption per step.
 */
export function readSse(body: AsyncIterable<Uint8Array>, signal?: Cancellation): AsyncIterable<EventSourceMessage[]> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<EventSourceMessage[]> {
      const source = body[Symbol.asyncIterator]();
      let batch: EventSourceMessage[] = [];
      const parser = createParser({ onEvent: (event) => batch.push(event) });
      const decoder = new TextDecoder();
      let first = true;
      let decoderIdle = true;
      let ended = false;
      const take = (): EventSourceMessage[] => {
        const out = batch;
        batch = [];
        return out;
      };
      return {
        async next(): Promise<IteratorResult<EventSourceMessage[], undefined>> {
          while (!ended) {
            let read: IteratorResult<Uint8Array>;
            try {
              read = await source.next();
            } catch (err) {
              throw toUpstreamError(err, signal);
            }
            if (read.done === true) {
              ended = true;
              parser.feed(decoder.decode());
              parser.reset({ consume: true });
            } else {
              const bytes = read.value;
              if (!first && decoderIdle && bytes[bytes.length - 1] === LF) {
                // Ends on a line feed, so on a whole character: decoded directly, at a third of TextDecoder's streaming cost.
                parser.feed((Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)).toString("utf8"));
              } else {
                // The first read goes through the decoder, which drops a byte order mark.
                parser.feed(decoder.decode(bytes, { stream: true }));
                // Ending on an ASCII byte, the decoder holds no partial character for the next read.
                decoderIdle = bytes.length === 0 || bytes[bytes.length - 1]! < 0x80;
                first = false;
              }
            }
            if (batch.length > 0) return { value: take(), done: false };
          }
          return { value: undefined, done: true };
        },
        async return(): Promise<IteratorResult<EventSourceMessage[], undefined>> {
          ended = true;
          await source.return?.();
          return { value: undefined, done: true };
        },
      };
    },
  };
}

/** readText reads a whole body as text, classifying transport failures. */
export async function readText(body: UpstreamBody, signal?: Cancellation): Promise<string> {
  try {
    return await body.text();
  } catch (err) {
    throw toUpstreamError(err, signal);
  }
}
