import { join } from "node:path";
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

/**
 * Starting and stopping the benchmark's server processes: the upstream,
 * the pipe proxy and the gateway each run as their own Node process
 * (`node --import tsx …`), optionally pinned with taskset, so their CPU and
 * memory can be read from /proc separately and they never share an event
 * loop with the load generator.
 */

// Running compiled (dist/bench/servers.js, as `npm run bench` does) puts this file one level deeper.
const RUNNING_COMPILED = import.meta.url.endsWith(".js");

/** REPO_ROOT is the repository root (the parent of bench/, or of dist/bench/ when compiled). */
export const REPO_ROOT = fileURLToPath(new URL(RUNNING_COMPILED ? "../.." : "..", import.meta.url));

/**
 * compiled maps a source entry point (relative to the repository root) to
 * what should run: its dist/ build when the harness itself runs compiled,
 * so the gateway is measured as `npm start` runs it; the .ts under tsx
 * otherwise.
 */
export function compiled(script: string): string {
  return RUNNING_COMPILED ? join("dist", script.replace(/\.ts$/, ".js")) : script;
}

/** ServerProcess is a running child server. */
export interface ServerProcess {
  readonly name: string;
  readonly pid: number;
  readonly port: number;
  /** origin is http://127.0.0.1:port. */
  readonly origin: string;
  /** output is what the process wrote to stdout and stderr so far (capped). */
  output(): string;
  /** exited resolves with the exit code (or the signal name) when the process ends. */
  readonly exited: Promise<number | string>;
  /** stop sends SIGTERM, waits up to timeoutMs for a clean exit, then kills it. */
  stop(timeoutMs?: number): Promise<void>;
}

/** Readiness says how to learn that a server is up and on which port. */
export type Readiness =
  /** the process prints a JSON line {"port":N} on stdout */
  | { kind: "stdout-port" }
  /** the process listens on a known port and answers GET path with 200 */
  | { kind: "http"; port: number; path: string };

/** SpawnOptions configure spawnServer. */
export interface SpawnOptions {
  name: string;
  /** script is the entry file, relative to the repository root. */
  script: string;
  args?: string[];
  env?: Record<string, string>;
  /** nodeFlags go before --import tsx (such as --cpu-prof). */
  nodeFlags?: string[];
  /** cpus is a taskset CPU list; the process is not pinned when undefined. */
  cpus?: string;
  /** wrapper is a command the node process runs under (such as valgrind and its options), keeping its pid. */
  wrapper?: string[];
  readiness: Readiness;
  /** timeoutMs bounds the wait for readiness; default 20 s. */
  timeoutMs?: number;
}

/** ServerStartError is thrown when a server exits or times out before it is ready. */
export class ServerStartError extends Error {
  constructor(
    message: string,
    /** output is what the process printed before it failed. */
    readonly output: string,
    /** exitCode is the exit code or signal, when the process exited. */
    readonly exitCode?: number | string,
  ) {
    super(message);
    this.name = "ServerStartError";
  }
}

/** firstErrorLine picks the line of a process's output that best says why it failed. */
export function firstErrorLine(output: string): string {
  const lines = output.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  // A Node stack trace starts with the source line that threw; the "XxxError: message" line says why.
  const named = lines.find((l) => /^[A-Za-z]*Error\b.*:/.test(l) || /^llm-gateway:/.test(l));
  return (named ?? lines.find((l) => /error|invalid|unknown|cannot/i.test(l)) ?? lines[0] ?? "no output").slice(0, 300);
}

/** freePort asks the OS for a free loopback port (free now; a race is possible but unlikely on loopback). */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", resolve);
  });
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
}

async function httpOk(port: number, path: string): Promise<boolean> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

/**
 * nodeCommand is the command line that runs a script (from compiled())
 * with this Node, under an optional wrapper (valgrind), pinned to cpus
 * when given: [command, arguments].
 */
export function nodeCommand(options: Pick<SpawnOptions, "script" | "args" | "nodeFlags" | "wrapper" | "cpus">): [string, string[]] {
  // Compiled entry points (dist/**/*.js, what `npm start` runs) need no loader; .ts sources run under tsx.
  const loader = options.script.endsWith(".ts") ? ["--import", "tsx"] : [];
  const nodeArgs = [...(options.nodeFlags ?? []), ...loader, options.script, ...(options.args ?? [])];
  const command = [...(options.wrapper ?? []), process.execPath, ...nodeArgs];
  return options.cpus === undefined ? [command[0]!, command.slice(1)] : ["taskset", ["-c", options.cpus, ...command]];
}

/** spawnServer starts a Node server process and resolves when it is ready. */
export async function spawnServer(options: SpawnOptions): Promise<ServerProcess> {
  const [cmd, args] = nodeCommand(options);
  const child: ChildProcess = spawn(cmd, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const keep = (b: Buffer): void => {
    // Only the start matters (the port line, a startup error); cap it so a chatty process cannot grow the harness.
    if (output.length < 64 * 1024) output += b.toString("utf8");
  };
  child.stdout!.on("data", keep);
  child.stderr!.on("data", keep);
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown"));
  });
  let exitedWith: number | string | undefined;
  void exited.then((c) => (exitedWith = c));

  const timeoutMs = options.timeoutMs ?? 20_000;
  const deadline = Date.now() + timeoutMs;
  let port = -1;
  if (options.readiness.kind === "stdout-port") {
    port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new ServerStartError(`${options.name}: not ready after ${timeoutMs} ms`, output)), timeoutMs);
      const onData = (): void => {
        const m = /\{"port":(\d+)\}/.exec(output);
        if (m !== null) {
          clearTimeout(timer);
          child.stdout!.off("data", onData);
          resolve(Number(m[1]));
        }
      };
      child.stdout!.on("data", onData);
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new ServerStartError(`${options.name} exited (${code}) before it was ready`, output, code));
      });
    });
  } else {
    port = options.readiness.port;
    for (;;) {
      if (exitedWith !== undefined) throw new ServerStartError(`${options.name} exited (${exitedWith}) before it was ready`, output, exitedWith);
      if (await httpOk(port, options.readiness.path)) break;
      if (Date.now() > deadline) {
        child.kill("SIGKILL");
        throw new ServerStartError(`${options.name}: not ready after ${timeoutMs} ms`, output);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  return {
    name: options.name,
    pid: child.pid!,
    port,
    origin: `http://127.0.0.1:${port}`,
    output: () => output,
    exited,
    async stop(stopTimeoutMs = 15_000) {
      if (exitedWith !== undefined) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), stopTimeoutMs);
      await exited;
      clearTimeout(timer);
    },
  };
}
