import { setImmediate as nextTurn, setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import type { Change } from "../domain/change-events.js";
import { encodeChanges } from "./change-messages.js";

/** Hands messages to the database (NOTIFY, or rows other replicas read). */
export type Send = (payloads: string[]) => Promise<void>;

/** More changes waiting than this, and peers are told to drop everything instead. */
const MAX_PENDING = 1000;
const RETRY_MAX_MS = 2000;

/**
 * Sends this replica's changes to the others after the fact: the change is committed and its
 * caller answered, so sending never blocks or fails a call. Changes published in one turn of the
 * event loop go together; a failed send is retried, oldest first, with backoff, until it goes
 * through or the service stops.
 */
export class Broadcaster {
  private pending: Change[] = [];
  private running: Promise<void> | undefined;
  private readonly stopping = new AbortController();
  private closed = false;

  constructor(
    private readonly replica: string,
    private readonly send: Send,
    private readonly logger: Logger,
  ) {}

  add(change: Change): void {
    if (this.closed) return;
    this.pending.push(change);
    if (this.pending.length > MAX_PENDING) this.pending = [{ kind: "all" }];
    this.running ??= this.run().finally(() => {
      this.running = undefined;
    });
  }

  /** Sends what is waiting (for at most `timeoutMs`), then stops. */
  async close(timeoutMs: number): Promise<void> {
    this.stopping.abort();
    const timer = sleep(timeoutMs, undefined, { ref: false });
    await Promise.race([this.running, timer]);
    this.closed = true;
    if (this.pending.length > 0) {
      this.logger.error({ changes: this.pending.length }, "changes not sent to other replicas at stop; they serve them from cache until their TTL");
    }
  }

  private async run(): Promise<void> {
    // One call often publishes two changes (an application and its tokens): one message.
    await nextTurn();
    let failures = 0;
    while (this.pending.length > 0 && !this.closed) {
      const batch = this.pending;
      this.pending = [];
      try {
        await this.send(encodeChanges(this.replica, batch));
        if (failures > 0) this.logger.info({ failures }, "changes sent to other replicas again");
        failures = 0;
      } catch (err) {
        failures++;
        this.pending = batch.concat(this.pending);
        if (this.pending.length > MAX_PENDING) this.pending = [{ kind: "all" }];
        if (this.stopping.signal.aborted) return;
        if (failures === 1 || failures % 30 === 0) {
          this.logger.warn({ err, changes: this.pending.length, failures }, "cannot send changes to other replicas; retrying");
        }
        await sleep(Math.min(100 * 2 ** (failures - 1), RETRY_MAX_MS), undefined, { signal: this.stopping.signal }).catch(() => undefined);
      }
    }
  }
}
