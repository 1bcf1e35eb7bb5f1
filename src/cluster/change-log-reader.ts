import type { Logger } from "pino";
import type { ChangeEvents, LoggedChange } from "../domain/change-events.js";
import type { Metrics } from "../observability/metrics.js";
import type { ChangeLogRepository } from "../storage/change-log-repository.js";

const BATCH = 500;
/** Entries kept in memory for streams catching up (older ones are read from the log again). */
const RECENT_ENTRIES = 10_000;

/** Hears every entry of the change log, in version order, once. */
export interface ChangeLogListener {
  entries(entries: readonly LoggedChange[]): void;
  /** Entries were deleted (retention) before this replica read them: they are lost to it. */
  missed?(): void;
}

/**
 * Reads the change log after the last version it has seen, whenever it is woken (this replica's
 * commits, PostgreSQL NOTIFY, a poll), and hands every entry, in order, to the listeners: other
 * replicas' changes go to the caches as "peer" changes (this replica's went there at commit).
 * Nothing is lost across a lost connection or a replica killed after its commit: the next read
 * starts from the last version seen. Recent entries are kept in memory for streams catching up.
 */
export class ChangeLogReader {
  private last: number;
  private reading: Promise<void> | undefined;
  private again = false;
  private failing = false;
  private closed = false;
  private readonly listeners = new Set<ChangeLogListener>();
  private recent: LoggedChange[] = [];
  /** Entries handed on as heard (without reading the log), and as read from it. */
  readonly delivered = { heard: 0, read: 0 };
  private waiters: Array<() => void> = [];
  private readonly unsubscribe: () => void;

  constructor(
    private readonly log: ChangeLogRepository,
    private readonly events: ChangeEvents,
    private readonly logger: Logger,
    start: number,
    private readonly metrics?: Metrics,
  ) {
    this.last = start;
    this.unsubscribe = events.onCommitted((entries) => this.offer(entries));
  }

  /** The newest version read (and handed to the listeners). */
  get version(): number {
    return this.last;
  }

  subscribe(listener: ChangeLogListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves when entries after `version` have been read, or the reader closes. */
  async after(version: number): Promise<void> {
    if (this.last > version || this.closed) return;
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  /**
   * Up to `limit` entries after `version`: from memory when it still holds them, else from the
   * log (which may have deleted them: then the first entry comes after version + 1).
   */
  async read(version: number, limit: number): Promise<LoggedChange[]> {
    const first = this.recent[0]?.version;
    if (first !== undefined && first <= version + 1) {
      const from = version + 1 - first;
      return this.recent.slice(from, from + limit);
    }
    return this.log.readAfter(version, Math.min(limit, this.last - version));
  }

  /**
   * Entries heard without reading the log (this replica's commits; PostgreSQL's NOTIFY payloads,
   * which arrive in commit order): handed on at once when they are exactly the next ones and no
   * read is under way, saving a read of the log; otherwise (undefined: a notice without entries,
   * a gap, a read in flight) the log is read. Entries already handed on are ignored.
   */
  offer(entries: readonly LoggedChange[] | undefined): void {
    if (this.closed) return;
    const first = entries?.[0];
    const last = entries?.at(-1);
    if (!entries || !first || !last) {
      this.wake();
      return;
    }
    if (last.version <= this.last) return;
    if (first.version !== this.last + 1 || this.reading || this.failing) {
      this.wake();
      return;
    }
    this.delivered.heard += entries.length;
    this.deliver([...entries]);
  }

  /** Reads what is new, soon (reads never overlap; one asked during a read follows it). */
  wake(): void {
    if (this.closed) return;
    if (this.reading) {
      this.again = true;
      return;
    }
    this.reading = this.readAll().finally(() => {
      this.reading = undefined;
      if (this.again) {
        this.again = false;
        this.wake();
      }
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.unsubscribe();
    await this.reading;
    for (const resolve of this.waiters.splice(0)) resolve();
  }

  private async readAll(): Promise<void> {
    try {
      for (;;) {
        const entries = await this.log.readAfter(this.last, BATCH);
        if (entries.length > 0) {
          this.delivered.read += entries.length;
          this.deliver(entries);
        }
        if (entries.length < BATCH || this.closed) break;
      }
      if (this.failing) this.logger.info("reading the change log again");
      this.failing = false;
    } catch (err) {
      // Other replicas' changes cannot be heard: what the caches hold may be stale by now.
      if (!this.failing) {
        this.logger.warn({ err }, "cannot read the change log: caches flushed until it works again");
        this.flush();
      }
      this.failing = true;
    }
  }

  /** Changes may be unknown here: every cache drops everything. */
  private flush(): void {
    this.metrics?.changeFeedFlushed();
    this.events.publish({ kind: "all" }, "peer");
  }

  private deliver(entries: LoggedChange[]): void {
    const first = entries[0] as LoggedChange;
    if (first.version !== this.last + 1) {
      // Deleted (retention) before this replica read them: every cache starts afresh.
      this.logger.warn({ from: this.last + 1, to: first.version - 1 }, "change log entries deleted before they were read: caches flushed");
      this.flush();
      this.recent = [];
      for (const l of this.listeners) l.missed?.();
    }
    for (const entry of entries) {
      // This replica's own: published at its commit (which may come a moment after a read or a
      // NOTIFY brought the entry here), not again.
      if (entry.by === this.events.replica) continue;
      this.metrics?.changeApplied(entry.at);
      // Another replica's external key managers changed (its reload or start): its own
      // deployment file, not this replica's, so this replica's caches keep their answers; its
      // gateways still get the entry (the listeners below), with this replica's list.
      if (entry.change.kind === "external-key-managers") continue;
      try {
        this.events.publish(entry.change, "peer");
      } catch (err) {
        this.logger.error({ err }, "applying a change of the log failed: caches flushed");
        this.flush();
      }
    }
    this.last = (entries.at(-1) as LoggedChange).version;
    this.recent.push(...entries);
    if (this.recent.length > RECENT_ENTRIES) this.recent = this.recent.slice(this.recent.length - RECENT_ENTRIES);
    for (const l of this.listeners) l.entries(entries);
    for (const resolve of this.waiters.splice(0)) resolve();
  }
}
