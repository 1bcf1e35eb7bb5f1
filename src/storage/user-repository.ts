import type { Knex } from "knex";
import { NotFoundError } from "../domain/errors.js";
import type { User, UserAttributes } from "../domain/model/index.js";
import { normaliseDbError } from "./errors.js";
import type { Page, PageQuery } from "../domain/paging.js";
import { type KeyColumn, readPage } from "./keyset.js";
import { lockRows, type ReadOptions } from "./locks.js";
import { fromJson, toDate, toJson, toMillis } from "./rows.js";

interface UserRow {
  username: string;
  password_hash: string;
  email: string;
  display_name: string;
  roles: string | null;
  created_at: number | string;
  updated_at: number | string;
}

const TABLE = "users";
const MISSING = "no such user";
const USER_KEY: KeyColumn[] = [{ column: "username", type: "string" }];

/** Resource owners of the password grant. */
export class UserRepository {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  async insert(user: User): Promise<void> {
    try {
      await this.db<UserRow>(TABLE).insert({
        username: user.username,
        password_hash: user.passwordHash,
        ...attributeColumns(user),
        created_at: toMillis(user.createdAt),
        updated_at: toMillis(user.updatedAt),
      });
    } catch (err) {
      normaliseDbError(err, { duplicate: "a user with this username already exists" });
    }
  }

  async find(username: string, options: ReadOptions = {}): Promise<User | undefined> {
    const row = await lockRows(this.db<UserRow>(TABLE).where({ username }), options).first();
    return row ? fromRow(row) : undefined;
  }

  async get(username: string): Promise<User> {
    const user = await this.find(username);
    if (!user) throw new NotFoundError(MISSING);
    return user;
  }

  /** A page of users, ordered by username. */
  list(page: PageQuery): Promise<Page<User>> {
    return readPage(this.db<UserRow>(TABLE).select(), USER_KEY, page, fromRow, (u) => [u.username]);
  }

  async setPassword(username: string, passwordHash: string, at: Date): Promise<void> {
    const changed = await this.db<UserRow>(TABLE)
      .where({ username })
      .update({ password_hash: passwordHash, updated_at: toMillis(at) });
    if (changed === 0) throw new NotFoundError(MISSING);
  }

  async setAttributes(username: string, attributes: UserAttributes, at: Date): Promise<void> {
    const changed = await this.db<UserRow>(TABLE)
      .where({ username })
      .update({ ...attributeColumns(attributes), updated_at: toMillis(at) });
    if (changed === 0) throw new NotFoundError(MISSING);
  }

  async delete(username: string): Promise<void> {
    if ((await this.db<UserRow>(TABLE).where({ username }).delete()) === 0) throw new NotFoundError(MISSING);
  }
}

function attributeColumns(a: UserAttributes) {
  return { email: a.email, display_name: a.name, roles: a.roles.length > 0 ? toJson(a.roles) : null };
}

function fromRow(row: UserRow): User {
  return {
    username: row.username,
    passwordHash: row.password_hash,
    email: row.email ?? "",
    name: row.display_name ?? "",
    roles: row.roles ? fromJson(row.roles) : [],
    createdAt: toDate(row.created_at),
    updatedAt: toDate(row.updated_at),
  };
}
