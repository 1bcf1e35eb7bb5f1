import { createHmac, hkdfSync, timingSafeEqual } from "node:crypto";
import { InvalidArgumentError } from "../domain/errors.js";
import type { Cursor, Page, PageQuery } from "../domain/paging.js";

/** Longest page token read; ours are far shorter (a sort key and a MAC). */
const MAX_TOKEN_CHARS = 2048;
const MAC_BYTES = 16;
const NOT_OURS = "is not a page token of this list with these filters (or it was altered)";

/**
 * Page tokens: the cursor of a page's last item, signed (HMAC-SHA256) together with the list and
 * its filters, so a token altered, made up, or taken from another list or filter is refused
 * (INVALID_ARGUMENT) instead of reading somewhere else. The key is derived from the encryption
 * key, which replicas share: a token from one replica works on the others.
 */
export class PageTokens {
  private constructor(private readonly key: Buffer) {}

  static fromEncryptionKey(encryptionKey: Buffer): PageTokens {
    return new PageTokens(Buffer.from(hkdfSync("sha256", encryptionKey, "", "keymanager.v1 page tokens", 32)));
  }

  /** A token to continue `list` (its name and filters) after `cursor`. */
  encode(list: string, cursor: Cursor): string {
    const payload = Buffer.from(JSON.stringify(cursor)).toString("base64url");
    return `${payload}.${this.mac(list, payload).toString("base64url")}`;
  }

  /** The cursor in a token of `list`; throws InvalidArgumentError for any other string. */
  decode(list: string, token: string): Cursor {
    const [payload, mac, extra] = token.length <= MAX_TOKEN_CHARS ? token.split(".") : [];
    if (payload === undefined || mac === undefined || extra !== undefined) throw InvalidArgumentError.field("page_token", NOT_OURS);
    const given = Buffer.from(mac, "base64url");
    const expected = this.mac(list, payload);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw InvalidArgumentError.field("page_token", NOT_OURS);
    const cursor: unknown = JSON.parse(Buffer.from(payload, "base64url").toString("utf8"));
    if (!Array.isArray(cursor) || !cursor.every((x) => typeof x === "string" || typeof x === "number"))
      throw InvalidArgumentError.field("page_token", NOT_OURS);
    return cursor;
  }

  private mac(list: string, payload: string): Buffer {
    return createHmac("sha256", this.key).update(list).update("\n").update(payload).digest().subarray(0, MAC_BYTES);
  }
}

export interface PageSizes {
  defaultPageSize: number;
  maxPageSize: number;
}

/** What every List request carries, and what every List response answers. */
export interface PageRequest {
  pageSize: number;
  pageToken: string;
}

/** Page sizes (from the configuration, read per call) and page tokens of the List RPCs. */
export class Paging {
  constructor(
    private readonly tokens: PageTokens,
    private readonly sizes: () => PageSizes,
  ) {}

  /**
   * The page a request asks for. `list` names the list and its filters, e.g.
   * listName("ListSubscriptions", applicationId, apiId): a token is good for that list only.
   */
  query(list: string, req: PageRequest): PageQuery {
    if (req.pageSize < 0) throw InvalidArgumentError.field("page_size", "must not be negative");
    const { defaultPageSize, maxPageSize } = this.sizes();
    const limit = req.pageSize === 0 ? defaultPageSize : Math.min(req.pageSize, maxPageSize);
    return req.pageToken === "" ? { limit } : { limit, after: this.tokens.decode(list, req.pageToken) };
  }

  /** next_page_token of a page: empty on the last one. */
  nextPageToken(list: string, page: Page<unknown>): string {
    return page.next ? this.tokens.encode(list, page.next) : "";
  }
}

/** A list's identity for its page tokens: the RPC and the values of its filters. */
export function listName(rpc: string, ...filters: string[]): string {
  return JSON.stringify([rpc, ...filters]);
}
