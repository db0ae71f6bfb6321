/**
 * The live progress line on stderr. On a terminal it rewrites one line in
 * place; otherwise (CI logs, a pipe) it prints a line when the step changes
 * and at most every few seconds, so logs stay readable.
 */

/** Progress reports what the benchmark is doing. */
export interface Progress {
  /** step names the current step, such as "latency round 2/5 gateway". */
  step(text: string): void;
  /** detail updates the live figures of the current step (requests, rate). */
  detail(text: string): void;
  /** note prints a permanent line (a warning, a skipped section). */
  note(text: string): void;
  /** done clears the live line. */
  done(): void;
}

/** createProgress writes to stream (stderr by default). */
export function createProgress(stream: NodeJS.WriteStream = process.stderr): Progress {
  const tty = stream.isTTY === true;
  const t0 = performance.now();
  let current = "";
  let lastPrinted = 0;
  const elapsed = (): string => `${((performance.now() - t0) / 1000).toFixed(0).padStart(4)}s`;
  const width = (): number => (tty ? Math.max(40, (stream.columns ?? 100) - 1) : 10_000);

  function render(text: string, force: boolean): void {
    const line = `[bench ${elapsed()}] ${text}`;
    if (tty) {
      stream.write(`\r\x1b[2K${line.slice(0, width())}`);
      return;
    }
    const now = performance.now();
    if (force || now - lastPrinted > 5000) {
      stream.write(`${line}\n`);
      lastPrinted = now;
    }
  }

  return {
    step(text) {
      current = text;
      render(text, true);
    },
    detail(text) {
      render(`${current} · ${text}`, false);
    },
    note(text) {
      if (tty) stream.write("\r\x1b[2K");
      stream.write(`[bench ${elapsed()}] ${text}\n`);
      if (tty && current !== "") render(current, true);
    },
    done() {
      if (tty) stream.write("\r\x1b[2K");
    },
  };
}
