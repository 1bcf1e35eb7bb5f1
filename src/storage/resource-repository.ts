import type { Knex } from "knex";
import { NotFoundError } from "../domain/errors.js";
import type { ApiResource, RegisteredResource } from "../domain/model/index.js";
import { normaliseDbError } from "./errors.js";
import { lockRows, type ReadOptions } from "./locks.js";
import { fromJson, toDate, toJson, toMillis } from "./rows.js";

interface ResourceRow {
  api_id: string;
  resources: string;
  properties: string;
  created_at: number | string;
  updated_at: number | string;
}

const TABLE = "api_resources";
const MISSING = "no resources are registered for this API";

/** An API's registered resources, replaced as a whole. */
export class ResourceRepository {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  async insert(resource: RegisteredResource): Promise<void> {
    try {
      await this.db<ResourceRow>(TABLE).insert({
        api_id: resource.apiId,
        resources: toJson(resource.resources),
        properties: toJson(resource.properties),
        created_at: toMillis(resource.createdAt),
        updated_at: toMillis(resource.updatedAt),
      });
    } catch (err) {
      normaliseDbError(err, { duplicate: "resources are already registered for this API" });
    }
  }

  async get(apiId: string, options: ReadOptions = {}): Promise<RegisteredResource> {
    const row = await lockRows(this.db<ResourceRow>(TABLE).where({ api_id: apiId }), options).first();
    if (!row) throw new NotFoundError(MISSING);
    return {
      apiId: row.api_id,
      resources: fromJson<ApiResource[]>(row.resources),
      properties: fromJson(row.properties),
      createdAt: toDate(row.created_at),
      updatedAt: toDate(row.updated_at),
    };
  }

  async replace(apiId: string, resources: ApiResource[], properties: Record<string, string>, updatedAt: Date): Promise<void> {
    const changed = await this.db<ResourceRow>(TABLE)
      .where({ api_id: apiId })
      .update({ resources: toJson(resources), properties: toJson(properties), updated_at: toMillis(updatedAt) });
    if (changed === 0) throw new NotFoundError(MISSING);
  }

  async delete(apiId: string): Promise<void> {
    const deleted = await this.db<ResourceRow>(TABLE).where({ api_id: apiId }).delete();
    if (deleted === 0) throw new NotFoundError(MISSING);
  }
}
