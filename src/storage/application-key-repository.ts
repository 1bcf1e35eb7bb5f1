import type { Knex } from "knex";
import type { ApplicationKeyMapping, ApplicationKeyRef, ApplicationMode, KeyState, KeyType } from "../domain/model/index.js";
import { normaliseDbError } from "./errors.js";
import { toDate, toMillis } from "./rows.js";

interface KeyRow {
  application_id: string;
  key_type: string;
  consumer_key: string;
  mode: string;
  key_state: string;
  application_name: string;
  application_tier: string;
  created_at: number | string;
  updated_at: number | string;
}

const TABLE = "application_keys";

/** Which OAuth client holds each store application's PRODUCTION and SANDBOX keys. */
export class ApplicationKeyRepository {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  /** Fails with AlreadyExists when the application key or the consumer key is already mapped. */
  async insert(mapping: ApplicationKeyMapping): Promise<void> {
    try {
      await this.db<KeyRow>(TABLE).insert(toRow(mapping));
    } catch (err) {
      normaliseDbError(err, {
        duplicate: "the application already has keys of this type, or the consumer key is mapped to another application",
        missingReference: "the OAuth client no longer exists",
      });
    }
  }

  async findByRef(ref: ApplicationKeyRef): Promise<ApplicationKeyMapping | undefined> {
    const row = await this.db<KeyRow>(TABLE).where({ application_id: ref.applicationId, key_type: ref.keyType }).first();
    return row ? fromRow(row) : undefined;
  }

  async findByConsumerKey(consumerKey: string): Promise<ApplicationKeyMapping | undefined> {
    const row = await this.db<KeyRow>(TABLE).where({ consumer_key: consumerKey }).first();
    return row ? fromRow(row) : undefined;
  }

  async touch(consumerKey: string, updatedAt: Date): Promise<void> {
    await this.db<KeyRow>(TABLE)
      .where({ consumer_key: consumerKey })
      .update({ updated_at: toMillis(updatedAt) });
  }

  async deleteByConsumerKey(consumerKey: string): Promise<boolean> {
    return (await this.db<KeyRow>(TABLE).where({ consumer_key: consumerKey }).delete()) > 0;
  }
}

function toRow(m: ApplicationKeyMapping): KeyRow {
  return {
    application_id: m.applicationId,
    key_type: m.keyType,
    consumer_key: m.consumerKey,
    mode: m.mode,
    key_state: m.keyState,
    application_name: m.applicationName,
    application_tier: m.applicationTier,
    created_at: toMillis(m.createdAt),
    updated_at: toMillis(m.updatedAt),
  };
}

function fromRow(row: KeyRow): ApplicationKeyMapping {
  return {
    applicationId: row.application_id,
    keyType: row.key_type as KeyType,
    consumerKey: row.consumer_key,
    mode: row.mode as ApplicationMode,
    keyState: row.key_state as KeyState,
    applicationName: row.application_name,
    applicationTier: row.application_tier,
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
  };
}
