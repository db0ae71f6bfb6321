import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { runCli, type CliIO } from "../../server/cli.js";
import { ConfigError, inspectConfig, loadConfigFile } from "../../server/config/load.js";
import { REAL_MAP, REAL_MAP_MISSING } from "../support/real-map.js";

// The pricing catalog from a LiteLLM-format map (`pricing.litellm_map`), and
// `llm-gateway pricing diff`.

const root = fileURLToPath(new URL("../..", import.meta.url));

function capture(): CliIO & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, env: {}, out: (l) => stdout.push(l), err: (l) => stderr.push(l) };
}

const smallMap = {
  "gpt-4o": { mode: "chat", litellm_provider: "openai", input_cost_per_token: 2.5e-6, output_cost_per_token: 1e-5, cache_read_input_token_cost: 1.25e-6, max_input_tokens: 128000, max_output_tokens: 16384 },
  "gemini/gemini-2.5-pro": {
    mode: "chat",
    litellm_provider: "gemini",
    input_cost_per_token: 1.25e-6,
    output_cost_per_token: 1e-5,
    input_cost_per_token_above_200k_tokens: 2.5e-6,
    output_cost_per_token_above_200k_tokens: 1.5e-5,
    max_input_tokens: 1048576,
    max_output_tokens: 65535,
  },
  "text-embedding-3-small": { mode: "embedding", litellm_provider: "openai", input_cost_per_token: 2e-8 },
};

function yaml(extra: string, gpt4oPricing = "", gemini = ""): string {
  return `
providers:
  - { id: openai, type: openai, api_key: x }
  - { id: gemini, type: gemini, api_key: x }
models:
  - id: openai/gpt-4o
    provider: openai
    context_window: 128000
    max_output_tokens: 16384
${gpt4oPricing}
  - id: gemini/gemini-2.5-pro
    provider: gemini
    context_window: 1000000
    max_output_tokens: 65535
${gemini}
  - { id: openai/my-finetune, provider: openai, context_window: 8000, max_output_tokens: 1000 }
${extra}`;
}

describe("pricing catalog from a LiteLLM map", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "gw-pricing-"));
    writeFileSync(join(dir, "prices.json"), JSON.stringify(smallMap));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("prices models without a pricing block from the map (prefer: config), relative to the config file", () => {
    const file = join(dir, "gateway.yaml");
    writeFileSync(file, yaml("pricing: { litellm_map: prices.json, checked: 2026-11-01 }", "    pricing: { input: 9, output: 9, checked: 2026-10-01 }"));
    const { config, warnings } = inspectConfig(readFileSync(file, "utf8"), {}, file);
    const byId = new Map(config.models.map((m) => [m.id, m]));
    assert.deepEqual(byId.get("openai/gpt-4o")!.pricing, { input: 9, output: 9, checked: "2026-10-01" });
    assert.deepEqual(byId.get("gemini/gemini-2.5-pro")!.pricing, {
      input: 1.25,
      output: 10,
      tiers: [{ above_input_tokens: 200_000, input: 2.5, output: 15 }],
      checked: "2026-11-01",
    });
    assert.equal(byId.get("openai/my-finetune")!.pricing, undefined);
    assert.ok(warnings.some((w) => w.includes("does not price 1 model(s)") && w.includes("openai/my-finetune")), warnings.join("\n"));
  });

  it("lets the map win with prefer: map", () => {
    const file = join(dir, "prefer-map.yaml");
    writeFileSync(file, yaml("pricing: { litellm_map: prices.json, prefer: map, checked: 2026-11-01 }", "    pricing: { input: 9, output: 9 }"));
    const config = loadConfigFile(file, {});
    assert.deepEqual(config.models[0]!.pricing, { input: 2.5, output: 10, cached_input: 1.25, checked: "2026-11-01" });
  });

  it("rejects a configuration whose map cannot be read, naming the key", () => {
    const file = join(dir, "missing.yaml");
    writeFileSync(file, yaml("pricing: { litellm_map: nowhere.json }"));
    assert.throws(
      () => loadConfigFile(file, {}),
      (err: unknown) => err instanceof ConfigError && /pricing\.litellm_map: .*nowhere\.json: no such file/.test(err.issues[0]!),
    );
  });

  it("pricing diff shows every disagreement and exits 0", async () => {
    const file = join(dir, "diff.yaml");
    writeFileSync(file, yaml("", "    pricing: { input: 2.6, output: 10, cached_input: 1.25 }", "    pricing: { input: 1.25, output: 10 }"));
    const io = capture();
    const code = await runCli(["pricing", "diff", join(dir, "prices.json"), "--config", file], io);
    assert.equal(code, 0, io.stderr.join("\n"));
    const out = io.stdout.join("\n");
    assert.match(out, /map .*prices\.json: 3 entries, 2 text-generation models \(2 priced\), 1 other entries skipped/);
    assert.match(out, /openai\/gpt-4o \(map: gpt-4o\):\n {2}input: catalog 2\.6, map 2\.5 USD\/M/);
    assert.match(out, /gemini\/gemini-2\.5-pro \(map: gemini\/gemini-2\.5-pro\):\n {2}tier above 200000 tokens: only in the map\n {2}context_window: catalog 1000000, map 1048576/);
    assert.match(out, /openai\/my-finetune: not in the map \(looked up openai\/my-finetune, text-completion-openai\/my-finetune, my-finetune\)/);
    assert.match(out, /summary: 3 models compared: 0 agree, 2 differ, 1 not in the map/);
  });

  it("pricing diff of the shipped gateway.yaml against the real map, as a process", { skip: REAL_MAP_MISSING }, async () => {
    const r = await new Promise<{ code: number; stdout: string }>((resolve) => {
      execFile(process.execPath, ["--import", "tsx", "server/cli.ts", "pricing", "diff", REAL_MAP], { cwd: root, env: { PATH: process.env.PATH ?? "" }, timeout: 15_000 }, (err, stdout) =>
        resolve({ code: err === null ? 0 : typeof err.code === "number" ? err.code : -1, stdout }),
      );
    });
    assert.equal(r.code, 0);
    assert.match(r.stdout, /catalog gateway\.yaml: 59 models/);
    // The shipped catalog came from this map: its base prices agree; batch discounts the map does not list show up.
    assert.doesNotMatch(r.stdout, /^ {2}(input|output|cached_input):/m);
    assert.match(r.stdout, /summary: 56 models compared: \d+ agree, \d+ differ, 9 not in the map/);
  });

  it("pricing diff usage errors exit 2", async () => {
    const io = capture();
    assert.equal(await runCli(["pricing", "diff"], io), 2);
    assert.match(io.stderr[0]!, /pricing diff needs the path of a LiteLLM-format map/);
    assert.equal(await runCli(["pricing", "diff", "a.json", "b.json"], capture()), 2);
    const missing = capture();
    assert.equal(await runCli(["pricing", "diff", join(dir, "none.json"), "--config", join(root, "gateway.yaml")], missing), 1);
    assert.match(missing.stderr[0]!, /none\.json: no such file/);
  });
});

