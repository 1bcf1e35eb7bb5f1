import { LRUCache } from "lru-cache";
import type { Clock } from "../domain/clock.js";
import { ResourceExhaustedError } from "../domain/errors.js";

/** Failures allowed before a client id is slowed down. */
export const FREE_FAILURES = 5;
const FIRST_PAUSE_MS = 1000;
const LONGEST_PAUSE_MS = 60_000;

interface Failures {
  count: number;
  blockedUntil: number;
}

/**
 * Slows down guessing of one client's secret: after FREE_FAILURES failed authentications in a
 * row, the client id is refused without a look at the secret for a pause that doubles with each
 * further failure (1 s up to 60 s). A success clears the count. Bounded in memory.
 */
export class AuthenticationThrottle {
  private readonly failures = new LRUCache<string, Failures>({ max: 100_000, ttl: 15 * 60_000 });

  constructor(private readonly clock: Clock) {}

  /** RESOURCE_EXHAUSTED while the client id is paused. */
  check(clientId: string): void {
    const entry = this.failures.get(clientId);
    const now = this.clock.now().getTime();
    if (entry && entry.blockedUntil > now) {
      const seconds = Math.ceil((entry.blockedUntil - now) / 1000);
      throw new ResourceExhaustedError(`too many failed authentications for this client; retry in ${seconds} s`, { oauth: "invalid_client" });
    }
  }

  failed(clientId: string): void {
    const entry = this.failures.get(clientId) ?? { count: 0, blockedUntil: 0 };
    entry.count += 1;
    if (entry.count >= FREE_FAILURES) {
      const pause = Math.min(FIRST_PAUSE_MS * 2 ** (entry.count - FREE_FAILURES), LONGEST_PAUSE_MS);
      entry.blockedUntil = this.clock.now().getTime() + pause;
    }
    this.failures.set(clientId, entry);
  }

  succeeded(clientId: string): void {
    this.failures.delete(clientId);
  }
}
