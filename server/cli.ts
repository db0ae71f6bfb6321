#!/usr/bin/env node
import { pathToFileURL } from "node:url";
import { ConfigError, inspectConfig, readConfigText } from "./config/load.js";
import { diffCatalog, formatCatalogDiff } from "./pricing/diff.js";
import { loadPricingMap, PricingMapError } from "./pricing/litellm.js";

/**
 * The llm-gateway command line, run as `tsx server/cli.ts <command> ...`
 * (or `npm run config:check -- <file>`). Each command is an entry in
 * `commands`: adding one (`pricing diff <map>`) is a new entry, not a new
 * branch in main.
 */

/** CliIO is where a command writes and what environment it reads; tests pass their own. */
export interface CliIO {
  /** out writes one line to standard output. */
  out(line: string): void;
  /** err writes one line to standard error. */
  err(line: string): void;
  /** env is the environment used for `${VAR}` interpolation and defaults. */
  env: NodeJS.ProcessEnv;
}

/** CliCommand is one subcommand. */
interface CliCommand {
  /** words are the command's name, such as ["config", "check"]. */
  words: readonly string[];
  /** args describes the arguments for usage, such as "[file]". */
  args: string;
  /** summary is the one-line description shown in usage. */
  summary: string;
  /** run executes the command with the arguments after its words and returns the exit code. */
  run(args: readonly string[], io: CliIO): number | Promise<number>;
}

/** Exit codes: 0 success, 1 the checked thing is invalid, 2 the command line is wrong. */
const exitOk = 0;
const exitInvalid = 1;
const exitUsage = 2;

const commands: readonly CliCommand[] = [
  {
    words: ["config", "check"],
    args: "[file]",
    summary: "validate a configuration file (default: $GATEWAY_CONFIG or ./gateway.yaml)",
    run(args, io) {
      if (args.length > 1) return usage(io, `config check takes one file, got ${args.length}`);
      const file = args[0] ?? io.env.GATEWAY_CONFIG ?? "gateway.yaml";
      try {
        const { config, warnings } = inspectConfig(readConfigText(file), io.env, file);
        const n = (count: number, noun: string) => `${count} ${noun}${count === 1 ? "" : "s"}`;
        io.out(
          `ok: ${n(config.providers.length, "provider")}, ${n(config.models.length, "model")}, ` +
            `${n(config.routes.length, "route")}, ${n(config.keys.length, "key")}`,
        );
        for (const w of warnings) io.out(`warning: ${w}`);
        return exitOk;
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        // One issue per line, prefixed with the file, as compilers do, so
        // editors and CI annotate the right file.
        for (const issue of err.issues) io.err(`${err.source}: ${issue}`);
        return exitInvalid;
      }
    },
  },
  {
    words: ["pricing", "diff"],
    args: "<map> [--config file]",
    summary: "compare the pricing catalog with a LiteLLM-format price map (exit 0 whatever differs)",
    run(args, io) {
      let mapPath: string | undefined;
      let file = io.env.GATEWAY_CONFIG ?? "gateway.yaml";
      for (let i = 0; i < args.length; i++) {
        const a = args[i]!;
        if (a === "--config") {
          const next = args[++i];
          if (next === undefined) return usage(io, "--config needs a file");
          file = next;
        } else if (a.startsWith("--config=")) file = a.slice("--config=".length);
        else if (mapPath === undefined) mapPath = a;
        else return usage(io, `pricing diff takes one map, got "${mapPath}" and "${a}"`);
      }
      if (mapPath === undefined) return usage(io, "pricing diff needs the path of a LiteLLM-format map");
      try {
        const { config } = inspectConfig(readConfigText(file), io.env, file);
        const map = loadPricingMap(mapPath);
        io.out(`catalog ${file}: ${config.models.length} models`);
        for (const line of formatCatalogDiff(diffCatalog(config, map), map)) io.out(line);
        return exitOk;
      } catch (err) {
        if (err instanceof ConfigError) {
          for (const issue of err.issues) io.err(`${err.source}: ${issue}`);
          return exitInvalid;
        }
        if (err instanceof PricingMapError) {
          io.err(err.message);
          return exitInvalid;
        }
        throw err;
      }
    },
  },
];

function usage(io: CliIO, problem?: string): number {
  if (problem !== undefined) io.err(`error: ${problem}`);
  io.err("usage: tsx server/cli.ts <command> [args]");
  io.err("");
  io.err("commands:");
  for (const c of commands) io.err(`  ${[...c.words, c.args].join(" ").padEnd(28)} ${c.summary}`);
  return exitUsage;
}

/**
 * runCli runs the command named by argv (the arguments after the script)
 * and returns its exit code: 0 ok, 1 invalid input, 2 usage error.
 */
export async function runCli(argv: readonly string[], io: CliIO): Promise<number> {
  if (argv.length === 0 || argv[0] === "help" || argv[0] === "--help" || argv[0] === "-h") {
    const code = usage(io);
    return argv.length === 0 ? code : exitOk;
  }
  const command = commands.find((c) => c.words.every((w, i) => argv[i] === w));
  if (command === undefined) return usage(io, `unknown command "${argv.join(" ")}"`);
  return command.run(argv.slice(command.words.length), io);
}

// Run only when executed, not when imported (tests import runCli).
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const io: CliIO = {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    env: process.env,
  };
  process.exitCode = await runCli(process.argv.slice(2), io);
}
