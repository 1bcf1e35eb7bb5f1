import type { ChangeLogReader } from "../cluster/change-log-reader.js";
import type { LoggedChange } from "../domain/change-events.js";
import type { Clock } from "../domain/clock.js";
import { ResourceExhaustedError, UnavailableError } from "../domain/errors.js";
import type { ChangeLogRepository } from "../storage/change-log-repository.js";
import { eventOf, type GatewayExternalKeyManager, type SyncEvent, type SyncFilter, sends } from "./entities.js";
import type { Snapshot, SnapshotReader } from "./snapshot-reader.js";

/** Why a stream starts (or starts again) with a snapshot. */
export type SnapshotReason = "first" | "resume-too-old" | "fresh";

export type WatchOutput =
  | { kind: "snapshot"; snapshot: Snapshot; reason: SnapshotReason }
  | { kind: "event"; event: SyncEvent }
  /** Every change up to `version` has been sent (or left out by the filters). `at`: epoch ms. */
  | { kind: "heartbeat"; version: number; at: number };

export interface WatchRequest {
  /** The last version the gateway received; undefined: start with a snapshot. */
  fromVersion?: number;
  filter: SyncFilter;
}

export interface SyncSettings {
  maxWatchers: number;
  heartbeatIntervalMs: number;
  maxBufferedMessages: number;
  maxBufferedBytes: number;
}

/** Entries read at a time while a watcher catches up. */
const CATCH_UP_BATCH = 500;

/**
 * The gateways' Watch streams: a snapshot (or the entries after from_version), then every entry
 * of the change log in version order, as this replica's reader hears them, with heartbeats.
 * Entries become events once per entry (shared by every watcher, so their encodings are too).
 *
 * A watcher catching up (after its snapshot, or resuming) reads the log at its own pace. Once it
 * is current, entries are pushed into its buffer as the reader hears them; a watcher whose
 * buffer passes max_buffered_messages or max_buffered_bytes has fallen behind: its buffer is
 * dropped at once, it stops hearing entries, and it is answered RESOURCE_EXHAUSTED (after what
 * its transport holds already), to resume from its last version.
 */
export class GatewaySync {
  private active = 0;
  /** Aborted when the replica shuts down: every stream ends UNAVAILABLE at once. */
  private readonly stopping = new AbortController();
  private readonly events = new WeakMap<LoggedChange, SyncEvent | null>();

  constructor(
    private readonly reader: ChangeLogReader,
    private readonly log: ChangeLogRepository,
    private readonly snapshots: SnapshotReader,
    private readonly settings: () => SyncSettings,
    private readonly clock: Clock,
    /** The bytes an event takes on the wire (the service knows its encoding). */
    private readonly sizeOf: (event: SyncEvent) => number,
    /** This replica's external key managers now (its deployment file): sent when a reload changed them. */
    private readonly externalKeyManagers: () => GatewayExternalKeyManager[] = () => [],
  ) {}

  /** Bytes of events waiting in the watchers' buffers (each bounded by max_buffered_bytes). */
  private buffered = 0;

  /** Streams open on this replica. */
  get watchers(): number {
    return this.active;
  }

  get bufferedBytes(): number {
    return this.buffered;
  }

  /**
   * Ends every stream now with UNAVAILABLE (the gateways resume on another replica from the last
   * version they got), and refuses new ones, so a shutdown does not wait for them.
   */
  stop(): void {
    this.stopping.abort();
  }

  async *watch(request: WatchRequest, callSignal: AbortSignal): AsyncGenerator<WatchOutput> {
    const settings = this.settings();
    const shuttingDown = (version: number | undefined) =>
      new UnavailableError(
        `this key manager replica is shutting down: Watch again${version === undefined ? "" : ` with from_version ${version}`} (another replica, or this one once it is back, resumes the stream)`,
      );
    if (this.stopping.signal.aborted) throw shuttingDown(request.fromVersion);
    if (this.active >= settings.maxWatchers) {
      throw new ResourceExhaustedError(
        `this replica serves gateway_sync.max_watchers (${settings.maxWatchers}) Watch streams already: try again later or another replica`,
      );
    }
    this.active++;
    const signal = AbortSignal.any([callSignal, this.stopping.signal]);
    // The last version the watcher can resume from (none before its first snapshot).
    const progress = { sent: request.fromVersion };
    try {
      let reason: SnapshotReason | undefined;
      let version = 0;
      if (request.fromVersion === undefined) reason = "first";
      else reason = await this.resumable(request.fromVersion);
      version = request.fromVersion ?? 0;
      while (!signal.aborted) {
        if (reason !== undefined) {
          const snapshot = await this.snapshots.take(request.filter);
          if (signal.aborted) break;
          yield { kind: "snapshot", snapshot, reason };
          version = snapshot.version;
          progress.sent = version;
        }
        // Returns when the log no longer holds the entry after the watcher's version.
        yield* this.follow(version, request.filter, settings, signal, progress);
        reason = "resume-too-old";
      }
      if (this.stopping.signal.aborted && !callSignal.aborted) throw shuttingDown(progress.sent);
    } finally {
      this.active--;
    }
  }

  /**
   * Undefined when the log still holds every entry after `from` (judged by the database, so every
   * replica answers alike, whatever it holds in memory); else why a snapshot is needed.
   */
  private async resumable(from: number): Promise<SnapshotReason | undefined> {
    const head = await this.log.head();
    if (from > head) return "fresh";
    if (from === head) return undefined;
    const oldest = await this.log.oldest();
    return oldest !== undefined && oldest <= from + 1 ? undefined : "resume-too-old";
  }

  /** `progress.sent`: the version of the last event or heartbeat taken by the transport. */
  private async *follow(
    from: number,
    filter: SyncFilter,
    settings: SyncSettings,
    signal: AbortSignal,
    progress: { sent: number | undefined },
  ): AsyncGenerator<WatchOutput> {
    let version = from;
    let lastSent = performance.now();
    const heartbeat = (): WatchOutput => {
      lastSent = performance.now();
      return { kind: "heartbeat", version, at: this.clock.nowMs() };
    };
    const untilHeartbeat = () => Math.max(0, settings.heartbeatIntervalMs - (performance.now() - lastSent));

    // Catching up, at the watcher's pace (its transport takes each event before the next is read).
    while (version !== this.reader.version) {
      if (signal.aborted) return;
      if (version < this.reader.version) {
        const entries = await this.reader.read(version, CATCH_UP_BATCH);
        if (entries[0]?.version !== version + 1) return;
        for (const entry of entries) {
          version = entry.version;
          const event = this.render(entry, filter);
          if (event) {
            lastSent = performance.now();
            yield { kind: "event", event };
            progress.sent = event.version;
          }
        }
      } else if (!(await wait(this.reader.after(version), untilHeartbeat(), signal))) {
        // The snapshot came from the database ahead of this replica's reader: it catches up.
        if (!signal.aborted) {
          yield heartbeat();
          progress.sent = version;
        }
      }
    }

    // Current: from here (no await since the check above), entries are pushed as they are heard.
    const queue: SyncEvent[] = [];
    let queuedBytes = 0;
    let queued = version;
    let overflow = false;
    let gap = false;
    let wake: (() => void) | undefined;
    const notify = () => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    const unsubscribe = this.reader.subscribe({
      entries: (entries) => {
        if (overflow || gap) return;
        for (const entry of entries) {
          if (entry.version <= queued) continue;
          if (entry.version !== queued + 1) {
            gap = true;
            break;
          }
          queued = entry.version;
          const event = this.render(entry, filter);
          if (!event) continue;
          queue.push(event);
          const size = this.sizeOf(event);
          queuedBytes += size;
          this.buffered += size;
          if (queue.length > settings.maxBufferedMessages || queuedBytes > settings.maxBufferedBytes) {
            overflow = true;
            queue.length = 0;
            this.buffered -= queuedBytes;
            queuedBytes = 0;
            unsubscribe();
            break;
          }
        }
        notify();
      },
      missed: () => {
        gap = true;
        notify();
      },
    });
    try {
      for (;;) {
        if (signal.aborted) return;
        if (overflow) {
          throw new ResourceExhaustedError(
            `this watcher fell behind (more than gateway_sync.max_buffered_messages ${settings.maxBufferedMessages} events or max_buffered_bytes ${settings.maxBufferedBytes} bytes waited for it): Watch again with from_version ${version}`,
          );
        }
        const next = queue.shift();
        if (next) {
          const size = this.sizeOf(next);
          queuedBytes -= size;
          this.buffered -= size;
          version = next.version;
          lastSent = performance.now();
          yield { kind: "event", event: next };
          progress.sent = next.version;
          continue;
        }
        version = queued;
        if (gap) return;
        const woken = await wait(
          new Promise<void>((resolve) => {
            wake = resolve;
          }),
          untilHeartbeat(),
          signal,
        );
        if (!woken && !signal.aborted) {
          yield heartbeat();
          progress.sent = version;
        }
      }
    } finally {
      unsubscribe();
      this.buffered -= queuedBytes;
    }
  }

  /** The event of an entry for a watcher with `filter`; an API leaving its filter is a delete to it. */
  private render(entry: LoggedChange, filter: SyncFilter): SyncEvent | undefined {
    let event = this.events.get(entry);
    if (event === undefined) {
      event = eventOf(entry, this.externalKeyManagers) ?? null;
      this.events.set(entry, event);
    }
    if (!event) return undefined;
    if (sends(filter, event)) return event;
    // Its context may have been one the watcher keeps (a context changed): it drops the API.
    if (event.upsert?.kind === "api") return { version: event.version, at: event.at, delete: { kind: "api", apiId: event.upsert.api.apiId } };
    return undefined;
  }
}

/** True when `promise` settles first, false when `ms` pass or `signal` aborts first. */
async function wait(promise: Promise<void>, ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return false;
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      promise.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), ms);
        onAbort = () => resolve(false);
        signal.addEventListener("abort", onAbort, { once: true });
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal.removeEventListener("abort", onAbort);
  }
}
