import { setImmediate as yieldToOthers } from "node:timers/promises";
import type { Logger } from "pino";
import type { Clock } from "../domain/clock.js";
import type { TokenRepository } from "./token-repository.js";
import type { TokenRevocationRepository } from "./token-revocation-repository.js";
import type { TrustedIssuerRepository } from "./trusted-issuer-repository.js";

const BATCH = 1000;

export interface HousekeepingSettings {
  /** Seconds between purges; 0 turns housekeeping off. */
  intervalSeconds: number;
  /** Expired and revoked tokens are kept this long (introspection answers, audits) before they go. */
  retainSeconds: number;
}

/**
 * Deletes ended tokens on a schedule in small batches, yielding between them, so neither the
 * gateway's check (served from memory) nor token writes wait behind one long delete. Every
 * replica may run it: deleting what another replica already deleted costs nothing.
 */
export class TokenHousekeeping {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  private stopped = false;

  constructor(
    private readonly tokens: TokenRepository,
    private readonly clock: Clock,
    private readonly settings: () => HousekeepingSettings,
    private readonly logger: Logger,
    /** Revocations by consumer key or end user go once no token they refuse can be alive. */
    private readonly revocations?: TokenRevocationRepository,
    /** Other ended rows to delete with the tokens (authorization codes, login sessions): how many went. */
    private readonly purgeOthers: (before: Date) => Promise<number> = async () => 0,
    /** Spent assertion ids (JWT bearer grant), purged with the tokens once they expire. */
    private readonly usedAssertions?: TrustedIssuerRepository,
  ) {}

  start(): void {
    const seconds = this.settings().intervalSeconds;
    if (seconds === 0) return;
    this.timer = setInterval(() => void this.purge().catch((err: unknown) => this.logger.warn({ err }, "token purge failed")), seconds * 1000);
    this.timer.unref();
  }

  /** One purge of everything ended before the retention window; the number of tokens deleted. */
  purge(): Promise<number> {
    this.running ??= this.purgeAll().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }

  private async purgeAll(): Promise<number> {
    const before = new Date(this.clock.now().getTime() - this.settings().retainSeconds * 1000);
    let total = await this.inBatches((n) => this.tokens.purgeEnded(before, n));
    total += await this.purgeOthers(before);
    if (total > 0) this.logger.info({ deleted: total, endedBefore: before.toISOString() }, "purged ended tokens");
    const revocations = this.revocations;
    if (revocations) {
      const now = this.clock.now().getTime();
      const deleted = await this.inBatches((n) => revocations.purgeEnded(now, n));
      if (deleted > 0) this.logger.info({ deleted }, "purged revocations no live token is left for");
    }
    // Used assertions whose JWTs have expired: a replay of them is refused as expired anyway.
    const assertions = this.usedAssertions;
    if (assertions) {
      const now = this.clock.now();
      await this.inBatches((n) => assertions.purgeUsedAssertions(now, n));
    }
    return total;
  }

  /** Deletes BATCH rows at a time, other work let in between, until fewer come or the purge stops. */
  private async inBatches(purgeBatch: (rows: number) => Promise<number>): Promise<number> {
    let total = 0;
    for (;;) {
      const deleted = await purgeBatch(BATCH);
      total += deleted;
      if (deleted < BATCH || this.stopped) return total;
      await yieldToOthers();
    }
  }
}
