import { LRUCache } from "lru-cache";
import type { Change, ChangeEvents } from "../../domain/change-events.js";
import type { TokenRecord } from "../../domain/model/index.js";

interface Entry {
  /** undefined: the server said the token is not active. */
  record: TokenRecord | undefined;
  untilMs: number;
}

const MAX_ENTRIES = 100_000;
/** Longer than any call to a key manager takes (their timeouts are seconds). */
const CHANGE_MEMORY_MS = 5 * 60_000;

/**
 * What an external key manager said of tokens, keyed by the token's hash, so the gateway check
 * does not ask the server on every call. An entry lasts the configured TTL, never past the token's
 * expiry; a revocation or client change made through this service (on this replica or, through
 * the change feed, another) drops it at once.
 */
export class ExternalTokenCache {
  private readonly entries = new LRUCache<string, Entry>({ max: MAX_ENTRIES });
  private readonly unsubscribe: () => void;
  /** Counts invalidations, so an answer that overlapped one that may concern it is not kept. */
  private epoch = 0;
  /** Changes that may concern any token (a client's, all); one token's change does not count. */
  private broadEpoch = 0;
  /** The epoch of each token's latest change, kept while answers begun before it may be in flight. */
  private readonly changedAt = new LRUCache<string, number>({ max: MAX_ENTRIES, ttl: CHANGE_MEMORY_MS });

  constructor(events: ChangeEvents) {
    this.unsubscribe = events.subscribe((change) => this.invalidate(change));
  }

  get(hash: string, nowMs: number): Entry | undefined {
    const hit = this.entries.get(hash);
    if (!hit) return undefined;
    if (hit.untilMs <= nowMs) {
      this.entries.delete(hash);
      return undefined;
    }
    return hit;
  }

  /** Taken before asking the server, and given back to `set`. */
  get currentEpoch(): number {
    return this.epoch;
  }

  /** Keeps an answer unless a change that may concern this token came since `epoch`. */
  set(hash: string, record: TokenRecord | undefined, untilMs: number, epoch: number): void {
    if (this.broadEpoch > epoch || (this.changedAt.get(hash) ?? -1) > epoch) return;
    this.entries.set(hash, { record, untilMs });
  }

  private invalidate(change: Change): void {
    const epoch = ++this.epoch;
    switch (change.kind) {
      case "token":
        this.entries.delete(change.tokenHash);
        this.changedAt.set(change.tokenHash, epoch);
        return;
      case "tokens":
      case "application":
        this.broadEpoch = epoch;
        if (!change.consumerKey) return;
        for (const [hash, entry] of this.entries.entries()) {
          if (entry.record?.consumerKey === change.consumerKey) this.entries.delete(hash);
        }
        return;
      // A reload changed the external key managers: what one said may no longer be its word.
      case "external-key-managers":
      case "all":
        this.broadEpoch = epoch;
        this.entries.clear();
        return;
      default:
        return;
    }
  }

  close(): void {
    this.unsubscribe();
  }
}
