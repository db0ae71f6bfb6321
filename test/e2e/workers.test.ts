import assert from "node:assert/strict";
import { createHash, randomUUID } from "node:crypto";
import { renameSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { createServer } from "node:net";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import OpenAI from "openai";
import { spawnGatewayProcess, ROOT, type GatewayProcess, type LogLine } from "../support/process.js";
import { deleteRedisKeys } from "../support/routing.js";
import { tempDir } from "../support/temp.js";

// `--workers 2` as a real process tree: a primary and two workers on one
// port, sharing limits through a real Redis. Requests spread over both
// workers, a key's rpm holds across them, SIGHUP reaches both, a killed
// worker is restarted, and SIGTERM drains an in-flight stream before the
// primary exits 0. Every request here opens its own connection, since the
// primary hands out connections (not requests) round-robin.

const REDIS_URL = "redis://127.0.0.1:6379";
const RPM = 5;
const OPEN_TOKEN = "workers-open-token";
const LIMITED_TOKEN = "workers-limited-token";
const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

type Line = LogLine;

function config(state: string, extraModels: string[] = []): string {
  const models = ["sim/fast", ...extraModels].map((m) => `  - { id: ${m}, provider: fast, context_window: 8000, max_output_tokens: 1000 }`);
  return `
server: { host: 127.0.0.1, port: 8080, drain_timeout_ms: 10000, log_level: info }
state: ${state}
providers:
  - id: fast
    type: simulated
    simulated: { first_token_ms: 0, tokens_per_second: 0, answer_tokens: 12 }
  - id: slow
    type: simulated
    simulated: { first_token_ms: 0, tokens_per_second: 40, answer_tokens: 40 }
models:
${models.join("\n")}
  - { id: sim/slow, provider: slow, context_window: 8000, max_output_tokens: 1000 }
keys:
  - { id: open, key_sha256: "${sha256(OPEN_TOKEN)}" }
  - { id: limited, key_sha256: "${sha256(LIMITED_TOKEN)}", limits: { rpm: ${RPM} } }
`;
}

/** spawnGateway starts server/main.ts with args; it resolves once a line satisfies ready (or at once, when ready is undefined). */
function spawnGateway(args: string[], ready?: (l: Line) => boolean, env: NodeJS.ProcessEnv = {}): Promise<GatewayProcess> {
  // Every line must be whole JSON: the primary relays the workers' output line by line.
  return spawnGatewayProcess(args, { ready, env, strictJson: true });
}

const poolListening = (l: Line) => l.role === "primary" && String(l.msg).startsWith("llm-gateway listening");

interface Reply {
  status: number;
  body: string;
}

/** send makes one request on a new connection (agent: false), so the primary hands it to the next worker. */
function send(url: string, path: string, token: string, body?: unknown): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      `${url}${path}`,
      {
        method: payload === undefined ? "GET" : "POST",
        agent: false,
        headers: { authorization: `Bearer ${token}`, ...(payload === undefined ? {} : { "content-type": "application/json" }) },
        timeout: 10_000,
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on("timeout", () => req.destroy(new Error("request timed out")));
    req.on("error", reject);
    req.end(payload);
  });
}

const chat = (url: string, token: string, content: string) => send(url, "/v1/chat/completions", token, { model: "sim/fast", messages: [{ role: "user", content }] });

describe("--workers 2 on Redis state", () => {
  const dir = tempDir("llmgw-workers-");
  const path = join(dir, "gateway.yaml");
  const prefix = `test-workers-${randomUUID()}`;
  const state = `{ backend: redis, url: "${REDIS_URL}", key_prefix: "${prefix}" }`;
  let gw: GatewayProcess;

  before(async () => {
    writeFileSync(path, config(state));
    gw = await spawnGateway(["--config", path, "--port", "0", "--workers", "2"], poolListening);
  });
  after(async () => {
    if (gw.child.exitCode === null) gw.child.kill("SIGKILL");
    await deleteRedisKeys(REDIS_URL, prefix);
  });

  const requestLines = (keyId: string) => gw.lines.filter((l) => l.msg === "request" && l.keyId === keyId);

  it("starts two workers on one real port and serves from both", async () => {
    const port = Number(new URL(gw.url).port);
    assert.ok(port > 0);
    // Each worker's own "listening" line carries the real port too (the workers' lines arrive in their own time).
    const listening = (worker: number) => gw.waitFor((l) => l.worker === worker && String(l.msg).startsWith("llm-gateway listening"));
    assert.deepEqual([(await listening(1)).port, (await listening(2)).port], [port, port]);
    // Memory state would be warned about; Redis state is not.
    assert.equal(gw.lines.some((l) => String(l.msg).includes("enforced per worker")), false);

    for (let i = 0; i < 20; i++) assert.equal((await chat(gw.url, OPEN_TOKEN, `hello ${i}`)).status, 200);
    await gw.waitFor(() => requestLines("open").length === 20);
    const workers = new Set(requestLines("open").map((l) => l.worker));
    assert.deepEqual([...workers].sort(), [1, 2]);
  });

  it("holds a key's rpm across both workers", async () => {
    const replies = await Promise.all(Array.from({ length: 12 }, (_, i) => chat(gw.url, LIMITED_TOKEN, `limited ${i}`)));
    assert.equal(replies.filter((r) => r.status === 200).length, RPM);
    const refused = replies.filter((r) => r.status !== 200);
    assert.deepEqual(refused.map((r) => r.status), Array(12 - RPM).fill(429));
    for (const r of refused) assert.equal((JSON.parse(r.body) as { error: { type: string } }).error.type, "rate_limit_error");
    // Both workers took part, so the limit held between them rather than inside one.
    await gw.waitFor(() => requestLines("limited").length === 12);
    assert.deepEqual([...new Set(requestLines("limited").map((l) => l.worker))].sort(), [1, 2]);
  });

  it("serves every worker's metrics at /metrics, whichever worker takes the scrape", async () => {
    // 20 + 5 answered requests so far, spread over both workers.
    const answered = (text: string) =>
      text
        .split("\n")
        .filter((l) => l.startsWith("llm_gateway_requests_total{") && l.includes('model="sim/fast"') && l.includes('status="ok"'))
        .map((l) => ({ worker: /worker="(\d+)"/.exec(l)?.[1], n: Number(l.slice(l.lastIndexOf(" ") + 1)) }));
    const seenBy = new Set<string>();
    for (let i = 0; i < 4; i++) {
      // A new connection each time: the primary hands successive scrapes to different workers.
      const res = await send(gw.url, "/metrics", OPEN_TOKEN);
      assert.equal(res.status, 200);
      const samples = answered(res.body);
      assert.deepEqual([...new Set(samples.map((s) => s.worker))].sort(), ["1", "2"], `scrape ${i}: both workers' counters`);
      assert.equal(samples.reduce((sum, s) => sum + s.n, 0), 25, `scrape ${i}: the whole gateway's count`);
      assert.match(res.body, /^llm_gateway_workers 2$/m);
      assert.match(res.body, /^llm_gateway_workers_scraped 2$/m);
      for (const w of ["1", "2"]) assert.match(res.body, new RegExp(`^llm_gateway_process_resident_memory_bytes\\{worker="${w}"\\} \\d+`, "m"));
      // One HELP per family, as the text format requires.
      const helps = res.body.split("\n").filter((l) => l.startsWith("# HELP "));
      assert.equal(new Set(helps).size, helps.length);
      seenBy.add(res.body.includes("llm_gateway_requests_total") ? "ok" : "missing");
    }
    assert.deepEqual([...seenBy], ["ok"]);
  });

  it("forwards SIGHUP to every worker", async () => {
    writeFileSync(`${path}.new`, config(state, ["sim/new"]));
    renameSync(`${path}.new`, path);
    gw.child.kill("SIGHUP");
    for (const worker of [1, 2]) await gw.waitFor((l) => l.msg === "config reloaded" && l.reason === "SIGHUP" && l.worker === worker);
    for (let i = 0; i < 4; i++) {
      const res = await send(gw.url, "/v1/models", OPEN_TOKEN);
      const ids = (JSON.parse(res.body) as { data: Array<{ id: string }> }).data.map((m) => m.id);
      assert.ok(ids.includes("sim/new"), `request ${i}: ${ids.join(", ")}`);
    }
  });

  it("restarts a worker that dies", async () => {
    const readyLines = () => gw.lines.filter((l) => l.msg === "worker ready" && l.worker === 2);
    const before = readyLines();
    const pid = before.at(-1)!.pid as number;
    process.kill(pid, "SIGKILL");
    const died = await gw.waitFor((l) => l.msg === "worker exited unexpectedly; restarting it" && l.pid === pid);
    assert.equal(died.signal, "SIGKILL");
    await gw.waitFor(() => readyLines().length === before.length + 1);
    assert.notEqual(readyLines().at(-1)!.pid, pid);
    for (let i = 0; i < 4; i++) assert.equal((await chat(gw.url, OPEN_TOKEN, `after restart ${i}`)).status, 200);
  });

  it("drains an in-flight stream on SIGTERM and exits 0", async () => {
    const client = new OpenAI({ baseURL: `${gw.url}/v1`, apiKey: OPEN_TOKEN, maxRetries: 0 });
    // 40 tokens at 40 tokens/s: about one second of streaming.
    const stream = await client.chat.completions.create({ model: "sim/slow", messages: [{ role: "user", content: "drain me" }], stream: true });
    const iter = stream[Symbol.asyncIterator]();
    const first = await iter.next();
    assert.equal(first.done, false);
    gw.child.kill("SIGTERM");
    let text = (first.value as OpenAI.ChatCompletionChunk).choices[0]?.delta.content ?? "";
    let finish: string | null | undefined;
    for (let r = await iter.next(); r.done !== true; r = await iter.next()) {
      text += r.value.choices[0]?.delta.content ?? "";
      finish = r.value.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(finish, "stop");
    assert.equal(text.split(" ").length, 40);
    assert.equal(await gw.exited, 0);
    assert.deepEqual(gw.lines.filter((l) => l.msg === "stopped").map((l) => l.worker ?? l.role).sort(), [1, 2, "primary"].sort());
  });
});

describe("--workers 2 on memory state", () => {
  it("warns that limits become per worker, and still starts", async () => {
    const dir = tempDir("llmgw-workers-mem-");
    const path = join(dir, "gateway.yaml");
    writeFileSync(path, config("{ backend: memory }"));
    // GATEWAY_WORKERS is the environment's way to say --workers.
    const gw = await spawnGateway(["--config", path, "--port", "0"], poolListening, { GATEWAY_WORKERS: "2" });
    const lines = gw.lines;
    const warning = lines.find((l) => String(l.msg).includes("enforced per worker"));
    assert.ok(warning, "memory state with 2 workers is warned about");
    assert.equal(warning.level, 40);
    assert.match(String(warning.msg), /state\.backend: redis/);
    gw.child.kill("SIGTERM");
    assert.equal(await gw.exited, 0);
  });
});

describe("--workers start-up failures", () => {
  it("refuses a bad worker count", async () => {
    const gw = await spawnGateway(["--config", join(ROOT, "gateway.yaml"), "--workers", "two"]);
    assert.equal(await gw.exited, 1);
    assert.match(gw.stderr(), /llm-gateway: cannot start: --workers: expected a whole number ≥ 1, got "two"/);
  });

  it("exits 1 when the workers cannot listen", async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const dir = tempDir("llmgw-workers-busy-");
      const path = join(dir, "gateway.yaml");
      writeFileSync(path, config("{ backend: memory }"));
      const gw = await spawnGateway(["--config", path, "--port", String(port), "--workers", "2"]);
      assert.equal(await gw.exited, 1);
      assert.match(gw.stderr(), /EADDRINUSE/);
      assert.match(gw.stderr(), /llm-gateway: cannot start: worker \d exited/);
    } finally {
      blocker.close();
    }
  });
});
