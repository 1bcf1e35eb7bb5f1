import { createRequire } from "node:module";
import { setTimeout as sleep } from "node:timers/promises";
import type { Logger } from "pino";
import { CHANGE_LOG_CHANNEL } from "../storage/change-log-repository.js";

/** How the listener's connection shows in pg_stat_activity. */
export const LISTENER_APPLICATION_NAME = "keymanager-change-listener";
const CONNECT_TIMEOUT_MS = 5000;
/** A listener connection that died without a word (network) is found by this check. */
const HEARTBEAT_MS = 5000;
const HEARTBEAT_TIMEOUT_MS = 3000;
/** While deaf, the log is read this often. */
const DEAF_POLL_MS = 250;
const RECONNECT_MAX_MS = 1000;

/** The part of node-postgres' Client the listener uses (the package ships no types). */
interface PgClient {
  connect(): Promise<void>;
  query(sql: string, values?: unknown[]): Promise<{ rows: Array<Record<string, unknown>> }>;
  end(): Promise<void>;
  on(event: "notification", listener: (message: { channel: string; payload?: string }) => void): this;
  on(event: "error", listener: (err: Error) => void): this;
  on(event: "end", listener: () => void): this;
}
type PgClientClass = new (config: { connectionString: string; application_name: string; keepAlive: boolean; connectionTimeoutMillis: number }) => PgClient;
const { Client } = createRequire(import.meta.url)("pg") as { Client: PgClientClass };

/**
 * PostgreSQL: one connection of its own LISTENs on the change log's channel, so this replica
 * reads the log within milliseconds of another's commit (NOTIFY goes with the commit, so a
 * replica killed right after committing has sent it already). When the connection is lost,
 * nothing is missed (the log is read from the last version seen): the reader is woken every
 * DEAF_POLL_MS until listening again, and once more then.
 */
export class PostgresWaker {
  private listener: PgClient | undefined;
  private reconnecting: Promise<void> | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private deaf: NodeJS.Timeout | undefined;
  private readonly stopping = new AbortController();

  private constructor(
    private readonly url: string,
    private readonly wake: () => void,
    private readonly logger: Logger,
    /** A notice's payload (the entries committed, or a version): by default, wakes the reader. */
    private readonly heard: (payload: string | undefined) => void = () => wake(),
  ) {}

  static async start(url: string, wake: () => void, logger: Logger, heard?: (payload: string | undefined) => void): Promise<PostgresWaker> {
    const waker = new PostgresWaker(url, wake, logger, heard);
    await waker.connect();
    waker.heartbeat = setInterval(() => void waker.check(), HEARTBEAT_MS).unref();
    return waker;
  }

  async close(): Promise<void> {
    this.stopping.abort();
    clearInterval(this.heartbeat);
    clearInterval(this.deaf);
    await this.reconnecting;
    const listener = this.listener;
    this.listener = undefined;
    await listener?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    const client = new Client({
      connectionString: this.url,
      application_name: LISTENER_APPLICATION_NAME,
      keepAlive: true,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    });
    client.on("notification", (message) => {
      if (message.channel === CHANGE_LOG_CHANNEL) this.heard(message.payload);
    });
    client.on("error", (err) => this.lost(client, err));
    client.on("end", () => this.lost(client, undefined));
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANGE_LOG_CHANNEL}`);
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
    if (this.stopping.signal.aborted) await client.end().catch(() => undefined);
    else this.listener = client;
  }

  private lost(client: PgClient, err: Error | undefined): void {
    if (client !== this.listener) return;
    this.listener = undefined;
    void client.end().catch(() => undefined);
    if (this.stopping.signal.aborted) return;
    this.logger.warn({ err }, "change listener lost its connection: reading the change log by polling until it reconnects");
    this.deaf ??= setInterval(this.wake, DEAF_POLL_MS).unref();
    this.reconnecting ??= this.reconnect().finally(() => {
      this.reconnecting = undefined;
    });
  }

  private async reconnect(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      await sleep(Math.min(100 * 2 ** (attempt - 1), RECONNECT_MAX_MS), undefined, { signal: this.stopping.signal }).catch(() => undefined);
      if (this.stopping.signal.aborted) return;
      try {
        await this.connect();
        clearInterval(this.deaf);
        this.deaf = undefined;
        // Whatever was committed while nobody listened is read now.
        this.wake();
        this.logger.info({ attempts: attempt }, "change listener reconnected");
        return;
      } catch (err) {
        if (attempt === 1 || attempt % 30 === 0) this.logger.warn({ err, attempts: attempt }, "change listener cannot reconnect; retrying");
      }
    }
  }

  /** A connection that stopped answering is a lost one. */
  private async check(): Promise<void> {
    const client = this.listener;
    if (!client) return;
    const timeout = new AbortController();
    try {
      await Promise.race([
        client.query("select 1"),
        sleep(HEARTBEAT_TIMEOUT_MS, undefined, { signal: timeout.signal }).then(() => Promise.reject(new Error("change listener did not answer in time"))),
      ]);
    } catch (err) {
      this.lost(client, err as Error);
    } finally {
      timeout.abort();
    }
  }
}
