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
    return fromRow(row);
  }

  /** The registered resources of these APIs that have some (bounded by the caller's list). */
  async findMany(apiIds: readonly string[]): Promise<RegisteredResource[]> {
    if (apiIds.length === 0) return [];
    const rows = await this.db<ResourceRow>(TABLE).whereIn("api_id", [...new Set(apiIds)]);
    return rows.map(fromRow);
  }

  /**
   * The id of one API whose resources require `scope`, if any. Rows whose JSON holds the quoted
   * name are read (a scope token has no quotes or backslashes, so JSON spells it as it is), then
   * each checked: the name may also be some resource's template or tier.
   */
  async apiRequiring(scope: string, options: ReadOptions = {}): Promise<string | undefined> {
    const pattern = `%${JSON.stringify(scope).replace(/[!%_]/g, (c) => `!${c}`)}%`;
    const rows = await lockRows(this.db<ResourceRow>(TABLE).whereRaw("resources like ? escape '!'", [pattern]), options);
    return rows.map(fromRow).find((r) => r.resources.some((res) => res.scopes.includes(scope)))?.apiId;
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

function fromRow(row: ResourceRow): RegisteredResource {
  return {
    apiId: row.api_id,
    resources: fromJson<ApiResource[]>(row.resources),
    properties: fromJson(row.properties),
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
  };
}
