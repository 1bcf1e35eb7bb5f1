import { setImmediate as yieldToOthers } from "node:timers/promises";
import type { Logger } from "pino";
import type { ChangeLogRepository } from "./change-log-repository.js";

const BATCH = 1000;

export interface ChangeLogRetention {
  /** Seconds between purges; 0 turns them off. */
  intervalSeconds: number;
  /** Entries are kept this long: a stream resumes from a version this recent, older ones get a snapshot. */
  retainSeconds: number;
}

/**
 * Deletes change log entries older than the retention, in small batches, on a schedule. Every
 * replica may run it. The head row keeps the newest version, so versions never restart.
 */
export class ChangeLogHousekeeping {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;
  private stopped = false;

  constructor(
    private readonly log: ChangeLogRepository,
    private readonly settings: () => ChangeLogRetention,
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  start(): void {
    const seconds = this.settings().intervalSeconds;
    if (seconds === 0) return;
    this.timer = setInterval(() => void this.purge().catch((err: unknown) => this.logger.warn({ err }, "change log purge failed")), seconds * 1000);
    this.timer.unref();
  }

  /** One purge; the number of entries deleted. */
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
    const before = this.now() - this.settings().retainSeconds * 1000;
    let total = 0;
    for (;;) {
      const deleted = await this.log.purgeBefore(before, BATCH);
      total += deleted;
      if (deleted < BATCH || this.stopped) break;
      await yieldToOthers();
    }
    if (total > 0) this.logger.info({ deleted: total }, "purged old change log entries");
    return total;
  }
}
