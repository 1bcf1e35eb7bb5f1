import type { Knex } from "knex";
import type { Clock } from "../domain/clock.js";
import { UnavailableError } from "../domain/errors.js";
import { ChangeLogRepository } from "../storage/change-log-repository.js";
import { GatewayViewRepository } from "../storage/gateway-view-repository.js";
import { type RevocationSubject, TokenRevocationRepository } from "../storage/token-revocation-repository.js";
import {
  eventOf,
  type GatewayExternalKeyManager,
  identityOf,
  identityOfKey,
  keeps,
  type SyncEntity,
  type SyncFilter,
  type TokenRevocation,
} from "./entities.js";

/** The state of the database at one version of the change log, as a watcher with some filter keeps it. */
export interface Snapshot {
  version: number;
  entities: SyncEntity[];
}

export interface SnapshotSource {
  db: Knex;
  clock: Clock;
  /** From the deployment file: sent with every snapshot. */
  externalKeyManagers: () => GatewayExternalKeyManager[];
  pageRows: () => number;
}

/** Reads again when the log lost the entries a read needs (retention, during a very long read). */
const ATTEMPTS = 3;

/**
 * Reads snapshots without holding a transaction open: the change log's head is read first (S0),
 * then every table page by page (each page may show changes committed after S0), then the head
 * again (S1). Every change committed in between is in the log as the state it left, so applying
 * the entries S0+1..S1 over what was read gives exactly the state at S1: a state that existed,
 * whatever the database's isolation level, on SQLite, PostgreSQL and MySQL/MariaDB alike.
 * Watchers asking while a read with the same filters is under way share it.
 */
export class SnapshotReader {
  private readonly reading = new Map<string, Promise<Snapshot>>();

  constructor(private readonly source: SnapshotSource) {}

  take(filter: SyncFilter): Promise<Snapshot> {
    const key = JSON.stringify([filter.apiContexts ? [...filter.apiContexts].sort() : null, filter.keyType ?? null]);
    let snapshot = this.reading.get(key);
    if (!snapshot) {
      snapshot = this.read(filter).finally(() => this.reading.delete(key));
      this.reading.set(key, snapshot);
    }
    return snapshot;
  }

  private async read(filter: SyncFilter): Promise<Snapshot> {
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      const snapshot = await this.attempt(filter);
      if (snapshot) return snapshot;
    }
    throw new UnavailableError("the change log kept deleting the entries a snapshot needs: try again");
  }

  private async attempt(filter: SyncFilter): Promise<Snapshot | undefined> {
    const { db, clock } = this.source;
    const log = new ChangeLogRepository(db);
    const view = new GatewayViewRepository(db);
    const rows = this.source.pageRows();
    const start = await log.head();
    const entities = new Map<string, SyncEntity>();
    const put = (e: SyncEntity) => entities.set(identityOf(e) ?? `${entities.size}`, e);
    await pages(
      rows,
      (after) => view.apis(after, rows),
      (a) => a.apiId,
      (api) => put({ kind: "api", api }),
    );
    await pages(
      rows,
      (after) => view.keyMappings(after, rows),
      (m) => m.consumerKey,
      (mapping) => put({ kind: "key-mapping", mapping }),
    );
    await pages(
      rows,
      (after) => view.subscriptions(after, rows),
      (s) => s.id,
      (subscription) => put({ kind: "subscription", subscription }),
    );
    const now = clock.nowMs();
    await pages(
      rows,
      (after) => view.revokedTokens(now, after, rows),
      (t) => t.jti,
      (token) => put({ kind: "revoked-token", token }),
    );
    const revocations = new TokenRevocationRepository(db);
    for (const kind of ["consumer_key", "end_user"] satisfies RevocationSubject[]) {
      await pages(
        rows,
        (after) => revocations.page(kind, now, after, rows),
        (r) => r.subject,
        (r) =>
          put({
            kind: "token-revocation",
            revocation: {
              at: r.revokedAt,
              ...(kind === "consumer_key" ? { consumerKey: r.subject } : { endUser: r.subject }),
              revoked: [],
              keepUntil: r.keepUntil,
            },
          }),
      );
    }
    await pages(
      rows,
      (after) => view.scopes(after, rows),
      (s) => s.name,
      (scope) => put({ kind: "scope", scope }),
    );
    put({ kind: "signing-keys", keys: await view.signingKeys() });
    const end = await log.head();
    for (let version = start; version < end; ) {
      const entries = await log.readAfter(version, Math.min(rows, end - version));
      if (entries[0]?.version !== version + 1) return undefined;
      for (const entry of entries) {
        const event = eventOf(entry);
        // External key managers are added below, as the deployment file has them now.
        if (event?.upsert?.kind === "external-key-managers") continue;
        if (event?.upsert?.kind === "token-revocation") applyRevocation(entities, event.upsert.revocation, now);
        else if (event?.upsert) put(event.upsert);
        else if (event?.delete) {
          entities.delete(identityOfKey(event.delete));
          // An API's subscriptions go with it (ON DELETE CASCADE), without entries of their own.
          if (event.delete.kind === "api") dropSubscriptionsOf(entities, event.delete.apiId);
        }
      }
      version = (entries.at(-1) as { version: number }).version;
    }
    const contexts = new Map<string, string>();
    for (const e of entities.values()) if (e.kind === "api") contexts.set(e.api.apiId, e.api.context);
    const kept: SyncEntity[] = [];
    for (const e of entities.values()) {
      // A subscription is kept by its API's context at `end` (read here, not joined: a join per
      // page made PostgreSQL scan the whole table each time).
      if (e.kind === "subscription") {
        const context = contexts.get(e.subscription.apiId);
        if (filter.apiContexts === undefined || (context !== undefined && filter.apiContexts.has(context))) kept.push(e);
      } else if (keeps(filter, e)) kept.push(e);
    }
    for (const keyManager of this.source.externalKeyManagers()) kept.push({ kind: "external-key-manager", keyManager });
    return { version: end, entities: kept };
  }
}

/** Every row, `rows` at a time, by key. */
async function pages<T>(rows: number, read: (after: string) => Promise<T[]>, keyOf: (item: T) => string, each: (item: T) => void): Promise<void> {
  for (let after = ""; ; ) {
    const page = await read(after);
    for (const item of page) each(item);
    const last = page.at(-1);
    if (last === undefined || page.length < rows) return;
    after = keyOf(last);
  }
}

/**
 * A revocation committed while the tables were read, over what was read: a revocation by consumer
 * key or end user keeps the latest time and the furthest horizon of its subject (the table may
 * show it already); the tokens it lists are revoked tokens like the others.
 */
function applyRevocation(entities: Map<string, SyncEntity>, r: TokenRevocation, now: number): void {
  for (const token of r.revoked) if (token.expiresAt > now) entities.set(`jti\u0000${token.jti}`, { kind: "revoked-token", token });
  for (const subject of [
    ...(r.consumerKey !== undefined ? [{ consumerKey: r.consumerKey }] : []),
    ...(r.endUser !== undefined ? [{ endUser: r.endUser }] : []),
  ]) {
    const revocation: TokenRevocation = { at: r.at, ...subject, revoked: [], ...(r.keepUntil !== undefined && { keepUntil: r.keepUntil }) };
    const entity: SyncEntity = { kind: "token-revocation", revocation };
    const id = identityOf(entity) as string;
    const held = entities.get(id);
    if (held?.kind === "token-revocation") {
      revocation.at = Math.max(revocation.at, held.revocation.at);
      revocation.keepUntil =
        held.revocation.keepUntil === undefined || r.keepUntil === undefined ? undefined : Math.max(held.revocation.keepUntil, r.keepUntil);
      if (revocation.keepUntil === undefined) delete revocation.keepUntil;
    } else if (revocation.keepUntil !== undefined && revocation.keepUntil <= now) continue;
    entities.set(id, entity);
  }
}

function dropSubscriptionsOf(entities: Map<string, SyncEntity>, apiId: string): void {
  for (const [key, e] of entities) if (e.kind === "subscription" && e.subscription.apiId === apiId) entities.delete(key);
}
