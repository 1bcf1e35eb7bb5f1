import { hash } from "node:crypto";
import type { TokenFacts } from "@keymanager/core";
import { LRUCache } from "lru-cache";

/**
 * Facts of opaque tokens the server vouched for, by the token's SHA-256 (the token itself is not
 * kept), each until the token expires. Bounded (least recently used dropped first). Revocations
 * are checked against the copy at each use, so a pushed revocation refuses a kept token at once.
 */
export class TokenCache {
  private readonly entries: LRUCache<string, TokenFacts>;

  constructor(max: number) {
    this.entries = new LRUCache({ max, ttlAutopurge: false });
  }

  static key(token: string): string {
    return hash("sha256", token, "base64url");
  }

  get(key: string, now: number): TokenFacts | undefined {
    const facts = this.entries.get(key);
    if (facts && facts.expiresAt.getTime() <= now) {
      this.entries.delete(key);
      return undefined;
    }
    return facts;
  }

  set(key: string, facts: TokenFacts, now: number): void {
    const ttl = facts.expiresAt.getTime() - now;
    if (ttl > 0) this.entries.set(key, facts);
  }

  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
