import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";

/**
 * Test support: the gateway as a real child process (`server/main.ts`
 * under tsx), with its JSON log lines collected so tests can wait for one.
 */

/** LogLine is one parsed JSON log line. */
export type LogLine = Record<string, unknown>;

/** GatewayProcess is a running gateway process. */
export interface GatewayProcess {
  child: ChildProcess;
  /** url is the base URL once a listening line was seen ("" before). */
  url: string;
  lines: LogLine[];
  stderr(): string;
  /** waitFor resolves with the first line matching pred, or rejects after ms or when the process exits. */
  waitFor(pred: (l: LogLine) => boolean, ms?: number): Promise<LogLine>;
  exited: Promise<number | null>;
}

/** ROOT is the repository root. */
export const ROOT = join(import.meta.dirname, "..", "..");

/** SpawnGatewayOptions configure spawnGatewayProcess. */
export interface SpawnGatewayOptions {
  /** ready: resolve once a line matches (its `port` becomes url); undefined resolves at once. */
  ready?: (l: LogLine) => boolean;
  env?: NodeJS.ProcessEnv;
  /** strictJson makes a non-JSON stdout line fail the test (the cluster relay must keep lines whole). */
  strictJson?: boolean;
}

/** spawnGatewayProcess starts server/main.ts with args. */
export async function spawnGatewayProcess(args: string[], options: SpawnGatewayOptions = {}): Promise<GatewayProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", "server/main.ts", ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...options.env },
  });
  const lines: LogLine[] = [];
  const waiters: Array<() => void> = [];
  let buf = "";
  child.stdout!.on("data", (d: Buffer) => {
    buf += d.toString("utf8");
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (options.strictJson === true) {
        lines.push(JSON.parse(line) as LogLine);
      } else {
        try {
          lines.push(JSON.parse(line) as LogLine);
        } catch {
          // not a log line
        }
      }
      for (const w of waiters.splice(0)) w();
    }
  });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const waitFor = async (pred: (l: LogLine) => boolean, ms = 15_000): Promise<LogLine> => {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = lines.find(pred);
      if (found) return found;
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`log line not seen; stderr: ${stderr}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 200);
      });
    }
  };
  const running: GatewayProcess = { child, url: "", lines, stderr: () => stderr, waitFor, exited };
  if (options.ready === undefined) return running;
  const listening = await waitFor(options.ready);
  running.url = `http://127.0.0.1:${listening.port as number}`;
  return running;
}
