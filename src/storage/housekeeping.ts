import { setImmediate as yieldToOthers } from "node:timers/promises";
import type { Logger } from "pino";

/** Rows deleted in one statement: small, so no reader or writer waits long behind a purge. */
export const PURGE_BATCH = 1000;

/**
 * One kind of rows that end (tokens, codes, change log entries...). `round` is called when a purge
 * starts and takes that round's cutoff (from its own clock and retention); the deleter it gives
 * removes up to `rows` rows ended by then and says how many went.
 */
export interface Purge {
  /** Names the rows in the log line ("purged ended rows", `what`) and in purge()'s answer. */
  readonly what: string;
  round(): { deleteBatch(rows: number): Promise<number>; logged?: Record<string, unknown> };
}

/** What one purge deleted, by Purge.what. */
export type Purged = Record<string, number>;

/**
 * Deletes ended rows on a schedule, each kind in batches of PURGE_BATCH with other work let in
 * between, so neither the gateway's check (served from memory) nor writes wait behind one long
 * delete. Every replica may run it: deleting what another replica already deleted costs nothing.
 */
export class Housekeeping {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<Purged> | undefined;
  private stopped = false;

  constructor(
    private readonly purges: readonly Purge[],
    /** Seconds between purges; 0 turns them off (read at start). */
    private readonly intervalSeconds: () => number,
    private readonly logger: Logger,
  ) {}

  start(): void {
    const seconds = this.intervalSeconds();
    if (seconds === 0) return;
    this.timer = setInterval(() => void this.purge().catch((err: unknown) => this.logger.warn({ err }, "housekeeping purge failed")), seconds * 1000);
    this.timer.unref();
  }

  /** One purge of every kind, in turn (a purge already running is joined); how many rows went, by kind. */
  purge(): Promise<Purged> {
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

  private async purgeAll(): Promise<Purged> {
    const purged: Purged = {};
    for (const purge of this.purges) {
      if (this.stopped) break;
      const { deleteBatch, logged } = purge.round();
      const deleted = await this.inBatches(deleteBatch);
      purged[purge.what] = deleted;
      if (deleted > 0) this.logger.info({ what: purge.what, deleted, ...logged }, "purged ended rows");
    }
    return purged;
  }

  /** Deletes a batch at a time, other work let in between, until fewer come or the purge stops. */
  private async inBatches(deleteBatch: (rows: number) => Promise<number>): Promise<number> {
    let total = 0;
    for (;;) {
      const deleted = await deleteBatch(PURGE_BATCH);
      total += deleted;
      if (deleted < PURGE_BATCH || this.stopped) return total;
      await yieldToOthers();
    }
  }
}
