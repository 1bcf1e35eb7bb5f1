import type { Knex } from "knex";
import type { ConsumerSecretRecord } from "../domain/model/index.js";
import type { Page, PageQuery } from "../domain/paging.js";
import { normaliseDbError } from "./errors.js";
import { type KeyColumn, readPage } from "./keyset.js";
import { toDate, toMillis } from "./rows.js";

interface SecretRow {
  secret_id: string;
  consumer_key: string;
  secret_hash: string;
  hint: string;
  description: string;
  created_at: number | string;
  expires_at: number | string | null;
}

const TABLE = "consumer_secrets";
const LIST_KEY: KeyColumn[] = [
  { column: "created_at", type: "number" },
  { column: "secret_id", type: "string" },
];

/** Consumer secrets added to clients: their hashes and what may be shown of them. */
export class ConsumerSecretRepository {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  async insert(secret: ConsumerSecretRecord): Promise<void> {
    try {
      await this.db<SecretRow>(TABLE).insert(toRow(secret));
    } catch (err) {
      normaliseDbError(err, { duplicate: "a consumer secret with this id already exists", missingReference: "the OAuth client no longer exists" });
    }
  }

  /** Every secret of a client (a bounded number), oldest first. */
  async ofClient(consumerKey: string): Promise<ConsumerSecretRecord[]> {
    const rows = await this.db<SecretRow>(TABLE).where({ consumer_key: consumerKey }).orderBy("created_at").orderBy("secret_id");
    return rows.map(fromRow);
  }

  /** A page of a client's secrets, oldest first. */
  list(consumerKey: string, page: PageQuery): Promise<Page<ConsumerSecretRecord>> {
    return readPage(this.db<SecretRow>(TABLE).where({ consumer_key: consumerKey }), LIST_KEY, page, fromRow, (s) => [toMillis(s.createdAt), s.secretId]);
  }

  /** Secrets of a client that had not expired at `now`. */
  async countUnexpired(consumerKey: string, now: Date): Promise<number> {
    const [row] = await this.db<SecretRow>(TABLE)
      .where({ consumer_key: consumerKey })
      .andWhere((q) => q.whereNull("expires_at").orWhere("expires_at", ">", toMillis(now)))
      .count({ n: "*" });
    return Number(row?.n ?? 0);
  }

  /** Drops a client's secrets expired at `now`; they authenticate nothing any more. */
  async deleteExpired(consumerKey: string, now: Date): Promise<number> {
    return this.db<SecretRow>(TABLE).where({ consumer_key: consumerKey }).andWhere("expires_at", "<=", toMillis(now)).delete();
  }

  /** Whether the client had a secret of this id (now gone). */
  async delete(consumerKey: string, secretId: string): Promise<boolean> {
    return (await this.db<SecretRow>(TABLE).where({ consumer_key: consumerKey, secret_id: secretId }).delete()) > 0;
  }
}

function toRow(s: ConsumerSecretRecord): SecretRow {
  return {
    secret_id: s.secretId,
    consumer_key: s.consumerKey,
    secret_hash: s.secretHash,
    hint: s.hint,
    description: s.description,
    created_at: toMillis(s.createdAt),
    expires_at: s.expiresAt ? toMillis(s.expiresAt) : null,
  };
}

function fromRow(row: SecretRow): ConsumerSecretRecord {
  return {
    secretId: row.secret_id,
    consumerKey: row.consumer_key,
    secretHash: row.secret_hash,
    hint: row.hint,
    description: row.description,
    createdAt: toDate(row.created_at),
    expiresAt: row.expires_at === null ? undefined : toDate(row.expires_at),
  };
}
