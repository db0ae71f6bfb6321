import assert from "node:assert/strict";
import { once } from "node:events";
import { PassThrough, Writable } from "node:stream";
import { describe, it } from "node:test";
import { createLineRelay } from "../../server/cluster/log-relay.js";

// The primary relays each worker's log output whole lines at a time, so two
// workers writing at once never splice each other's lines, a worker that dies
// mid-line does not corrupt the next one, and a full sink pauses the sources.

interface Collector extends Writable {
  /** writes are the chunks the sink has accepted, in order. */
  writes: string[];
  text(): string;
  /** finished ends the sink once the sources are done and resolves when every write has landed. */
  finished(): Promise<void>;
  /** release completes the held writes (when built with hold). */
  release(): void;
}

/** collector is a sink; with hold, each write waits for release(), as a slow log reader would. */
function collector(options: { highWaterMark?: number; hold?: boolean } = {}): Collector {
  const writes: string[] = [];
  let held: Array<() => void> = [];
  const sink = new Writable({
    highWaterMark: options.highWaterMark ?? 1 << 20,
    decodeStrings: false,
    write(chunk: string, _enc, done) {
      writes.push(chunk);
      if (options.hold === true) held.push(done);
      else setImmediate(done);
    },
  });
  return Object.assign(sink, {
    writes,
    text: () => writes.join(""),
    finished: async () => {
      sink.end();
      await once(sink, "finish");
    },
    release: () => {
      const pending = held;
      held = [];
      for (const done of pending) done();
    },
  });
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !cond(); i++) await new Promise((r) => setImmediate(r));
  assert.ok(cond(), "condition not reached");
}

describe("createLineRelay", () => {
  it("forwards only whole lines when sources interleave partial writes", async () => {
    const sink = collector();
    const relay = createLineRelay(sink);
    const a = new PassThrough();
    const b = new PassThrough();
    relay.add(a);
    relay.add(b);
    a.write('{"from":"a","n":1}\n{"from":"a",');
    b.write('{"from":"b","n":1}\n{"fr');
    a.write('"n":2}\n');
    b.write('om":"b","n":2}\n');
    a.end();
    b.end();
    await Promise.all([once(a, "end"), once(b, "end")]);
    await sink.finished();
    for (const w of sink.writes) assert.ok(w.endsWith("\n"), `a write ended mid-line: ${JSON.stringify(w)}`);
    const lines = sink.text().trimEnd().split("\n").map((l) => JSON.parse(l) as { from: string; n: number });
    assert.deepEqual(lines.filter((l) => l.from === "a").map((l) => l.n), [1, 2]);
    assert.deepEqual(lines.filter((l) => l.from === "b").map((l) => l.n), [1, 2]);
  });

  it("ends a fragment left by a source that stopped mid-line", async () => {
    const sink = collector();
    const relay = createLineRelay(sink);
    const a = new PassThrough();
    relay.add(a);
    a.end('{"whole":true}\n{"cut":');
    await once(a, "end");
    await sink.finished();
    assert.equal(sink.text(), '{"whole":true}\n{"cut":\n');
  });

  it("keeps multi-byte characters intact across chunk boundaries", async () => {
    const sink = collector();
    const relay = createLineRelay(sink);
    const a = new PassThrough();
    relay.add(a);
    const line = Buffer.from('{"msg":"naïve café ✓"}\n', "utf8");
    const split = line.indexOf(0xc3) + 1; // inside "ï"
    a.write(line.subarray(0, split));
    a.end(line.subarray(split));
    await once(a, "end");
    await sink.finished();
    assert.equal(sink.text(), line.toString("utf8"));
  });

  it("pauses sources while the sink is full and resumes them on drain", async () => {
    const sink = collector({ highWaterMark: 16, hold: true });
    const relay = createLineRelay(sink);
    const a = new PassThrough();
    relay.add(a);
    a.write(`${"x".repeat(64)}\n`);
    await until(() => sink.writes.length === 1);
    assert.equal(a.isPaused(), true);
    a.write("held back\n");
    await new Promise((r) => setImmediate(r));
    assert.equal(sink.writes.length, 1, "nothing more is read while the sink is full");
    sink.release();
    await until(() => !a.isPaused() && sink.writes.length === 2);
    sink.release();
    a.end();
    await once(a, "end");
    const done = sink.finished();
    sink.release();
    await done;
    assert.equal(sink.text(), `${"x".repeat(64)}\nheld back\n`);
  });
});
