import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import type { Knex } from "knex";
import { AlreadyExistsError, FailedPreconditionError, NotFoundError } from "../src/domain/errors.js";
import type { ApplicationKeyMapping, OAuthClient, RegisteredResource, Scope, TokenRecord, TrustedIssuer } from "../src/domain/model/index.js";
import { createKnex, migrate } from "../src/storage/database.js";
import { LOCK } from "../src/storage/locks.js";
import { migrationSource } from "../src/storage/migrations/index.js";
import { SecretBox } from "../src/storage/secret-box.js";
import { Store } from "../src/storage/store.js";
import { TokenWriter } from "../src/storage/token-writer.js";
import { systemClock } from "../src/domain/clock.js";
import { SnapshotReader } from "../src/sync/snapshot-reader.js";
import type { SyncEntity } from "../src/sync/entities.js";
import { type TestDatabase, testDatabases } from "./support/databases.js";

const box = new SecretBox(randomBytes(32));
const at = (ms: number) => new Date(Date.UTC(2026, 10, 22, 12, 0, 0) + ms);

function client(consumerKey: string, overrides: Partial<OAuthClient> = {}): OAuthClient {
  return {
    consumerKey,
    consumerSecret: `secret-${consumerKey}`,
    clientName: "Pizza 🍕 Shack",
    callbackUrls: ["https://app.example.com/cb"],
    grantTypes: ["client_credentials", "refresh_token"],
    scopes: ["read:orders"],
    tokenType: "OPAQUE",
    validity: { applicationTokenSeconds: 3600, userTokenSeconds: 1800, refreshTokenSeconds: 86400 },
    additionalProperties: { tier: "gold" },
    appOwner: "admin",
    groupId: "",
    keyManager: "Resident Key Manager",
    createdAt: at(1),
    updatedAt: at(1),
    ...overrides,
  };
}

function mapping(applicationId: string, consumerKey: string, keyType: "PRODUCTION" | "SANDBOX" = "PRODUCTION"): ApplicationKeyMapping {
  return {
    applicationId,
    keyType,
    consumerKey,
    mode: "CREATED",
    keyState: "COMPLETED",
    applicationName: "Pizza",
    applicationTier: "Gold",
    createdAt: at(2),
    updatedAt: at(2),
  };
}

for (const database of testDatabases()) {
  describe(`storage contract on ${database.name}`, { skip: database.skip }, () => {
    let handle: TestDatabase;
    let db: Knex;
    let store: Store;

    before(async () => {
      handle = await (database.create as () => Promise<TestDatabase>)();
      db = createKnex({ url: handle.url, poolMax: 4 });
      await migrate(db);
      store = new Store(db, box);
    });
    after(async () => {
      await db?.destroy();
      await handle?.drop();
    });

    test("clients round-trip exactly, secrets encrypted", async () => {
      const c = client("ck-roundtrip");
      await store.clients.insert(c);
      assert.deepEqual(await store.clients.get("ck-roundtrip"), c);
      const raw = await db("oauth_clients").where({ consumer_key: "ck-roundtrip" }).first();
      assert.notEqual(raw.secret_ciphertext, c.consumerSecret);
    });

    test("a duplicate consumer key is AlreadyExists", async () => {
      await store.clients.insert(client("ck-dup"));
      await assert.rejects(store.clients.insert(client("ck-dup")), AlreadyExistsError);
    });

    test("settings and secret updates; unknown keys are NotFound", async () => {
      await store.clients.insert(client("ck-upd"));
      const settings = { ...client("ck-upd"), clientName: "renamed", grantTypes: ["password"], scopes: [] };
      await store.clients.updateSettings("ck-upd", settings, at(5));
      await store.clients.updateSecret("ck-upd", "new-secret", at(6));
      const got = await store.clients.get("ck-upd");
      assert.equal(got.clientName, "renamed");
      assert.deepEqual(got.grantTypes, ["password"]);
      assert.equal(got.consumerSecret, "new-secret");
      assert.deepEqual(got.updatedAt, at(6));
      await assert.rejects(store.clients.updateSecret("missing", "x", at(7)), NotFoundError);
      await assert.rejects(store.clients.get("missing"), NotFoundError);
    });

    test("identifiers compare exactly: case and trailing spaces count, duplicates by case are distinct", async () => {
      await store.clients.insert(client("ck-Exact"));
      assert.equal(await store.clients.find("ck-exact"), undefined);
      assert.equal(await store.clients.find("CK-EXACT"), undefined);
      assert.equal(await store.clients.find("ck-Exact "), undefined);
      await store.clients.insert(client("ck-exact"));
      await store.clients.insert(client("ck-Exact "));
      assert.equal((await store.clients.get("ck-exact")).consumerKey, "ck-exact");
      assert.equal((await store.clients.get("ck-Exact ")).consumerKey, "ck-Exact ");
      await store.applicationKeys.insert(mapping("App-Exact", "ck-Exact"));
      assert.equal(await store.applicationKeys.findByRef({ applicationId: "app-exact", keyType: "PRODUCTION" }), undefined);
      assert.equal(await store.applicationKeys.findByRef({ applicationId: "App-Exact ", keyType: "PRODUCTION" }), undefined);
      const user = { username: "Exact.User", passwordHash: "h", email: "", name: "", roles: [], createdAt: at(1), updatedAt: at(1) };
      await store.users.insert(user);
      assert.equal(await store.users.find("exact.user"), undefined);
      assert.equal(await store.users.find("Exact.User "), undefined);
      assert.equal((await store.users.find("Exact.User"))?.username, "Exact.User");
    });

    test("every table compares identifiers exactly (MySQL/MariaDB: each table in the binary NO PAD collation)", async () => {
      if (!/mysql/i.test(String(db.client.config.client))) return; // SQLite and PostgreSQL compare exactly by default
      const [rows] = (await db.raw(
        "SELECT table_name AS name, table_collation AS collation FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' AND table_name NOT LIKE 'knex\\_%'",
      )) as [Array<{ name: string; collation: string }>];
      assert.ok(rows.length > 10, "the schema's tables are listed");
      const inexact = rows.filter((r) => !/^utf8mb4_(nopad_bin|0900_bin)$/.test(r.collation));
      assert.deepEqual(inexact, [], "tables comparing without case or trailing spaces");
    });

    test("one mapping per application key and per consumer key", async () => {
      await store.clients.insert(client("ck-map-1"));
      await store.clients.insert(client("ck-map-2"));
      await store.applicationKeys.insert(mapping("app-1", "ck-map-1"));
      await assert.rejects(store.applicationKeys.insert(mapping("app-1", "ck-map-2")), AlreadyExistsError);
      await assert.rejects(store.applicationKeys.insert(mapping("app-2", "ck-map-1")), AlreadyExistsError);
      await store.applicationKeys.insert(mapping("app-1", "ck-map-2", "SANDBOX"));
      assert.deepEqual(await store.applicationKeys.findByRef({ applicationId: "app-1", keyType: "SANDBOX" }), mapping("app-1", "ck-map-2", "SANDBOX"));
      assert.equal((await store.applicationKeys.findByConsumerKey("ck-map-1"))?.applicationId, "app-1");
    });

    test("consumer secrets: oldest first, paged, expired ones counted out and dropped, deleted with their client", async () => {
      await store.clients.insert(client("ck-secrets"));
      const secret = (id: string, createdMs: number, expiresMs?: number) => ({
        secretId: id,
        consumerKey: "ck-secrets",
        secretHash: "ab".repeat(32),
        hint: "wxyz",
        description: `secret ${id}`,
        createdAt: at(createdMs),
        expiresAt: expiresMs === undefined ? undefined : at(expiresMs),
      });
      await store.consumerSecrets.insert(secret("00000000-0000-4000-8000-000000000002", 10, 100));
      await store.consumerSecrets.insert(secret("00000000-0000-4000-8000-000000000001", 10));
      await store.consumerSecrets.insert(secret("00000000-0000-4000-8000-000000000003", 5));
      await assert.rejects(store.consumerSecrets.insert(secret("00000000-0000-4000-8000-000000000003", 5)), AlreadyExistsError);
      await assert.rejects(
        store.consumerSecrets.insert({ ...secret("00000000-0000-4000-8000-000000000009", 5), consumerKey: "missing" }),
        FailedPreconditionError,
      );
      const all = await store.consumerSecrets.ofClient("ck-secrets");
      assert.deepEqual(
        all.map((s) => s.secretId.slice(-1)),
        ["3", "1", "2"],
      );
      assert.deepEqual(all[2], secret("00000000-0000-4000-8000-000000000002", 10, 100));
      const first = await store.consumerSecrets.list("ck-secrets", { limit: 2 });
      assert.deepEqual(first.items, all.slice(0, 2));
      const rest = await store.consumerSecrets.list("ck-secrets", { limit: 2, ...(first.next ? { after: first.next } : {}) });
      assert.deepEqual(rest.items, all.slice(2));
      assert.equal(rest.next, undefined);
      assert.equal(await store.consumerSecrets.countUnexpired("ck-secrets", at(99)), 3);
      assert.equal(await store.consumerSecrets.countUnexpired("ck-secrets", at(100)), 2);
      assert.equal(await store.consumerSecrets.deleteExpired("ck-secrets", at(100)), 1);
      assert.equal(await store.consumerSecrets.delete("ck-secrets", "00000000-0000-4000-8000-000000000001"), true);
      assert.equal(await store.consumerSecrets.delete("ck-secrets", "00000000-0000-4000-8000-000000000001"), false);
      await store.clients.delete("ck-secrets");
      assert.deepEqual(await store.consumerSecrets.ofClient("ck-secrets"), []);
    });

    test("a mapping needs its client", async () => {
      await assert.rejects(store.applicationKeys.insert(mapping("app-x", "no-such-client")), FailedPreconditionError);
    });

    test("deleting a client removes its mapping", async () => {
      await store.clients.insert(client("ck-del"));
      await store.applicationKeys.insert(mapping("app-del", "ck-del"));
      assert.equal(await store.clients.delete("ck-del"), true);
      assert.equal(await store.applicationKeys.findByConsumerKey("ck-del"), undefined);
      assert.equal(await store.clients.delete("ck-del"), false);
    });

    test("a failed transaction leaves nothing behind", async () => {
      await assert.rejects(
        store.transaction(async (s) => {
          await s.clients.insert(client("ck-tx"));
          await s.applicationKeys.insert(mapping("app-1", "ck-tx")); // app-1 PRODUCTION is taken
        }),
        AlreadyExistsError,
      );
      assert.equal(await store.clients.find("ck-tx"), undefined);
    });

    test("a transaction rolled back to break a deadlock runs again, and both complete", {
      skip: database.name === "sqlite" && "one connection: SQLite transactions take turns",
    }, async () => {
      for (const username of ["dl-a", "dl-b"])
        await store.users.insert({ username, passwordHash: "h", email: "", name: "", roles: [], createdAt: at(1), updatedAt: at(1) });
      // Each locks its first row, waits until the other holds its own, then writes the other's row.
      let arrived = 0;
      let release = () => {};
      const both = new Promise<void>((resolve) => (release = resolve));
      let runs = 0;
      const cross = (first: string, second: string) =>
        store.transaction(async (s) => {
          runs++;
          await s.users.find(first, LOCK);
          if (++arrived === 2) release();
          await both;
          await s.users.setPassword(second, `set-by-${first}`, at(2));
        });
      await Promise.all([cross("dl-a", "dl-b"), cross("dl-b", "dl-a")]);
      assert.equal(runs, 3, "the deadlock victim ran once more");
      const hashes = [(await store.users.get("dl-a")).passwordHash, (await store.users.get("dl-b")).passwordHash];
      assert.deepEqual(hashes, ["set-by-dl-b", "set-by-dl-a"]);
    });

    test("resources: large documents, replace, delete", async () => {
      const resources = Array.from({ length: 1000 }, (_, i) => ({
        uriTemplate: `/items/${i}/{id}/${"x".repeat(60)}`,
        httpVerb: "GET" as const,
        authLevel: "ANY" as const,
        scopes: ["read:items"],
        throttlingTier: "Unlimited",
      }));
      const r: RegisteredResource = { apiId: "api-big", resources, properties: { k: "v" }, createdAt: at(1), updatedAt: at(1) };
      await store.resources.insert(r);
      assert.deepEqual(await store.resources.get("api-big"), r, "more than 64 KiB of resources round-trip");
      await assert.rejects(store.resources.insert(r), AlreadyExistsError);
      await store.resources.replace("api-big", resources.slice(0, 1), {}, at(9));
      assert.equal((await store.resources.get("api-big")).resources.length, 1);
      await store.resources.delete("api-big");
      await assert.rejects(store.resources.get("api-big"), NotFoundError);
      await assert.rejects(store.resources.delete("api-big"), NotFoundError);
    });

    test("the token writer commits batches and answers each caller for its own row", async () => {
      await store.clients.insert(client("ck-tokens"));
      const writer = new TokenWriter(db, 2);
      const record = (consumerKey: string): TokenRecord => ({
        id: randomUUID(),
        tokenHash: randomBytes(32).toString("hex"),
        consumerKey,
        endUser: "",
        scopes: ["default"],
        tokenType: "OPAQUE",
        grantType: "client_credentials",
        issuedAt: at(1),
        expiresAt: at(3_600_000),
        revokedAt: undefined,
        refreshHash: undefined,
        refreshExpiresAt: undefined,
        refreshUsedAt: undefined,
        familyId: randomUUID(),
      });
      const good = [record("ck-tokens"), record("ck-tokens"), record("ck-tokens")];
      const orphan = record("no-such-client");
      const results = await Promise.allSettled([...good.map((r) => writer.insert(r)), writer.insert(orphan)]);
      assert.deepEqual(
        results.map((r) => r.status),
        ["fulfilled", "fulfilled", "fulfilled", "rejected"],
      );
      assert.ok((results[3] as PromiseRejectedResult).reason instanceof FailedPreconditionError);
      for (const r of good) assert.deepEqual(await store.tokens.findByHash(r.tokenHash), r);
      assert.equal(await store.tokens.findByHash(orphan.tokenHash), undefined);
    });

    test("purging ended tokens deletes expired and revoked ones in batches and keeps the rest", async () => {
      await store.clients.insert(client("ck-purge"));
      const base = (over: Partial<TokenRecord>): TokenRecord => ({
        id: randomUUID(),
        tokenHash: randomBytes(32).toString("hex"),
        consumerKey: "ck-purge",
        endUser: "",
        scopes: ["default"],
        tokenType: "OPAQUE",
        grantType: "client_credentials",
        issuedAt: at(0),
        expiresAt: at(1000),
        revokedAt: undefined,
        refreshHash: undefined,
        refreshExpiresAt: undefined,
        refreshUsedAt: undefined,
        familyId: randomUUID(),
        ...over,
      });
      const expired = Array.from({ length: 5 }, () => base({}));
      const revoked = base({ expiresAt: at(1_000_000), revokedAt: at(500) });
      const live = base({ expiresAt: at(1_000_000) });
      const refreshable = base({ refreshHash: randomBytes(32).toString("hex"), refreshExpiresAt: at(1_000_000) });
      await store.tokens.insertMany([...expired, revoked, live, refreshable]);
      assert.equal(await store.tokens.purgeEnded(at(2000), 3), 3, "one batch at a time");
      assert.equal(await store.tokens.purgeEnded(at(2000), 100), 3);
      assert.equal(await store.tokens.purgeEnded(at(2000), 100), 0);
      for (const gone of [...expired, revoked]) assert.equal(await store.tokens.findByHash(gone.tokenHash), undefined);
      assert.deepEqual(await store.tokens.findByHash(live.tokenHash), live);
      assert.deepEqual(await store.tokens.findByHash(refreshable.tokenHash), refreshable, "its refresh token still works");
    });

    test("purging expired authorization codes and login sessions goes in batches and keeps the rest", async () => {
      await store.clients.insert(client("ck-purge-codes"));
      await store.users.insert({ username: "purge.user", passwordHash: "h", email: "", name: "", roles: [], createdAt: at(0), updatedAt: at(0) });
      const code = (expiresAt: Date) => ({
        codeHash: randomBytes(32).toString("base64url"),
        consumerKey: "ck-purge-codes",
        username: "purge.user",
        scopes: ["default"],
        redirectUri: "",
        codeChallenge: "",
        nonce: "",
        familyId: randomUUID(),
        authTime: at(0),
        createdAt: at(0),
        expiresAt,
        usedAt: undefined,
      });
      const session = (expiresAt: Date) => ({ sessionHash: randomBytes(32).toString("base64url"), username: "purge.user", authTime: at(0), expiresAt });
      const expiredCodes = Array.from({ length: 3 }, () => code(at(1000)));
      const liveCode = code(at(1_000_000));
      for (const c of [...expiredCodes, liveCode]) await store.authorizationCodes.insert(c);
      const expiredSessions = Array.from({ length: 3 }, () => session(at(1000)));
      const liveSession = session(at(1_000_000));
      for (const s of [...expiredSessions, liveSession]) await store.loginSessions.insert(s);

      assert.equal(await store.authorizationCodes.purgeExpired(at(2000), 2), 2, "one batch at a time");
      assert.equal(await store.authorizationCodes.purgeExpired(at(2000), 100), 1);
      assert.equal(await store.authorizationCodes.purgeExpired(at(2000), 100), 0);
      assert.equal(await store.loginSessions.purgeExpired(at(2000), 2), 2, "one batch at a time");
      assert.equal(await store.loginSessions.purgeExpired(at(2000), 100), 1);
      assert.equal(await store.loginSessions.purgeExpired(at(2000), 100), 0);
      for (const gone of expiredCodes) assert.equal(await store.authorizationCodes.findByHash(gone.codeHash), undefined);
      assert.deepEqual(await store.authorizationCodes.findByHash(liveCode.codeHash), liveCode);
      for (const gone of expiredSessions) assert.equal(await store.loginSessions.find(gone.sessionHash), undefined);
      assert.deepEqual(await store.loginSessions.find(liveSession.sessionHash), liveSession);
    });

    test("change log: an entry per change, written with it, holding the state it left; none for a rolled-back transaction", async () => {
      const head = await store.changeLog.head();
      await store.transaction(async (s) => {
        await s.clients.insert(client("ck-log"));
        await s.applicationKeys.insert(mapping("app-log", "ck-log"));
        s.changed({ kind: "application", consumerKey: "ck-log" });
        s.changed({ kind: "application", consumerKey: "ck-log" });
        s.changed({ kind: "tokens", consumerKey: "ck-log" });
      });
      await assert.rejects(
        store.transaction(async (s) => {
          await s.applicationKeys.deleteByConsumerKey("ck-log");
          s.changed({ kind: "application", consumerKey: "ck-log" });
          throw new Error("rolled back");
        }),
      );
      const entries = await store.changeLog.readAfter(head, 10);
      assert.deepEqual(
        entries.map((e) => e.version),
        [head + 1, head + 2],
        "one entry per distinct change, gap-free; the rolled-back one left none",
      );
      assert.deepEqual(entries[0]?.detail, {
        kind: "application",
        consumerKey: "ck-log",
        mapping: {
          consumerKey: "ck-log",
          applicationId: "app-log",
          applicationName: "Pizza",
          applicationTier: "Gold",
          keyType: "PRODUCTION",
          subscriber: "admin",
          keyManager: "Resident Key Manager",
          tokenType: "OPAQUE",
        },
      });
      assert.equal(entries[1]?.detail.kind === "tokens" && entries[1].detail.consumerKey, "ck-log");
      assert.equal(await store.changeLog.head(), head + 2);
    });

    test("change log: versions in commit order, a second writer waits for the first's commit", async () => {
      const head = await store.changeLog.head();
      let release: (value?: unknown) => void = () => undefined;
      const gate = new Promise((resolve) => {
        release = resolve;
      });
      let firstVersion = 0;
      const first = db.transaction(async (trx) => {
        const [entry] = await new Store(trx, box).changeLog.append(
          [{ change: { kind: "signing-keys" }, detail: { kind: "signing-keys", keys: [] } }],
          Date.now(),
        );
        firstVersion = entry?.version ?? 0;
        await gate;
      });
      while (firstVersion === 0) await new Promise((resolve) => setTimeout(resolve, 5));
      let secondDone = false;
      const second = store
        .transaction(async (s) => s.changed({ kind: "api", apiId: "after-the-first" }))
        .then(() => {
          secondDone = true;
        });
      await new Promise((resolve) => setTimeout(resolve, 150));
      assert.equal(secondDone, false, "the second writer waits while the first holds the head");
      release();
      await Promise.all([first, second]);
      const entries = await store.changeLog.readAfter(head, 10);
      assert.deepEqual(
        entries.map((e) => [e.version, e.change.kind]),
        [
          [head + 1, "signing-keys"],
          [head + 2, "api"],
        ],
      );
      assert.equal(firstVersion, head + 1);
    });

    test("change log: old entries purged, the head kept", async () => {
      const head = await store.changeLog.head();
      await store.transaction(async (s) => s.changed({ kind: "api", apiId: "purged" }));
      assert.ok((await store.changeLog.purgeBefore(Date.now() + 1000, 1000)) >= 1);
      assert.equal(await store.changeLog.oldest(), undefined);
      assert.equal(await store.changeLog.head(), head + 1, "versions never restart");
      await store.transaction(async (s) => s.changed({ kind: "api", apiId: "next" }));
      assert.deepEqual(
        (await store.changeLog.readAfter(0, 10)).map((e) => e.version),
        [head + 2],
      );
    });

    test("bulk revocations: recorded with their change (not when rolled back), one per consumer key or end user with the latest time and the furthest horizon, purged once nothing they refuse can live", async () => {
      const HOUR = 3_600_000;
      const horizon = new Store(db, box, undefined, undefined, { tokenHorizonMs: () => HOUR });
      await horizon.clients.insert(client("ck-bulk"));
      const longLived = Date.now() + 10 * HOUR;
      await horizon.tokens.insert({
        id: randomUUID(),
        tokenHash: randomBytes(32).toString("hex"),
        consumerKey: "ck-bulk",
        endUser: "",
        scopes: [],
        tokenType: "JWT",
        grantType: "client_credentials",
        issuedAt: new Date(),
        expiresAt: new Date(longLived),
        revokedAt: undefined,
        refreshHash: undefined,
        refreshExpiresAt: undefined,
        refreshUsedAt: undefined,
        familyId: randomUUID(),
      });
      const before = Date.now();
      await horizon.transaction(async (s) => {
        await s.tokens.revokeClient("ck-bulk", new Date());
        s.changed({ kind: "tokens", consumerKey: "ck-bulk" });
      });
      await assert.rejects(
        horizon.transaction(async (s) => {
          s.changed({ kind: "tokens", endUser: "rolled-back-user" });
          throw new Error("rolled back");
        }),
      );
      await horizon.transaction(async (s) => s.changed({ kind: "tokens", endUser: "bulk-user" }));
      const [first] = await horizon.tokenRevocations.page("consumer_key", Date.now(), "ck-bulj", 1);
      assert.equal(first?.subject, "ck-bulk");
      assert.ok((first?.revokedAt ?? 0) >= before, "the revocation's time");
      assert.equal(first?.keepUntil, longLived, "kept until its longest-lived stored token expires (past the horizon)");
      const users = await horizon.tokenRevocations.page("end_user", Date.now(), "", 10);
      assert.deepEqual(
        users.map((r) => r.subject),
        ["bulk-user"],
        "the rolled-back one left nothing",
      );
      assert.ok((users[0]?.keepUntil ?? 0) - (users[0]?.revokedAt ?? 0) === HOUR, "no stored token: kept for the longest a token may be issued for");
      const entries = await horizon.changeLog.readAfter(0, 100_000);
      const logged = entries.filter((e) => e.detail.kind === "tokens" && e.detail.consumerKey === "ck-bulk").at(-1)?.detail;
      assert.equal(logged?.kind === "tokens" && logged.keepUntil, longLived, "the change log entry says how long it is kept");

      // A later revocation of the same key: the latest time, the furthest horizon of both.
      await new Promise((resolve) => setTimeout(resolve, 5));
      await horizon.transaction(async (s) => s.changed({ kind: "tokens", consumerKey: "ck-bulk" }));
      const [again] = await horizon.tokenRevocations.page("consumer_key", Date.now(), "ck-bulj", 1);
      assert.ok((again?.revokedAt ?? 0) > (first?.revokedAt ?? 0));
      assert.equal(again?.keepUntil, longLived);

      assert.equal((await horizon.tokenRevocations.page("end_user", longLived, "", 10)).length, 0, "not read once ended");
      await horizon.tokenRevocations.purgeEnded(Date.now(), 1000);
      assert.equal((await horizon.tokenRevocations.page("consumer_key", Date.now(), "ck-bulj", 1)).at(0)?.subject, "ck-bulk", "not ended yet: kept");
      assert.deepEqual(
        (await horizon.tokenRevocations.page("end_user", Date.now(), "", 10)).map((r) => r.subject),
        ["bulk-user"],
      );
      assert.ok((await horizon.tokenRevocations.purgeEnded(longLived, 1000)) >= 2);
      assert.notEqual((await horizon.tokenRevocations.page("consumer_key", 0, "ck-bulj", 1)).at(0)?.subject, "ck-bulk", "purged");
    });

    test("the Watch snapshot reads bulk revocations page by page and shows exactly those up to its version, while more commit", async () => {
      const revocationsIn = (entities: SyncEntity[]) =>
        new Set(entities.flatMap((e) => (e.kind === "token-revocation" && e.revocation.consumerKey?.startsWith("ck-snap-") ? [e.revocation.consumerKey] : [])));
      const reader = new SnapshotReader({ db, clock: systemClock, externalKeyManagers: () => [], pageRows: () => 2 });
      const horizon = new Store(db, box, undefined, undefined, { tokenHorizonMs: () => 3_600_000 });
      const head = await horizon.changeLog.head();
      const keys = Array.from({ length: 12 }, (_, i) => `ck-snap-${String(i).padStart(2, "0")}`);
      let writing = true;
      const writer = (async () => {
        for (const consumerKey of keys) await horizon.transaction(async (s) => s.changed({ kind: "tokens", consumerKey }));
        writing = false;
      })();
      const snapshots = [];
      while (writing) snapshots.push(await reader.take({}));
      await writer;
      snapshots.push(await reader.take({}));
      const versions = new Map(
        (await horizon.changeLog.readAfter(head, 1000)).flatMap((e) =>
          e.detail.kind === "tokens" && e.detail.consumerKey ? [[e.detail.consumerKey, e.version]] : [],
        ),
      );
      for (const snapshot of snapshots) {
        const expected = new Set(keys.filter((k) => (versions.get(k) ?? Number.POSITIVE_INFINITY) <= snapshot.version));
        assert.deepEqual(revocationsIn(snapshot.entities), expected, `snapshot at ${snapshot.version}`);
      }
      const last = snapshots.at(-1)?.entities.filter((e) => e.kind === "token-revocation" && e.revocation.consumerKey === "ck-snap-00");
      assert.equal(last?.length, 1, "one per consumer key");
      const r = last?.[0]?.kind === "token-revocation" ? last[0].revocation : undefined;
      assert.ok(r && r.keepUntil !== undefined && r.keepUntil - r.at === 3_600_000 && r.revoked.length === 0);
    });

    test("trusted issuers round-trip exactly; duplicates AlreadyExists, unknown NotFound; listed in pages by issuer", async () => {
      const issuer = (name: string): TrustedIssuer => ({
        issuer: `https://${name}.example.com`,
        jwksUri: `https://${name}.example.com/jwks`,
        jwk: "",
        allowedSubjects: ["alice", "Bob 🍕"],
        allowedScopes: ["read", "write"],
        maxTokenSeconds: 600,
        maxAssertionSeconds: 300,
        audience: "https://km.example.com/oauth2/token",
        description: "corp idp",
        createdAt: at(1),
        updatedAt: at(1),
      });
      const a = issuer("idp-a");
      await store.trustedIssuers.insert(a);
      assert.deepEqual(await store.trustedIssuers.get(a.issuer), a);
      await assert.rejects(store.trustedIssuers.insert(a), AlreadyExistsError);
      // Identifiers compare exactly: another case is another issuer.
      assert.equal(await store.trustedIssuers.find(a.issuer.toUpperCase()), undefined);
      const changed = { ...a, jwksUri: "", jwk: '{"kty":"EC"}', allowedSubjects: ["*"], updatedAt: at(5) };
      await store.trustedIssuers.update(changed);
      assert.deepEqual(await store.trustedIssuers.get(a.issuer), changed);
      await assert.rejects(store.trustedIssuers.update(issuer("idp-missing")), NotFoundError);
      await store.trustedIssuers.insert(issuer("idp-b"));
      await store.trustedIssuers.insert(issuer("idp-c"));
      const first = await store.trustedIssuers.list({ limit: 2 });
      assert.deepEqual(
        first.items.map((i) => i.issuer),
        ["https://idp-a.example.com", "https://idp-b.example.com"],
      );
      const second = await store.trustedIssuers.list({ limit: 2, after: first.next });
      assert.deepEqual(
        second.items.map((i) => i.issuer),
        ["https://idp-c.example.com"],
      );
      await store.trustedIssuers.delete(a.issuer);
      await assert.rejects(store.trustedIssuers.get(a.issuer), NotFoundError);
      await assert.rejects(store.trustedIssuers.delete(a.issuer), NotFoundError);
    });

    test("used assertions: a jti is spent once per issuer until it expires, stored hashed, purged after", async () => {
      const now = at(0);
      const exp = at(60_000);
      assert.equal(await store.trustedIssuers.spendJti("https://idp.example.com", "jti-1", exp, now), true);
      assert.equal(await store.trustedIssuers.spendJti("https://idp.example.com", "jti-1", exp, at(1000)), false);
      // Another issuer's jti of the same value is another assertion.
      assert.equal(await store.trustedIssuers.spendJti("https://other.example.com", "jti-1", exp, now), true);
      const rows = await db("used_assertions").select();
      assert.ok(rows.every((r: { jti_hash: string }) => /^[0-9a-f]{64}$/.test(r.jti_hash) && !r.jti_hash.includes("jti-1")));
      // Past its expiry the row no longer counts (the JWT itself is refused as expired anyway).
      assert.equal(await store.trustedIssuers.spendJti("https://idp.example.com", "jti-1", at(200_000), at(61_000)), true);
      assert.equal(await store.trustedIssuers.spendJti("https://idp.example.com", "jti-1", at(200_000), at(62_000)), false);
      const concurrent = await Promise.all(Array.from({ length: 8 }, () => store.trustedIssuers.spendJti("https://idp.example.com", "jti-race", exp, now)));
      assert.equal(concurrent.filter(Boolean).length, 1);
      assert.equal(await store.trustedIssuers.purgeUsedAssertions(at(100_000), 1000), 2);
      assert.equal(await store.trustedIssuers.spendJti("https://other.example.com", "jti-1", exp, now), true);
    });

    test("scopes round-trip exactly; duplicates AlreadyExists, unknown NotFound; listed in pages by name; exact names", async () => {
      const scope = (name: string, roles: string[] = []): Scope => ({
        name,
        displayName: "Zutaten 🍕 lesen",
        description: "d",
        roles,
        createdAt: at(1),
        updatedAt: at(1),
      });
      const a = scope("scope:a", ["chef", "Chef "]);
      await store.scopes.insert(a);
      assert.deepEqual(await store.scopes.get(a.name), a);
      await assert.rejects(store.scopes.insert(a), AlreadyExistsError);
      // Names compare exactly (case, trailing spaces) on every database.
      assert.equal(await store.scopes.find("SCOPE:A"), undefined);
      assert.equal(await store.scopes.find("scope:a "), undefined);
      await store.scopes.insert(scope("SCOPE:A"));
      const changed = { ...a, roles: [], description: "changed", updatedAt: at(5) };
      await store.scopes.update(changed);
      assert.deepEqual(await store.scopes.get(a.name), changed);
      await assert.rejects(store.scopes.update(scope("scope:missing")), NotFoundError);
      await store.scopes.insert(scope("scope:b"));
      await store.scopes.insert(scope("scope:c"));
      assert.deepEqual(
        (await store.scopes.findMany(["scope:c", "scope:a", "scope:none", "scope:a"])).map((s) => s.name),
        ["scope:a", "scope:c"],
      );
      const first = await store.scopes.list({ limit: 2 });
      assert.deepEqual(
        first.items.map((s) => s.name),
        ["SCOPE:A", "scope:a"],
      );
      const second = await store.scopes.list({ limit: 2, after: first.next });
      assert.deepEqual(
        second.items.map((s) => s.name),
        ["scope:b", "scope:c"],
      );
      await store.scopes.delete(a.name);
      await assert.rejects(store.scopes.get(a.name), NotFoundError);
      await assert.rejects(store.scopes.delete(a.name), NotFoundError);
    });

    test("resources requiring a scope are found by it, not by a template or tier spelling its name, nor by LIKE wildcards", async () => {
      const resource = (uriTemplate: string, scopes: string[], throttlingTier = "Unlimited") => ({
        uriTemplate,
        httpVerb: "GET" as const,
        authLevel: "ANY" as const,
        scopes,
        throttlingTier,
      });
      const r = (apiId: string, resources: ReturnType<typeof resource>[]): RegisteredResource => ({
        apiId,
        resources,
        properties: {},
        createdAt: at(1),
        updatedAt: at(1),
      });
      await store.resources.insert(r("api-req-1", [resource("/a", []), resource("/b", ["orders:write_all"])]));
      await store.resources.insert(r("api-req-2", [resource("/c", [], "orders:read")]));
      assert.equal(await store.resources.apiRequiring("orders:write_all"), "api-req-1");
      assert.equal(await store.resources.apiRequiring("orders:write%"), undefined, "% is no wildcard");
      assert.equal(await store.resources.apiRequiring("orders:write_al_"), undefined, "_ is no wildcard");
      assert.equal(await store.resources.apiRequiring("orders:read"), undefined, "a tier of that name is no scope");
      assert.equal(await store.resources.apiRequiring("ORDERS:WRITE_ALL"), undefined);
      assert.deepEqual((await store.resources.findMany(["api-req-2", "api-none", "api-req-1"])).map((x) => x.apiId).sort(), ["api-req-1", "api-req-2"]);
      await store.resources.delete("api-req-1");
      await store.resources.delete("api-req-2");
    });

    test("migrations go down and up again", async () => {
      const other = await (database.create as () => Promise<TestDatabase>)();
      const conn = createKnex({ url: other.url, poolMax: 2 });
      try {
        await migrate(conn);
        await conn.migrate.rollback({ migrationSource }, true);
        assert.equal(await conn.schema.hasTable("oauth_clients"), false);
        await migrate(conn);
        assert.equal(await conn.schema.hasTable("application_keys"), true);
      } finally {
        await conn.destroy();
        await other.drop();
      }
    });

    test("a knex lock left set by a crashed replica does not block start-up", {
      skip: database.name === "sqlite" && "one process per SQLite file",
    }, async () => {
      const other = await (database.create as () => Promise<TestDatabase>)();
      const conn = createKnex({ url: other.url, poolMax: 2 });
      try {
        await migrate(conn);
        await conn("knex_migrations_lock").update({ is_locked: 1 });
        await migrate(conn, { timeoutMs: 5_000 });
      } finally {
        await conn.destroy();
        await other.drop();
      }
    });

    test("replicas migrating one empty database at once migrate it once", { skip: database.name === "sqlite" && "one process per SQLite file" }, async () => {
      const other = await (database.create as () => Promise<TestDatabase>)();
      const conns = [1, 2, 3].map(() => createKnex({ url: other.url, poolMax: 2 }));
      try {
        await Promise.all(conns.map((c) => migrate(c)));
        const applied = await (conns[0] as Knex)("knex_migrations").select("name");
        assert.equal(applied.length, (await migrationSource.getMigrations([])).length);
      } finally {
        await Promise.all(conns.map((c) => c.destroy()));
        await other.drop();
      }
    });
  });
}
