import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Knex } from "knex";
import { pino } from "pino";
import { type ChangeFeed, startChangeFeed } from "../src/cluster/change-feed.js";
import { ChangeLogReader } from "../src/cluster/change-log-reader.js";
import { LISTENER_APPLICATION_NAME } from "../src/cluster/postgres-waker.js";
import { type Change, ChangeEvents, type LoggedChange, type Origin } from "../src/domain/change-events.js";
import { Housekeeping } from "../src/storage/housekeeping.js";
import { changeLogPurge } from "../src/storage/purges.js";
import type { ChangeLogRepository } from "../src/storage/change-log-repository.js";
import { createKnex, migrate } from "../src/storage/database.js";
import { SecretBox } from "../src/storage/secret-box.js";
import { Store } from "../src/storage/store.js";
import { type TestDatabase, testDatabases } from "./support/databases.js";

// The change log read by replicas: each a pool, a bus, a store and a feed on one shared database.

const POLL_MS = 100;
const logger = pino({ level: "silent" });
const box = new SecretBox(randomBytes(32));

interface Replica {
  db: Knex;
  events: ChangeEvents;
  store: Store;
  feed: ChangeFeed;
  seen: Array<{ change: Change; origin: Origin }>;
  /** What the reader handed its listeners, in order. */
  read: LoggedChange[];
  missed: number;
}

async function replica(url: string): Promise<Replica> {
  const db = createKnex({ url, poolMax: 4 });
  const events = new ChangeEvents();
  const r: Replica = { db, events, store: new Store(db, box, events), feed: undefined as unknown as ChangeFeed, seen: [], read: [], missed: 0 };
  events.subscribe((change, origin) => r.seen.push({ change, origin }));
  r.feed = await startChangeFeed({ db, url, events, pollIntervalMs: POLL_MS, logger });
  r.feed.reader.subscribe({ entries: (e) => r.read.push(...e), missed: () => r.missed++ });
  return r;
}

async function until(what: string, condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** A change through `r`'s store, in a transaction of its own (an API created). */
async function createApi(r: Replica, apiId: string): Promise<void> {
  await r.store.transaction(async (s) => {
    await s.apis.insert({ apiId, name: apiId, context: `/${apiId}`, version: "1", publisher: "", apiTier: "", createdAt: new Date(), updatedAt: new Date() });
    s.changed({ kind: "api", apiId });
  });
}

const peers = (r: Replica) => r.seen.filter((s) => s.origin === "peer");
const flushes = (r: Replica) => peers(r).filter((s) => s.change.kind === "all").length;

for (const database of testDatabases()) {
  describe(`change log read by replicas on ${database.name}`, { skip: database.skip }, () => {
    let handle: TestDatabase;
    let a: Replica;
    let b: Replica;
    const replicas = database.name !== "sqlite";

    before(async () => {
      handle = await (database.create as () => Promise<TestDatabase>)();
      const setup = createKnex({ url: handle.url, poolMax: 1 });
      await migrate(setup);
      await setup.destroy();
      a = await replica(handle.url);
      // SQLite serves one process per file: one replica.
      b = replicas ? await replica(handle.url) : a;
    });
    after(async () => {
      for (const r of new Set([a, b])) {
        await r?.feed.close();
        await r?.db.destroy();
      }
      await handle?.drop();
    });

    test("a change committed through A: published on A at once (local), read by every reader in order, a peer change on B only", async () => {
      const before = { aRead: a.read.length, bRead: b.read.length, aSeen: a.seen.length };
      await createApi(a, "first");
      assert.deepEqual(a.seen.slice(before.aSeen), [{ change: { kind: "api", apiId: "first" }, origin: "local" }], "local on A before the call returns");
      await until("both readers", () => a.read.length > before.aRead && b.read.length > before.bRead);
      const entry = b.read.at(-1) as LoggedChange;
      assert.deepEqual(entry.change, { kind: "api", apiId: "first" });
      assert.equal(entry.detail.kind, "api");
      assert.equal(entry.detail.kind === "api" && entry.detail.api?.context, "/first", "the entry holds the state the change left");
      if (replicas) assert.deepEqual(peers(b).at(-1)?.change, { kind: "api", apiId: "first" });
      await sleep(replicas ? 3 * POLL_MS : 50);
      assert.equal(a.seen.filter((s) => s.change.kind === "api").length, 1, "A is not told its own change again");
    });

    test("entries heard without reading the log: this replica's commits; on PostgreSQL, another's from NOTIFY when they fit its payload (a bigger transaction is read)", async () => {
      const before = { a: { ...a.feed.reader.delivered }, b: { ...b.feed.reader.delivered }, bRead: b.read.length };
      await createApi(a, "heard");
      await until("B's reader", () => b.read.some((e) => e.change.kind === "api" && e.change.apiId === "heard"));
      assert.equal(a.feed.reader.delivered.heard, before.a.heard + 1, "A's own commit handed on as committed");
      if (database.name === "postgres") {
        assert.equal(b.feed.reader.delivered.heard, before.b.heard + 1, "B heard it in the NOTIFY payload");
        const big = Array.from({ length: 120 }, (_, i) => `gone-${i}-${"x".repeat(40)}`);
        await a.store.transaction(async (s) => {
          for (const apiId of big) s.changed({ kind: "api", apiId });
        });
        await until("B's reader, the big transaction", () => b.read.some((e) => e.change.kind === "api" && e.change.apiId === big.at(-1)));
        assert.ok(b.feed.reader.delivered.read >= before.b.read + big.length, "too big for a NOTIFY payload: read from the log");
        const versions = b.read.slice(before.bRead).map((e) => e.version);
        assert.deepEqual(
          versions,
          versions.map((_, i) => (versions[0] as number) + i),
          "in order, none lost or twice",
        );
      }
    });

    test("concurrent writers through both replicas: versions gap-free, each read once, the same order on every reader", async () => {
      const start = a.feed.reader.version;
      const writes = Array.from({ length: 40 }, (_, i) => createApi(i % 2 === 0 ? a : b, `c${i}`));
      await Promise.all(writes);
      const head = await a.store.changeLog.head();
      assert.equal(head, start + 40);
      await until("both readers at the head", () => a.feed.reader.version === head && b.feed.reader.version === head);
      const versions = (r: Replica) => r.read.filter((e) => e.version > start).map((e) => e.version);
      assert.deepEqual(
        versions(a),
        Array.from({ length: 40 }, (_, i) => start + 1 + i),
      );
      assert.deepEqual(versions(b), versions(a));
      assert.deepEqual(
        b.read.filter((e) => e.version > start).map((e) => e.change),
        a.read.filter((e) => e.version > start).map((e) => e.change),
      );
    });

    test("a transaction rolled back writes no entry and leaves no gap; a deleted entity logs its absence", async () => {
      const head = await a.store.changeLog.head();
      await assert.rejects(
        a.store.transaction(async (s) => {
          await s.apis.insert({
            apiId: "rolled-back",
            name: "x",
            context: "/rb",
            version: "1",
            publisher: "",
            apiTier: "",
            createdAt: new Date(),
            updatedAt: new Date(),
          });
          s.changed({ kind: "api", apiId: "rolled-back" });
          throw new Error("no");
        }),
        /no/,
      );
      assert.equal(await a.store.changeLog.head(), head);
      await a.store.transaction(async (s) => {
        await s.apis.delete("first");
        s.changed({ kind: "api", apiId: "first" });
      });
      const [entry] = await a.store.changeLog.readAfter(head, 10);
      assert.equal(entry?.version, head + 1);
      assert.deepEqual(entry?.detail, { kind: "api", apiId: "first" }, "no api: deleted");
    });

    test("a change recorded outside a transaction is refused", () => {
      assert.throws(() => a.store.changed({ kind: "signing-keys" }), /inside store.transaction/);
    });

    if (replicas) {
      test("entries deleted (retention) before a reader read them: its caches flush and its listeners hear it", async () => {
        // B stops reading, A writes, the entries go, B reads again.
        await b.feed.close();
        const head = await a.store.changeLog.head();
        await createApi(a, "while-b-away-1");
        await createApi(a, "while-b-away-2");
        await new Housekeeping(
          [
            changeLogPurge(
              a.store.changeLog,
              () => 0,
              () => Date.now() + 1000,
            ),
          ],
          () => 0,
          logger,
        ).purge();
        await createApi(a, "after-purge");
        const seenBefore = b.seen.length;
        const flushed = flushes(b);
        b.feed = await startChangeFeed({ db: b.db, url: handle.url, events: b.events, pollIntervalMs: POLL_MS, logger });
        // Restarted readers start at the head; rewind to before the deleted entries.
        (b.feed.reader as unknown as { last: number }).last = head;
        b.feed.reader.subscribe({ entries: (e) => b.read.push(...e), missed: () => b.missed++ });
        const missed = b.missed;
        b.feed.reader.wake();
        await until("B reads on", () => b.feed.reader.version === head + 3);
        assert.equal(b.missed, missed + 1);
        assert.equal(flushes(b), flushed + 1, "B's caches flushed once");
        assert.deepEqual(peers({ ...b, seen: b.seen.slice(seenBefore) }).at(-1)?.change, { kind: "api", apiId: "after-purge" });
      });
    }

    if (database.name === "postgres") {
      test("a lost listener connection loses nothing: changes committed meanwhile are read, in order, without a flush", async () => {
        const flushed = flushes(b);
        const killed = (await a.db.raw(
          "select pg_terminate_backend(pid) as ok from pg_stat_activity where application_name = ? and datname = current_database()",
          [LISTENER_APPLICATION_NAME],
        )) as { rows: unknown[] };
        assert.equal(killed.rows.length, 2, "both replicas' listeners");
        const start = b.feed.reader.version;
        for (let i = 0; i < 5; i++) await createApi(a, `deaf-${i}`);
        await until("B read them", () => b.feed.reader.version === start + 5);
        assert.deepEqual(
          peers(b)
            .slice(-5)
            .map((s) => s.change),
          Array.from({ length: 5 }, (_, i) => ({ kind: "api", apiId: `deaf-${i}` })),
        );
        assert.equal(flushes(b), flushed, "no flush: nothing was missed");
      });
    }

    if (database.name === "mysql") {
      test("a failing read flushes the caches once; reading works again from the last version, nothing lost", async () => {
        const flushed = flushes(b);
        const start = b.feed.reader.version;
        await a.db.raw("rename table change_events to change_events_away");
        try {
          await until("a flush for the failed read", () => flushes(b) > flushed);
        } finally {
          await a.db.raw("rename table change_events_away to change_events");
        }
        await createApi(a, "after-recovery");
        await until("B reads on", () => b.feed.reader.version === start + 1);
        assert.equal(flushes(b), flushed + 1, "one flush for the whole failure");
      });
    }
  });
}

/** A reader fed only by `offer` (its log reads nothing), and what its events published, in order. */
function offeredReader() {
  const events = new ChangeEvents();
  const seen: Array<{ change: Change; origin: Origin }> = [];
  events.subscribe((change, origin) => seen.push({ change, origin }));
  const unread = { readAfter: async () => [], head: async () => 0 } as unknown as ChangeLogRepository;
  return { events, seen, reader: new ChangeLogReader(unread, events, logger, 0) };
}

test("a replica's own entry that reaches its reader (NOTIFY, a read) before its commit is announced is published once, as local; a peer's as peer", async () => {
  const { events, seen, reader } = offeredReader();
  const own: LoggedChange = {
    version: 1,
    at: 1,
    change: { kind: "api", apiId: "own" },
    detail: { kind: "api", apiId: "own" },
    by: events.replica,
  } as LoggedChange;
  const peer: LoggedChange = {
    version: 2,
    at: 2,
    change: { kind: "api", apiId: "peer" },
    detail: { kind: "api", apiId: "peer" },
    by: "another",
  } as LoggedChange;
  reader.offer([own]);
  assert.deepEqual(seen, [], "heard before the commit returned: not a peer's change");
  events.committed([own]);
  reader.offer([peer]);
  assert.deepEqual(seen, [
    { change: own.change, origin: "local" },
    { change: peer.change, origin: "peer" },
  ]);
  assert.equal(reader.version, 2);
  await reader.close();
});

test("another replica's external key managers change (its reload or start) is not published here: this replica's caches follow its own file; its listeners still get the entry", async () => {
  const { seen, reader } = offeredReader();
  const heard: number[] = [];
  reader.subscribe({ entries: (entries) => heard.push(...entries.map((e) => e.version)) });
  const entry = (version: number, change: Change): LoggedChange => ({ version, at: version, change, detail: change, by: "another" }) as unknown as LoggedChange;
  reader.offer([entry(1, { kind: "external-key-managers" }), entry(2, { kind: "api", apiId: "after" })]);
  assert.deepEqual(seen, [{ change: { kind: "api", apiId: "after" }, origin: "peer" }]);
  assert.deepEqual(heard, [1, 2]);
  assert.equal(reader.version, 2);
  await reader.close();
});
