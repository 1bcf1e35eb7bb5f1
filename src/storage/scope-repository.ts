import type { Knex } from "knex";
import { NotFoundError } from "../domain/errors.js";
import type { Scope } from "../domain/model/index.js";
import type { Page, PageQuery } from "../domain/paging.js";
import { normaliseDbError } from "./errors.js";
import { type KeyColumn, readPage } from "./keyset.js";
import { lockRows, type ReadOptions } from "./locks.js";
import { fromJson, toDate, toJson, toMillis } from "./rows.js";

interface ScopeRow {
  name: string;
  display_name: string;
  description: string;
  roles: string;
  created_at: number | string;
  updated_at: number | string;
}

const TABLE = "scopes";
const MISSING = "no such scope";
const NAME_KEY: KeyColumn[] = [{ column: "name", type: "string" }];

/** Scopes and their role bindings (ScopeService). */
export class ScopeRepository {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  async insert(scope: Scope): Promise<void> {
    try {
      await this.db<ScopeRow>(TABLE).insert(toRow(scope));
    } catch (err) {
      normaliseDbError(err, { duplicate: "a scope with this name already exists" });
    }
  }

  async find(name: string, options: ReadOptions = {}): Promise<Scope | undefined> {
    const row = await lockRows(this.db<ScopeRow>(TABLE).where({ name }), options).first();
    return row ? fromRow(row) : undefined;
  }

  async get(name: string, options: ReadOptions = {}): Promise<Scope> {
    const found = await this.find(name, options);
    if (!found) throw new NotFoundError(MISSING);
    return found;
  }

  /** The scopes of these names that exist, ordered by name (bounded by the caller's list). */
  async findMany(names: readonly string[], options: ReadOptions = {}): Promise<Scope[]> {
    if (names.length === 0) return [];
    const rows = await lockRows(
      this.db<ScopeRow>(TABLE)
        .whereIn("name", [...new Set(names)])
        .orderBy("name"),
      options,
    );
    return rows.map(fromRow);
  }

  /** A page of scopes, ordered by name. */
  list(page: PageQuery): Promise<Page<Scope>> {
    return readPage(this.db<ScopeRow>(TABLE).select(), NAME_KEY, page, fromRow, (s) => [s.name]);
  }

  async update(scope: Scope): Promise<void> {
    const { name, created_at: _created, ...columns } = toRow(scope);
    if ((await this.db<ScopeRow>(TABLE).where({ name }).update(columns)) === 0) throw new NotFoundError(MISSING);
  }

  async delete(name: string): Promise<void> {
    if ((await this.db<ScopeRow>(TABLE).where({ name }).delete()) === 0) throw new NotFoundError(MISSING);
  }
}

function toRow(s: Scope): ScopeRow {
  return {
    name: s.name,
    display_name: s.displayName,
    description: s.description,
    roles: toJson(s.roles),
    created_at: toMillis(s.createdAt),
    updated_at: toMillis(s.updatedAt),
  };
}

function fromRow(row: ScopeRow): Scope {
  return {
    name: row.name,
    displayName: row.display_name,
    description: row.description,
    roles: fromJson<string[]>(row.roles),
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
  };
}
