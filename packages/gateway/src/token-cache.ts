import { hash } from "node:crypto";
import type { TokenFacts } from "@keymanager/core";
import { LRUCache } from "lru-cache";

/**
 * Facts of opaque tokens the server vouched for, by the token's SHA-256 (the token itself is not
 * kept), each until the token expires (an external key manager's: at most its validation cache period). Bounded (least recently used dropped first). Revocations
 * are checked against the copy at each use, so a pushed revocation refuses a kept token at once.
 */
export interface Kept {
  facts: TokenFacts;
  /** The copy's version when the server was asked. */
  version: bigint | undefined;
  /** Epoch ms after which the server is asked again, even if the token has not expired (an external key manager's token). */
  keepUntil?: number;
}

export class TokenCache {
  private readonly entries: LRUCache<string, Kept>;

  constructor(max: number) {
    this.entries = new LRUCache({ max, ttlAutopurge: false });
  }

  static key(token: string): string {
    return hash("sha256", token, "base64url");
  }

  get(key: string, now: number): Kept | undefined {
    const kept = this.entries.get(key);
    if (kept && keptUntil(kept) <= now) {
      this.entries.delete(key);
      return undefined;
    }
    return kept;
  }

  set(key: string, kept: Kept, now: number): void {
    if (keptUntil(kept) > now) this.entries.set(key, kept);
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}

/** When a kept answer goes: the token's expiry, or sooner when the server itself asks again sooner. */
export function keptUntil(kept: Kept): number {
  return Math.min(kept.facts.expiresAt.getTime(), kept.keepUntil ?? Number.POSITIVE_INFINITY);
}
