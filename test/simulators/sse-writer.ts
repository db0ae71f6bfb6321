import type { ServerResponse } from "node:http";
import { sleep, type Fault } from "./harness.js";

/**
 * Writing a simulated server-sent-event stream with the harness's stream
 * faults applied (chunk delays, cut, malformed chunk, in-stream error), so
 * the protocol simulators only build their frames.
 */

/** SseFrame is one event: an optional `event:` name and its data. */
export interface SseFrame {
  event?: string;
  data: string;
}

/** SseWriteOptions say how a protocol frames its stream. */
export interface SseWriteOptions {
  /** separator ends each event: "\n\n" (Anthropic) or "\r\n\r\n" (Gemini). */
  separator: string;
  /** errorFrame is the protocol's in-stream error; undefined means the protocol has none (treated as a cut). */
  errorFrame?: SseFrame;
  /** onOpen is called once the stream's headers are sent (tests count open streams to check cancellation). */
  onOpen?: () => void;
  /** onClose is called once when the stream closes, finished or not. */
  onClose?: () => void;
}

/**
 * writeSse sends the headers and then the frames, one chunk per frame,
 * applying `fault`: chunkDelayMs before every frame after the first,
 * cutAfterChunks and errorEventAfterChunks after that many frames,
 * malformedChunkAt replacing one frame's data with `{"broken":`. It stops
 * early when the client goes away.
 */
export async function writeSse(res: ServerResponse, frames: SseFrame[], fault: Fault | undefined, options: SseWriteOptions): Promise<void> {
  res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", ...(fault?.headers ?? {}) });
  options.onOpen?.();
  let closed = false;
  res.on("close", () => {
    if (!closed) {
      closed = true;
      options.onClose?.();
    }
  });
  // Node corks a response's socket until the next tick: destroying it at once would drop the frames
  // already written, so a "cut after N chunks" would deliver none. Let them reach the socket first.
  const cut = (): void => {
    setImmediate(() => res.socket?.destroy());
  };
  const format = (f: SseFrame): string => `${f.event !== undefined ? `event: ${f.event}\n` : ""}data: ${f.data}${options.separator}`;
  for (let i = 0; i < frames.length; i++) {
    if (i > 0 && fault?.chunkDelayMs !== undefined) await sleep(fault.chunkDelayMs);
    if (res.destroyed || res.writableEnded) return;
    if (fault?.cutAfterChunks === i) {
      cut();
      return;
    }
    if (fault?.errorEventAfterChunks === i) {
      if (options.errorFrame === undefined) cut();
      else res.end(format(options.errorFrame));
      return;
    }
    const frame = frames[i]!;
    res.write(format(fault?.malformedChunkAt === i ? { ...frame, data: '{"broken":' } : frame));
  }
  res.end();
}
