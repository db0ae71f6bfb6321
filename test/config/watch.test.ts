import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, it } from "node:test";
import { watchConfigFile, type ConfigWatcher } from "../../server/config/watch.js";

/** Counter counts onChange calls and lets a test wait for the next one. */
interface Counter {
  calls: number;
  onChange: () => void;
  /** reach resolves at the n-th call, or rejects after timeoutMs. */
  reach(n: number, timeoutMs?: number): Promise<void>;
}

function counter(): Counter {
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  const c: Counter = {
    calls: 0,
    onChange() {
      c.calls++;
      for (const w of waiters.filter((w) => c.calls >= w.n)) w.resolve();
    },
    async reach(n, timeoutMs = 3000) {
      if (c.calls >= n) return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => waiters.push({ n, resolve })),
        new Promise<void>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`expected ${n} change(s), saw ${c.calls}`)), timeoutMs);
        }),
      ]).finally(() => clearTimeout(timer));
    },
  };
  return c;
}

describe("watchConfigFile", () => {
  let dir: string;
  let file: string;
  let watcher: ConfigWatcher | undefined;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "gw-watch-"));
    file = join(dir, "gateway.yaml");
    writeFileSync(file, "server: { port: 1 }\n");
  });
  afterEach(() => {
    watcher?.close();
    watcher = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  it("fires once for an in-place write, and debounces a burst of writes", async () => {
    const c = counter();
    watcher = watchConfigFile(file, c.onChange);
    for (let i = 2; i <= 5; i++) {
      writeFileSync(file, `server: { port: ${i} }\n`);
      await sleep(10);
    }
    await c.reach(1);
    // Well past the 100 ms debounce: the burst produced exactly one signal.
    await sleep(250);
    assert.equal(c.calls, 1);
  });

  it("fires for a rename-replace (how editors save)", async () => {
    const c = counter();
    watcher = watchConfigFile(file, c.onChange, { debounceMs: 30 });
    const tmp = join(dir, ".gateway.yaml.swp");
    writeFileSync(tmp, "server: { port: 2 }\n");
    renameSync(tmp, file);
    await c.reach(1);
    // The watch survives the replace: a second save fires again.
    writeFileSync(tmp, "server: { port: 3 }\n");
    renameSync(tmp, file);
    await c.reach(2);
  });

  it("tolerates the file disappearing for a moment, and signals when it is back", async () => {
    const c = counter();
    watcher = watchConfigFile(file, c.onChange, { debounceMs: 30 });
    unlinkSync(file);
    await sleep(150);
    assert.equal(c.calls, 0, "no signal while the file is missing");
    writeFileSync(file, "server: { port: 4 }\n");
    await c.reach(1);
  });

  it("follows a Kubernetes ConfigMap symlink swap", async () => {
    // The ConfigMap layout: gateway.yaml -> ..data/gateway.yaml, ..data -> ..<timestamp>.
    const k8s = join(dir, "k8s");
    mkdirSync(join(k8s, "..v1"), { recursive: true });
    writeFileSync(join(k8s, "..v1", "gateway.yaml"), "server: { port: 1 }\n");
    symlinkSync("..v1", join(k8s, "..data"));
    symlinkSync(join("..data", "gateway.yaml"), join(k8s, "gateway.yaml"));
    const c = counter();
    watcher = watchConfigFile(join(k8s, "gateway.yaml"), c.onChange, { debounceMs: 30 });
    mkdirSync(join(k8s, "..v2"));
    writeFileSync(join(k8s, "..v2", "gateway.yaml"), "server: { port: 2 }\n");
    symlinkSync("..v2", join(k8s, "..data_tmp"));
    renameSync(join(k8s, "..data_tmp"), join(k8s, "..data"));
    await c.reach(1);
  });

  it("ignores other files in the directory and rewrites with the same content", async () => {
    const c = counter();
    watcher = watchConfigFile(file, c.onChange, { debounceMs: 30 });
    writeFileSync(join(dir, "other.yaml"), "x: 1\n");
    writeFileSync(file, "server: { port: 1 }\n");
    await sleep(200);
    assert.equal(c.calls, 0);
  });

  it("stops after close", async () => {
    const c = counter();
    watcher = watchConfigFile(file, c.onChange, { debounceMs: 30 });
    writeFileSync(file, "server: { port: 9 }\n");
    watcher.close();
    await sleep(150);
    assert.equal(c.calls, 0);
  });
});
