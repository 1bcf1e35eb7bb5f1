import { createRequire } from "node:module";
import { setTimeout as sleep } from "node:timers/promises";
import type { Knex } from "knex";
import type { Logger } from "pino";
import type { ChangeFeed, ChangeFeedOptions } from "./change-feed.js";
import { ChangeRelay } from "./change-relay.js";

const CHANNEL = "keymanager_changes";
/** How the listener's connection shows in pg_stat_activity. */
export const LISTENER_APPLICATION_NAME = "keymanager-change-listener";
const CONNECT_TIMEOUT_MS = 5000;
/** A listener connection that died without a word (network) is found by this check. */
const HEARTBEAT_MS = 5000;
const HEARTBEAT_TIMEOUT_MS = 3000;
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
 * PostgreSQL: changes go out with pg_notify (through the pool) and come in on one connection of
 * its own that LISTENs, so other replicas hear of them within milliseconds. When that connection
 * is lost, changes may be missed: caches are flushed at once, after every failed reconnection
 * attempt (at most a second apart) and once more when listening again.
 *
 * A change is sent just after its commit. A replica that dies in between (SIGKILL, OOM, power)
 * takes its notice with it; so every heartbeat also lists the replicas' listener connections,
 * and when one that was there is gone, the others flush their caches: what a dead replica may
 * not have told lasts at most a heartbeat, not a cache TTL.
 */
export class PostgresChangeFeed implements ChangeFeed {
  private listener: PgClient | undefined;
  private reconnecting: Promise<void> | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  /** The other replicas' listener connections (backend pids) seen at the last heartbeat. */
  private peers: Set<number> | undefined;
  private readonly stopping = new AbortController();

  private constructor(
    private readonly relay: ChangeRelay,
    private readonly url: string,
    private readonly logger: Logger,
  ) {}

  static async start(options: ChangeFeedOptions): Promise<PostgresChangeFeed> {
    const relay = new ChangeRelay(options.events, (payloads) => notify(options.db, payloads), options.logger, options.metrics);
    const feed = new PostgresChangeFeed(relay, options.url, options.logger);
    try {
      await feed.connect();
    } catch (err) {
      await relay.close();
      throw err;
    }
    feed.heartbeat = setInterval(() => void feed.check(), HEARTBEAT_MS).unref();
    return feed;
  }

  async close(): Promise<void> {
    this.stopping.abort();
    clearInterval(this.heartbeat);
    await this.relay.close();
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
      if (message.channel === CHANNEL) this.relay.receive(message.payload);
    });
    client.on("error", (err) => this.lost(client, err));
    client.on("end", () => this.lost(client, undefined));
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
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
    this.logger.warn({ err }, "change listener lost its connection: caches flushed, reconnecting");
    this.relay.flush();
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
        // Whatever changed while nobody listened was missed: drop what was cached meanwhile.
        this.relay.flush();
        this.logger.info({ attempts: attempt }, "change listener reconnected: caches flushed");
        return;
      } catch (err) {
        // Still deaf: entries cached since the last flush may be stale already.
        this.relay.flush();
        if (attempt === 1 || attempt % 30 === 0) this.logger.warn({ err, attempts: attempt }, "change listener cannot reconnect; retrying");
      }
    }
  }

  /** A replica that left (or whose listener reconnected) may have had changes it never sent. */
  private notePeers(current: Set<number>): void {
    const left = [...(this.peers ?? [])].filter((pid) => !current.has(pid));
    this.peers = current;
    if (left.length === 0) return;
    this.relay.flush();
    this.logger.info({ replicas: left.length }, "a replica left: caches flushed");
  }

  private async check(): Promise<void> {
    const client = this.listener;
    if (!client) return;
    const timeout = new AbortController();
    try {
      const listeners = await Promise.race([
        client.query("select pid from pg_stat_activity where application_name = $1 and datname = current_database() and pid <> pg_backend_pid()", [
          LISTENER_APPLICATION_NAME,
        ]),
        sleep(HEARTBEAT_TIMEOUT_MS, undefined, { signal: timeout.signal }).then(() => Promise.reject(new Error("change listener did not answer in time"))),
      ]);
      this.notePeers(new Set(listeners.rows.map((r) => Number(r.pid))));
    } catch (err) {
      this.lost(client, err as Error);
    } finally {
      timeout.abort();
    }
  }
}

/** One round trip, one transaction, however many messages. */
async function notify(db: Knex, payloads: string[]): Promise<void> {
  if (payloads.length === 0) return;
  await db.raw(
    `select ${payloads.map(() => "pg_notify(?, ?)").join(", ")}`,
    payloads.flatMap((p) => [CHANNEL, p]),
  );
}
