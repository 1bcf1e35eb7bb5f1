import { ApiIndex, type ApiMatch } from "@keymanager/core";
import type { Logger } from "pino";
import type { ChangeEvents } from "../domain/change-events.js";
import type { Clock } from "../domain/clock.js";
import type { Api } from "../domain/model/index.js";
import type { Page, PageQuery } from "../domain/paging.js";

/** APIs as stored: read page by page. */
export interface ApiSource {
  list(page: PageQuery): Promise<Page<Api>>;
}

const PAGE = 1000;

/**
 * Every API's context and version, for gateways that send only a request path (ext_authz,
 * forward auth): the API of a path is the one with the longest context the path starts with
 * (core's ApiIndex). Read whole on first use, read again after any API change (this replica's or
 * another's, through the cluster change feed) and at the latest `ttlMs` after the last read.
 * A read in flight is shared; one that overlapped a change answers its callers but is read again
 * by the next.
 */
export class ApiDirectory {
  private index: ApiIndex | undefined;
  private readAt = 0;
  private loading: Promise<ApiIndex> | undefined;
  /** Counts API changes, so a read that overlapped one is not trusted. */
  private changes = 0;
  private readonly unsubscribe: () => void;

  constructor(
    private readonly source: ApiSource,
    private readonly clock: Clock,
    private readonly ttlMs: () => number,
    private readonly logger: Logger,
    events: ChangeEvents,
  ) {
    this.unsubscribe = events.subscribe((change) => {
      if (change.kind === "api" || change.kind === "all") {
        this.changes++;
        this.index = undefined;
      }
    });
  }

  /** The API `path` addresses (version given, or the segment after the context), or undefined. */
  find(path: string, version: string | undefined): ApiMatch | undefined | Promise<ApiMatch | undefined> {
    const index = this.current();
    return index instanceof Promise ? index.then((i) => i.find(path, version)) : index.find(path, version);
  }

  private current(): ApiIndex | Promise<ApiIndex> {
    if (this.index && this.clock.nowMs() - this.readAt < this.ttlMs()) return this.index;
    this.loading ??= this.load().finally(() => {
      this.loading = undefined;
    });
    return this.loading;
  }

  private async load(): Promise<ApiIndex> {
    const changes = this.changes;
    const startedAt = this.clock.nowMs();
    const index = new ApiIndex();
    let page: Page<Api> = { items: [], next: undefined };
    let query: PageQuery = { limit: PAGE };
    do {
      page = await this.source.list(query);
      for (const api of page.items) index.set(api);
      query = { limit: PAGE, after: page.next };
    } while (page.next);
    if (changes === this.changes) {
      this.index = index;
      this.readAt = startedAt;
    } else {
      this.logger.debug("APIs changed while they were read: read again at the next request");
    }
    return index;
  }

  close(): void {
    this.unsubscribe();
  }
}
