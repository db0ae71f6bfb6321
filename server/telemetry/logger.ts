import pino, { type Logger } from "pino";

/**
 * The gateway's logger: pino JSON lines, written asynchronously so logging
 * stays off the request's critical path. Provider keys and gateway tokens are
 * redacted by path as a second line of defence; the code never logs them.
 */

/** LoggerOptions configure the logger. */
export interface LoggerOptions {
  /** level is the pino level, such as "info". */
  level: string;
  /** destination is a file path; stdout when unset. */
  destination?: string;
}

/** createLogger builds the process logger. */
export function createLogger(options: LoggerOptions): Logger {
  const dest = pino.destination({ dest: options.destination ?? 1, sync: false });
  return pino(
    {
      level: options.level,
      base: { service: "llm-gateway" },
      redact: { paths: ["api_key", "*.api_key", "authorization", "*.authorization", "headers.authorization"], censor: "[redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    dest,
  );
}

/** flushLogger writes out buffered lines (on shutdown). */
export function flushLogger(logger: Logger): void {
  logger.flush();
}
