/**
 * Paged lists. A page is read after a cursor: the sort key of the last item the caller saw, so
 * items inserted or deleted meanwhile never shift a page the way an offset would. The cursor
 * leaves the service only inside a signed page token (services/page-tokens.ts).
 */

/** The sort key of one item, in the list's order: strings and numbers only. */
export type Cursor = readonly (string | number)[];

export interface PageQuery {
  /** At most this many items. */
  limit: number;
  /** The cursor of the last item of the previous page; undefined for the first page. */
  after?: Cursor;
}

export interface Page<T> {
  items: T[];
  /** The cursor to continue after; undefined on the last page. */
  next?: Cursor;
}

/** Every item, one page: for callers that need the whole (bounded) list. */
export function firstPage(limit: number): PageQuery {
  return { limit };
}

/**
 * The page of `rows` fetched with `limit + 1` (the extra row only tells that more follow),
 * with the cursor of its last item.
 */
export function pageOf<T>(rows: T[], limit: number, keyOf: (item: T) => Cursor): Page<T> {
  if (rows.length <= limit) return { items: rows };
  const items = rows.slice(0, limit);
  return { items, next: keyOf(items[items.length - 1] as T) };
}

/** Orders two cursors as the list orders its items: each position ascending or descending. */
export function compareCursors(a: Cursor, b: Cursor, descending: readonly boolean[]): number {
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as string | number;
    const y = b[i] as string | number;
    if (x === y) continue;
    const order = x < y ? -1 : 1;
    return descending[i] ? -order : order;
  }
  return 0;
}

/** A page of a list held in memory, ordered by `keyOf` as `descending` says. */
export function pageInMemory<T>(all: readonly T[], query: PageQuery, keyOf: (item: T) => Cursor, descending: readonly boolean[]): Page<T> {
  const sorted = [...all].sort((a, b) => compareCursors(keyOf(a), keyOf(b), descending));
  const { after } = query;
  const rest = after ? sorted.filter((item) => compareCursors(keyOf(item), after, descending) > 0) : sorted;
  return pageOf(rest.slice(0, query.limit + 1), query.limit, keyOf);
}
