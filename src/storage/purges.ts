// What the housekeeping deletes, one Purge per kind of ended rows, each with its own cutoff.
import type { Clock } from "../domain/clock.js";
import type { ChangeLogRepository } from "./change-log-repository.js";
import type { Purge } from "./housekeeping.js";
import type { Store } from "./store.js";

/** Rows ended more than `retainSeconds()` before the clock's now. */
function endedBefore(clock: Clock, retainSeconds: () => number): Date {
  return new Date(clock.nowMs() - retainSeconds() * 1000);
}

/**
 * Tokens (expired with their refresh token, or revoked) and the authorization pages' codes and
 * sessions, kept `retainSeconds` after they end (introspection answers, audits); bulk revocations
 * once no token they refuse can be alive; spent JWT bearer assertion ids once their JWT expired (a
 * replay is refused as expired anyway). In that order.
 */
export function tokenPurges(store: Store, clock: Clock, retainSeconds: () => number): Purge[] {
  return [
    {
      what: "tokens",
      round() {
        const before = endedBefore(clock, retainSeconds);
        return { deleteBatch: (rows) => store.tokens.purgeEnded(before, rows), logged: { endedBefore: before.toISOString() } };
      },
    },
    {
      what: "authorization codes",
      round() {
        const before = endedBefore(clock, retainSeconds);
        return { deleteBatch: (rows) => store.authorizationCodes.purgeExpired(before, rows) };
      },
    },
    {
      what: "login sessions",
      round() {
        const before = endedBefore(clock, retainSeconds);
        return { deleteBatch: (rows) => store.loginSessions.purgeExpired(before, rows) };
      },
    },
    {
      what: "bulk revocations",
      round() {
        const now = clock.nowMs();
        return { deleteBatch: (rows) => store.tokenRevocations.purgeEnded(now, rows) };
      },
    },
    {
      what: "used assertions",
      round() {
        const now = clock.now();
        return { deleteBatch: (rows) => store.trustedIssuers.purgeUsedAssertions(now, rows) };
      },
    },
  ];
}

/**
 * Change log entries older than `retainSeconds()`: a stream resumes from a version this recent,
 * older ones get a snapshot. By the real clock, as the entries are stamped. The head row keeps the
 * newest version, so versions never restart.
 */
export function changeLogPurge(log: ChangeLogRepository, retainSeconds: () => number, now: () => number = Date.now): Purge {
  return {
    what: "change log entries",
    round() {
      const before = now() - retainSeconds() * 1000;
      return { deleteBatch: (rows) => log.purgeBefore(before, rows) };
    },
  };
}
