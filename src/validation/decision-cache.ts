import { LRUCache } from "lru-cache";
import type { ChangeEvents } from "../domain/change-events.js";
import { CacheStats } from "../observability/cache-stats.js";

interface Decision<V> {
  generation: number;
  validUntil: number;
  tokenHash: string;
  value: V;
}

/**
 * Whole answers of the gateway check, keyed by everything the answer depends on. A change of
 * one token (revoked, or rotated by a refresh: the frequent kind) drops that token's answers;
 * any other change (published on this node or received from another replica) retires every
 * answer at once (a generation counter, so the cost is one increment). An answer also ends when
 * its token expires.
 */
export class DecisionCache<V extends {}> {
  /** Retires every answer kept before it moved: changes other than of one token. */
  private current = 0;
  /** Every change: an answer worked out while one arrived may predate it and is not kept. */
  private changes = 0;
  private readonly entries: LRUCache<string, Decision<V>>;
  /** The keys of each token's answers. */
  private readonly byToken = new Map<string, Set<string>>();
  private readonly unsubscribe: () => void;
  /** Hits, misses and evictions (the metrics read them). */
  readonly stats: CacheStats;

  constructor(events: ChangeEvents, maxEntries: number, maxBytes: number) {
    const stats = new CacheStats("decisions", () => this.entries.size);
    this.stats = stats;
    this.entries = new LRUCache<string, Decision<V>>({
      max: maxEntries,
      maxSize: maxBytes,
      sizeCalculation: (_, key) => 600 + key.length * 2,
      dispose: (decision, key, reason) => {
        this.unindex(decision.tokenHash, key);
        if (reason === "evict") stats.evictions++;
      },
    });
    this.unsubscribe = events.subscribe((change) => {
      this.changes++;
      if (change.kind === "token") this.dropToken(change.tokenHash);
      else this.current++;
    });
  }

  /** Taken before an answer is worked out, and given back to `set`. */
  get generation(): number {
    return this.changes;
  }

  get(key: string, nowMs: number): V | undefined {
    const hit = this.entries.get(key);
    if (!hit) {
      this.stats.misses++;
      return undefined;
    }
    if (hit.generation !== this.current || hit.validUntil <= nowMs) {
      this.entries.delete(key);
      this.stats.misses++;
      return undefined;
    }
    this.stats.hits++;
    return hit.value;
  }

  /**
   * Keeps an answer about `tokenHash` ("" for none) worked out from reads begun at `generation`;
   * dropped if a change came since.
   */
  set(key: string, value: V, validUntil: number, generation = this.changes, tokenHash = ""): void {
    if (generation !== this.changes) return;
    this.entries.set(key, { generation: this.current, validUntil, tokenHash, value });
    if (tokenHash === "") return;
    let keys = this.byToken.get(tokenHash);
    if (!keys) {
      keys = new Set();
      this.byToken.set(tokenHash, keys);
    }
    keys.add(key);
  }

  get size(): number {
    return this.entries.size;
  }

  close(): void {
    this.unsubscribe();
  }

  private dropToken(tokenHash: string): void {
    const keys = this.byToken.get(tokenHash);
    if (!keys) return;
    for (const key of [...keys]) this.entries.delete(key);
    this.byToken.delete(tokenHash);
  }

  private unindex(tokenHash: string, key: string): void {
    if (tokenHash === "") return;
    const keys = this.byToken.get(tokenHash);
    if (!keys) return;
    keys.delete(key);
    if (keys.size === 0) this.byToken.delete(tokenHash);
  }
}
