import type { Knex } from "knex";
import { NotFoundError } from "../domain/errors.js";
import type { Subscription, SubscriptionState } from "../domain/model/index.js";
import { normaliseDbError } from "./errors.js";
import type { Page, PageQuery } from "../domain/paging.js";
import { type KeyColumn, readPage } from "./keyset.js";
import { lockRows, type ReadOptions } from "./locks.js";
import { toDate, toMillis } from "./rows.js";

interface SubscriptionRow {
  id: string;
  application_id: string;
  api_id: string;
  tier: string;
  state: string;
  created_at: number | string;
  updated_at: number | string;
}

const TABLE = "subscriptions";
const MISSING = "no such subscription";
const SUBSCRIPTION_KEY: KeyColumn[] = [
  { column: "created_at", type: "number" },
  { column: "id", type: "string" },
];

/** Subscriptions of applications to APIs, one per pair. */
export class SubscriptionRepository {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  async insert(s: Subscription): Promise<void> {
    try {
      await this.db<SubscriptionRow>(TABLE).insert(toRow(s));
    } catch (err) {
      normaliseDbError(err, {
        duplicate: "the application is already subscribed to this API",
        missingReference: "no such API",
      });
    }
  }

  async get(id: string, options: ReadOptions = {}): Promise<Subscription> {
    const row = await lockRows(this.db<SubscriptionRow>(TABLE).where({ id }), options).first();
    if (!row) throw new NotFoundError(MISSING);
    return fromRow(row);
  }

  async find(applicationId: string, apiId: string): Promise<Subscription | undefined> {
    const row = await this.db<SubscriptionRow>(TABLE).where({ application_id: applicationId, api_id: apiId }).first();
    return row ? fromRow(row) : undefined;
  }

  /** A page of the subscriptions of an application, of an API, or both; oldest first. */
  list(filter: { applicationId?: string; apiId?: string }, page: PageQuery): Promise<Page<Subscription>> {
    const q = this.db<SubscriptionRow>(TABLE).select();
    if (filter.applicationId) q.where({ application_id: filter.applicationId });
    if (filter.apiId) q.where({ api_id: filter.apiId });
    return readPage(q, SUBSCRIPTION_KEY, page, fromRow, (s) => [toMillis(s.createdAt), s.id]);
  }

  async update(s: Subscription): Promise<void> {
    const changed = await this.db<SubscriptionRow>(TABLE)
      .where({ id: s.id })
      .update({ tier: s.tier, state: s.state, updated_at: toMillis(s.updatedAt) });
    if (changed === 0) throw new NotFoundError(MISSING);
  }

  async delete(id: string): Promise<Subscription> {
    const existing = await this.get(id);
    await this.db<SubscriptionRow>(TABLE).where({ id }).delete();
    return existing;
  }
}

function toRow(s: Subscription): SubscriptionRow {
  return {
    id: s.id,
    application_id: s.applicationId,
    api_id: s.apiId,
    tier: s.tier,
    state: s.state,
    created_at: toMillis(s.createdAt),
    updated_at: toMillis(s.updatedAt),
  };
}

function fromRow(r: SubscriptionRow): Subscription {
  return {
    id: r.id,
    applicationId: r.application_id,
    apiId: r.api_id,
    tier: r.tier,
    state: r.state as SubscriptionState,
    createdAt: toDate(r.created_at),
    updatedAt: toDate(r.updated_at),
  };
}
