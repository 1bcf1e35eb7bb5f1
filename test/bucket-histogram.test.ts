import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { Histogram, Registry } from "prom-client";
import { BucketHistogram } from "../src/observability/bucket-histogram.js";

const BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const LABELS = ["port", "service", "method", "code"] as const;
const HELP = 'Durations; a help text with a backslash \\ and a "quote".';

type Observation = { set: Record<(typeof LABELS)[number], string>; value: number };

/** The /metrics text of prom-client's own Histogram and of BucketHistogram, each alone in a registry, after the same observations. */
async function bothExpositions(observations: Observation[]): Promise<[string, string]> {
  const reference = new Registry();
  const theirs = new Histogram({ name: "km_test_seconds", help: HELP, labelNames: [...LABELS], buckets: BUCKETS, registers: [reference] });
  const registry = new Registry();
  const ours = new BucketHistogram("km_test_seconds", HELP, LABELS, BUCKETS).register(registry);
  for (const { set, value } of observations) {
    theirs.labels(set).observe(value);
    ours.labels(set).observe(value);
  }
  return [await reference.metrics(), await registry.metrics()];
}

const labelSet = fc.record({
  port: fc.constantFrom("grpc", "http"),
  service: fc.constantFrom("keymanager.v1.TokenValidationService", "oauth2"),
  method: fc.constantFrom("ValidateToken", 'a "quoted" \\ name\nwith a newline'),
  code: fc.constantFrom("OK", "UNAUTHENTICATED", "200"),
});
// Durations around every bound: on it, just above it, far past the last one, zero.
const duration = fc.oneof(
  fc.constantFrom(0, ...BUCKETS, 10.000001, 3600),
  fc.double({ min: 0, max: 20, noNaN: true }),
  fc.constantFrom(...BUCKETS).map((b) => b * (1 + Number.EPSILON)),
);

describe("BucketHistogram", () => {
  test("the same exposition text as prom-client's Histogram for the same observations", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ set: labelSet, value: duration }), { maxLength: 200 }), async (observations) => {
        const [theirs, ours] = await bothExpositions(observations);
        assert.equal(ours, theirs);
      }),
      { numRuns: 200 },
    );
  });

  test("a value on a bound counts in that bound's bucket, one above the last bound only in +Inf", async () => {
    const set = { port: "grpc", service: "s", method: "m", code: "OK" };
    const [theirs, ours] = await bothExpositions([
      { set, value: 0.001 },
      { set, value: 11 },
    ]);
    assert.equal(ours, theirs);
    assert.match(ours, /km_test_seconds_bucket\{le="0.0005",port="grpc",service="s",method="m",code="OK"\} 0\n/);
    assert.match(ours, /km_test_seconds_bucket\{le="0.001",port="grpc",service="s",method="m",code="OK"\} 1\n/);
    assert.match(ours, /km_test_seconds_bucket\{le="10",port="grpc",service="s",method="m",code="OK"\} 1\n/);
    assert.match(ours, /km_test_seconds_bucket\{le="\+Inf",port="grpc",service="s",method="m",code="OK"\} 2\n/);
    assert.match(ours, /km_test_seconds_count\{port="grpc",service="s",method="m",code="OK"\} 2\n/);
  });

  test("no observation, no lines but HELP and TYPE; reset empties it as prom-client's does", async () => {
    const [theirs, ours] = await bothExpositions([]);
    assert.equal(ours, theirs);
    const registry = new Registry();
    const h = new BucketHistogram("km_reset_seconds", "h", ["code"], BUCKETS).register(registry);
    h.labels({ code: "OK" }).observe(0.5);
    registry.resetMetrics();
    assert.doesNotMatch(await registry.metrics(), /km_reset_seconds_count/);
    h.labels({ code: "OK" }).observe(0.5);
    assert.match(await registry.metrics(), /km_reset_seconds_count\{code="OK"\} 1\n/);
  });
});
