import assert from "node:assert/strict";
import { writeFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import { spawnGatewayProcess, type GatewayProcess } from "../support/process.js";
import { tempDir } from "../support/temp.js";

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

function startProcess(configPath: string): Promise<GatewayProcess> {
  return spawnGatewayProcess(["--config", configPath], { ready: (l) => typeof l.port === "number" && String(l.msg).includes("listening") });
}

describe("the gateway process", () => {
  const dir = tempDir("llmgw-proc-");
  const path = join(dir, "gateway.yaml");
  let gw: GatewayProcess;

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
    // The file is written in place: the watcher may catch it truncated and reject that first ("the file is
    // empty"), which is right too; the rejection this test is about is the one naming the bad route.
    const rejected = await gw.waitFor(
      (l) => l.msg === "config reload rejected; the current configuration stays in force" && /routes\[0\]/.test(JSON.stringify(l.issues)),
    );
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
