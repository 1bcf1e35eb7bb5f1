import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ResourceExhaustedError } from "../src/domain/errors.js";
import { AuthenticationThrottle, DEFAULT_THROTTLE_LIMITS } from "../src/oauth/authentication-throttle.js";
import { TestClock } from "./support/clock.js";

const limits = { ...DEFAULT_THROTTLE_LIMITS, freeFailures: 3, sourceFreeFailures: 10, sourceForgiveMs: 1000, subjectSlowdownAfter: 5, longestSlowdownMs: 100 };
const paused = (throttle: AuthenticationThrottle, source: string, subject: string) => {
  try {
    throttle.check({ source, subject });
    return false;
  } catch (err) {
    assert.ok(err instanceof ResourceExhaustedError);
    return true;
  }
};

describe("authentication throttle", () => {
  test("pauses the failing address for that subject only, doubling the pause; a success from it starts afresh", () => {
    const clock = new TestClock();
    const throttle = new AuthenticationThrottle(clock, limits);
    const guess = { source: "192.0.2.1", subject: "client-a" };
    for (let i = 0; i < 3; i++) throttle.failed(guess);
    assert.equal(paused(throttle, guess.source, "client-a"), true);
    assert.equal(paused(throttle, "192.0.2.2", "client-a"), false, "another address is not paused");
    assert.equal(paused(throttle, guess.source, "client-b"), false, "another subject from the same address is not paused");
    clock.advance(1);
    assert.equal(paused(throttle, guess.source, "client-a"), false, "the first pause is 1 s");
    throttle.failed(guess);
    clock.advance(1);
    assert.equal(paused(throttle, guess.source, "client-a"), true, "the next failure pauses 2 s");
    clock.advance(1);
    throttle.succeeded(guess);
    throttle.failed(guess);
    assert.equal(paused(throttle, guess.source, "client-a"), false, "counting starts afresh after a success");
  });

  test("pauses an address spraying many subjects, and forgives it over time", () => {
    const clock = new TestClock();
    const throttle = new AuthenticationThrottle(clock, limits);
    for (let i = 0; i < 10; i++) throttle.failed({ source: "192.0.2.9", subject: `client-${i}` });
    assert.equal(paused(throttle, "192.0.2.9", "never-tried"), true, "the whole address is paused");
    assert.equal(paused(throttle, "192.0.2.10", "client-1"), false);
    clock.advance(2);
    assert.equal(paused(throttle, "192.0.2.9", "never-tried"), false);
    clock.advance(60);
    throttle.failed({ source: "192.0.2.9", subject: "client-x" });
    assert.equal(paused(throttle, "192.0.2.9", "never-tried"), false, "failures in hand were forgiven, one a second");
  });

  test("a subject failing from many addresses gets late wrong answers, never a refusal", () => {
    const clock = new TestClock();
    const throttle = new AuthenticationThrottle(clock, limits);
    const delays = Array.from({ length: 30 }, (_, i) => throttle.failed({ source: `198.51.100.${i}`, subject: "client-a" }));
    assert.deepEqual(delays.slice(0, 5), [0, 0, 0, 0, 0]);
    assert.equal(delays[5], 10);
    assert.equal(delays[29], 100, "capped by longestSlowdownMs");
    assert.equal(paused(throttle, "203.0.113.1", "client-a"), false, "the holder of the secret is never refused");
  });

  test("stays bounded: long subjects are kept as hashes, and the oldest entries are forgotten", () => {
    const throttle = new AuthenticationThrottle(new TestClock(), { ...limits, maxTracked: 100 });
    for (let i = 0; i < 1000; i++) throttle.failed({ source: `10.0.${i >> 8}.${i & 255}`, subject: `${"x".repeat(60_000)}${i}` });
    const sizes = throttle as unknown as Record<"pairs" | "sources" | "subjects", { size: number; keys(): IterableIterator<string> }>;
    for (const kind of ["pairs", "sources", "subjects"] as const) {
      assert.ok(sizes[kind].size <= 100, `${kind}: ${sizes[kind].size}`);
      for (const key of sizes[kind].keys()) assert.ok(key.length < 200, `${kind} key of ${key.length} characters`);
    }
  });
});
