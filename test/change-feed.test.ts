import assert from "node:assert/strict";
import { after, before, describe, test, type TestContext } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Knex } from "knex";
import { pino } from "pino";
import { type ChangeFeed, startChangeFeed } from "../src/cluster/change-feed.js";
import { decodeChanges, encodeChanges, MAX_PAYLOAD_BYTES } from "../src/cluster/change-messages.js";
import { LISTENER_APPLICATION_NAME } from "../src/cluster/postgres-change-feed.js";
import { type Change, ChangeEvents, type Origin } from "../src/domain/change-events.js";
import { createKnex, migrate } from "../src/storage/database.js";
import { type TestDatabase, testDatabases } from "./support/databases.js";

const POLL_MS = 100;
const logger = pino({ level: "silent" });

/** A replica as far as the feed is concerned: its own pool, bus and feed on the shared database. */
interface Replica {
  db: Knex;
  events: ChangeEvents;
  feed: ChangeFeed;
  seen: Array<{ change: Change; origin: Origin; at: number }>;
}

async function replica(url: string): Promise<Replica> {
  const db = createKnex({ url, poolMax: 4 });
  const events = new ChangeEvents();
  const seen: Replica["seen"] = [];
  events.subscribe((change, origin) => seen.push({ change, origin, at: performance.now() }));
  const feed = await startChangeFeed({ db, url, events, pollIntervalMs: POLL_MS, logger });
  return { db, events, feed, seen };
}

async function until(what: string, condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await sleep(5);
  }
}

const fromPeers = (r: Replica) => r.seen.filter((s) => s.origin === "peer");
const flushes = (r: Replica) => fromPeers(r).filter((s) => s.change.kind === "all").length;

test("messages: below the NOTIFY limit, duplicates once, an oversized change becomes a flush", () => {
  const many: Change[] = Array.from({ length: 400 }, (_, i) => ({ kind: "token", tokenHash: `${i}`.padStart(64, "0") }));
  const payloads = encodeChanges("r1", [...many, ...many]);
  assert.ok(payloads.length > 1);
  for (const p of payloads) assert.ok(Buffer.byteLength(p) <= MAX_PAYLOAD_BYTES, `${Buffer.byteLength(p)} bytes`);
  assert.deepEqual(
    payloads.flatMap((p) => decodeChanges(p)?.changes ?? []),
    many,
  );
  const huge = encodeChanges("r1", [{ kind: "api", apiId: "x".repeat(MAX_PAYLOAD_BYTES) }, many[0] as Change]);
  assert.deepEqual(
    huge.map((p) => decodeChanges(p)?.changes),
    [[{ kind: "all" }]],
  );
  assert.equal(decodeChanges('{"replica":"r1","changes":[{"kind":"surprise"}]}'), undefined, "an unknown kind is unreadable");
});

for (const database of testDatabases()) {
  const skip = database.skip ?? (database.name === "sqlite" ? "SQLite serves one process per file: no change feed" : undefined);
  describe(`change feed on ${database.name}`, { skip }, () => {
    let handle: TestDatabase;
    let a: Replica;
    let b: Replica;

    before(async () => {
      handle = await (database.create as () => Promise<TestDatabase>)();
      const setup = createKnex({ url: handle.url, poolMax: 1 });
      await migrate(setup);
      await setup.destroy();
      [a, b] = await Promise.all([replica(handle.url), replica(handle.url)]);
    });
    after(async () => {
      for (const r of [a, b]) {
        await r?.feed.close();
        await r?.db.destroy();
      }
      await handle?.drop();
    });

    /** Publishes on A and waits for B to receive all of it; the delay in ms. */
    async function send(t: TestContext, changes: Change[]): Promise<number> {
      const before = fromPeers(b).length;
      const start = performance.now();
      for (const c of changes) a.events.publish(c);
      await until("the changes on B", () => fromPeers(b).length >= before + changes.length);
      const received = fromPeers(b).slice(before);
      const delay = (received.at(-1)?.at ?? start) - start;
      t.diagnostic(`${changes.length} change(s) reached the other replica in ${delay.toFixed(1)} ms`);
      return delay;
    }

    test("a change published on one replica reaches the other as a peer change, and goes no further", async (t) => {
      const change: Change = { kind: "subscription", applicationId: "app-1", apiId: "api-1" };
      const aBefore = a.seen.length;
      const delay = await send(t, [change]);
      assert.deepEqual(fromPeers(b).at(-1)?.change, change);
      assert.ok(delay < (database.name === "postgres" ? 500 : POLL_MS + 500), `${delay} ms`);
      await sleep(database.name === "postgres" ? 100 : 3 * POLL_MS);
      assert.deepEqual(
        a.seen.slice(aBefore).map((s) => s.origin),
        ["local"],
        "A hears nothing back: not its own change, nor B's re-publication",
      );
      assert.equal(flushes(b), 0, "no flush on B");
    });

    test("many changes at once arrive complete, in messages under the payload limit", async (t) => {
      const changes: Change[] = Array.from({ length: 300 }, (_, i) => ({ kind: "token", tokenHash: `${i}`.padStart(64, "f") }));
      const before = fromPeers(b).length;
      await send(t, changes);
      assert.deepEqual(
        fromPeers(b)
          .slice(before)
          .map((s) => s.change),
        changes,
      );
      assert.equal(flushes(b), 0);
    });

    if (database.name === "postgres") {
      test("a lost listener connection flushes, reconnects, flushes again and hears changes again", async (t) => {
        const flushed = flushes(b);
        const killed = (await a.db.raw(
          "select pg_terminate_backend(pid) as ok from pg_stat_activity where application_name = ? and datname = current_database()",
          [LISTENER_APPLICATION_NAME],
        )) as { rows: unknown[] };
        assert.equal(killed.rows.length, 2, "both replicas' listeners");
        await until("a flush at the loss and one after reconnecting", () => flushes(b) >= flushed + 2);
        await send(t, [{ kind: "token", tokenHash: "after-reconnect" }]);
      });
    } else {
      test("ids missing from the sequence flush the caches", async (t) => {
        const flushed = flushes(b);
        const [status] = (await a.db.raw("show table status like 'cache_invalidations'")) as [Array<{ Auto_increment: number }>];
        await a.db.raw(`alter table cache_invalidations auto_increment = ${Number(status[0]?.Auto_increment) + 5}`);
        await send(t, [{ kind: "token", tokenHash: "after-a-gap" }]);
        assert.equal(flushes(b), flushed + 1);
        await send(t, [{ kind: "token", tokenHash: "no-gap" }]);
        assert.equal(flushes(b), flushed + 1, "consecutive ids again: no flush");
      });

      test("a failing read flushes, and so does the first read that works again", async (t) => {
        const flushed = flushes(b);
        await a.db.raw("rename table cache_invalidations to cache_invalidations_away");
        try {
          await until("a flush for the failed read", () => flushes(b) > flushed);
        } finally {
          await a.db.raw("rename table cache_invalidations_away to cache_invalidations");
        }
        const failing = flushes(b);
        await until("a flush when reading works again", () => fromPeers(b).length > 0 && flushes(b) > failing);
        await send(t, [{ kind: "token", tokenHash: "after-recovery" }]);
      });
    }
  });
}
