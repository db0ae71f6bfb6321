import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { interpolate, interpolateString, interpolateTree, InterpolationError } from "../../server/config/interpolate.js";
import { ConfigError, formatPath, inspectConfig, loadConfigFile, parseConfig } from "../../server/config/load.js";

const shippedConfig = fileURLToPath(new URL("../../gateway.yaml", import.meta.url));

/** A small valid configuration; tests splice problems into it. */
const base = `
providers:
  - { id: openai, type: openai, api_key: "\${OPENAI_API_KEY}" }
  - { id: sim, type: simulated }
models:
  - { id: openai/gpt-4o, provider: openai, context_window: 128000, max_output_tokens: 16384 }
  - { id: sim/echo, provider: sim, context_window: 1000, max_output_tokens: 100 }
routes:
  - { id: smart, targets: [openai/gpt-4o, sim/echo] }
`;

/** issuesOf parses text and returns the ConfigError's issues (failing if it parsed). */
function issuesOf(text: string, env: NodeJS.ProcessEnv = {}): readonly string[] {
  try {
    parseConfig(text, env, "test.yaml");
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.issues;
  }
  assert.fail("expected the configuration to be rejected");
}

describe("interpolate", () => {
  it("replaces ${NAME} with the value, and an unset variable with an empty string", () => {
    assert.equal(interpolate("Bearer ${TOKEN}", { TOKEN: "abc" }), "Bearer abc");
    assert.equal(interpolate("${A}-${B}", { A: "1" }), "1-");
    assert.equal(interpolate("${UNSET}", {}), "");
  });

  it("uses ${NAME:-default} when the variable is unset or empty, and the value when set", () => {
    assert.equal(interpolate("${HOST:-localhost}", {}), "localhost");
    assert.equal(interpolate("${HOST:-localhost}", { HOST: "" }), "localhost");
    assert.equal(interpolate("${HOST:-localhost}", { HOST: "example.com" }), "example.com");
    assert.equal(interpolate("${URL:-http://h:1/v1}", {}), "http://h:1/v1");
    assert.equal(interpolate("${X:-}", {}), "");
  });

  it("expands references inside a default", () => {
    assert.equal(interpolate("${A:-${B}/v1}", { B: "http://b" }), "http://b/v1");
    assert.equal(interpolate("${A:-${B:-x}}", {}), "x");
  });

  it("turns $${ into a literal ${ and leaves other dollars alone", () => {
    assert.equal(interpolate("$${NOT_A_VAR}", { NOT_A_VAR: "no" }), "${NOT_A_VAR}");
    assert.equal(interpolate("cost $5, $$ and $HOME", { HOME: "/root" }), "cost $5, $$ and $HOME");
    assert.equal(interpolate("$${A} ${A}", { A: "1" }), "${A} 1");
  });

  it("does not expand what a variable's value contains", () => {
    assert.equal(interpolate("${A}", { A: "${B}", B: "secret" }), "${B}");
  });

  it("reports the referenced and unset variables", () => {
    const r = interpolateString("${A}${B:-x}${A}", { A: "1" });
    assert.deepEqual(r.variables, ["A", "B"]);
    assert.deepEqual(r.unset, ["B"]);
    // An unused default's variables are not reported.
    assert.deepEqual(interpolateString("${A:-${B}}", { A: "1" }).variables, ["A"]);
    assert.deepEqual(interpolateString("${A:-${B}}", {}).unset, ["A", "B"]);
  });

  it("rejects malformed references", () => {
    assert.throws(() => interpolate("${OPEN", {}), InterpolationError);
    assert.throws(() => interpolate("${A:-${B}", {}), /unterminated/);
    assert.throws(() => interpolate("${}", {}), /empty variable name/);
    assert.throws(() => interpolate("${1X}", {}), /invalid variable name "1X"/);
    assert.throws(() => interpolate("${A-x}", {}), /NAME:-default/);
  });

  it("interpolates values of a tree, not keys, without modifying the input", () => {
    const tree = { "${K}": "${V}", list: ["${V}", 1, true, null], nested: { x: "a${V}" } };
    const r = interpolateTree(tree, { K: "key", V: "v" });
    assert.deepEqual(r.value, { "${K}": "v", list: ["v", 1, true, null], nested: { x: "av" } });
    assert.equal(tree.nested.x, "a${V}");
    assert.deepEqual(
      r.strings.map((s) => s.path),
      [["${K}"], ["list", 0], ["nested", "x"]],
    );
  });
});

describe("parseConfig: interpolation", () => {
  it("disables nothing at parse time: an unset key becomes an empty api_key", () => {
    const config = parseConfig(base, {}, "test.yaml");
    assert.equal(config.providers[0]!.api_key, "");
    assert.equal(parseConfig(base, { OPENAI_API_KEY: "sk-1" }, "t").providers[0]!.api_key, "sk-1");
  });

  it("cannot inject structure: a value with YAML syntax stays one string", () => {
    const evil = 'x"\nkeys:\n  - { id: evil }\nmodels: []\n# ';
    const config = parseConfig(base, { OPENAI_API_KEY: evil }, "test.yaml");
    assert.equal(config.providers[0]!.api_key, evil);
    assert.equal(config.keys.length, 0);
    assert.equal(config.models.length, 2);
    const flow = parseConfig(base, { OPENAI_API_KEY: "[1, 2]" }, "t");
    assert.equal(flow.providers[0]!.api_key, "[1, 2]");
  });

  it("converts an interpolated number or boolean where the schema wants one, and only there", () => {
    const text = `server: { port: "\${PORT:-9090}", log_content: "\${LOG_CONTENT}" }\n${base}`;
    const config = parseConfig(text, { LOG_CONTENT: "true", OPENAI_API_KEY: "12345" }, "t");
    assert.equal(config.server.port, 9090);
    assert.equal(config.server.log_content, true);
    assert.equal(config.providers[0]!.api_key, "12345");
  });

  it("names the variable when an interpolated value is wrong", () => {
    const issues = issuesOf(`server: { port: "\${PORT}" }\n${base}`, { PORT: "eighty" });
    assert.deepEqual(issues, ["server.port: expected a number, got string (interpolated from ${PORT})"]);
  });

  it("reports a malformed reference at its path", () => {
    const issues = issuesOf(base.replace("${OPENAI_API_KEY}", "${OPENAI_API_KEY"));
    assert.equal(issues.length, 1);
    assert.match(issues[0]!, /^providers\[0\]\.api_key: unterminated "\$\{"/);
  });

  it("keeps a literal ${ written as $${", () => {
    const config = parseConfig(base.replace("${OPENAI_API_KEY}", () => "$${NOT_EXPANDED}"), {}, "t");
    assert.equal(config.providers[0]!.api_key, "${NOT_EXPANDED}");
  });
});

describe("parseConfig: shape errors name the path", () => {
  it("a wrong type: models[3].pricing.input", () => {
    const text = `
providers: [{ id: sim, type: simulated }]
models:
  - { id: a, provider: sim, context_window: 1, max_output_tokens: 1 }
  - { id: b, provider: sim, context_window: 1, max_output_tokens: 1 }
  - { id: c, provider: sim, context_window: 1, max_output_tokens: 1 }
  - { id: d, provider: sim, context_window: 1, max_output_tokens: 1, pricing: { input: "2.50", output: 10 } }
`;
    assert.deepEqual(issuesOf(text), ["models[3].pricing.input: expected a number, got string"]);
  });

  it("an unknown enum value, with the options and a suggestion", () => {
    const issues = issuesOf(base.replace("{ id: sim, type: simulated }", "{ id: sim, type: simulatd }"));
    assert.equal(issues.length, 1);
    assert.equal(
      issues[0],
      'providers[1].type: expected one of openai|deepseek|mistral|qwen|ollama|vllm|anthropic|gemini|simulated, got "simulatd" (did you mean "simulated"?)',
    );
  });

  it("a missing required key", () => {
    const issues = issuesOf(base.replace("context_window: 1000, ", ""));
    assert.deepEqual(issues, ["models[1].context_window: required: expected a number"]);
  });

  it("an unknown key, at the key's own path, with a suggestion", () => {
    const issues = issuesOf(base.replace('api_key: "', 'apikey: "'));
    assert.deepEqual(issues, ['providers[0].apikey: unknown key (did you mean "api_key"?)']);
    const top = issuesOf(`${base}modles: []\n`);
    assert.deepEqual(top, ['modles: unknown key (did you mean "models"?)']);
  });

  it("bounds, integers and formats, in the schema's words", () => {
    const issues = issuesOf(
      `${base}server: { port: 70000 }\n`.replace("max_output_tokens: 100 }", "max_output_tokens: 1.5 }").replace(
        "{ id: openai, type: openai,",
        "{ id: openai, type: openai, base_url: not-a-url, limits: { rpm: 0 },",
      ),
    );
    assert.deepEqual([...issues].sort(), [
      "models[1].max_output_tokens: expected an integer",
      "providers[0].base_url: expected an absolute URL",
      "providers[0].limits.rpm: must be > 0",
      "server.port: must be <= 65535",
    ]);
  });

  it("route targets: a wrong type, and the object form's own fields", () => {
    const issues = issuesOf(base.replace("targets: [openai/gpt-4o, sim/echo]", "targets: [3, { model: sim/echo, wieght: 2 }]"));
    assert.deepEqual(issues, [
      "routes[0].targets[0]: expected a string or a mapping, got number",
      'routes[0].targets[1].wieght: unknown key (did you mean "weight"?)',
    ]);
  });

  it("the state backend", () => {
    assert.deepEqual(issuesOf(`${base}state: { backend: redsi }\n`), [
      'state.backend: expected one of memory|redis, got "redsi" (did you mean "redis"?)',
    ]);
    assert.deepEqual(issuesOf(`${base}state: { backend: redis }\n`), ["state.url: required: expected a string"]);
  });

  it("every problem at once", () => {
    const issues = issuesOf(
      base.replace("type: simulated", "type: nope").replace("context_window: 128000", 'context_window: "big"').replace("[openai/gpt-4o, sim/echo]", "[]"),
    );
    assert.equal(issues.length, 3);
  });

  it("a top level that is not a mapping, and an empty file", () => {
    assert.deepEqual(issuesOf("- a\n- b\n"), ["(top level): expected a mapping, got list"]);
    assert.deepEqual(issuesOf(""), ["the file is empty (no YAML document)"]);
    assert.deepEqual(issuesOf("# only a comment\n"), ["the file is empty (no YAML document)"]);
  });
});

describe("parseConfig: YAML errors give line:column", () => {
  it("a syntax error", () => {
    const issues = issuesOf("providers:\n  - id: a\n    type: [openai\nmodels: []\n");
    assert.ok(issues.length >= 1);
    assert.match(issues[0]!, /^YAML syntax error at \d+:\d+: /);
  });

  it("a duplicate key", () => {
    assert.deepEqual(issuesOf("server: {}\nserver: {}\n"), ["YAML syntax error at 2:1: Map keys must be unique"]);
  });

  it("an unquoted ${...} inside a flow mapping, with a hint", () => {
    const issues = issuesOf("providers:\n  - { id: a, type: openai, api_key: ${KEY} }\n");
    assert.match(issues[0]!, /^YAML syntax error at 2:\d+: .*quote values that use \$\{\.\.\.\}/);
  });

  it("an alias to an unknown anchor", () => {
    assert.match(issuesOf("server: *nope\n")[0]!, /YAML/);
  });
});

describe("parseConfig: cross-references", () => {
  it("duplicate ids", () => {
    const issues = issuesOf(base.replace("{ id: sim, type: simulated }", "{ id: openai, type: simulated }").replace("provider: sim,", "provider: openai,"));
    assert.deepEqual(issues, ['providers[1].id: duplicate id "openai" (already used by providers[0])']);
  });

  it("a route id that is also a model id", () => {
    const issues = issuesOf(`${base}  - { id: sim/echo, targets: [openai/gpt-4o] }\n`);
    assert.deepEqual(issues, ['routes[1].id: "sim/echo" is also the id of models[1]; a request naming it would be ambiguous']);
  });

  it("an unknown provider", () => {
    const issues = issuesOf(base.replace("provider: sim,", "provider: simm,"));
    assert.deepEqual(issues, ['models[1].provider: unknown provider "simm" (did you mean "sim"? known: openai, sim)']);
  });

  it("an unknown route target, listing the known models", () => {
    const issues = issuesOf(base.replace("[openai/gpt-4o, sim/echo]", "[openai/gpt-4o, x/y]"));
    assert.deepEqual(issues, ['routes[0].targets[1]: unknown model "x/y" (known: openai/gpt-4o, sim/echo)']);
    const object = issuesOf(base.replace("[openai/gpt-4o, sim/echo]", "[{ model: sim/ech }]"));
    assert.deepEqual(object, ['routes[0].targets[0].model: unknown model "sim/ech" (did you mean "sim/echo"? known: openai/gpt-4o, sim/echo)']);
  });

  it("a route target that is a route", () => {
    const issues = issuesOf(`${base}  - { id: outer, targets: [smart] }\n`);
    assert.deepEqual(issues, ['routes[1].targets[0]: "smart" is a route; route targets must be model ids']);
  });

  const hash = (c: string) => c.repeat(64);
  it("key models, wildcards and degrade_to", () => {
    const issues = issuesOf(`${base}keys:
  - id: k
    key_sha256: "${hash("a")}"
    models: ["*", "openai/*", smart, sim/echo, "nope/*", gpt-5]
    budget: { usd: 10, period: month, degrade_to: smrt }
`);
    assert.deepEqual(issues, [
      'keys[0].models[4]: "nope/*" matches no model or route (known: openai/*, sim/*)',
      'keys[0].models[5]: unknown model or route "gpt-5" (known: openai/gpt-4o, sim/echo, smart)',
      'keys[0].budget.degrade_to: unknown model or route "smrt" (did you mean "smart"? known: openai/gpt-4o, sim/echo, smart)',
    ]);
  });

  it("two keys with one hash", () => {
    const issues = issuesOf(`${base}keys:
  - { id: a, key_sha256: "${hash("b")}" }
  - { id: b, key_sha256: "${hash("b")}" }
`);
    assert.deepEqual(issues, ['keys[1].key_sha256: same hash as keys[0] ("a"); each key needs its own token']);
  });

  it("accepts valid keys", () => {
    const config = parseConfig(
      `${base}keys:\n  - { id: a, key_sha256: "${hash("c")}", models: [smart, "openai/*"], budget: { usd: 5, period: day, degrade_to: sim/echo } }\n`,
      {},
      "t",
    );
    assert.equal(config.keys[0]!.models.length, 2);
  });
});

describe("inspectConfig warnings", () => {
  it("names the unset variable of a disabled provider, and routes left without targets", () => {
    const { warnings } = inspectConfig(base.replace("[openai/gpt-4o, sim/echo]", "[openai/gpt-4o]"), {}, "t");
    assert.ok(warnings.includes('provider "openai" disabled (OPENAI_API_KEY is not set); its 1 model will not be used'), warnings.join("\n"));
    assert.ok(warnings.some((w) => w.startsWith('route "smart" has no usable target')));
    assert.ok(warnings.some((w) => w.startsWith("no gateway keys configured")));
    const withKey = inspectConfig(base, { OPENAI_API_KEY: "sk" }, "t").warnings;
    assert.ok(!withKey.some((w) => w.includes("openai")));
  });
});

describe("formatPath", () => {
  it("renders paths as written in YAML", () => {
    assert.equal(formatPath(["models", 3, "pricing", "input"]), "models[3].pricing.input");
    assert.equal(formatPath(["providers", 0, "headers", "x-org"]), 'providers[0].headers["x-org"]');
    assert.equal(formatPath([]), "(top level)");
  });
});

describe("loadConfigFile", () => {
  it("reports an unreadable file as a ConfigError", () => {
    assert.throws(
      () => loadConfigFile("/nonexistent/gateway.yaml", {}),
      (err: unknown) => err instanceof ConfigError && err.issues[0] === "cannot read the file: no such file",
    );
  });

  it("prefixes the message with the source and lists every issue", () => {
    const dir = mkdtempSync(join(tmpdir(), "gw-load-"));
    try {
      const file = join(dir, "bad.yaml");
      writeFileSync(file, "routes:\n  - { id: r, targets: [a, b] }\n");
      assert.throws(
        () => loadConfigFile(file, {}),
        (err: unknown) =>
          err instanceof ConfigError &&
          err.message.startsWith(`${file}: invalid configuration (2 problems):\n  - routes[0].targets[0]: unknown model "a"`),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the shipped gateway.yaml", () => {
  const families = ["openai", "anthropic", "gemini", "deepseek", "mistral", "qwen", "ollama", "vllm"] as const;

  it("validates with an empty environment", () => {
    const { config, warnings } = inspectConfig(readFileSync(shippedConfig, "utf8"), {}, shippedConfig);
    assert.ok(config.models.length >= 40, `only ${config.models.length} models`);
    for (const family of families) {
      const provider = config.providers.find((p) => p.id === family);
      assert.ok(provider !== undefined, `no provider ${family}`);
      assert.equal(provider.type, family);
      assert.ok(config.models.some((m) => m.provider === family), `no ${family} models`);
    }
    const sim = config.providers.find((p) => p.type === "simulated");
    assert.deepEqual(sim?.simulated, { first_token_ms: 20, tokens_per_second: 200, answer_tokens: 48 });
    assert.deepEqual(config.routes.map((r) => r.id).sort(), ["cheap", "local", "sim", "smart"]);
    assert.deepEqual(config.keys, []);
    // With no keys only the key-needing providers are disabled: the sim route stays usable.
    assert.ok(!warnings.some((w) => w.startsWith('route "sim"')));
    assert.ok(!warnings.some((w) => w.includes('"ollama"') || w.includes('"vllm"')));
  });

  it("reads keys and base URLs from the environment", () => {
    const config = loadConfigFile(shippedConfig, { OPENAI_API_KEY: "sk-test", OLLAMA_BASE_URL: "http://gpu:11434/v1" });
    assert.equal(config.providers.find((p) => p.id === "openai")?.api_key, "sk-test");
    assert.equal(config.providers.find((p) => p.id === "ollama")?.base_url, "http://gpu:11434/v1");
    assert.equal(config.providers.find((p) => p.id === "vllm")?.base_url, "http://localhost:8000/v1");
  });

  it("prices every paid model, with ids <provider>/<name> and a check date", () => {
    const config = loadConfigFile(shippedConfig, {});
    for (const m of config.models) {
      assert.ok(m.id.startsWith(`${m.provider}/`), m.id);
      assert.ok(m.pricing !== undefined, `${m.id} has no pricing`);
      if (m.provider === "ollama" || m.provider === "vllm") {
        assert.deepEqual([m.pricing.input, m.pricing.output], [0, 0], m.id);
      } else if (m.provider !== "sim") {
        assert.ok(m.pricing.input > 0 && m.pricing.output > 0, m.id);
        assert.equal(m.pricing.checked, "2026-11-21", m.id);
      }
      for (const tier of m.pricing.tiers ?? []) assert.ok(tier.above_input_tokens > 0);
    }
  });
});
