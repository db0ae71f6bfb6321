import { createParser, type EventSourceMessage } from "eventsource-parser";
import { toUpstreamError, type UpstreamBody } from "./http.js";

/**
 * readSse turns a streaming HTTP body into server-sent events. Separators
 * may be `\n\n`, `\r\r` or `\r\n\r\n` (Gemini uses all three); comments such
 * as DeepSeek's `: keep-alive` are dropped. Transport failures mid-body are
 * thrown as classified UpstreamErrors.
 */
export async function* readSse(
  body: AsyncIterable<Uint8Array>,
  signal?: AbortSignal,
): AsyncGenerator<EventSourceMessage> {
  const queue: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (event) => queue.push(event) });
  const decoder = new TextDecoder();
  try {
    for await (const bytes of body) {
      parser.feed(decoder.decode(bytes, { stream: true }));
      while (queue.length > 0) yield queue.shift()!;
    }
  } catch (err) {
    throw toUpstreamError(err, signal);
  }
  parser.feed(decoder.decode());
  // A final event without its blank line is still an event (streams that end abruptly).
  parser.reset({ consume: true });
  while (queue.length > 0) yield queue.shift()!;
}

/** readText reads a whole body as text, classifying transport failures. */
export async function readText(body: UpstreamBody, signal?: AbortSignal): Promise<string> {
  try {
    return await body.text();
  } catch (err) {
    throw toUpstreamError(err, signal);
  }
}
