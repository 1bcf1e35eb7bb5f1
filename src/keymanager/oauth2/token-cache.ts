import { LRUCache } from "lru-cache";
import type { Change, ChangeEvents } from "../../domain/change-events.js";
import type { TokenRecord } from "../../oauth/types.js";

interface Entry {
  /** undefined: the server said the token is not active. */
  record: TokenRecord | undefined;
  untilMs: number;
}

const MAX_ENTRIES = 100_000;

/**
 * What an external key manager said of tokens, keyed by the token's hash, so the gateway check
 * does not ask the server on every call. An entry lasts the configured TTL, never past the token's
 * expiry; a revocation or client change made through this service (on this replica or, through
 * the change feed, another) drops it at once.
 */
export class ExternalTokenCache {
  private readonly entries = new LRUCache<string, Entry>({ max: MAX_ENTRIES });
  private readonly unsubscribe: () => void;
  /** Counts invalidations, so an answer that overlapped one is not kept. */
  private epoch = 0;

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

  get currentEpoch(): number {
    return this.epoch;
  }

  set(hash: string, record: TokenRecord | undefined, untilMs: number, epoch: number): void {
    if (epoch !== this.epoch) return;
    this.entries.set(hash, { record, untilMs });
  }

  private invalidate(change: Change): void {
    this.epoch++;
    switch (change.kind) {
      case "token":
        this.entries.delete(change.tokenHash);
        return;
      case "tokens":
      case "application":
        if (!change.consumerKey) return;
        for (const [hash, entry] of this.entries.entries()) {
          if (entry.record?.consumerKey === change.consumerKey) this.entries.delete(hash);
        }
        return;
      case "all":
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
