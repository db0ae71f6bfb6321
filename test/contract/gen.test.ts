import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, it } from "node:test";
import { tempDir } from "../support/temp.js";

// The contract's guard rails: proto/ passes buf lint, and gen/ is exactly
// what `buf generate` produces from it (so nobody edits gen/ by hand or
// forgets to regenerate).

const root = join(import.meta.dirname, "..", "..");
const bin = join(root, "node_modules", ".bin");
const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}` };

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

describe("the contract", () => {
  it("passes buf lint", () => {
    execFileSync(join(bin, "buf"), ["lint"], { cwd: root, env, stdio: "pipe" });
  });

  it("gen/ is what buf generate produces", () => {
    const out = tempDir("llmgw-gen-");
    execFileSync(join(bin, "buf"), ["generate", "-o", out], { cwd: root, env, stdio: "pipe" });
    const fresh = files(join(out, "gen")).map((f) => relative(join(out, "gen"), f)).sort();
    const committed = files(join(root, "gen")).map((f) => relative(join(root, "gen"), f)).sort();
    assert.deepEqual(committed, fresh, "gen/ has other files than buf generate makes: run `npm run generate`");
    for (const f of fresh) {
      assert.equal(readFileSync(join(root, "gen", f), "utf8"), readFileSync(join(out, "gen", f), "utf8"), `gen/${f} is stale: run \`npm run generate\``);
    }
  });
});
