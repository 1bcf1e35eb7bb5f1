import type { Knex } from "knex";
import type { Consent } from "../domain/model/index.js";
import type { Page, PageQuery } from "../domain/paging.js";
import { type KeyColumn, readPage } from "./keyset.js";
import { lockRows, type ReadOptions } from "./locks.js";
import { fromJson, toDate, toJson, toMillis } from "./rows.js";

interface ConsentRow {
  consumer_key: string;
  username: string;
  scopes: string;
  created_at: number | string;
  updated_at: number | string;
}

const TABLE = "oauth_consents";
const CONSENT_KEY: KeyColumn[] = [{ column: "consumer_key", type: "string" }];

/** The consents users gave to clients on the consent page. */
export class ConsentRepository {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  async find(consumerKey: string, username: string, options: ReadOptions = {}): Promise<Consent | undefined> {
    const row = await lockRows(this.db<ConsentRow>(TABLE).where({ consumer_key: consumerKey, username }), options).first();
    return row ? fromRow(row) : undefined;
  }

  /** Creates or replaces the consent of a user to a client. */
  async save(consent: Consent): Promise<void> {
    const columns = { scopes: toJson(consent.scopes), updated_at: toMillis(consent.updatedAt) };
    const changed = await this.db<ConsentRow>(TABLE).where({ consumer_key: consent.consumerKey, username: consent.username }).update(columns);
    if (changed > 0) return;
    await this.db<ConsentRow>(TABLE).insert({
      consumer_key: consent.consumerKey,
      username: consent.username,
      created_at: toMillis(consent.createdAt),
      ...columns,
    });
  }

  /** A page of a user's consents, ordered by client. */
  listByUser(username: string, page: PageQuery): Promise<Page<Consent>> {
    return readPage(this.db<ConsentRow>(TABLE).where({ username }), CONSENT_KEY, page, fromRow, (c) => [c.consumerKey]);
  }

  /** True when there was such a consent. */
  async delete(consumerKey: string, username: string): Promise<boolean> {
    return (await this.db<ConsentRow>(TABLE).where({ consumer_key: consumerKey, username }).delete()) > 0;
  }
}

function fromRow(row: ConsentRow): Consent {
  return {
    consumerKey: row.consumer_key,
    username: row.username,
    scopes: fromJson(row.scopes),
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
  };
}
