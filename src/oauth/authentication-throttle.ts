import { createHash } from "node:crypto";
import { LRUCache } from "lru-cache";
import type { Clock } from "../domain/clock.js";
import { ResourceExhaustedError } from "../domain/errors.js";

/**
 * One attempt to prove an identity: `subject` (a client id, a username) claimed from `source`
 * (the caller's network address, see transport/client-address.ts).
 */
export interface Attempt {
  source: string;
  subject: string;
}

export interface ThrottleLimits {
  /** Wrong secrets in a row for one subject from one source before that source is paused for it. */
  freeFailures: number;
  /** Failures from one source, over all subjects, it may have in hand before the whole source is paused. */
  sourceFreeFailures: number;
  /** How fast a source's failures are forgiven: one every this many milliseconds. */
  sourceForgiveMs: number;
  /** The first pause; each further failure doubles it, up to longestPauseMs. */
  firstPauseMs: number;
  longestPauseMs: number;
  /** Failures of one subject from all sources together after which its wrong-secret answers come late. */
  subjectSlowdownAfter: number;
  /** The latest a wrong-secret answer comes: 10 ms per failure beyond subjectSlowdownAfter, up to this. */
  longestSlowdownMs: number;
  /** Entries kept per kind (pairs, sources, subjects); the least recently failed are forgotten first. */
  maxTracked: number;
}

export const DEFAULT_THROTTLE_LIMITS: ThrottleLimits = {
  freeFailures: 5,
  sourceFreeFailures: 100,
  sourceForgiveMs: 1000,
  firstPauseMs: 1000,
  longestPauseMs: 60_000,
  subjectSlowdownAfter: 20,
  longestSlowdownMs: 1000,
  maxTracked: 100_000,
};

/** Failures are forgotten this long after the last one. */
const FORGET_MS = 15 * 60_000;
const SLOWDOWN_STEP_MS = 10;
/** Longer subjects (a client id is at most 128 characters) are kept as a hash, so entries stay small. */
const LONGEST_KEPT_SUBJECT = 128;

interface Failures {
  /** Failures not yet forgiven. */
  count: number;
  /** When count was last brought up to date (ms, the throttle's clock). */
  at: number;
  pausedUntil: number;
}

/**
 * Slows down guessing of secrets without letting the guesser lock out the holder of the right one.
 *
 * - Per source and subject: after `freeFailures` wrong secrets in a row, that source is refused
 *   for that subject (RESOURCE_EXHAUSTED, before its secret is looked at) for a pause that doubles
 *   with each further failure, 1 s up to 60 s. A success from the pair clears its count.
 * - Per source: past `sourceFreeFailures` failures in hand (one is forgiven every
 *   `sourceForgiveMs`), the source is refused for every subject, pausing the same way: a source
 *   spraying many client ids or usernames.
 * - Per subject, over all sources: never refuses. Past `subjectSlowdownAfter` failures, each
 *   further wrong secret is answered later (`failed` says how much), which slows a guesser spread
 *   over many sources; the right secret is never delayed.
 *
 * A guesser thus pauses its own source; the client or user keeps working from any other. Memory
 * is bounded: `maxTracked` entries per kind, each with a short key.
 */
export class AuthenticationThrottle {
  private readonly pairs: LRUCache<string, Failures>;
  private readonly sources: LRUCache<string, Failures>;
  private readonly subjects: LRUCache<string, Failures>;

  constructor(
    private readonly clock: Clock,
    private readonly limits: ThrottleLimits = DEFAULT_THROTTLE_LIMITS,
    /** Told of each pause: of a source for one subject ("pair") or for all ("address"). */
    private readonly onLockout: (scope: "pair" | "address") => void = () => undefined,
  ) {
    const options = { max: limits.maxTracked, ttl: FORGET_MS, updateAgeOnGet: false };
    this.pairs = new LRUCache(options);
    this.sources = new LRUCache(options);
    this.subjects = new LRUCache(options);
  }

  /** RESOURCE_EXHAUSTED while the attempt's source is paused, for its subject or for all. */
  check(attempt: Attempt): void {
    const now = this.clock.nowMs();
    const until = Math.max(this.pairs.get(pairKey(attempt))?.pausedUntil ?? 0, this.sources.get(attempt.source)?.pausedUntil ?? 0);
    if (until > now) {
      const seconds = Math.ceil((until - now) / 1000);
      throw new ResourceExhaustedError(`too many failed authentications from this address; retry in ${seconds} s`, { oauth: "invalid_client" });
    }
  }

  /**
   * Counts a wrong secret. Returns how many milliseconds to wait before answering it (0 unless
   * the subject is under a spread-out attack).
   */
  failed(attempt: Attempt): number {
    const now = this.clock.nowMs();
    if (this.count(this.pairs, pairKey(attempt), now, 0, this.limits.freeFailures).pausedUntil > now) this.onLockout("pair");
    if (this.count(this.sources, attempt.source, now, this.limits.sourceForgiveMs, this.limits.sourceFreeFailures).pausedUntil > now) this.onLockout("address");
    const subject = this.count(this.subjects, subjectKey(attempt.subject), now, 0, Number.POSITIVE_INFINITY);
    const beyond = subject.count - this.limits.subjectSlowdownAfter;
    return beyond > 0 ? Math.min(beyond * SLOWDOWN_STEP_MS, this.limits.longestSlowdownMs) : 0;
  }

  /** Entries remembered per kind (pairs, sources, subjects), for the metrics. */
  get tracked(): { pairs: number; sources: number; subjects: number } {
    return { pairs: this.pairs.size, sources: this.sources.size, subjects: this.subjects.size };
  }

  /** The right secret: the pair starts afresh (the source's and the subject's counts stay). */
  succeeded(attempt: Attempt): void {
    this.pairs.delete(pairKey(attempt));
  }

  private count(cache: LRUCache<string, Failures>, key: string, now: number, forgiveMs: number, free: number): Failures {
    const entry = cache.get(key) ?? { count: 0, at: now, pausedUntil: 0 };
    if (forgiveMs > 0) entry.count = Math.max(0, entry.count - (now - entry.at) / forgiveMs);
    entry.count += 1;
    entry.at = now;
    if (entry.count >= free) {
      entry.pausedUntil = now + Math.min(this.limits.firstPauseMs * 2 ** Math.floor(entry.count - free), this.limits.longestPauseMs);
    }
    cache.set(key, entry);
    return entry;
  }
}

function subjectKey(subject: string): string {
  return subject.length <= LONGEST_KEPT_SUBJECT ? subject : `#${createHash("sha256").update(subject).digest("base64url")}`;
}

function pairKey(attempt: Attempt): string {
  return `${attempt.source}\u0000${subjectKey(attempt.subject)}`;
}
