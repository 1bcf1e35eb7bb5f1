import type { DatabaseObserver } from "./deadlines.js";

interface HealthLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/**
 * Whether the database answers, for readiness: a cheap probe (`select 1`, under the same
 * deadlines as every statement) every `intervalMs`, and at once when a real call finds the
 * database unavailable, or answering again while it was thought unreachable. Listeners hear each
 * change. Only the outcome is logged (an error code, never a message: knex puts the statement's
 * values in it).
 */
export class DatabaseHealth implements DatabaseObserver {
  private up = true;
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private stopped = false;
  private readonly listeners: Array<(reachable: boolean) => void> = [];

  constructor(
    private readonly probe: () => Promise<unknown>,
    private readonly intervalMs: number,
    private readonly logger: HealthLogger,
  ) {}

  /** Whether the database answered the last probe (true before the first: start-up has just migrated it). */
  get reachable(): boolean {
    return this.up;
  }

  onChange(listener: (reachable: boolean) => void): void {
    this.listeners.push(listener);
  }

  start(): void {
    this.stopped = false;
    this.schedule();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  answered(): void {
    if (!this.up) void this.check();
  }

  failed(): void {
    if (this.up) void this.check();
  }

  /** Probes now (one probe at a time: a caller during one waits for it). */
  check(): Promise<void> {
    this.checking ??= this.probeOnce().finally(() => {
      this.checking = undefined;
    });
    return this.checking;
  }

  private async probeOnce(): Promise<void> {
    const started = Date.now();
    try {
      await this.probe();
      this.set(true, { probeMs: Date.now() - started });
    } catch (err) {
      this.set(false, { probeMs: Date.now() - started, code: errorCode(err) });
    }
  }

  private set(reachable: boolean, detail: object): void {
    if (reachable === this.up || this.stopped) return;
    this.up = reachable;
    if (reachable) this.logger.info({ component: "database", ...detail }, "the database answers again: ready (SERVING)");
    else this.logger.warn({ component: "database", ...detail }, "the database does not answer: not ready (NOT_SERVING) until it does");
    for (const listener of this.listeners) listener(reachable);
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.check().finally(() => this.schedule());
    }, this.intervalMs);
    this.timer.unref();
  }
}

function errorCode(err: unknown): string {
  const e = err as { code?: unknown; errno?: unknown; name?: unknown } | undefined;
  return String(e?.code ?? e?.errno ?? e?.name ?? "unknown");
}
