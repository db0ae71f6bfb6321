/**
 * allOf calls fn on every item at once and waits for them all, as
 * `Promise.all(items.map(fn))` does: with Redis, calls issued in one turn
 * share a round trip. Most requests make one such call (one budget, one
 * limit scope, one TPM window); that one is awaited directly, without
 * Promise.all's per-element machinery on every request.
 */
export async function allOf<T, R>(items: readonly T[], fn: (item: T, index: number) => R | PromiseLike<R>): Promise<Array<Awaited<R>>> {
  if (items.length === 1) return [await fn(items[0]!, 0)];
  return Promise.all(items.map(fn));
}
