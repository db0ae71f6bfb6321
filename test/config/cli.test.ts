import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { runCli, type CliIO } from "../../server/cli.js";

const root = fileURLToPath(new URL("../..", import.meta.url));

/** cli runs `node --import tsx server/cli.ts ...` as a user would, with only PATH in the environment. */
function cli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", "server/cli.ts", ...args],
      { cwd: root, env: { PATH: process.env.PATH ?? "" }, timeout: 10_000 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === "number" ? err.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** capture is a CliIO that records lines, for in-process runs. */
function capture(env: NodeJS.ProcessEnv = {}): CliIO & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, env, out: (l) => stdout.push(l), err: (l) => stderr.push(l) };
}

describe("cli: config check", () => {
  let dir: string;
  let bad: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "gw-cli-"));
    bad = join(dir, "bad.yaml");
    writeFileSync(
      bad,
      `providers:
  - { id: sim, type: simulated }
models:
  - { id: sim/echo, provider: sim, context_window: 1000, max_output_tokens: 100, pricing: { input: cheap, output: 1 } }
routes:
  - { id: r, targets: [x/y] }
`,
    );
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("accepts the shipped gateway.yaml (exit 0) and warns about disabled providers", async () => {
    const r = await cli("config", "check", "gateway.yaml");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ok: 9 providers, \d+ models, 4 routes, 0 keys$/m);
    assert.match(r.stdout, /^warning: provider "openai" disabled \(OPENAI_API_KEY is not set\)/m);
    assert.equal(r.stderr, "");
  });

  it("rejects an invalid file (exit 1) with each path-named issue on its own stderr line", async () => {
    const r = await cli("config", "check", bad);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    assert.deepEqual(r.stderr.trimEnd().split("\n"), [`${bad}: models[0].pricing.input: expected a number, got string`]);
  });

  it("reports cross-reference issues once the shape is right", async () => {
    const io = capture();
    const file = join(dir, "refs.yaml");
    writeFileSync(file, "providers: [{ id: sim, type: simulated }]\nroutes:\n  - { id: r, targets: [x/y] }\n");
    assert.equal(await runCli(["config", "check", file], io), 1);
    assert.deepEqual(io.stderr, [`${file}: routes[0].targets[0]: unknown model "x/y" (none are defined)`]);
  });

  it("checks $GATEWAY_CONFIG when no file is given", async () => {
    const io = capture({ GATEWAY_CONFIG: join(root, "gateway.yaml") });
    assert.equal(await runCli(["config", "check"], io), 0);
    assert.match(io.stdout[0]!, /^ok: /);
  });

  it("reports a missing file (exit 1)", async () => {
    const io = capture();
    assert.equal(await runCli(["config", "check", join(dir, "missing.yaml")], io), 1);
    assert.match(io.stderr[0]!, /cannot read the file: no such file$/);
  });

  it("prints usage for an unknown command (exit 2)", async () => {
    const r = await cli("frobnicate");
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command "frobnicate"/);
    assert.match(r.stderr, /config check \[file\]/);
    const io = capture();
    assert.equal(await runCli([], io), 2);
    assert.equal(await runCli(["config", "check", "a", "b"], io), 2);
    assert.equal(await runCli(["--help"], io), 0);
  });
});
