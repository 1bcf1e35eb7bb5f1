import assert from "node:assert/strict";
import { test } from "node:test";
import { ChangeEvents } from "../src/domain/change-events.js";
import { DEFAULT_CACHE_LIMITS, ValidationCache } from "../src/validation/validation-cache.js";

/** A read that the test finishes by hand, counting how often the database was asked. */
function gatedLoad<V>() {
  let reads = 0;
  let release: (v: V | undefined) => void = () => {};
  const gate = new Promise<V | undefined>((r) => {
    release = r;
  });
  return { load: () => (reads++, gate), release: (v: V | undefined) => release(v), reads: () => reads };
}

test("concurrent misses of one key share one read, and its value is kept", async () => {
  const cache = new ValidationCache(new ChangeEvents(), DEFAULT_CACHE_LIMITS);
  const read = gatedLoad<{ apiId: string }>();
  const calls = Array.from({ length: 100 }, () => cache.through(cache.apis as never, "ctx", read.load));
  read.release({ apiId: "a1" });
  const values = await Promise.all(calls);
  assert.equal(read.reads(), 1);
  assert.ok(values.every((v) => (v as { apiId: string }).apiId === "a1"));
  assert.equal(((await cache.through(cache.apis as never, "ctx", read.load)) as { apiId: string }).apiId, "a1");
  assert.equal(read.reads(), 1, "then answered from the cache");
  cache.close();
});

test("a change during a read: later calls read again, and the old read's value is not kept", async () => {
  const events = new ChangeEvents();
  const cache = new ValidationCache(events, DEFAULT_CACHE_LIMITS);
  const before = gatedLoad<{ v: number }>();
  const first = cache.through(cache.subscriptions as never, "s", before.load);
  events.publish({ kind: "subscription", applicationId: "app", apiId: "api" });
  const after = gatedLoad<{ v: number }>();
  const second = cache.through(cache.subscriptions as never, "s", after.load);
  assert.equal(after.reads(), 1, "the call after the change did not join the earlier read");
  before.release({ v: 1 });
  after.release({ v: 2 });
  assert.deepEqual(await first, { v: 1 });
  assert.deepEqual(await second, { v: 2 });
  const third = gatedLoad<{ v: number }>();
  assert.deepEqual(await cache.through(cache.subscriptions as never, "s", third.load), { v: 2 });
  assert.equal(third.reads(), 0);
  cache.close();
});
