import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createLogger, FileLines, flushLogger, writeInfoLine } from "../../server/telemetry/logger.js";

// The log file writer: lines buffered and written whole, in order, with nothing lost or split.

const dir = mkdtempSync(join(tmpdir(), "llmgw-log-file-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const lines = (path: string) => readFileSync(path, "utf8").split("\n").slice(0, -1);

describe("log file (FileLines)", () => {
  it("keeps lines until flushed, then appends them whole and in order, multi-byte text included", () => {
    const path = join(dir, "order.log");
    const file = FileLines.open(path);
    const written = ["plain", "naïve café ✓", "emoji 🙂 and 漢字", "last"].map((s, i) => `{"i":${i},"s":"${s}"}\n`);
    for (const l of written) file.write(l);
    assert.equal(readFileSync(path, "utf8"), "", "nothing is written before the buffer fills or a flush");
    file.flushSync();
    assert.equal(readFileSync(path, "utf8"), written.join(""));
    file.close();
  });

  it("writes a full buffer out on its own and never splits a line across writes", () => {
    const path = join(dir, "full.log");
    const file = FileLines.open(path);
    // ~300 KB of lines of varying length: several buffers' worth, none of which may be cut.
    const expected: string[] = [];
    for (let i = 0; i < 3000; i++) {
      const line = `{"n":${i},"pad":"${"é".repeat(i % 97)}${"x".repeat(i % 41)}"}`;
      expected.push(line);
      file.write(`${line}\n`);
    }
    const before = lines(path);
    assert.ok(before.length > 0, "a full buffer was written without a flush");
    assert.ok(before.length < expected.length, "the tail stays buffered");
    file.close();
    assert.deepEqual(lines(path), expected);
  });

  it("writes a line longer than its buffer directly, after what was buffered", () => {
    const path = join(dir, "long.log");
    const file = FileLines.open(path);
    const long = `{"big":"${"y".repeat(200_000)}"}\n`;
    file.write('{"a":1}\n');
    file.write(long);
    file.write('{"b":2}\n');
    file.close();
    assert.equal(readFileSync(path, "utf8"), `{"a":1}\n${long}{"b":2}\n`);
  });

  it("refuses a path it cannot open with an error naming it", () => {
    assert.throws(() => FileLines.open(join(dir, "missing", "dir", "x.log")), /cannot open the log file .*missing\/dir\/x\.log/);
  });

  it("drops lines it cannot write, counts them, says so once on stderr, and never throws into the caller", { skip: existsSync("/dev/full") ? false : "no /dev/full" }, () => {
    // /dev/full refuses every write with ENOSPC: a full disk, for root too.
    const file = FileLines.open("/dev/full");
    const said: string[] = [];
    const write = process.stderr.write;
    process.stderr.write = ((chunk: string) => {
      said.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
    try {
      file.write('{"a":1}\n');
      file.write('{"b":2}\n');
      file.flushSync();
      file.write('{"c":3}\n');
      file.flushSync();
    } finally {
      process.stderr.write = write;
    }
    assert.equal(file.dropped, 3);
    assert.equal(said.length, 1, said.join(""));
    assert.match(said[0]!, /cannot write the log file \/dev\/full: .*ENOSPC.*dropped/);
    file.close();
  });
});

describe("createLogger with a destination file", () => {
  it("writes pino's lines, the hand-built request line included, and flushLogger empties the buffer", () => {
    const path = join(dir, "logger.log");
    const logger = createLogger({ level: "info", destination: path });
    logger.info({ a: 1 }, "hello");
    writeInfoLine(logger, '"requestId":"r1","status":"ok"', "request");
    logger.debug("below the level");
    flushLogger(logger);
    const got = lines(path).map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(got.length, 2);
    assert.deepEqual([got[0]!.msg, got[0]!.a, got[0]!.service], ["hello", 1, "llm-gateway"]);
    assert.deepEqual([got[1]!.msg, got[1]!.requestId, got[1]!.status, got[1]!.level], ["request", "r1", "ok", 30]);
  });
});
