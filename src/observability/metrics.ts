import { performance } from "node:perf_hooks";
import type { Knex } from "knex";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import { type BucketCounts, BucketHistogram } from "./bucket-histogram.js";
import type { CacheStats } from "./cache-stats.js";

/** Seconds; from a cached answer on loopback (~50 µs) to a slow database call. */
const LATENCY_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const LAG_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** Grant types a label may name; anything else a caller sends is "other". */
const GRANT_TYPES = new Set([
  "client_credentials",
  "password",
  "refresh_token",
  "urn:ietf:params:oauth:grant-type:jwt-bearer",
  "urn:ietf:params:oauth:grant-type:token-exchange",
]);
/** Outcomes a label may name (OAuth2 error codes and "issued"); anything else is "error". */
const GRANT_OUTCOMES = new Set([
  "issued",
  "invalid_client",
  "invalid_request",
  "invalid_grant",
  "unauthorized_client",
  "unsupported_grant_type",
  "invalid_scope",
  "invalid_target",
  "temporarily_unavailable",
  "throttled",
  "error",
]);

/** Which listener a request came in on. */
export type Port = "grpc" | "http";

/** Times one kind of request (one RPC, one route) and counts it by its outcome code. */
export interface RequestMeter {
  /** A start time for `done` (0 when metrics are off). */
  start(): number;
  /** The request ended with `code` (a gRPC code name, or an HTTP status). */
  done(startedAt: number, code: string): void;
}

const OFF_METER: RequestMeter = { start: () => 0, done: () => undefined };

/** Counts of one fixed set of label values, kept as plain numbers and read when scraped. */
class Tally<K extends string> {
  private readonly counts = new Map<K, number>();

  add(key: K): void {
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  entries(): IterableIterator<[K, number]> {
    return this.counts.entries();
  }
}

/**
 * The service's Prometheus metrics (prom-client, a registry of the app's own). Hot paths pay a
 * number increment or one histogram observation on a child made once per label set; everything
 * else (pool, caches, watchers) is read when /metrics is scraped. Labels only ever hold values
 * from fixed sets: no token, secret, path or other caller-chosen text.
 */
export class Metrics {
  readonly registry = new Registry();
  /** Every call's: a BucketHistogram (prom-client's observe costs ~0.9 µs a call; this ~0.1). */
  private readonly requestDuration: BucketHistogram;
  private readonly decisionCounts = new Map<number, { status: string; count: number }>();
  private readonly grants = new Tally<string>();
  private readonly lockoutCounts = new Tally<string>();
  private readonly changeFeedLag: Histogram;
  private readonly changeFeedFlushes: Counter;
  private readonly dbQueryErrors: Counter<"kind">;
  private readonly caches: CacheStats[] = [];
  private readonly watcherSources = new Set<() => number>();
  private readonly watchBufferSources = new Set<() => number>();

  constructor(readonly enabled: boolean) {
    const registers = [this.registry];
    if (enabled) collectDefaultMetrics({ register: this.registry });
    this.requestDuration = new BucketHistogram(
      "keymanager_request_duration_seconds",
      "Requests by listener (grpc, http), service, method (RPC name or route) and code (gRPC code name or HTTP status), with their durations.",
      ["port", "service", "method", "code"],
      LATENCY_BUCKETS,
    ).register(this.registry);
    const decisions = this.decisionCounts;
    new Counter({
      name: "keymanager_token_validations_total",
      help: "ValidateToken answers by status code (0 authorized, 9009xx refusals and failures) and status name.",
      labelNames: ["code", "status"],
      registers,
      collect() {
        this.reset();
        for (const [code, { status, count }] of decisions) this.inc({ code: String(code), status }, count);
      },
    });
    const grants = this.grants;
    new Counter({
      name: "keymanager_token_grants_total",
      help: "Token requests (/oauth2/token and GetNewApplicationAccessToken) by grant type and outcome (issued, or the OAuth2 error).",
      labelNames: ["grant_type", "outcome"],
      registers,
      collect() {
        this.reset();
        for (const [key, count] of grants.entries()) {
          const [grant_type = "", outcome = ""] = key.split(" ");
          this.inc({ grant_type, outcome }, count);
        }
      },
    });
    const lockouts = this.lockoutCounts;
    new Counter({
      name: "keymanager_authentication_lockouts_total",
      help: "Failed client or user authentications that paused their address: for one client id or username (pair), or for all (address).",
      labelNames: ["scope"],
      registers,
      collect() {
        this.reset();
        for (const [scope, count] of lockouts.entries()) this.inc({ scope }, count);
      },
    });
    const caches = this.caches;
    const cacheCounter = (name: string, help: string, read: (s: CacheStats) => number) =>
      new Counter({
        name,
        help,
        labelNames: ["cache"],
        registers,
        collect() {
          this.reset();
          for (const stats of caches) this.inc({ cache: stats.kind }, read(stats));
        },
      });
    cacheCounter("keymanager_cache_hits_total", "Look-ups answered from the cache, per cache.", (s) => s.hits);
    cacheCounter("keymanager_cache_misses_total", "Look-ups the cache could not answer, per cache.", (s) => s.misses);
    cacheCounter("keymanager_cache_evictions_total", "Entries pushed out by the cache's entry or size bound, per cache.", (s) => s.evictions);
    new Gauge({
      name: "keymanager_cache_entries",
      help: "Entries held, per cache.",
      labelNames: ["cache"],
      registers,
      collect() {
        for (const stats of caches) this.set({ cache: stats.kind }, stats.size);
      },
    });
    new Gauge({
      name: "keymanager_cache_bytes",
      help: "Bytes held by the cache's own count, per cache bounded by bytes.",
      labelNames: ["cache"],
      registers,
      collect() {
        for (const stats of caches) if (stats.bytes) this.set({ cache: stats.kind }, stats.bytes());
      },
    });
    this.changeFeedLag = new Histogram({
      name: "keymanager_change_feed_lag_seconds",
      help: "From another replica sending a change to this one applying it (the two clocks' difference included).",
      buckets: LAG_BUCKETS,
      registers,
    });
    this.changeFeedFlushes = new Counter({
      name: "keymanager_change_feed_flushes_total",
      help: "Times every cache was emptied because other replicas' changes may have been missed (feed lost, a replica gone, a gap).",
      registers,
    });
    const buffers = this.watchBufferSources;
    new Gauge({
      name: "keymanager_stream_buffered_bytes",
      help: "Bytes of events waiting in this replica's Watch streams' buffers for watchers that have not read them yet (each bounded by gateway_sync.max_buffered_bytes).",
      registers,
      collect() {
        let total = 0;
        for (const bytes of buffers) total += bytes();
        this.set(total);
      },
    });
    const watchers = this.watcherSources;
    new Gauge({
      name: "keymanager_stream_watchers",
      help: "Gateways' Watch streams open on this replica (GatewaySyncService).",
      registers,
      collect() {
        let total = 0;
        for (const count of watchers) total += count();
        this.set(total);
      },
    });
    this.dbQueryErrors = new Counter({
      name: "keymanager_db_query_errors_total",
      help: "Failed database queries: timeout (no connection in time, or a query timeout) or error.",
      labelNames: ["kind"],
      registers,
    });
  }

  /** The meter of one kind of request: made once (at registration), used per call. */
  requests(port: Port, service: string, method: string): RequestMeter {
    if (!this.enabled) return OFF_METER;
    const histogram = this.requestDuration;
    const byCode = new Map<string, BucketCounts>();
    return {
      start: () => performance.now(),
      done(startedAt: number, code: string) {
        let counts = byCode.get(code);
        if (!counts) {
          counts = histogram.labels({ port, service, method, code });
          byCode.set(code, counts);
        }
        counts.observe((performance.now() - startedAt) / 1000);
      },
    };
  }

  /** One ValidateToken answer. */
  decision(status: { code: number; name: string }): void {
    if (!this.enabled) return;
    const known = this.decisionCounts.get(status.code);
    if (known) known.count++;
    else this.decisionCounts.set(status.code, { status: status.name, count: 1 });
  }

  /** One token request: its grant type (as sent) and outcome ("issued" or an OAuth2 error code). */
  grant(grantType: string, outcome: string): void {
    if (!this.enabled) return;
    const grant = GRANT_TYPES.has(grantType) ? grantType : "other";
    this.grants.add(`${grant} ${GRANT_OUTCOMES.has(outcome) ? outcome : "error"}`);
  }

  /** An address paused for one subject ("pair") or for all ("address"). */
  lockout(scope: "pair" | "address"): void {
    if (this.enabled) this.lockoutCounts.add(scope);
  }

  cache(stats: CacheStats): void {
    this.caches.push(stats);
  }

  /** A change from another replica, sent at `sentAtMs` (its clock). */
  changeApplied(sentAtMs: number): void {
    if (this.enabled) this.changeFeedLag.observe(Math.max(0, Date.now() - sentAtMs) / 1000);
  }

  changeFeedFlushed(): void {
    if (this.enabled) this.changeFeedFlushes.inc();
  }

  /**
   * Registers a source of stream watchers (a watch stream's count of open calls); returns its
   * unregistration. keymanager_stream_watchers is their sum.
   */
  registerWatchers(count: () => number, bufferedBytes?: () => number): () => void {
    this.watcherSources.add(count);
    if (bufferedBytes) this.watchBufferSources.add(bufferedBytes);
    return () => {
      this.watcherSources.delete(count);
      if (bufferedBytes) this.watchBufferSources.delete(bufferedBytes);
    };
  }

  /** The database pool's figures and query failures. */
  database(db: Knex): void {
    if (!this.enabled) return;
    const pool = () => (db.client as { pool?: TarnPool }).pool;
    const registers = [this.registry];
    const gauge = (name: string, help: string, read: (p: TarnPool) => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const p = pool();
          this.set(p ? read(p) : 0);
        },
      });
    gauge("keymanager_db_pool_connections_in_use", "Database connections lent out to a query or transaction.", (p) => p.numUsed());
    gauge("keymanager_db_pool_connections_idle", "Database connections open and free.", (p) => p.numFree());
    gauge("keymanager_db_pool_waiting", "Queries and transactions waiting for a database connection.", (p) => p.numPendingAcquires());
    gauge("keymanager_db_pool_connections_max", "The pool's most connections (database.pool_max; 1 for SQLite).", (p) => p.max);
    db.on("query-error", (err: unknown) => this.dbQueryErrors.inc({ kind: isTimeout(err) ? "timeout" : "error" }));
    // A connection not lent in time fails before any query starts, without a query-error event.
    pool()?.on("acquireFail", (_id: unknown, err: unknown) => this.dbQueryErrors.inc({ kind: isTimeout(err) ? "timeout" : "error" }));
  }

  /** The text format, or undefined when metrics are off. */
  async scrape(): Promise<{ contentType: string; body: string } | undefined> {
    if (!this.enabled) return undefined;
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

interface TarnPool {
  max: number;
  numUsed(): number;
  numFree(): number;
  numPendingAcquires(): number;
  on(event: "acquireFail", listener: (id: unknown, err: unknown) => void): void;
}

function isTimeout(err: unknown): boolean {
  const name = (err as { name?: string } | undefined)?.name ?? "";
  return name === "KnexTimeoutError" || name === "TimeoutError";
}
