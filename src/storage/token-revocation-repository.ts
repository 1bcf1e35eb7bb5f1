import type { Knex } from "knex";

const TABLE = "token_revocations";

/** Whose tokens a bulk revocation ended. */
export type RevocationSubject = "consumer_key" | "end_user";

/** Every token of a consumer key or an end user issued at or before `revokedAt` (epoch ms) is revoked. */
export interface StoredRevocation {
  kind: RevocationSubject;
  subject: string;
  revokedAt: number;
  /** Epoch ms: no token it refuses is alive after it. */
  keepUntil: number;
}

interface RevocationRow {
  subject_kind: string;
  subject: string;
  revoked_at: number | string;
  keep_until: number | string;
}

/**
 * Revocations by consumer key and by end user (migration 20261205120000_token_revocations), kept
 * until no token they refuse can be alive, so gateways that start later learn them from the Watch
 * snapshot. One row per consumer key or end user, holding the latest revocation and the furthest
 * horizon (a later revocation covers every token an earlier one did).
 */
export class TokenRevocationRepository {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  /**
   * Records a revocation in the writing transaction. Run after the change log's head was locked
   * (Store.log), so transactions that record take turns and read-then-write is safe.
   */
  async record(revocation: StoredRevocation): Promise<void> {
    if (!this.db.isTransaction) throw new Error("revocations are recorded in the transaction of their change");
    const key = { subject_kind: revocation.kind, subject: revocation.subject };
    const row = (await this.db<RevocationRow>(TABLE).select().where(key).first()) as RevocationRow | undefined;
    if (!row) {
      await this.db(TABLE).insert({ ...key, revoked_at: revocation.revokedAt, keep_until: revocation.keepUntil });
      return;
    }
    await this.db(TABLE)
      .where(key)
      .update({
        revoked_at: Math.max(Number(row.revoked_at), revocation.revokedAt),
        keep_until: Math.max(Number(row.keep_until), revocation.keepUntil),
      });
  }

  /** Up to `limit` revocations of `kind` still kept at `now` (keep_until after it), by subject after `after`. */
  async page(kind: RevocationSubject, now: number, after: string, limit: number): Promise<StoredRevocation[]> {
    const rows = (await this.db<RevocationRow>(TABLE)
      .select()
      .where({ subject_kind: kind })
      .andWhere("subject", ">", after)
      .andWhere("keep_until", ">", now)
      .orderBy("subject")
      .limit(limit)) as RevocationRow[];
    return rows.map(fromRow);
  }

  /** Deletes up to `limit` revocations no token of which can be alive at `now`; how many went. */
  async purgeEnded(now: number, limit: number): Promise<number> {
    // The batch's newest horizon bounds one ranged delete (on the keep_until index).
    const rows = (await this.db<RevocationRow>(TABLE)
      .select("keep_until")
      .where("keep_until", "<=", now)
      .orderBy("keep_until")
      .limit(limit)) as RevocationRow[];
    const last = rows.at(-1);
    if (!last) return 0;
    return this.db(TABLE).where("keep_until", "<=", Number(last.keep_until)).delete();
  }
}

function fromRow(r: RevocationRow): StoredRevocation {
  return { kind: r.subject_kind as RevocationSubject, subject: r.subject, revokedAt: Number(r.revoked_at), keepUntil: Number(r.keep_until) };
}
