import { LRUCache } from "lru-cache";
import type { Change, ChangeEvents } from "../domain/change-events.js";
import type { ResourceTable } from "@keymanager/core";
import type { Api, KeyMapping, Subscription, TokenRecord } from "../domain/model/index.js";
import { CacheStats } from "../observability/cache-stats.js";

/** Cached "does not exist", so unknown tokens and APIs do not reach the database each time. */
export const MISSING = Symbol("missing");
type Maybe<T> = T | typeof MISSING;

export interface CacheLimits {
  /** Entries per kind. */
  maxEntries: number;
  /** Approximate bytes per kind. */
  maxBytes: number;
  /** How long an existing entry is trusted without an invalidation (other replicas' changes). */
  ttlMs: number;
  negativeTtlMs: number;
}

export const DEFAULT_CACHE_LIMITS: CacheLimits = { maxEntries: 200_000, maxBytes: 128 * 1024 * 1024, ttlMs: 5 * 60_000, negativeTtlMs: 30_000 };

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

const tokenSize = (t: Maybe<TokenRecord>) => (t === MISSING ? 8 : 400 + t.scopes.join("").length * 2);
const objectSize = (o: unknown) => (o === MISSING ? 8 : 512);

/**
 * What the gateway check reads, bounded in entries and memory, negative entries included.
 * Changes published on this node, or received from other replicas, drop the affected entries.
 */
export class ValidationCache {
  readonly tokens: LRUCache<string, Maybe<TokenRecord>>;
  readonly apis: LRUCache<string, Maybe<Api>>;
  /** Each API's resources, compiled for matching. */
  readonly resources: LRUCache<string, Maybe<ResourceTable>>;
  readonly applications: LRUCache<string, Maybe<KeyMapping>>;
  readonly subscriptions: LRUCache<string, Maybe<Subscription>>;
  /** Hits, misses and evictions of each cache (the metrics read them). */
  private readonly counts = new Map<object, CacheStats>();
  private readonly unsubscribe: () => void;
  /** Counts each cache's invalidations, so a load that overlapped one of its own is not cached. */
  private readonly epochs = new WeakMap<object, number>();
  /** Reads in flight, per cache and key; dropped by an invalidation of their cache. */
  private readonly loading = new WeakMap<object, Map<string, Promise<unknown>>>();

  constructor(
    events: ChangeEvents,
    readonly limits: CacheLimits = DEFAULT_CACHE_LIMITS,
  ) {
    this.tokens = lru<Maybe<TokenRecord>>(limits, tokenSize, this.counts, "validation_tokens");
    this.apis = lru<Maybe<Api>>(limits, objectSize, this.counts, "validation_apis");
    this.resources = lru<Maybe<ResourceTable>>(limits, (r) => (r === MISSING ? 8 : 200 * r.size), this.counts, "validation_resources");
    this.applications = lru<Maybe<KeyMapping>>(limits, objectSize, this.counts, "validation_applications");
    this.subscriptions = lru<Maybe<Subscription>>(limits, objectSize, this.counts, "validation_subscriptions");
    this.unsubscribe = events.subscribe((change) => this.invalidate(change));
  }

  /**
   * The cached value of `key`, else what `load` finds, cached either way ("not found" only for
   * the shorter negative TTL). A value loaded while an invalidation arrived may predate the
   * change behind it (another replica's commit lands between the read and its notification):
   * it answers this call but is not kept.
   */
  through<V extends {}>(cache: LRUCache<string, Maybe<V>>, key: string, load: () => Promise<V | undefined>): Promise<V | undefined> {
    const hit = cache.get(key);
    const counts = this.counts.get(cache);
    if (hit !== undefined) {
      if (counts) counts.hits++;
      return Promise.resolve(hit === MISSING ? undefined : hit);
    }
    if (counts) counts.misses++;
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
  read<V extends {}>(cache: LRUCache<string, Maybe<V>>, key: string, load: () => Promise<V | undefined>): V | undefined | Promise<V | undefined> {
    const hit = cache.get(key);
    if (hit === undefined) return this.through(cache, key, load);
    const counts = this.counts.get(cache);
    if (counts) counts.hits++;
    return hit === MISSING ? undefined : hit;
  }

  private async load<V extends {}>(cache: LRUCache<string, Maybe<V>>, key: string, load: () => Promise<V | undefined>): Promise<V | undefined> {
    const epoch = this.epochs.get(cache) ?? 0;
    const value = await load();
    if (epoch !== (this.epochs.get(cache) ?? 0)) return value;
    if (value === undefined) cache.set(key, MISSING, { ttl: this.limits.negativeTtlMs });
    else cache.set(key, value);
    return value;
  }

  invalidate(change: Change): void {
    switch (change.kind) {
      case "token":
        this.changed(this.tokens);
        this.tokens.delete(change.tokenHash);
        return;
      case "tokens":
        this.changed(this.tokens);
        for (const [hash, record] of this.tokens.entries()) {
          if (record === MISSING) continue;
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
        return;
      case "api":
        // APIs change rarely and are few: drop them all, negative entries included.
        this.changed(this.apis, this.resources, this.subscriptions);
        this.apis.clear();
        this.resources.delete(change.apiId);
        for (const [key, sub] of this.subscriptions.entries()) {
          if (sub === MISSING || sub.apiId === change.apiId) this.subscriptions.delete(key);
        }
        return;
      case "resources":
        this.changed(this.resources);
        this.resources.delete(change.apiId);
        return;
      case "subscription":
        this.changed(this.subscriptions);
        this.subscriptions.delete(subscriptionKey(change.applicationId, change.apiId));
        return;
      case "signing-keys":
        // A JWT refused as not ours may carry the new key.
        this.changed(this.tokens);
        for (const [hash, record] of this.tokens.entries()) if (record === MISSING) this.tokens.delete(hash);
        return;
      case "all": {
        const all = [this.tokens, this.apis, this.resources, this.applications, this.subscriptions];
        this.changed(...all);
        for (const cache of all) cache.clear();
        return;
      }
    }
  }

  /** Each cache's counts, for the metrics. */
  get stats(): CacheStats[] {
    return [...this.counts.values()];
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

export function apiKey(context: string, version: string): string {
  return `${context}\u0000${version}`;
}

export function subscriptionKey(applicationId: string, apiId: string): string {
  return `${applicationId}\u0000${apiId}`;
}
