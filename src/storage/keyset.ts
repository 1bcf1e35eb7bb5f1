import type { Knex } from "knex";
import { InvalidArgumentError } from "../domain/errors.js";
import { type Cursor, type Page, type PageQuery, pageOf } from "../domain/paging.js";

/** One column of a list's sort key, the last one unique, so every row has its own cursor. */
export interface KeyColumn {
  column: string;
  type: "string" | "number";
  descending?: boolean;
}

/**
 * Reads one page of `query` (filters already applied) by keyset pagination: ordered by the key
 * columns, starting after the cursor, `limit + 1` rows to tell whether more follow. The rows
 * are mapped to items whose cursor `keyOf` gives.
 */
export async function readPage<Row, T>(
  query: Knex.QueryBuilder,
  key: readonly KeyColumn[],
  page: PageQuery,
  fromRow: (row: Row) => T,
  keyOf: (item: T) => Cursor,
): Promise<Page<T>> {
  if (page.after) after(query, key, checkCursor(page.after, key));
  for (const k of key) query.orderBy(k.column, k.descending ? "desc" : "asc");
  const rows = (await query.limit(page.limit + 1)) as Row[];
  return pageOf(rows.map(fromRow), page.limit, keyOf);
}

/** (c1, c2, ...) after (v1, v2, ...) in the key's order, spelled out for every dialect. */
function after(query: Knex.QueryBuilder, key: readonly KeyColumn[], cursor: Cursor): void {
  query.where((outer) => {
    key.forEach((k, i) => {
      outer.orWhere((term) => {
        for (let j = 0; j < i; j++) term.where((key[j] as KeyColumn).column, cursor[j] as string | number);
        term.where(k.column, k.descending ? "<" : ">", cursor[i] as string | number);
      });
    });
  });
}

/** A cursor comes from a signed page token of this list; a shape that does not fit is refused all the same. */
function checkCursor(cursor: Cursor, key: readonly KeyColumn[]): Cursor {
  const fits = cursor.length === key.length && key.every((k, i) => typeof cursor[i] === k.type);
  if (!fits) throw InvalidArgumentError.field("page_token", "is not a page token of this list");
  return cursor;
}
