import type { Knex } from "knex";
import type { AuthorizationCode } from "../domain/model/index.js";
import { normaliseDbError } from "./errors.js";
import { fromJson, toDate, toJson, toMillis } from "./rows.js";

interface CodeRow {
  code_hash: string;
  consumer_key: string;
  username: string;
  scopes: string;
  redirect_uri: string;
  code_challenge: string;
  nonce: string;
  family_id: string;
  auth_time: number | string;
  created_at: number | string;
  expires_at: number | string;
  used_at: number | string | null;
}

const TABLE = "authorization_codes";

/** Authorization codes, by the hash of the code. */
export class AuthorizationCodeRepository {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  async insert(code: AuthorizationCode): Promise<void> {
    try {
      await this.db<CodeRow>(TABLE).insert({
        code_hash: code.codeHash,
        consumer_key: code.consumerKey,
        username: code.username,
        scopes: toJson(code.scopes),
        redirect_uri: code.redirectUri,
        code_challenge: code.codeChallenge,
        nonce: code.nonce,
        family_id: code.familyId,
        auth_time: toMillis(code.authTime),
        created_at: toMillis(code.createdAt),
        expires_at: toMillis(code.expiresAt),
        used_at: code.usedAt ? toMillis(code.usedAt) : null,
      });
    } catch (err) {
      normaliseDbError(err, { duplicate: "this authorization code exists" });
    }
  }

  async findByHash(codeHash: string): Promise<AuthorizationCode | undefined> {
    const row = await this.db<CodeRow>(TABLE).where({ code_hash: codeHash }).first();
    return row ? fromRow(row) : undefined;
  }

  /** Marks the code used unless it already was: true when this call spent it. */
  async spend(codeHash: string, at: Date): Promise<boolean> {
    const changed = await this.db<CodeRow>(TABLE)
      .where({ code_hash: codeHash })
      .whereNull("used_at")
      .update({ used_at: toMillis(at) });
    return changed > 0;
  }

  /** Deletes up to `limit` that expired before `before`; how many went. */
  async purgeExpired(before: Date, limit: number): Promise<number> {
    // MySQL cannot delete from a table it selects from in a subquery: the keys are read first.
    const rows = await this.db<CodeRow>(TABLE).select("code_hash").where("expires_at", "<", toMillis(before)).limit(limit);
    if (rows.length === 0) return 0;
    return this.db<CodeRow>(TABLE)
      .whereIn(
        "code_hash",
        rows.map((r) => r.code_hash),
      )
      .delete();
  }
}

function fromRow(row: CodeRow): AuthorizationCode {
  return {
    codeHash: row.code_hash,
    consumerKey: row.consumer_key,
    username: row.username,
    scopes: fromJson(row.scopes),
    redirectUri: row.redirect_uri,
    codeChallenge: row.code_challenge,
    nonce: row.nonce,
    familyId: row.family_id,
    authTime: toDate(row.auth_time),
    createdAt: toDate(row.created_at),
    expiresAt: toDate(row.expires_at),
    usedAt: row.used_at === null ? undefined : toDate(row.used_at),
  };
}
