import { createParser, type EventSourceMessage } from "eventsource-parser";
import { toUpstreamError, type UpstreamBody } from "./http.js";
import type { Cancellation } from "../core/cancel.js";

const LF = 0x0a;

/**
 * SseDecoder turns a streaming body's reads into server-sent events:
 * push() one read, get the events it completed (often none); end() at the
 * end of the body. Separators may be `\n\n`, `\r\r` or `\r\n\r\n` (Gemini
 * uses all three); comments such as DeepSeek's `: keep-alive` are dropped;
 * a final event without its blank line still counts.
 */
export class SseDecoder {
  private batch: EventSourceMessage[] = [];
  private readonly parser = createParser({ onEvent: (event) => this.batch.push(event) });
  private readonly decoder = new TextDecoder();
  private first = true;
  private decoderIdle = true;

  /** push decodes one read and returns the events it completed. */
  push(bytes: Uint8Array): EventSourceMessage[] {
    if (!this.first && this.decoderIdle && bytes[bytes.length - 1] === LF) {
      // Ends on a line feed, so on a whole character: decoded directly, at a third of TextDecoder's streaming cost.
      this.parser.feed((Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)).toString("utf8"));
    } else {
      // The first read goes through the decoder, which drops a byte order mark.
      this.parser.feed(this.decoder.decode(bytes, { stream: true }));
      // Ending on an ASCII byte, the decoder holds no partial character for the next read.
      this.decoderIdle = bytes.length === 0 || bytes[bytes.length - 1]! < 0x80;
      this.first = false;
    }
    return this.take();
  }

  /** end returns the events the end of the body completes. */
  end(): EventSourceMessage[] {
    this.parser.feed(this.decoder.decode());
    this.parser.reset({ consume: true });
    return this.take();
  }

  private take(): EventSourceMessage[] {
    if (this.batch.length === 0) return NO_EVENTS;
    const out = this.batch;
    this.batch = [];
    return out;
  }
}

// Returned for every read that completed no event; never written to.
const NO_EVENTS: EventSourceMessage[] = [];

/**
 * readSse turns a streaming HTTP body into server-sent events (see
 * SseDecoder), delivered in batches: every event completed by one body
 * read, in order (never an empty batch). Transport failures mid-body are
 * thrown as classified UpstreamErrors. Leaving the loop early closes the
 * body.
 *
 * A plain iterator over the body's rather than an async generator: this
 * runs once per streamed chunk, and each generator layer costs a promise
 * and a resumption per step.
 */
export function readSse(body: AsyncIterable<Uint8Array>, signal?: Cancellation): AsyncIterable<EventSourceMessage[]> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<EventSourceMessage[]> {
      const source = body[Symbol.asyncIterator]();
      const sse = new SseDecoder();
      let ended = false;
      return {
        async next(): Promise<IteratorResult<EventSourceMessage[], undefined>> {
          while (!ended) {
            let read: IteratorResult<Uint8Array>;
            try {
              read = await source.next();
            } catch (err) {
              throw toUpstreamError(err, signal);
            }
            let events: EventSourceMessage[];
            if (read.done === true) {
              ended = true;
              events = sse.end();
            } else {
              events = sse.push(read.value);
            }
            if (events.length > 0) return { value: events, done: false };
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
