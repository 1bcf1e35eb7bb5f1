import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { ChangeEvents } from "../domain/change-events.js";
import { Broadcaster, type Send } from "./broadcaster.js";
import { decodeChanges } from "./change-messages.js";
import type { Metrics } from "../observability/metrics.js";

const CLOSE_TIMEOUT_MS = 2000;

/**
 * The part of a change feed that does not depend on the database: this replica's changes go out
 * through `send`; messages that come in are published here as "peer" changes (never sent
 * again), except this replica's own.
 */
export class ChangeRelay {
  readonly replica = randomUUID();
  private readonly broadcaster: Broadcaster;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly events: ChangeEvents,
    send: Send,
    private readonly logger: Logger,
    private readonly metrics?: Metrics,
  ) {
    this.broadcaster = new Broadcaster(this.replica, send, logger);
    this.unsubscribe = events.subscribe((change, origin) => {
      if (origin === "local") this.broadcaster.add(change);
    });
  }

  /** A message from the feed. One that cannot be read may have been a change: drop everything. */
  receive(payload: string | undefined): void {
    const message = payload === undefined ? undefined : decodeChanges(payload);
    if (!message) {
      this.logger.warn("unreadable change message from another replica: caches flushed");
      this.flush();
      return;
    }
    if (message.replica === this.replica) return;
    if (message.sentAt !== undefined) this.metrics?.changeApplied(message.sentAt);
    try {
      for (const change of message.changes) this.events.publish(change, "peer");
    } catch (err) {
      this.logger.error({ err }, "applying another replica's changes failed: caches flushed");
      this.flush();
    }
  }

  /** Changes may have been missed: every cache drops everything. */
  flush(): void {
    this.metrics?.changeFeedFlushed();
    this.events.publish({ kind: "all" }, "peer");
  }

  async close(): Promise<void> {
    this.unsubscribe();
    await this.broadcaster.close(CLOSE_TIMEOUT_MS);
  }
}
