import type { Knex } from "knex";
import type { LoginSession } from "../domain/model/index.js";
import { toDate, toMillis } from "./rows.js";

interface SessionRow {
  session_hash: string;
  username: string;
  auth_time: number | string;
  expires_at: number | string;
}

const TABLE = "login_sessions";

/** Sessions of the authorization pages, by the hash of the cookie's value. */
export class LoginSessionRepository {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  async insert(session: LoginSession): Promise<void> {
    await this.db<SessionRow>(TABLE).insert({
      session_hash: session.sessionHash,
      username: session.username,
      auth_time: toMillis(session.authTime),
      expires_at: toMillis(session.expiresAt),
    });
  }

  async find(sessionHash: string): Promise<LoginSession | undefined> {
    const row = await this.db<SessionRow>(TABLE).where({ session_hash: sessionHash }).first();
    return row ? { sessionHash: row.session_hash, username: row.username, authTime: toDate(row.auth_time), expiresAt: toDate(row.expires_at) } : undefined;
  }

  async delete(sessionHash: string): Promise<void> {
    await this.db<SessionRow>(TABLE).where({ session_hash: sessionHash }).delete();
  }

  /** Ends every session of a user (a new password, a deleted user). */
  async deleteUser(username: string): Promise<void> {
    await this.db<SessionRow>(TABLE).where({ username }).delete();
  }

  /** Deletes up to `limit` that expired before `before`; how many went. */
  async purgeExpired(before: Date, limit: number): Promise<number> {
    // MySQL cannot delete from a table it selects from in a subquery: the keys are read first.
    const rows = await this.db<SessionRow>(TABLE).select("session_hash").where("expires_at", "<", toMillis(before)).limit(limit);
    if (rows.length === 0) return 0;
    return this.db<SessionRow>(TABLE)
      .whereIn(
        "session_hash",
        rows.map((r) => r.session_hash),
      )
      .delete();
  }
}
