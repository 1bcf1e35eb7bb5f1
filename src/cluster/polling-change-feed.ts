import { setTimeout as sleep } from "node:timers/promises";
import type { Knex } from "knex";
import type { Logger } from "pino";
import type { ChangeFeed, ChangeFeedOptions } from "./change-feed.js";
import { ChangeRelay } from "./change-relay.js";
import { PRESENCE_EVERY_MS, ReplicaPresence } from "./replica-presence.js";

const TABLE = "cache_invalidations";
const BATCH = 500;
/** Rows are kept this long: a replica that fell further behind finds ids missing and flushes. */
const RETAIN_MS = 120_000;
const PRUNE_EVERY_MS = 30_000;

interface Row {
  id: number | string;
  payload: string;
}

/**
 * MySQL/MariaDB, which have no NOTIFY: changes are rows of cache_invalidations, and every
 * replica reads those after the last id it saw every `pollIntervalMs`. Ids come from one
 * AUTO_INCREMENT counter; a missing id (a row committed out of order, rolled back, or deleted
 * before this replica read it), a failed or stalled read all flush the caches, since changes may
 * have been missed. A row is written after its change is committed, so a flush when a later row
 * shows up first is late enough. A replica killed between a commit and its row leaves no gap:
 * the others flush when it stops refreshing its presence (replica-presence.ts).
 */
export class PollingChangeFeed implements ChangeFeed {
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  private failing = false;
  private stopped = false;
  private lastPrune = Date.now();
  private lastBeat = Number.NEGATIVE_INFINITY;
  private readonly presence: ReplicaPresence;

  private constructor(
    private readonly relay: ChangeRelay,
    private readonly db: Knex,
    private readonly intervalMs: number,
    private readonly logger: Logger,
    /** Id of the last row read. */
    private last: number,
    /** Difference between consecutive ids (@@auto_increment_increment). */
    private readonly step: number,
  ) {
    this.presence = new ReplicaPresence(db, relay.replica);
  }

  static async start(options: ChangeFeedOptions): Promise<PollingChangeFeed> {
    const { db } = options;
    const relay = new ChangeRelay(options.events, (payloads) => insert(db, payloads), options.logger, options.metrics);
    try {
      const [rows] = (await db.raw("select @@auto_increment_increment as step")) as [Array<{ step: number | string }>];
      const feed = new PollingChangeFeed(relay, db, options.pollIntervalMs, options.logger, await newestId(db), Number(rows[0]?.step ?? 1) || 1);
      await feed.presence.beat();
      feed.schedule();
      return feed;
    } catch (err) {
      await relay.close();
      throw err;
    }
  }

  async close(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.polling;
    await this.relay.close();
    // Everything is sent: the others need not flush for this one.
    await this.presence.leave().catch((err: unknown) => this.logger.warn({ err }, "cannot remove this replica from cluster_replicas"));
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.polling = this.poll().finally(() => {
        this.polling = undefined;
        this.schedule();
      });
    }, this.intervalMs);
    this.timer.unref();
  }

  private async poll(): Promise<void> {
    // A read that hangs (a connection gone silent) is a failed one: flush while waiting for it.
    const stalled = new AbortController();
    void sleep(Math.max(5 * this.intervalMs, 5000), undefined, { signal: stalled.signal, ref: false }).then(
      () => this.relay.flush(),
      () => undefined,
    );
    try {
      await this.readNew();
      if (this.failing) {
        this.failing = false;
        this.relay.flush();
        this.logger.info("reading other replicas' changes again: caches flushed");
      }
    } catch (err) {
      if (!this.failing) this.logger.warn({ err }, "cannot read other replicas' changes: caches flushed until it works again");
      this.failing = true;
      this.relay.flush();
      return;
    } finally {
      stalled.abort();
    }
    if (Date.now() - this.lastBeat >= PRESENCE_EVERY_MS) await this.checkPresence();
    if (Date.now() - this.lastPrune >= PRUNE_EVERY_MS) await this.prune();
  }

  /** Says this replica is alive; flushes when another went quiet (it may have died unheard). */
  private async checkPresence(): Promise<void> {
    this.lastBeat = Date.now();
    try {
      await this.presence.beat();
      const departed = await this.presence.departed();
      if (departed === 0) return;
      this.relay.flush();
      this.logger.info({ replicas: departed }, "a replica left: caches flushed");
    } catch (err) {
      this.logger.warn({ err }, "cannot update cluster_replicas");
    }
  }

  private async readNew(): Promise<void> {
    for (;;) {
      const rows = (await this.db<Row>(TABLE).select("id", "payload").where("id", ">", this.last).orderBy("id").limit(BATCH)) as Row[];
      let missed = false;
      for (const row of rows) {
        const id = Number(row.id);
        if (id !== this.last + this.step) missed = true;
        this.last = id;
        this.relay.receive(row.payload);
      }
      if (missed) this.relay.flush();
      if (rows.length < BATCH) return;
    }
  }

  /** Deletes old rows, never the newest: a replica starting reads on from its id. */
  private async prune(): Promise<void> {
    this.lastPrune = Date.now();
    try {
      const newest = await newestId(this.db);
      await this.db(TABLE)
        .where("created_at", "<", Date.now() - RETAIN_MS)
        .andWhere("id", "<", newest)
        .delete();
    } catch (err) {
      this.logger.warn({ err }, "cannot delete old rows of cache_invalidations");
    }
  }
}

async function newestId(db: Knex): Promise<number> {
  const row = (await db(TABLE).max({ id: "id" }).first()) as { id: number | string | null } | undefined;
  return Number(row?.id ?? 0);
}

async function insert(db: Knex, payloads: string[]): Promise<void> {
  const now = Date.now();
  await db(TABLE).insert(payloads.map((payload) => ({ payload, created_at: now })));
}
