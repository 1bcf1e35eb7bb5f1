/**
 * Plain counters a cache keeps of itself (numbers, so its hot path pays an increment); the metrics
 * read them when scraped (observability/metrics.ts). `kind` is the cache's fixed name, the
 * `cache` label.
 */
export class CacheStats {
  hits = 0;
  misses = 0;
  evictions = 0;

  constructor(
    readonly kind: string,
    private readonly sizeOf: () => number,
    /** The bytes it holds by its own count, for a cache bounded by bytes (keymanager_cache_bytes). */
    readonly bytes?: () => number,
  ) {}

  get size(): number {
    return this.sizeOf();
  }

  /** An lru-cache `dispose` counting entries pushed out by the entry or size bound. */
  readonly disposed = (_value: unknown, _key: unknown, reason: string): void => {
    if (reason === "evict") this.evictions++;
  };
}
