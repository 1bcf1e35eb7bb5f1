import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { Knex } from "knex";
import { GatewaySyncService, type WatchEvent } from "../gen/keymanager/v1/gateway_sync_service_pb.js";
import { KeyManagerService } from "../gen/keymanager/v1/key_manager_service_pb.js";
import { SubscriptionService } from "../gen/keymanager/v1/subscription_service_pb.js";
import { SubscriptionState } from "../gen/keymanager/v1/types_pb.js";
import { SYSTEM_SCOPES } from "../src/auth/scopes.js";
import { SystemClients } from "../src/auth/system-clients.js";
import { systemClock } from "../src/domain/clock.js";
import { createKnex, migrate } from "../src/storage/database.js";
import { SecretBox } from "../src/storage/secret-box.js";
import { Store } from "../src/storage/store.js";
import { type TestDatabase, testDatabases } from "./support/databases.js";
import { createRequest } from "./support/fixtures.js";
import { clientToken, type ReplicaProcess, startReplica } from "./support/replica-process.js";
import { bearer } from "./support/server.js";
import { upserted, Watcher } from "./support/watcher.js";

// Watchers on replica B (and A) of changes made through A, B and a third replica killed right
// after its commit: every watcher sees the same events in the same order, whatever replica.

const POLL_INTERVAL_MS = 100;

function clients(replica: ReplicaProcess, token: string) {
  const transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${replica.grpcPort}`, interceptors: [bearer(token)], defaultTimeoutMs: 10_000 });
  return {
    keys: createClient(KeyManagerService, transport),
    subs: createClient(SubscriptionService, transport),
    sync: createClient(GatewaySyncService, transport),
  };
}

for (const database of testDatabases().filter((d) => d.name !== "sqlite")) {
  describe(`Watch across replicas on ${database.name}`, { skip: database.skip }, () => {
    let handle: TestDatabase;
    let db: Knex;
    let env: Record<string, string>;
    let admin: { clientId: string; clientSecret: string };
    const replicas: ReplicaProcess[] = [];
    const watchers: Watcher[] = [];

    before(async () => {
      handle = await (database.create as () => Promise<TestDatabase>)();
      db = createKnex({ url: handle.url, poolMax: 2 });
      const key = randomBytes(32);
      await migrate(db);
      const systemClients = new SystemClients(new Store(db, new SecretBox(key)), systemClock, () => "Resident Key Manager");
      const { client, clientSecret } = await systemClients.create({ name: "watch replicas admin", scopes: [...SYSTEM_SCOPES], subscriber: "", groupIds: [] });
      admin = { clientId: client.clientId, clientSecret };
      env = {
        KM_DATABASE_URL: handle.url,
        KM_ENCRYPTION_KEY: key.toString("base64"),
        KM_ISSUER: "http://km.test",
        KM_CLUSTER_POLL_INTERVAL_MS: String(POLL_INTERVAL_MS),
      };
      replicas.push(...(await Promise.all([startReplica(env), startReplica(env)])));
    });
    after(async () => {
      await Promise.all(watchers.map((w) => w.close()));
      await Promise.all(replicas.map((r) => r.stop()));
      await db?.destroy();
      await handle?.drop();
    });

    test("watchers on both replicas see changes made through either, and through a replica killed right after its commit, in one order", async () => {
      const [ra, rb] = replicas as [ReplicaProcess, ReplicaProcess];
      const token = await clientToken(ra, admin);
      const a = clients(ra, token);
      const b = clients(rb, token);
      const onB = new Watcher(b.sync);
      const onA = new Watcher(a.sync);
      watchers.push(onA, onB);
      await Promise.all([onA, onB].map((w) => w.until("a snapshot", (x) => x.snapshot() !== undefined)));

      const apiId = `api-${randomUUID()}`;
      await a.subs.createApi({ api: { apiId, name: "Replicated", context: "/replicated", version: "1.0.0", publisher: "admin" } });
      const applicationId = randomUUID();
      await b.keys.createApplication(createRequest({ applicationId }));
      const sub = (await a.subs.createSubscription({ subscription: { applicationId, apiId, tier: "Gold" } })).subscription;
      // Writers on both replicas at once: the log decides one order, which every watcher keeps.
      await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          (i % 2 ? a : b).subs.updateSubscription({
            subscription: { subscriptionId: sub?.subscriptionId ?? "", tier: `Tier${i}` },
            updateMask: { paths: ["tier"] },
          }),
        ),
      );
      // A third replica commits and is killed at once (SIGKILL): the change is in the log.
      const c = await startReplica(env);
      replicas.push(c);
      await clients(c, await clientToken(c, admin)).subs.updateSubscription({
        subscription: { subscriptionId: sub?.subscriptionId ?? "", state: SubscriptionState.BLOCKED },
        updateMask: { paths: ["state"] },
      });
      c.process.kill("SIGKILL");

      const blocked = (e: WatchEvent) => upserted(e, "subscription")?.state === SubscriptionState.BLOCKED;
      await Promise.all([onA, onB].map((w) => w.until("the killed replica's change", (x) => x.events().some(blocked))));
      const seen = (w: Watcher) => w.events().map((e) => [e.version, summary(e)].join(" "));
      assert.deepEqual(seen(onB), seen(onA), "the same events in the same order on both replicas");
      const versions = onB.events().map((e) => e.version);
      assert.ok(versions.every((v, i) => i === 0 || v > (versions[i - 1] as bigint)));
      const mine = onB.events().filter((e) => summary(e).includes(apiId) || summary(e).includes(applicationId));
      assert.equal(summary(mine[0] as WatchEvent), `api ${apiId}`, "the API first");
      assert.ok(summary(mine[1] as WatchEvent).startsWith("keyMapping"), "then the keys");
      assert.equal(mine.filter((e) => upserted(e, "subscription")).length, 8, "created, six tier changes, blocked");
      // The tier changes as the database ordered them: the last one's tier is what the API holds now.
      const tiers = mine.flatMap((e) => upserted(e, "subscription")?.tier ?? []);
      const now = (await a.subs.getSubscription({ subscriptionId: sub?.subscriptionId ?? "" })).subscription;
      assert.equal(tiers.at(-1), now?.tier);
    });
  });
}

function summary(e: WatchEvent): string {
  if (e.change.case === "delete") return `delete ${JSON.stringify(e.change.value.key.value)}`;
  const entity = e.change.value?.entity;
  switch (entity?.case) {
    case "api":
      return `api ${entity.value.apiId}`;
    case "keyMapping":
      return `keyMapping ${entity.value.application?.applicationId}`;
    case "subscription":
      return `subscription ${entity.value.applicationId} ${entity.value.apiId} ${entity.value.tier} ${SubscriptionState[entity.value.state]}`;
    default:
      return String(entity?.case);
  }
}
