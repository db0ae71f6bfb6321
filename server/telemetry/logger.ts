import pino, { type Logger } from "pino";

/**
 * The gateway's logger: pino JSON lines, written asynchronously and in
 * batches so logging stays off the request's critical path.
 *
 * Lines are gathered here (LineBatch) and handed to pino's destination
 * (SonicBoom) BATCH_CHARS at a time, and at least every FLUSH_MS so a
 * quiet gateway's lines still appear promptly. SonicBoom's own buffering
 * was measured first and was the expensive part: its write() takes the
 * byte length of its whole pending buffer on every line, which flattens
 * that buffer each time. Nothing the gateway logs carries a key or a
 * prompt (the request line is built field by field), so no redaction pass
 * runs per line.
 */

/** LoggerOptions configure the logger. */
export interface LoggerOptions {
  /** level is the pino level, such as "info". */
  level: string;
  /** destination is a file path; stdout when unset. */
  destination?: string;
}

// Characters, not bytes: the threshold only decides when to hand a batch over.
const BATCH_CHARS = 16 * 1024;
const FLUSH_MS = 100;

type Destination = ReturnType<typeof pino.destination>;

/**
 * LineBatch is the stream pino writes to: whole lines, kept in an array and
 * joined once per batch.
 */
class LineBatch {
  private lines: string[] = [];
  private chars = 0;

  constructor(private readonly dest: Destination) {}

  write(line: string): boolean {
    this.lines.push(line);
    this.chars += line.length;
    if (this.chars >= BATCH_CHARS) this.handOver();
    return true;
  }

  /** flush hands pending lines to the destination and asks it to write them (pino's logger.flush calls it). */
  flush(cb?: (err?: Error) => void): void {
    this.handOver();
    try {
      this.dest.flush(cb);
    } catch (err) {
      // The destination is still opening: it writes what it holds once open.
      cb?.(err as Error);
    }
  }

  /** flushSync writes everything out before returning (at exit). */
  flushSync(): void {
    this.handOver();
    this.dest.flushSync();
  }

  /** handOver passes pending lines to the destination, which writes them as soon as it is free. */
  handOver(): void {
    if (this.lines.length === 0) return;
    const text = this.lines.length === 1 ? this.lines[0]! : this.lines.join("");
    this.lines = [];
    this.chars = 0;
    this.dest.write(text);
  }
}

const batches = new WeakMap<Logger, LineBatch>();

// The date and time up to the second, and the second they are for: they change once a second.
let isoSecond = Number.NaN;
let isoPrefix = "";

/**
 * isoTimeAt renders an epoch-ms time as pino's isoTime does
 * (`,"time":"2026-11-21T11:13:38.123Z"`), formatting a Date once per
 * second rather than once per line (pino's builds one for every line).
 */
export function isoTimeAt(ms: number): string {
  // ((x % n) + n) % n: a time before 1970 still has milliseconds 0..999 within its second.
  const milli = ((ms % 1000) + 1000) % 1000;
  const second = ms - milli;
  if (second !== isoSecond) {
    isoSecond = second;
    // "YYYY-MM-DDTHH:MM:SS." of the ISO form.
    isoPrefix = new Date(second).toISOString().slice(0, -4);
  }
  return `,"time":"${isoPrefix}${milli < 10 ? "00" : milli < 100 ? "0" : ""}${milli}Z"`;
}

/** isoTime is pino's timestamp function: isoTimeAt(now). */
export const isoTime = (): string => isoTimeAt(Date.now());

/** createLogger builds the process logger. */
export function createLogger(options: LoggerOptions): Logger {
  const dest = pino.destination({ dest: options.destination ?? 1, sync: false });
  const batch = new LineBatch(dest);
  const timer = setInterval(() => batch.handOver(), FLUSH_MS);
  timer.unref();
  // A process that exits without shutting down (a crash) still writes what it logged.
  process.once("exit", () => {
    try {
      batch.flushSync();
    } catch {
      // Nothing more can be done at exit.
    }
  });
  const logger = pino({ level: options.level, base: { service: "llm-gateway" }, timestamp: isoTime }, batch);
  batches.set(logger, batch);
  return logger;
}

/** flushLogger writes out buffered lines synchronously (before exit). */
export function flushLogger(logger: Logger): void {
  try {
    const batch = batches.get(logger);
    if (batch !== undefined) batch.flushSync();
    else logger.flush();
  } catch {
    // A destination that never opened has nothing to flush.
  }
}

// pino's own parts of a line, reached through the symbols pino exports for integrations.
interface PinoInternals {
  [key: symbol]: unknown;
}

/**
 * writeInfoLine writes one info-level line whose fields are already JSON
 * text (`"a":1,"b":"x"`, no braces), exactly as logger.info(fields, msg)
 * would, but without pino walking an object: for the one line every
 * request writes. msg must not need JSON escaping.
 */
export function writeInfoLine(logger: Logger, fieldsJson: string, msg: string): void {
  if (!logger.isLevelEnabled("info")) return;
  const l = logger as unknown as PinoInternals;
  const time = (l[pino.symbols.timeSym] as () => string)();
  const bindings = l[pino.symbols.chindingsSym] as string;
  const stream = l[pino.symbols.streamSym] as { write(s: string): unknown };
  stream.write(`{"level":30${time}${bindings},${fieldsJson},"msg":"${msg}"}\n`);
}
