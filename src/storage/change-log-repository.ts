import type { Knex } from "knex";
import type { ChangeDetail, LoggableChange, LoggedChange } from "../domain/change-events.js";
import { fromJson } from "./rows.js";

interface EventRow {
  version: number | string;
  kind: string;
  payload: string;
  created_at: number | string;
}

const EVENTS = "change_events";
const HEAD = "change_log_head";
/**
 * PostgreSQL: watchers and replicas are woken on this channel. Payload: the transaction's entries
 * as JSON (`{"entries":[...]}`) when they fit NOTIFY_ENTRIES_MAX_BYTES, so a replica hears them
 * without reading the log; else the newest version, and the replica reads the log.
 */
export const CHANGE_LOG_CHANNEL = "keymanager_change_log";
/** Under PostgreSQL's 8000-byte NOTIFY payload bound. */
const NOTIFY_ENTRIES_MAX_BYTES = 7900;
/** Rows per INSERT: under SQLite's 999 bound variables. */
const INSERT_CHUNK = 200;

/** What a row's payload holds. */
interface Payload {
  change: LoggableChange;
  detail: ChangeDetail;
  by?: string;
}

/**
 * The change log (migration 20261204120000_change_log): entries written in the transaction of
 * the change they describe, read after a version by the replicas' caches and the gateways'
 * streams.
 */
export class ChangeLogRepository {
  constructor(private readonly db: Knex | Knex.Transaction) {}

  /**
   * Appends entries; must run in the writing transaction, after its other statements. The head
   * row is updated first, which locks it until the commit: transactions that log take turns from
   * here to their commit, so versions are handed out in commit order, and one rolled back hands
   * its versions to the next (no gaps). On PostgreSQL, NOTIFY is sent with the commit.
   */
  async append(entries: ReadonlyArray<{ change: LoggableChange; detail: ChangeDetail }>, at: number, by?: string): Promise<LoggedChange[]> {
    if (entries.length === 0) return [];
    if (!this.db.isTransaction) throw new Error("change log entries are appended in the transaction of their change");
    const last = await this.advanceHead(entries.length);
    const first = last - entries.length + 1;
    const logged: LoggedChange[] = entries.map((e, i) => ({ version: first + i, at, change: e.change, detail: e.detail, ...(by === undefined ? {} : { by }) }));
    const rows = logged.map((e) => ({
      version: e.version,
      kind: e.change.kind,
      payload: JSON.stringify({ change: e.change, detail: e.detail, by: e.by } satisfies Payload),
      created_at: at,
    }));
    const lastChunk = Math.floor((rows.length - 1) / INSERT_CHUNK) * INSERT_CHUNK;
    for (let i = 0; i < lastChunk; i += INSERT_CHUNK) await this.db(EVENTS).insert(rows.slice(i, i + INSERT_CHUNK));
    const insert = this.db(EVENTS).insert(rows.slice(lastChunk));
    if (this.client === "pg") {
      // The last rows and the NOTIFY in one statement: a round trip less before the commit.
      const { sql, bindings } = insert.toSQL();
      await this.db.raw(`with inserted as (${sql} returning version) select pg_notify(?, ?) from (select count(*) from inserted) as rows`, [
        ...bindings,
        CHANGE_LOG_CHANNEL,
        notifyPayload(logged, last),
      ]);
    } else await insert;
    return logged;
  }

  /** Up to `limit` entries after `version`, oldest first. */
  async readAfter(version: number, limit: number): Promise<LoggedChange[]> {
    const rows = (await this.db<EventRow>(EVENTS).select().where("version", ">", version).orderBy("version").limit(limit)) as EventRow[];
    return rows.map(fromRow);
  }

  /** The newest version handed out (0: none yet). */
  async head(): Promise<number> {
    const row = (await this.db(HEAD).select("version").where({ id: 1 }).first()) as { version: number | string } | undefined;
    return Number(row?.version ?? 0);
  }

  /** The oldest version still kept, or undefined when none is. */
  async oldest(): Promise<number | undefined> {
    const row = (await this.db(EVENTS).min({ version: "version" }).first()) as { version: number | string | null } | undefined;
    return row?.version === null || row?.version === undefined ? undefined : Number(row.version);
  }

  /** Deletes up to `limit` entries written before `before` (epoch ms); how many went. */
  async purgeBefore(before: number, limit: number): Promise<number> {
    const rows = (await this.db<EventRow>(EVENTS).select("version").where("created_at", "<", before).orderBy("version").limit(limit)) as EventRow[];
    if (rows.length === 0) return 0;
    const newest = Number(rows.at(-1)?.version);
    return this.db(EVENTS).where("version", "<=", newest).andWhere("created_at", "<", before).delete();
  }

  private get client(): string {
    return String((this.db.client.config as Knex.Config).client);
  }

  private async advanceHead(count: number): Promise<number> {
    if (this.client === "pg") {
      const result = (await this.db.raw(`update ${HEAD} set version = version + ? where id = 1 returning version`, [count])) as {
        rows: Array<{ version: string }>;
      };
      return Number(result.rows[0]?.version);
    }
    await this.db(HEAD).where({ id: 1 }).increment("version", count);
    // The transaction's own update: MySQL/MariaDB show it even under REPEATABLE READ.
    return this.head();
  }
}

function notifyPayload(logged: LoggedChange[], last: number): string {
  const entries = JSON.stringify({ entries: logged });
  return Buffer.byteLength(entries) <= NOTIFY_ENTRIES_MAX_BYTES ? entries : String(last);
}

/**
 * The entries a NOTIFY payload carries (in version order), or undefined when it carries only a
 * version (or is not one of ours): the log is to be read.
 */
export function entriesOfNotice(payload: string | undefined): LoggedChange[] | undefined {
  if (!payload?.startsWith("{")) return undefined;
  try {
    const { entries } = JSON.parse(payload) as { entries?: unknown };
    if (!Array.isArray(entries) || entries.length === 0) return undefined;
    for (const [i, e] of entries.entries()) {
      const entry = e as Partial<LoggedChange> | null;
      if (
        typeof entry?.version !== "number" ||
        typeof entry.at !== "number" ||
        typeof entry.change?.kind !== "string" ||
        typeof entry.detail?.kind !== "string" ||
        (i > 0 && entry.version !== (entries[i - 1] as LoggedChange).version + 1)
      ) {
        return undefined;
      }
    }
    return entries as LoggedChange[];
  } catch {
    return undefined;
  }
}

function fromRow(row: EventRow): LoggedChange {
  const payload = fromJson<Payload>(row.payload);
  const entry: LoggedChange = { version: Number(row.version), at: Number(row.created_at), change: payload.change, detail: payload.detail };
  if (typeof payload.by === "string") entry.by = payload.by;
  return entry;
}
