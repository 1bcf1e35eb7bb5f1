import { LRUCache } from "lru-cache";
import type { Change, ChangeEvents } from "../domain/change-events.js";
import type { ResourceTable } from "@keymanager/core";
import type { Api, KeyMapping, Subscription, TokenRecord } from "../domain/model/index.js";
import { CacheStats } from "../observability/cache-stats.js";

export interface CacheLimits {
  /** Entries per kind. */
  maxEntries: number;
  /** Approximate bytes per kind. */
  maxBytes: number;
  /** How long an existing entry is trusted without an invalidation (other replicas' changes). */
  ttlMs: number;
  negativeTtlMs: number;
  /**
   * Bytes of every "not found" kept, all kinds together (unknown tokens above all: anyone can
   * make up any number of them); the least recently used go first.
   */
  negativeBytes: number;
}

export const DEFAULT_CACHE_LIMITS: CacheLimits = {
  maxEntries: 200_000,
  maxBytes: 128 * 1024 * 1024,
  ttlMs: 5 * 60_000,
  negativeTtlMs: 30_000,
  negativeBytes: 16 * 1024 * 1024,
};

/**
 * What one "not found" costs the heap: lru-cache's bookkeeping and the key (its kind's name and
 * the key, counted at two bytes a character). Measured with --expose-gc: 225 bytes for the
 * 82-character key of an unknown token, for which this says 260.
 */
export function negativeEntryBytes(key: string): number {
  return 96 + 2 * key.length;
}

function lru<V extends {}>(limits: CacheLimits, size: (value: V) => number, stats: Map<object, CacheStats>, kind: string): LRUCache<string, V> {
  const counts = new CacheStats(kind, () => cache.size);
  const cache: LRUCache<string, V> = new LRUCache<string, V>({
    max: limits.maxEntries,
    maxSize: limits.maxBytes,
    sizeCalculation: (value, key) => 64 + key.length * 2 + size(value),
    ttl: limits.ttlMs,
    ttlAutopurge: false,
    updateAgeOnGet: false,
    dispose: counts.disposed,
  });
  stats.set(cache, counts);
  return cache;
}

const tokenSize = (t: TokenRecord) => 400 + t.scopes.join("").length * 2;
const objectSize = () => 512;

/**
 * What the gateway check reads, bounded in entries and memory. "Not found" answers (unknown
 * tokens, APIs, applications, subscriptions) are kept apart, in one cache bounded by bytes
 * (`negativeBytes`), so made-up tokens can neither grow the heap past it nor push out the
 * entries of real ones. Changes published on this node, or received from other replicas, drop
 * the affected entries.
 */
export class ValidationCache {
  readonly tokens: LRUCache<string, TokenRecord>;
  readonly apis: LRUCache<string, Api>;
  /** Each API's resources, compiled for matching. */
  readonly resources: LRUCache<string, ResourceTable>;
  readonly applications: LRUCache<string, KeyMapping>;
  readonly subscriptions: LRUCache<string, Subscription>;
  /** Every kind's "not found", keyed by the kind's name and the key. */
  readonly unknown: LRUCache<string, true>;
  /** Hits, misses and evictions of each cache (the metrics read them). */
  private readonly counts = new Map<object, CacheStats>();
  readonly unknownStats: CacheStats;
  /** Each kind's prefix in `unknown`. */
  private readonly prefixes = new Map<object, string>();
  private readonly unsubscribe: () => void;
  /** Counts each cache's invalidations, so a load that overlapped one of its own is not cached. */
  private readonly epochs = new WeakMap<object, number>();
  /** Reads in flight, per cache and key; dropped by an invalidation of their cache. */
  private readonly loading = new WeakMap<object, Map<string, Promise<unknown>>>();

  constructor(
    events: ChangeEvents,
    readonly limits: CacheLimits = DEFAULT_CACHE_LIMITS,
  ) {
    this.tokens = lru<TokenRecord>(limits, tokenSize, this.counts, "validation_tokens");
    this.apis = lru<Api>(limits, objectSize, this.counts, "validation_apis");
    this.resources = lru<ResourceTable>(limits, (r) => 200 * r.size, this.counts, "validation_resources");
    this.applications = lru<KeyMapping>(limits, objectSize, this.counts, "validation_applications");
    this.subscriptions = lru<Subscription>(limits, objectSize, this.counts, "validation_subscriptions");
    for (const [cache, stats] of this.counts) this.prefixes.set(cache, `${stats.kind}\u0000`);
    const unknownStats = new CacheStats(
      "validation_unknown",
      () => this.unknown.size,
      () => this.unknown.calculatedSize,
    );
    this.unknownStats = unknownStats;
    this.unknown = new LRUCache<string, true>({
      maxSize: limits.negativeBytes,
      sizeCalculation: (_, key) => negativeEntryBytes(key),
      ttl: limits.negativeTtlMs,
      ttlAutopurge: false,
      updateAgeOnGet: false,
      dispose: unknownStats.disposed,
    });
    this.unsubscribe = events.subscribe((change) => this.invalidate(change));
  }

  /**
   * The cached value of `key`, else what `load` finds, cached either way ("not found" only for
   * the shorter negative TTL, within the negative budget). A value loaded while an invalidation
   * arrived may predate the change behind it (another replica's commit lands between the read
   * and its notification): it answers this call but is not kept.
   */
  through<V extends {}>(cache: LRUCache<string, V>, key: string, load: () => Promise<V | undefined>): Promise<V | undefined> {
    const hit = this.cached(cache, key);
    if (hit !== MISS) return Promise.resolve(hit);
    // Concurrent misses of one key (a gateway's burst with a new token) share one read.
    let loads = this.loading.get(cache);
    if (!loads) {
      loads = new Map();
      this.loading.set(cache, loads);
    }
    const pending = loads.get(key) as Promise<V | undefined> | undefined;
    if (pending) return pending;
    const loaded = this.load(cache, key, load).finally(() => {
      if (loads.get(key) === loaded) loads.delete(key);
    });
    loads.set(key, loaded);
    return loaded;
  }

  /**
   * As `through`, but a cached value comes back as it is rather than in a promise, so the decision
   * rules go on without waiting a turn of the event loop for each fact.
   */
  read<V extends {}>(cache: LRUCache<string, V>, key: string, load: () => Promise<V | undefined>): V | undefined | Promise<V | undefined> {
    const hit = this.cached(cache, key);
    return hit === MISS ? this.through(cache, key, load) : hit;
  }

  /** The value, undefined for a kept "not found", MISS when neither is kept. Counts hits and misses. */
  private cached<V extends {}>(cache: LRUCache<string, V>, key: string): V | undefined | typeof MISS {
    const counts = this.counts.get(cache);
    const hit = cache.get(key);
    if (hit !== undefined || this.unknown.get(this.prefix(cache) + key) !== undefined) {
      if (counts) counts.hits++;
      return hit;
    }
    if (counts) counts.misses++;
    return MISS;
  }

  private async load<V extends {}>(cache: LRUCache<string, V>, key: string, load: () => Promise<V | undefined>): Promise<V | undefined> {
    const epoch = this.epochs.get(cache) ?? 0;
    const value = await load();
    if (epoch !== (this.epochs.get(cache) ?? 0)) return value;
    if (value === undefined) this.unknown.set(this.prefix(cache) + key, true);
    else cache.set(key, value);
    return value;
  }

  private prefix(cache: object): string {
    const prefix = this.prefixes.get(cache);
    if (prefix === undefined) throw new Error("not one of this ValidationCache's caches");
    return prefix;
  }

  /** Drops the kept "not found" of `cache`'s `key`, or of all its keys starting with `start`. */
  private forgetUnknown(cache: object, key?: string, start = ""): void {
    const prefix = this.prefix(cache);
    if (key !== undefined) {
      this.unknown.delete(prefix + key);
      return;
    }
    for (const k of [...this.unknown.keys()]) if (k.startsWith(prefix + start)) this.unknown.delete(k);
  }

  invalidate(change: Change): void {
    switch (change.kind) {
      case "token":
        this.changed(this.tokens);
        this.tokens.delete(change.tokenHash);
        this.forgetUnknown(this.tokens, change.tokenHash);
        return;
      case "tokens":
        this.changed(this.tokens);
        for (const [hash, record] of this.tokens.entries()) {
          if (
            (change.familyId && record.familyId === change.familyId) ||
            (change.endUser && record.endUser === change.endUser) ||
            (change.consumerKey && record.consumerKey === change.consumerKey)
          ) {
            this.tokens.delete(hash);
          }
        }
        return;
      case "application":
        this.changed(this.applications);
        this.applications.delete(change.consumerKey);
        this.forgetUnknown(this.applications, change.consumerKey);
        return;
      case "api":
        // APIs change rarely and are few: drop them all, "not found" included.
        this.changed(this.apis, this.resources, this.subscriptions);
        this.apis.clear();
        this.forgetUnknown(this.apis);
        this.resources.delete(change.apiId);
        this.forgetUnknown(this.resources, change.apiId);
        for (const [key, sub] of this.subscriptions.entries()) {
          if (sub.apiId === change.apiId) this.subscriptions.delete(key);
        }
        this.forgetUnknown(this.subscriptions);
        return;
      case "resources":
        this.changed(this.resources);
        this.resources.delete(change.apiId);
        this.forgetUnknown(this.resources, change.apiId);
        return;
      case "subscription":
        this.changed(this.subscriptions);
        this.subscriptions.delete(subscriptionKey(change.applicationId, change.apiId));
        this.forgetUnknown(this.subscriptions, subscriptionKey(change.applicationId, change.apiId));
        return;
      case "signing-keys":
        // A JWT refused as not ours may carry the new key.
        this.changed(this.tokens);
        this.forgetUnknown(this.tokens);
        return;
      case "all": {
        const all = [this.tokens, this.apis, this.resources, this.applications, this.subscriptions];
        this.changed(...all);
        for (const cache of all) cache.clear();
        this.unknown.clear();
        return;
      }
    }
  }

  /** Each cache's counts, for the metrics. */
  get stats(): CacheStats[] {
    return [...this.counts.values(), this.unknownStats];
  }

  close(): void {
    this.unsubscribe();
  }

  /** Reads of these caches in flight may predate a change: not kept, and later calls read again. */
  private changed(...caches: object[]): void {
    for (const cache of caches) {
      this.epochs.set(cache, (this.epochs.get(cache) ?? 0) + 1);
      this.loading.delete(cache);
    }
  }
}

/** Neither a value nor a "not found" is kept. */
const MISS = Symbol("miss");

export function apiKey(context: string, version: string): string {
  return `${context}\u0000${version}`;
}

export function subscriptionKey(applicationId: string, apiId: string): string {
  return `${applicationId}\u0000${apiId}`;
}
