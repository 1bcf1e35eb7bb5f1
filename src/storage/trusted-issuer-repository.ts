import { createHash } from "node:crypto";
import type { Knex } from "knex";
import { NotFoundError } from "../domain/errors.js";
import type { TrustedIssuer } from "../domain/model/index.js";
import type { Page, PageQuery } from "../domain/paging.js";
import { isUniqueViolation, normaliseDbError } from "./errors.js";
import { type KeyColumn, readPage } from "./keyset.js";
import { lockRows, type ReadOptions } from "./locks.js";
import { fromJson, toDate, toJson, toMillis } from "./rows.js";

interface TrustedIssuerRow {
  issuer: string;
  jwks_uri: string;
  jwk: string;
  allowed_subjects: string;
  allowed_scopes: string;
  max_token_seconds: number | string;
  max_assertion_seconds: number | string;
  audience: string;
  description: string;
  created_at: number | string;
  updated_at: number | string;
}

const TABLE = "trusted_issuers";
const USED = "used_assertions";
const MISSING = "no such trusted issuer";
const ISSUER_KEY: KeyColumn[] = [{ column: "issuer", type: "string" }];

/** Outside issuers whose JWTs the token endpoint accepts, and the assertions already used. */
export class TrustedIssuerRepository {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  async insert(issuer: TrustedIssuer): Promise<void> {
    try {
      await this.db<TrustedIssuerRow>(TABLE).insert(toRow(issuer));
    } catch (err) {
      normaliseDbError(err, { duplicate: "a trusted issuer with this issuer already exists" });
    }
  }

  async find(issuer: string, options: ReadOptions = {}): Promise<TrustedIssuer | undefined> {
    const row = await lockRows(this.db<TrustedIssuerRow>(TABLE).where({ issuer }), options).first();
    return row ? fromRow(row) : undefined;
  }

  async get(issuer: string, options: ReadOptions = {}): Promise<TrustedIssuer> {
    const found = await this.find(issuer, options);
    if (!found) throw new NotFoundError(MISSING);
    return found;
  }

  /** A page of trusted issuers, ordered by issuer. */
  list(page: PageQuery): Promise<Page<TrustedIssuer>> {
    return readPage(this.db<TrustedIssuerRow>(TABLE).select(), ISSUER_KEY, page, fromRow, (i) => [i.issuer]);
  }

  async update(issuer: TrustedIssuer): Promise<void> {
    const { issuer: key, created_at: _created, ...columns } = toRow(issuer);
    if ((await this.db<TrustedIssuerRow>(TABLE).where({ issuer: key }).update(columns)) === 0) throw new NotFoundError(MISSING);
  }

  async delete(issuer: string): Promise<void> {
    if ((await this.db<TrustedIssuerRow>(TABLE).where({ issuer }).delete()) === 0) throw new NotFoundError(MISSING);
  }

  /**
   * Records an issuer's JWT id as used until `expiresAt`: true the first time, false when it was
   * used before (a replay). Only its hash is kept. A row whose JWT has expired no longer counts.
   */
  async spendJti(issuer: string, jti: string, expiresAt: Date, now: Date): Promise<boolean> {
    const jtiHash = createHash("sha256").update(`${issuer}\n${jti}`).digest("hex");
    try {
      await this.db(USED).insert({ jti_hash: jtiHash, expires_at: toMillis(expiresAt) });
      return true;
    } catch (err) {
      if (!isUniqueViolation(err)) throw err;
    }
    // Used before: a replay while that use's JWT lives; after it, a new JWT with the same id.
    const renewed = await this.db(USED)
      .where({ jti_hash: jtiHash })
      .where("expires_at", "<=", toMillis(now))
      .update({ expires_at: toMillis(expiresAt) });
    return renewed > 0;
  }

  /** Deletes up to `limit` used assertions that expired before `before`; how many went. */
  async purgeUsedAssertions(before: Date, limit: number): Promise<number> {
    const ids = this.db(USED).select("jti_hash").where("expires_at", "<", toMillis(before)).limit(limit);
    // MySQL cannot delete from a table it selects from in a subquery: the ids are read first.
    const hashes = ((await ids) as { jti_hash: string }[]).map((r) => r.jti_hash);
    if (hashes.length === 0) return 0;
    return this.db(USED).whereIn("jti_hash", hashes).delete();
  }
}

function toRow(i: TrustedIssuer): TrustedIssuerRow {
  return {
    issuer: i.issuer,
    jwks_uri: i.jwksUri,
    jwk: i.jwk,
    allowed_subjects: toJson(i.allowedSubjects),
    allowed_scopes: toJson(i.allowedScopes),
    max_token_seconds: i.maxTokenSeconds,
    max_assertion_seconds: i.maxAssertionSeconds,
    audience: i.audience,
    description: i.description,
    created_at: toMillis(i.createdAt),
    updated_at: toMillis(i.updatedAt),
  };
}

function fromRow(row: TrustedIssuerRow): TrustedIssuer {
  return {
    issuer: row.issuer,
    jwksUri: row.jwks_uri,
    jwk: row.jwk,
    allowedSubjects: fromJson<string[]>(row.allowed_subjects),
    allowedScopes: fromJson<string[]>(row.allowed_scopes),
    maxTokenSeconds: Number(row.max_token_seconds),
    maxAssertionSeconds: Number(row.max_assertion_seconds),
    audience: row.audience,
    description: row.description,
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
  };
}
