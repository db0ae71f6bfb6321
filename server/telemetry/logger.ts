import { closeSync, openSync, writeSync } from "node:fs";
import pino, { type Logger } from "pino";

/**
 * The gateway's logger: pino JSON lines, written in batches so logging
 * stays off the request's critical path.
 *
 * To a file (GATEWAY_LOG_FILE), lines are encoded straight into a 64 KB
 * buffer (FileLines) that is written with one synchronous write() when it
 * fills, at least every FLUSH_MS, and at exit. A write of a whole buffer
 * to a local file takes tens of microseconds every few hundred lines; the
 * asynchronous path it replaced (join the lines into one string, encode it
 * again, hand it to a libuv thread and wait for its completion) cost about
 * three times the CPU per line. pino.destination writes files
 * synchronously by default too. The file is opened for appending, and a
 * write never splits a line, so several processes (cluster workers) can
 * share one file.
 *
 * To stdout, which may be a pipe that fills up, lines are gathered
 * (LineBatch) and handed to pino's destination (SonicBoom, asynchronous)
 * BATCH_CHARS at a time, and at least every FLUSH_MS. SonicBoom's own
 * buffering was measured first and was the expensive part: its write()
 * takes the byte length of its whole pending buffer on every line, which
 * flattens that buffer each time.
 *
 * Nothing the gateway logs carries a key or a prompt (the request line is
 * built field by field), so no redaction pass runs per line.
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
// FileLines' buffer: one write() per this many bytes of lines.
const FILE_BUFFER_BYTES = 64 * 1024;

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

/**
 * FileLines is the stream pino writes to for a file: lines encoded into a
 * buffer, written out synchronously when it fills or is flushed. A failed
 * write (disk full, file removed from a dead mount) drops that buffer's
 * lines and is reported on stderr once per run of failures, never thrown
 * into the request that logged.
 */
export class FileLines {
  private readonly buf = Buffer.allocUnsafe(FILE_BUFFER_BYTES);
  private used = 0;
  private failing = false;
  /** dropped counts lines lost to failed writes. */
  dropped = 0;
  private pendingLines = 0;

  private constructor(
    private readonly fd: number,
    private readonly path: string,
  ) {}

  /** open opens (creating) path for appending; it throws if the file cannot be opened. */
  static open(path: string): FileLines {
    try {
      return new FileLines(openSync(path, "a"), path);
    } catch (err) {
      throw new Error(`cannot open the log file ${path}: ${(err as Error).message}`);
    }
  }

  write(line: string): boolean {
    // UTF-8 takes at most 3 bytes per UTF-16 unit: a line this long always fits once the buffer is empty.
    const worst = line.length * 3;
    if (this.used + worst > this.buf.length) {
      this.flushSync();
      if (worst > this.buf.length) {
        this.writeOut(Buffer.from(line, "utf8"), 1);
        return true;
      }
    }
    this.used += this.buf.write(line, this.used, "utf8");
    this.pendingLines++;
    return true;
  }

  /** flush writes what is buffered (pino's logger.flush calls it). */
  flush(cb?: (err?: Error) => void): void {
    this.flushSync();
    cb?.();
  }

  /** flushSync writes what is buffered before returning. */
  flushSync(): void {
    if (this.used === 0) return;
    const lines = this.pendingLines;
    const bytes = this.used;
    this.used = 0;
    this.pendingLines = 0;
    this.writeOut(this.buf.subarray(0, bytes), lines);
  }

  /** close writes what is buffered and closes the file. */
  close(): void {
    this.flushSync();
    closeSync(this.fd);
  }

  private writeOut(data: Buffer, lines: number): void {
    try {
      let done = 0;
      // A regular file takes the whole write unless something is wrong; a short write is continued.
      while (done < data.length) done += writeSync(this.fd, data, done, data.length - done);
      if (this.failing) process.stderr.write(`llm-gateway: writing the log file ${this.path} works again (${this.dropped} lines were lost)\n`);
      this.failing = false;
    } catch (err) {
      this.dropped += lines;
      if (!this.failing) process.stderr.write(`llm-gateway: cannot write the log file ${this.path}: ${(err as Error).message}; log lines are being dropped\n`);
      this.failing = true;
    }
  }
}

/** LineSink is what the logger's lines go to: a file's FileLines, or stdout's LineBatch. */
interface LineSink {
  write(line: string): boolean;
  flush(cb?: (err?: Error) => void): void;
  flushSync(): void;
}

const batches = new WeakMap<Logger, LineSink>();

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
  let batch: LineSink;
  if (options.destination !== undefined) {
    const file = FileLines.open(options.destination);
    setInterval(() => file.flushSync(), FLUSH_MS).unref();
    batch = file;
  } else {
    const stdout = new LineBatch(pino.destination({ dest: 1, sync: false }));
    setInterval(() => stdout.handOver(), FLUSH_MS).unref();
    batch = stdout;
  }
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
