import type { Metric, Registry } from "prom-client";

/** One line's value as prom-client's Registry formats it. */
interface LineValue {
  labels: Record<string, string | number>;
  value: number;
  metricName: string;
}

/** What prom-client's Registry reads from a metric (its typings give `type` as a numeric enum; at run time it is the name). */
interface MetricData {
  name: string;
  help: string;
  type: "histogram";
  aggregator: "sum";
  values: LineValue[];
}

/**
 * One label set's counts. `observe` is a bucket search and three additions on typed arrays and
 * numbers: prom-client's Histogram child hashes its label values and re-validates them on every
 * observation (~0.9 µs against ~0.1 µs here, on the request path of every call).
 */
export class BucketCounts {
  /** Observations per bucket, not cumulative; the last one is above every bound (+Inf). */
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    private readonly bounds: Float64Array,
    readonly labels: Readonly<Record<string, string>>,
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > (bounds[i] as number)) i++;
    (this.counts[i] as number)++;
    this.sum += value;
    this.count++;
  }
}

/**
 * A Prometheus histogram with the same exposition as prom-client's Histogram (the same lines in
 * the same order: `le` first, cumulative buckets, +Inf, _sum, _count), kept as plain counts per
 * label set and turned into prom-client's values only when scraped. It sits in the app's one
 * prom-client Registry beside the other metrics.
 */
export class BucketHistogram {
  readonly type = "histogram" as const;
  readonly aggregator = "sum" as const;
  private readonly bounds: Float64Array;
  private readonly sets = new Map<string, BucketCounts>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly string[],
    buckets: readonly number[],
  ) {
    this.bounds = Float64Array.from([...buckets].sort((a, b) => a - b));
  }

  /** Registers it in `registry` (one registry: /metrics shows it with everything else). */
  register(registry: Registry): this {
    registry.registerMetric(this as unknown as Metric);
    return this;
  }

  /** The counts of one label set, made on first use; callers keep it and observe on it. */
  labels(values: Readonly<Record<string, string>>): BucketCounts {
    const key = this.labelNames.map((n) => values[n] ?? "").join("\u0000");
    let set = this.sets.get(key);
    if (!set) {
      const labels: Record<string, string> = {};
      for (const n of this.labelNames) labels[n] = values[n] ?? "";
      set = new BucketCounts(this.bounds, labels);
      this.sets.set(key, set);
    }
    return set;
  }

  /** prom-client's values for the exposition (what its Histogram's get() gives). */
  async get(): Promise<MetricData> {
    const values: LineValue[] = [];
    const bucket = `${this.name}_bucket`;
    for (const set of this.sets.values()) {
      if (set.count === 0) continue;
      let cumulative = 0;
      for (const [i, bound] of this.bounds.entries()) {
        cumulative += set.counts[i] as number;
        values.push({ labels: { le: bound, ...set.labels }, value: cumulative, metricName: bucket });
      }
      values.push({ labels: { le: "+Inf", ...set.labels }, value: set.count, metricName: bucket });
      values.push({ labels: { ...set.labels }, value: set.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...set.labels }, value: set.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** Every count back to zero (prom-client's Registry.resetMetrics); label sets stay, unexported until observed again. */
  reset(): void {
    for (const set of this.sets.values()) {
      set.counts.fill(0);
      set.sum = 0;
      set.count = 0;
    }
  }
}
