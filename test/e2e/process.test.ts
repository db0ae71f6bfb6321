import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync, renameSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";

// The gateway as a real process: it reloads its configuration on SIGHUP
// and on file change (rejecting an invalid file and keeping the old one),
// and on SIGTERM drains in-flight streams before exiting 0.

function config(models: string[], extra = ""): string {
  return `
server: { host: 127.0.0.1, port: 0, drain_timeout_ms: 10000, log_level: info }
providers:
  - id: sim
    type: simulated
    simulated: { first_token_ms: 0, tokens_per_second: 40, answer_tokens: 40 }
models:
${models.map((m) => `  - { id: ${m}, provider: sim, context_window: 8000, max_output_tokens: 1000 }`).join("\n")}
${extra}`;
}

interface Running {
  child: ChildProcess;
  url: string;
  lines: Array<Record<string, unknown>>;
  waitFor(pred: (l: Record<string, unknown>) => boolean, ms?: number): Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
}

async function startProcess(configPath: string): Promise<Running> {
  const child = spawn(process.execPath, ["--import", "tsx", "server/main.ts", "--config", configPath], {
    cwd: join(import.meta.dirname, "..", ".."),
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  let buf = "";
  child.stdout!.on("data", (d: Buffer) => {
    buf += d.toString("utf8");
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a log line
      }
      for (const w of waiters.splice(0)) w();
    }
  });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const waitFor = async (pred: (l: Record<string, unknown>) => boolean, ms = 15000) => {
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
  const listening = await waitFor((l) => typeof l.port === "number" && String(l.msg).includes("listening"));
  return { child, url: `http://127.0.0.1:${listening.port as number}`, lines, waitFor, exited };
}

describe("the gateway process", () => {
  const dir = mkdtempSync(join(tmpdir(), "llmgw-proc-"));
  const path = join(dir, "gateway.yaml");
  let gw: Running;

  before(async () => {
    writeFileSync(path, config(["sim/a"]));
    gw = await startProcess(path);
  });
  after(() => {
    if (gw.child.exitCode === null) gw.child.kill("SIGKILL");
  });

  const modelIds = async () => {
    const res = (await (await fetch(`${gw.url}/v1/models`)).json()) as { data: Array<{ id: string }> };
    return res.data.map((m) => m.id).sort();
  };

  it("reloads on SIGHUP", async () => {
    assert.deepEqual(await modelIds(), ["sim/a"]);
    // Replace by rename, as editors and ConfigMaps do; the SIGHUP then makes the reload explicit.
    writeFileSync(`${path}.new`, config(["sim/a", "sim/b"]));
    renameSync(`${path}.new`, path);
    gw.child.kill("SIGHUP");
    await gw.waitFor((l) => l.msg === "config reloaded" && l.models === 2);
    assert.deepEqual(await modelIds(), ["sim/a", "sim/b"]);
  });

  it("rejects an invalid new file and keeps the old configuration", async () => {
    writeFileSync(path, config(["sim/a"], "routes:\n  - { id: r, targets: [sim/missing] }\n"));
    gw.child.kill("SIGHUP");
    const rejected = await gw.waitFor((l) => l.msg === "config reload rejected; the current configuration stays in force");
    assert.match(JSON.stringify(rejected.issues), /routes\[0\]\.targets\[0\]/);
    assert.deepEqual(await modelIds(), ["sim/a", "sim/b"]);
  });

  it("keeps a stream alive across a reload, and drains it on SIGTERM before exiting 0", async () => {
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: "x", maxRetries: 0 });
    // 40 tokens at 40 tokens/s: about one second of streaming.
    const stream = await client.chat.completions.create({ model: "sim/a", messages: [{ role: "user", content: "drain me" }], stream: true });
    const it = stream[Symbol.asyncIterator]();
    const first = await it.next();
    assert.equal(first.done, false);
    writeFileSync(path, config(["sim/a"]));
    gw.child.kill("SIGHUP");
    gw.child.kill("SIGTERM");
    let text = (first.value as OpenAI.ChatCompletionChunk).choices[0]?.delta.content ?? "";
    let finish: string | null | undefined;
    for (let r = await it.next(); r.done !== true; r = await it.next()) {
      text += r.value.choices[0]?.delta.content ?? "";
      finish = r.value.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(finish, "stop");
    assert.equal(text.split(" ").length, 40);
    assert.equal(await gw.exited, 0);
    assert.ok(gw.lines.some((l) => l.msg === "stopped"));
  });
});
