import type { Knex } from "knex";
import type { TokenRecord, TokenType } from "../domain/model/index.js";
import { normaliseDbError } from "./errors.js";
import type { Page, PageQuery } from "../domain/paging.js";
import { type KeyColumn, readPage } from "./keyset.js";
import { lockRows, type ReadOptions } from "./locks.js";
import { fromJson, toDate, toJson, toMillis } from "./rows.js";

interface TokenRow {
  id: string;
  token_hash: string;
  consumer_key: string;
  end_user: string;
  scopes: string;
  token_type: string;
  grant_type: string;
  issued_at: number | string;
  expires_at: number | string;
  revoked_at: number | string | null;
  refresh_hash: string | null;
  refresh_expires_at: number | string | null;
  refresh_used_at: number | string | null;
  family_id: string;
}

const TABLE = "access_tokens";
const ACTIVE_TOKEN_KEY: KeyColumn[] = [
  { column: "issued_at", type: "number", descending: true },
  { column: "id", type: "string", descending: true },
];

/** Issued tokens, by the hashes of the access and refresh tokens. */
export class TokenRepository {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  async insert(record: TokenRecord): Promise<void> {
    try {
      await this.db<TokenRow>(TABLE).insert(toRow(record));
    } catch (err) {
      normaliseDbError(err, { duplicate: "token collision", missingReference: "the OAuth client no longer exists" });
    }
  }

  /** Several records in one statement: all are stored or none. */
  async insertMany(records: TokenRecord[]): Promise<void> {
    try {
      await this.db<TokenRow>(TABLE).insert(records.map(toRow));
    } catch (err) {
      normaliseDbError(err, { duplicate: "token collision", missingReference: "the OAuth client no longer exists" });
    }
  }

  async findByHash(tokenHash: string): Promise<TokenRecord | undefined> {
    const row = await this.db<TokenRow>(TABLE).where({ token_hash: tokenHash }).first();
    return row ? fromRow(row) : undefined;
  }

  async findByRefreshHash(refreshHash: string): Promise<TokenRecord | undefined> {
    const row = await this.db<TokenRow>(TABLE).where({ refresh_hash: refreshHash }).first();
    return row ? fromRow(row) : undefined;
  }

  /**
   * Deletes up to `limit` tokens that ended before `before`: expired (and their refresh token
   * too, if any) or revoked. Returns how many went. Ids are read first and deleted by key, the
   * same on every dialect (MySQL refuses LIMIT in a subquery on the table it deletes from).
   */
  async purgeEnded(before: Date, limit: number): Promise<number> {
    const cutoff = toMillis(before);
    // Two index range reads (expires_at, revoked_at) rather than one OR that scans the table.
    const expired = await this.db<TokenRow>(TABLE)
      .select("id")
      .where("expires_at", "<", cutoff)
      .andWhere((r) => r.whereNull("refresh_expires_at").orWhere("refresh_expires_at", "<", cutoff))
      .limit(limit);
    const revoked =
      expired.length < limit
        ? await this.db<TokenRow>(TABLE)
            .select("id")
            .where("revoked_at", "<", cutoff)
            .limit(limit - expired.length)
        : [];
    const ids = [...new Set([...expired, ...revoked].map((r) => r.id))];
    if (ids.length === 0) return 0;
    return this.db<TokenRow>(TABLE).whereIn("id", ids).delete();
  }

  async findById(id: string, options: ReadOptions = {}): Promise<TokenRecord | undefined> {
    const row = await lockRows(this.db<TokenRow>(TABLE).where({ id }), options).first();
    return row ? fromRow(row) : undefined;
  }

  /** Marks a refresh token spent; false when another request spent it first. */
  async spendRefresh(id: string, at: Date): Promise<boolean> {
    const changed = await this.db<TokenRow>(TABLE)
      .where({ id })
      .whereNull("refresh_used_at")
      .update({ refresh_used_at: toMillis(at) });
    return changed > 0;
  }

  /** A page of the active tokens of a client, newest first. */
  listActive(consumerKey: string, now: Date, page: PageQuery): Promise<Page<TokenRecord>> {
    const q = this.db<TokenRow>(TABLE).where({ consumer_key: consumerKey }).whereNull("revoked_at").where("expires_at", ">", toMillis(now));
    return readPage(q, ACTIVE_TOKEN_KEY, page, fromRow, (t) => [toMillis(t.issuedAt), t.id]);
  }

  async revoke(id: string, at: Date): Promise<void> {
    await this.db<TokenRow>(TABLE)
      .where({ id })
      .whereNull("revoked_at")
      .update({ revoked_at: toMillis(at) });
  }

  async revokeFamily(familyId: string, at: Date): Promise<void> {
    await this.db<TokenRow>(TABLE)
      .where({ family_id: familyId })
      .whereNull("revoked_at")
      .update({ revoked_at: toMillis(at) });
  }

  /** Every token of a client (its consumer secret was regenerated). */
  async revokeClient(consumerKey: string, at: Date): Promise<void> {
    await this.db<TokenRow>(TABLE)
      .where({ consumer_key: consumerKey })
      .whereNull("revoked_at")
      .update({ revoked_at: toMillis(at) });
  }

  /** The families of the tokens a client holds for a user that are not revoked (a consent withdrawn ends them). */
  async familiesOf(consumerKey: string, endUser: string): Promise<string[]> {
    const rows = await this.db<TokenRow>(TABLE).distinct("family_id").where({ consumer_key: consumerKey, end_user: endUser }).whereNull("revoked_at");
    return rows.map((r: { family_id: string }) => r.family_id);
  }

  async revokeUser(endUser: string, at: Date): Promise<void> {
    await this.db<TokenRow>(TABLE)
      .where({ end_user: endUser })
      .whereNull("revoked_at")
      .update({ revoked_at: toMillis(at) });
  }
}

function optionalMillis(date: Date | undefined): number | null {
  return date ? toMillis(date) : null;
}

function optionalDate(value: number | string | null): Date | undefined {
  return value === null || value === undefined ? undefined : toDate(value);
}

function toRow(r: TokenRecord): TokenRow {
  return {
    id: r.id,
    token_hash: r.tokenHash,
    consumer_key: r.consumerKey,
    end_user: r.endUser,
    scopes: toJson(r.scopes),
    token_type: r.tokenType,
    grant_type: r.grantType,
    issued_at: toMillis(r.issuedAt),
    expires_at: toMillis(r.expiresAt),
    revoked_at: optionalMillis(r.revokedAt),
    refresh_hash: r.refreshHash ?? null,
    refresh_expires_at: optionalMillis(r.refreshExpiresAt),
    refresh_used_at: optionalMillis(r.refreshUsedAt),
    family_id: r.familyId,
  };
}

function fromRow(row: TokenRow): TokenRecord {
  return {
    id: row.id,
    tokenHash: row.token_hash,
    consumerKey: row.consumer_key,
    endUser: row.end_user,
    scopes: fromJson(row.scopes),
    tokenType: row.token_type as TokenType,
    grantType: row.grant_type,
    issuedAt: toDate(row.issued_at),
    expiresAt: toDate(row.expires_at),
    revokedAt: optionalDate(row.revoked_at),
    refreshHash: row.refresh_hash ?? undefined,
    refreshExpiresAt: optionalDate(row.refresh_expires_at),
    refreshUsedAt: optionalDate(row.refresh_used_at),
    familyId: row.family_id,
  };
}
