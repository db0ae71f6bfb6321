import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { after, before, describe, test } from "node:test";
import { analyzeProfile, type CpuProfile } from "../../bench/cpuprofile.js";
import { createPool, holdStreams, runLoad, streamSender, unarySender } from "../../bench/load.js";
import { affinityOf, cpuMicros, pinProcess, processTree, rssBytes } from "../../bench/proc.js";
import { localRedisPid } from "../../bench/redis-check.js";
import { pingRoundTrips } from "../../bench/redis-ping.js";
import { startProxy, type Proxy } from "../../bench/proxy.js";
import { formatCell, goalAtMost } from "../../bench/report.js";
import { fill, parseHeader } from "../../bench/sections/compare.js";
import { floorNote } from "../../bench/sections/streaming.js";
import { freePort } from "../../bench/servers.js";
import { paired, percentile, Samples, spread, summarize } from "../../bench/stats.js";
import { restSpec } from "../../bench/targets.js";
import { parseScenario, startUpstream, type Upstream } from "../../bench/upstream.js";

/**
 * The benchmark harness measures the right things: statistics on known
 * data, the load generator's counts against an upstream that counts too,
 * stream timing, error accounting, /proc readers and profile reduction.
 * Nothing here asserts how fast anything is.
 */

const direct = { isGateway: false };

describe("bench statistics", () => {
  test("percentiles interpolate between closest ranks", () => {
    const sorted = Float64Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(percentile(sorted, 0), 1);
    assert.equal(percentile(sorted, 100), 100);
    assert.equal(percentile(sorted, 50), 50.5);
    assert.ok(Math.abs(percentile(sorted, 99) - 99.01) < 1e-9);
    assert.ok(Number.isNaN(percentile(new Float64Array(0), 50)));
    assert.equal(percentile([7], 99), 7);
  });

  test("summarize sorts unsorted samples", () => {
    const s = new Samples();
    for (const v of [5, 1, 4, 2, 3]) s.push(v);
    const d = summarize(s);
    assert.deepEqual([d.count, d.min, d.p50, d.max, d.mean], [5, 1, 3, 5, 3]);
    assert.equal(d.p25, 2);
    assert.equal(d.p75, 4);
  });

  test("Samples grows past its initial capacity", () => {
    const s = new Samples();
    for (let i = 0; i < 5000; i++) s.push(5000 - i);
    assert.equal(s.count, 5000);
    const sorted = s.sorted();
    assert.equal(sorted[0], 1);
    assert.equal(sorted[4999], 5000);
  });

  test("spread drops rounds that did not measure; paired works round by round", () => {
    const sp = spread([3, Number.NaN, 1, 2]);
    assert.deepEqual([sp.rounds, sp.min, sp.median, sp.max], [3, 1, 2, 3]);
    assert.deepEqual(paired([5, 6, Number.NaN], [1, 2, 3]), [4, 4]);
    assert.deepEqual(paired([4, 9], [2, 3], "ratio"), [2, 3]);
    // A ratio over a round that measured 0 (no level met the bound) has no value.
    assert.deepEqual(paired([4, 0, 5], [2, 0, 0], "ratio"), [2]);
  });

  test("cells and goals render medians, ranges and met / not met", () => {
    const v = spread([0.25, 0.2, 0.4]);
    assert.equal(formatCell({ value: v, unit: "ms", signed: true }), "+0.250 ms (+0.200…+0.400)");
    assert.equal(goalAtMost("p50 ≤ 0.3 ms", v, 0.3, "ms").met, true);
    assert.equal(goalAtMost("p50 ≤ 0.2 ms", v, 0.2, "ms").met, false);
    assert.equal(goalAtMost("x", undefined, 1, "ms").met, undefined);
  });

  test("a per-chunk goal below the floor's own cost is reported with what the gateway adds", () => {
    // Rounds pair up: the gateway added 6, 4 and 11 µs over the floor.
    const [note] = floorNote({ proxy: [26, 22, 30], gateway: [32, 26, 41] }, 20);
    assert.match(note!, /itself spent 26\.0 µs per chunk here, above the 20 µs goal/);
    assert.match(note!, /added 6\.0 µs per chunk over the floor \(median of the rounds' differences, 4\.0…11\.0\)/);
    assert.deepEqual(floorNote({ proxy: [12, 14], gateway: [15, 16] }, 20), []);
    assert.deepEqual(floorNote({ proxy: [26] }, 20), []);
  });
});

describe("bench upstream scenarios", () => {
  test("model names select chunks, interval and latency", () => {
    assert.deepEqual(parseScenario("bench-c20-i2"), { chunks: 20, intervalMs: 2, latencyMs: 0 });
    assert.deepEqual(parseScenario("bench-l5", 1), { chunks: 16, intervalMs: 0, latencyMs: 5 });
    assert.deepEqual(parseScenario("gpt-4o", 3), { chunks: 16, intervalMs: 0, latencyMs: 3 });
  });
});

describe("bench load generator", () => {
  let upstream: Upstream;
  let proxy: Proxy;
  before(async () => {
    upstream = await startUpstream();
    proxy = await startProxy({ target: upstream.origin });
  });
  after(async () => {
    await proxy.close();
    await upstream.close();
  });

  test("a timed run counts every request the upstream answered", async () => {
    const pool = createPool(upstream.origin);
    try {
      const before = upstream.requests();
      const r = await runLoad({ concurrency: 2, durationMs: 1000, send: unarySender(pool, restSpec(direct, "bench", false)) });
      assert.equal(r.errors, 0, r.firstError);
      assert.ok(r.requests > 0);
      assert.equal(upstream.requests() - before, r.requests);
      assert.equal(r.latency.count, r.requests);
      assert.ok(r.throughput > 0);
      const d = summarize(r.latency);
      assert.ok(d.min > 0 && d.min <= d.p50 && d.p50 <= d.p99 && d.p99 <= d.max);
    } finally {
      await pool.close();
    }
  });

  test("a counted run through the proxy stops at the count and times each stream", async () => {
    const pool = createPool(proxy.origin);
    try {
      const r = await runLoad({ concurrency: 4, requests: 20, send: streamSender(pool, restSpec(direct, "bench-c5-i2", true)) });
      assert.equal(r.errors, 0, r.firstError);
      assert.equal(r.requests, 20);
      assert.equal(r.ttft.count, 20);
      assert.ok(r.gaps.count > 0);
      const ttft = summarize(r.ttft);
      const total = summarize(r.latency);
      // Five chunks 2 ms apart: the first token comes well before the end of the stream.
      assert.ok(ttft.p50 < total.p50);
    } finally {
      await pool.close();
    }
  });

  test("failed requests are counted as errors with their reason", async () => {
    const pool = createPool(`http://127.0.0.1:${await freePort()}`);
    try {
      const r = await runLoad({ concurrency: 1, requests: 3, send: unarySender(pool, restSpec(direct, "bench", false)) });
      assert.equal(r.requests, 3);
      assert.equal(r.errors, 3);
      assert.equal(r.latency.count, 0);
      assert.match(r.firstError ?? "", /ECONNREFUSED/);
    } finally {
      await pool.close();
    }
  });

  test("holdStreams reports when every stream is flowing, then their results", async () => {
    const pool = createPool(upstream.origin);
    try {
      const h = holdStreams(pool, restSpec(direct, "bench-c3-i50", true), 10);
      await h.allStarted;
      const r = await h.finished;
      assert.equal(r.requests, 10);
      assert.equal(r.errors, 0, r.firstError);
    } finally {
      await pool.close();
    }
  });
});

describe("bench /proc readers", { skip: process.platform !== "linux" }, () => {
  test("read this process's CPU, memory and tree", () => {
    let x = 0;
    for (let i = 0; i < 3e6; i++) x += Math.sqrt(i);
    assert.ok(x > 0);
    assert.ok(cpuMicros([process.pid]) > 0);
    assert.ok(rssBytes([process.pid]) > 1024 * 1024);
    assert.equal(processTree(process.pid)[0], process.pid);
    assert.ok(Number.isNaN(cpuMicros([2 ** 30])));
  });

  test("pin a process and give its CPU list back", { skip: spawnSync("taskset", ["-p", String(process.pid)]).status !== 0 }, async () => {
    const child = spawn("sleep", ["30"], { stdio: "ignore" });
    try {
      const before = affinityOf(child.pid!);
      assert.match(before ?? "", /^[\d,-]+$/);
      assert.equal(pinProcess(child.pid!, "0"), true);
      assert.equal(affinityOf(child.pid!), "0");
      assert.equal(pinProcess(child.pid!, before!), true);
      assert.equal(affinityOf(child.pid!), before);
      assert.equal(affinityOf(2 ** 30), undefined);
    } finally {
      child.kill();
      await once(child, "exit");
    }
  });

  test("find the pid of the suite's Redis (127.0.0.1:6379) when it runs on this machine", { skip: spawnSync("pgrep", ["--version"]).error !== undefined }, async () => {
    const listed = spawnSync("pgrep", ["-x", "redis-server"], { encoding: "utf8" }).stdout.split("\n").filter((l) => l !== "").map(Number);
    const pid = await localRedisPid("redis://127.0.0.1:6379");
    // No redis-server in our /proc (another pid namespace, another host): nothing to pin.
    if (listed.length === 0) assert.equal(pid, undefined);
    else if (listed.length === 1) assert.equal(pid, listed[0]);
    else assert.ok(pid !== undefined && listed.includes(pid), `${pid} among ${listed.join(", ")}`);
    assert.equal(await localRedisPid("redis://127.0.0.1:1"), undefined);
  });

  test("times Redis PING round trips, and fails rather than report a Redis it cannot reach", async () => {
    const { p50Us, p99Us } = await pingRoundTrips("redis://127.0.0.1:6379", 50);
    assert.ok(p50Us > 0 && p99Us >= p50Us && Number.isFinite(p99Us), `p50 ${p50Us} µs, p99 ${p99Us} µs`);
    await assert.rejects(pingRoundTrips("redis://127.0.0.1:1", 50));
  });
});

describe("bench profile reduction", () => {
  test("self, inclusive and module time from a known profile", () => {
    const root = "/repo";
    const frame = (functionName: string, url: string) => ({ functionName, url, lineNumber: 4, columnNumber: 0 });
    const profile: CpuProfile = {
      nodes: [
        { id: 1, callFrame: frame("(root)", ""), children: [2, 5] },
        { id: 2, callFrame: frame("handle", "file:///repo/server/a.js"), children: [3] },
        { id: 3, callFrame: frame("send", "file:///repo/node_modules/undici/lib/x.js"), children: [4] },
        { id: 4, callFrame: frame("writev", "") },
        { id: 5, callFrame: frame("(idle)", "") },
      ],
      startTime: 0,
      endTime: 100,
      // Each sample lasts until the next: handle 10, send 20, writev 30, idle 40 (the last sample has no duration).
      samples: [2, 3, 4, 5, 5],
      timeDeltas: [0, 10, 20, 30, 40],
    };
    const s = analyzeProfile(profile, { repoRoot: root });
    assert.equal(s.busyUs, 60);
    assert.equal(s.idleUs, 40);
    assert.deepEqual(
      s.self.map((h) => [h.functionName, h.us, h.module]),
      [
        ["writev", 30, "(native)"],
        ["send", 20, "undici"],
        ["handle", 10, "server/a.js"],
      ],
    );
    assert.equal(s.self[0]!.caller, "send node_modules/undici/lib/x.js:5");
    assert.equal(s.self[0]!.pct, 50);
    assert.deepEqual(s.inclusive.map((h) => [h.functionName, h.us, h.location]), [["handle", 60, "server/a.js:5"]]);
    const windowed = analyzeProfile(profile, { repoRoot: root, fromUs: 10, toUs: 30 });
    assert.equal(windowed.busyUs, 50);
  });
});

describe("bench compare options", () => {
  test("headers parse as name: value, and bad ones are refused by name", () => {
    assert.deepEqual(parseHeader("X-Portkey-Provider: openai"), ["x-portkey-provider", "openai"]);
    assert.deepEqual(parseHeader("x-custom-host:http://h:1/v1"), ["x-custom-host", "http://h:1/v1"]);
    assert.throws(() => parseHeader("no colon"), /--other-header "no colon": expected "name: value"/);
    assert.throws(() => parseHeader(": value"), /expected "name: value"/);
    assert.throws(() => parseHeader("bad name: v"), /expected "name: value"/);
  });

  test("{port} and {upstream} are filled in everywhere they appear", () => {
    assert.equal(fill("serve --port={port} --to {upstream}/v1 --again {port}", 8080, "http://127.0.0.1:9"), "serve --port=8080 --to http://127.0.0.1:9/v1 --again 8080");
  });
});
