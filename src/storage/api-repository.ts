import type { Knex } from "knex";
import { NotFoundError } from "../domain/errors.js";
import type { Api } from "../domain/model/index.js";
import { normaliseDbError } from "./errors.js";
import type { Page, PageQuery } from "../domain/paging.js";
import { type KeyColumn, readPage } from "./keyset.js";
import { lockRows, type ReadOptions } from "./locks.js";
import { toDate, toMillis } from "./rows.js";

interface ApiRow {
  api_id: string;
  name: string;
  context: string;
  version: string;
  publisher: string;
  api_tier: string;
  created_at: number | string;
  updated_at: number | string;
}

const TABLE = "apis";
const MISSING = "no such API";
const API_KEY: KeyColumn[] = [{ column: "api_id", type: "string" }];
const DUPLICATE = "an API with this id, or with this context and version, already exists";

/** APIs as gateways address them: context and version. */
export class ApiRepository {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  async insert(api: Api): Promise<void> {
    try {
      await this.db<ApiRow>(TABLE).insert(toRow(api));
    } catch (err) {
      normaliseDbError(err, { duplicate: DUPLICATE });
    }
  }

  async get(apiId: string, options: ReadOptions = {}): Promise<Api> {
    const row = await lockRows(this.db<ApiRow>(TABLE).where({ api_id: apiId }), options).first();
    if (!row) throw new NotFoundError(MISSING);
    return fromRow(row);
  }

  async findByContext(context: string, version: string): Promise<Api | undefined> {
    const row = await this.db<ApiRow>(TABLE).where({ context, version }).first();
    return row ? fromRow(row) : undefined;
  }

  /** A page of APIs, ordered by api_id. */
  list(page: PageQuery): Promise<Page<Api>> {
    return readPage(this.db<ApiRow>(TABLE).select(), API_KEY, page, fromRow, (a) => [a.apiId]);
  }

  async update(api: Api): Promise<void> {
    try {
      const { api_id, created_at, ...changes } = toRow(api);
      const changed = await this.db<ApiRow>(TABLE).where({ api_id }).update(changes);
      if (changed === 0) throw new NotFoundError(MISSING);
    } catch (err) {
      if (err instanceof NotFoundError) throw err;
      normaliseDbError(err, { duplicate: DUPLICATE });
    }
  }

  async delete(apiId: string): Promise<void> {
    if ((await this.db<ApiRow>(TABLE).where({ api_id: apiId }).delete()) === 0) throw new NotFoundError(MISSING);
  }
}

function toRow(a: Api): ApiRow {
  return {
    api_id: a.apiId,
    name: a.name,
    context: a.context,
    version: a.version,
    publisher: a.publisher,
    api_tier: a.apiTier,
    created_at: toMillis(a.createdAt),
    updated_at: toMillis(a.updatedAt),
  };
}

function fromRow(r: ApiRow): Api {
  return {
    apiId: r.api_id,
    name: r.name,
    context: r.context,
    version: r.version,
    publisher: r.publisher,
    apiTier: r.api_tier,
    createdAt: toDate(r.created_at),
    updatedAt: toDate(r.updated_at),
  };
}
