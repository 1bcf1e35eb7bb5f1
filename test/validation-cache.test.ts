import assert from "node:assert/strict";
import { test } from "node:test";
import { ChangeEvents } from "../src/domain/change-events.js";
import { ExternalTokenCache } from "../src/keymanager/oauth2/token-cache.js";
import { DecisionCache } from "../src/validation/decision-cache.js";
import { DEFAULT_CACHE_LIMITS, ValidationCache } from "../src/validation/validation-cache.js";

/** A read that the test finishes by hand, counting how often the database was asked. */
function gatedLoad<V>() {
  let reads = 0;
  let release: (v: V | undefined) => void = () => {};
  const gate = new Promise<V | undefined>((r) => {
    release = r;
  });
  return {
    load: () => {
      reads++;
      return gate;
    },
    release: (v: V | undefined) => release(v),
    reads: () => reads,
  };
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

test("decisions: a token's change drops only its answers; any other change retires all; an answer worked out across a change is not kept", () => {
  const events = new ChangeEvents();
  const decisions = new DecisionCache<{ answer: string }>(events, 1000, 1 << 20);
  const now = 1_000;
  const keep = (key: string, token: string) => decisions.set(key, { answer: key }, now + 60_000, decisions.generation, token);
  keep("a/get", "hash-a");
  keep("a/post", "hash-a");
  keep("b/get", "hash-b");
  keep("none", "");

  events.publish({ kind: "token", tokenHash: "hash-a" });
  assert.equal(decisions.get("a/get", now), undefined);
  assert.equal(decisions.get("a/post", now), undefined);
  assert.deepEqual(decisions.get("b/get", now), { answer: "b/get" }, "another token's answer is still served");
  assert.deepEqual(decisions.get("none", now), { answer: "none" });

  const before = decisions.generation;
  events.publish({ kind: "token", tokenHash: "hash-c" });
  decisions.set("c/get", { answer: "c" }, now + 60_000, before, "hash-c");
  assert.equal(decisions.get("c/get", now), undefined, "worked out while a change arrived: not kept");

  events.publish({ kind: "subscription", applicationId: "app", apiId: "api" });
  assert.equal(decisions.get("b/get", now), undefined, "any other change retires every answer");
  assert.equal(decisions.get("none", now), undefined);
  decisions.close();
});

test("external key managers' answers: kept unless a change that may concern the token came while the server was asked", () => {
  const events = new ChangeEvents();
  const cache = new ExternalTokenCache(events);
  const now = 1_000;
  const until = now + 60_000;
  const asked = (hash: string, during: () => void) => {
    const epoch = cache.currentEpoch;
    during();
    cache.set(hash, undefined, until, epoch);
    return cache.get(hash, now) !== undefined;
  };
  assert.equal(
    asked("h1", () => events.publish({ kind: "token", tokenHash: "other" })),
    true,
    "another token's change",
  );
  assert.equal(
    asked("h2", () => events.publish({ kind: "subscription", applicationId: "a", apiId: "b" })),
    true,
    "not about tokens",
  );
  assert.equal(
    asked("h3", () => events.publish({ kind: "token", tokenHash: "h3" })),
    false,
    "this token's change",
  );
  assert.equal(
    asked("h4", () => events.publish({ kind: "application", consumerKey: "c" })),
    false,
    "a client's change",
  );
  assert.equal(
    asked("h5", () => events.publish({ kind: "all" })),
    false,
    "a flush",
  );
  cache.close();
});

test("a change of another kind during a read does not stop its value being kept", async () => {
  const events = new ChangeEvents();
  const cache = new ValidationCache(events, DEFAULT_CACHE_LIMITS);
  const read = gatedLoad<{ v: number }>();
  const pending = cache.through(cache.apis as never, "ctx", read.load);
  events.publish({ kind: "token", tokenHash: "h" });
  events.publish({ kind: "subscription", applicationId: "app", apiId: "api" });
  read.release({ v: 1 });
  assert.deepEqual(await pending, { v: 1 });
  const again = gatedLoad<{ v: number }>();
  assert.deepEqual(await cache.through(cache.apis as never, "ctx", again.load), { v: 1 });
  assert.equal(again.reads(), 0, "kept: token and subscription changes cannot make an API stale");
  cache.close();
});
