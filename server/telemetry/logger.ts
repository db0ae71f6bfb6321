import pino, { type Logger } from "pino";

/**
 * The gateway's logger: pino JSON lines, written asynchronously and in
 * batches so logging stays off the request's critical path. One write
 * syscall per line cost a fifth of the gateway's CPU under load; lines are
 * now gathered up to BATCH_BYTES and flushed at least every FLUSH_MS, so a
 * quiet gateway's lines still appear promptly. Nothing the gateway logs
 * carries a key or a prompt (the request line is built field by field), so
 * no redaction pass runs per line.
 */

/** LoggerOptions configure the logger. */
export interface LoggerOptions {
  /** level is the pino level, such as "info". */
  level: string;
  /** destination is a file path; stdout when unset. */
  destination?: string;
}

// sonic-boom requires minLength below its maxWrite (16 KiB).
const BATCH_BYTES = 8 * 1024;
const FLUSH_MS = 100;

const destinations = new WeakMap<Logger, ReturnType<typeof pino.destination>>();

/** createLogger builds the process logger. */
export function createLogger(options: LoggerOptions): Logger {
  const dest = pino.destination({ dest: options.destination ?? 1, sync: false, minLength: BATCH_BYTES });
  const timer = setInterval(() => {
    // flush() throws while the destination is still opening; the next tick retries.
    try {
      dest.flush();
    } catch {
      // not ready yet
    }
  }, FLUSH_MS);
  timer.unref();
  const logger = pino({ level: options.level, base: { service: "llm-gateway" }, timestamp: pino.stdTimeFunctions.isoTime }, dest);
  destinations.set(logger, dest);
  return logger;
}

/** flushLogger writes out buffered lines synchronously (before exit). */
export function flushLogger(logger: Logger): void {
  const dest = destinations.get(logger);
  try {
    if (dest !== undefined) dest.flushSync();
    else logger.flush();
  } catch {
    // A destination that never opened has nothing to flush.
  }
}
