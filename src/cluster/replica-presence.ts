import type { Knex } from "knex";

const TABLE = "cluster_replicas";
/** How often a replica says it is alive. */
export const PRESENCE_EVERY_MS = 2_000;
/** A replica not heard of for this long is taken for dead. */
export const PRESENCE_TIMEOUT_MS = 10_000;
/** A quiet replica's row is deleted after this long. */
const FORGET_MS = 60_000;
/** The database's clock, so replicas' clocks need not agree. */
const DB_NOW_MS = "round(unix_timestamp(now(3)) * 1000)";

/**
 * MySQL/MariaDB: each replica keeps a row of cluster_replicas fresh. A replica killed between a
 * commit and its row in cache_invalidations took that notice with it; the others learn it is gone
 * when its row goes stale, and flush their caches.
 */
export class ReplicaPresence {
  /** Quiet replicas already counted. */
  private counted = new Set<string>();

  constructor(
    private readonly db: Knex,
    private readonly replica: string,
  ) {}

  /** This replica is alive. */
  async beat(): Promise<void> {
    await this.db.raw(`insert into ${TABLE} (replica_id, seen_at) values (?, ${DB_NOW_MS}) on duplicate key update seen_at = values(seen_at)`, [this.replica]);
  }

  /**
   * How many replicas went quiet since the last call: rows not refreshed for PRESENCE_TIMEOUT_MS
   * that this replica has not counted yet. Every replica counts each for itself (each must
   * flush); rows are deleted once FORGET_MS old, long after every live replica has seen them.
   */
  async departed(): Promise<number> {
    const [rows] = (await this.db.raw(`select replica_id from ${TABLE} where seen_at < ${DB_NOW_MS} - ?`, [PRESENCE_TIMEOUT_MS])) as [
      Array<{ replica_id: string }>,
    ];
    const stale = new Set(rows.map((r) => r.replica_id));
    const fresh = [...stale].filter((id) => !this.counted.has(id)).length;
    this.counted = stale;
    await this.db.raw(`delete from ${TABLE} where seen_at < ${DB_NOW_MS} - ?`, [FORGET_MS]);
    return fresh;
  }

  /** A graceful stop: nothing unsent is left behind, so the others need not flush. */
  async leave(): Promise<void> {
    await this.db(TABLE).where({ replica_id: this.replica }).delete();
  }
}
