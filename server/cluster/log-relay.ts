import type { Readable } from "node:stream";

/**
 * Relaying the workers' log output through the primary, whole lines only.
 * The logger batches lines into writes of several KiB; on a pipe (stdout
 * under Docker, Kubernetes or systemd) a write that large is not atomic, and
 * when the reader lags a non-blocking write goes through in parts, so
 * workers sharing one stdout could splice each other's JSON lines. Each
 * worker instead writes to its own pipe, and the primary forwards only up to
 * the last newline of what it has read, through one writer. (A log file
 * needs none of this: appends to a regular file are atomic per write, so
 * with GATEWAY_LOG_FILE every process writes the file directly.)
 */

/** LineSink is where relayed lines go: a pino destination (SonicBoom) or any stream-like writer. */
export interface LineSink {
  /** write queues text and returns false when the caller should wait for "drain". */
  write(text: string): boolean;
  once(event: "drain", listener: () => void): unknown;
}

/** LineRelay forwards whole lines from any number of sources into one sink. */
export interface LineRelay {
  /** add relays source until it ends. */
  add(source: Readable): void;
}

/** MAX_PARTIAL_BYTES bounds a line held back for its newline; a longer one is forwarded as it is. */
const MAX_PARTIAL_BYTES = 1024 * 1024;

/** createLineRelay relays sources into sink, never splitting a line, pausing sources while the sink is full. */
export function createLineRelay(sink: LineSink): LineRelay {
  const paused = new Set<Readable>();
  let waitingForDrain = false;

  const write = (source: Readable, text: string): void => {
    if (sink.write(text)) return;
    source.pause();
    paused.add(source);
    if (waitingForDrain) return;
    waitingForDrain = true;
    sink.once("drain", () => {
      waitingForDrain = false;
      for (const s of paused) s.resume();
      paused.clear();
    });
  };

  return {
    add(source) {
      let partial: Buffer | undefined;
      source.on("data", (chunk: Buffer) => {
        const cut = chunk.lastIndexOf(0x0a);
        if (cut < 0) {
          partial = partial === undefined ? chunk : Buffer.concat([partial, chunk]);
          if (partial.length >= MAX_PARTIAL_BYTES) {
            write(source, partial.toString("utf8"));
            partial = undefined;
          }
          return;
        }
        // Cutting after a newline byte never splits a UTF-8 character, so decoding here is safe.
        const whole = chunk.subarray(0, cut + 1);
        write(source, (partial === undefined ? whole : Buffer.concat([partial, whole])).toString("utf8"));
        partial = cut + 1 < chunk.length ? chunk.subarray(cut + 1) : undefined;
      });
      // A broken pipe from a dying worker must not take the primary down; its exit is handled elsewhere.
      source.on("error", () => {});
      source.once("end", () => {
        // A worker that died mid-line: end the fragment so the next line still parses.
        if (partial !== undefined) write(source, `${partial.toString("utf8")}\n`);
        partial = undefined;
        paused.delete(source);
      });
    },
  };
}
