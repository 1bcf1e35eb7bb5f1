// node --conditions=keymanager-source --import tsx bench/metrics-cost.ts [--calls N]
// What the metrics add to one ValidateToken call, in process CPU time: the decision counted and
// the request observed in its latency histogram (the per-call work of observability/metrics.ts),
// with metrics on and with them off, alternating, medians of 3 rounds each.
import { parseArgs } from "node:util";
import { Metrics } from "../src/observability/metrics.js";

const { values } = parseArgs({ options: { calls: { type: "string", default: "2000000" } } });
const CALLS = Number(values.calls);

function nanosPerCall(enabled: boolean): number {
  const metrics = new Metrics(enabled);
  const meter = metrics.requests("grpc", "keymanager.v1.TokenValidationService", "ValidateToken");
  const status = { code: 0, name: "OK" };
  const before = process.cpuUsage();
  for (let i = 0; i < CALLS; i++) {
    const started = performance.now();
    metrics.decision(status);
    meter.done(started, "OK");
  }
  const used = process.cpuUsage(before);
  return ((used.user + used.system) * 1000) / CALLS;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const on: number[] = [];
const off: number[] = [];
for (let round = 0; round < 3; round++) {
  on.push(nanosPerCall(true));
  off.push(nanosPerCall(false));
}
console.log(`metrics on: ${median(on).toFixed(0)} ns per call; off: ${median(off).toFixed(0)} ns per call`);
