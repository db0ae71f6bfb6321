import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { allOf } from "../../server/state/all-of.js";

// allOf: Promise.all over a mapped list, with one item awaited directly.

describe("allOf", () => {
  it("gives each item's result in order, for none, one and several items", async () => {
    const double = async (n: number, i: number) => n * 2 + i * 100;
    assert.deepEqual(await allOf([], double), []);
    assert.deepEqual(await allOf([5], double), [10]);
    assert.deepEqual(await allOf([1, 2, 3], double), [2, 104, 206]);
    assert.deepEqual(await allOf([1, 2], (n) => (n === 1 ? undefined : n)), [undefined, 2]);
  });

  it("issues every call before waiting for any (one round trip with Redis)", async () => {
    const started: number[] = [];
    const gates: Array<() => void> = [];
    const all = allOf([1, 2, 3], (n) => {
      started.push(n);
      return new Promise<number>((resolve) => gates.push(() => resolve(n)));
    });
    assert.deepEqual(started, [1, 2, 3]);
    for (const open of gates.reverse()) open();
    assert.deepEqual(await all, [1, 2, 3]);
  });

  it("rejects with the first failure, as Promise.all does", async () => {
    await assert.rejects(allOf([1], async () => Promise.reject(new Error("one"))), /one/);
    await assert.rejects(
      allOf([1, 2], async (n) => {
        if (n === 2) throw new Error("two");
        return n;
      }),
      /two/,
    );
  });
});
