import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";
import { type Client, Code } from "@connectrpc/connect";
import type { Knex } from "knex";
import { GatewaySyncService, type GatewayEntity, SnapshotReason, type WatchEvent } from "../gen/keymanager/v1/gateway_sync_service_pb.js";
import { SubscriptionService } from "../gen/keymanager/v1/subscription_service_pb.js";
import { AuthLevel, KeyType, SubscriptionState, TokenType } from "../gen/keymanager/v1/types_pb.js";
import { SCOPES } from "../src/auth/scopes.js";
import { ChangeLogRepository } from "../src/storage/change-log-repository.js";
import { createKnex } from "../src/storage/database.js";
import { rejectsWith } from "./support/assert-rpc.js";
import { describeOnEachDatabase } from "./support/each-database.js";
import { createRequest, sampleResources } from "./support/fixtures.js";
import { startServer, type TestServer } from "./support/server.js";
import { entitiesOf, upserted, Watcher } from "./support/watcher.js";

// GatewaySyncService.Watch against a real server on each database: the snapshot, then every
// change in commit order, resumable, with heartbeats, filters and chunks.

const HEARTBEAT_MS = 300;
const CHUNK_ENTITIES = 7;

describeOnEachDatabase("gateway sync (Watch)", (database) => {
  let server: TestServer;
  let subs: Client<typeof SubscriptionService>;
  let gatewayToken: string;
  let db: Knex;
  const watchers: Watcher[] = [];
  const sync = (protocol: "grpc" | "connect" = "grpc", token = gatewayToken) => server.client(GatewaySyncService, { protocol, token });
  const watch = (request: ConstructorParameters<typeof Watcher>[1] = {}, protocol: "grpc" | "connect" = "grpc") => {
    const w = new Watcher(sync(protocol), request);
    watchers.push(w);
    return w;
  };

  before(async () => {
    server = await startServer({
      databaseUrl: database.url(),
      overrides: { gateway_sync: { heartbeat_interval_ms: HEARTBEAT_MS, snapshot_chunk_entities: CHUNK_ENTITIES }, cluster: { poll_interval_ms: 50 } },
    });
    subs = server.client(SubscriptionService);
    gatewayToken = (await server.caller([SCOPES.gateway])).token;
    db = createKnex({ url: database.url(), poolMax: 2 });
  });
  after(async () => {
    await Promise.all(watchers.map((w) => w.close()));
    await db?.destroy();
    await server?.close();
  });

  async function api(context: string) {
    const apiId = `api-${randomUUID()}`;
    await subs.createApi({ api: { apiId, name: "Pizza", context, version: "1.0.0", publisher: "admin", apiTier: "Gold" } });
    return apiId;
  }

  async function application(keyType = KeyType.PRODUCTION) {
    const applicationId = randomUUID();
    const { application: app } = await server.grpc.createApplication(
      createRequest({ applicationId, keyType, applicationName: "PizzaApp", applicationTier: "Gold" }),
    );
    assert.ok(app);
    return { applicationId, consumerKey: app.consumerKey, consumerSecret: app.consumerSecret };
  }

  test("the snapshot holds what a gateway decides with: APIs with resources, key mappings, subscriptions, JWKS, revoked tokens", async () => {
    const apiId = await api("/snap");
    await server.grpc.registerNewResource({ resource: { apiId, resources: sampleResources() } });
    const app = await application();
    await subs.createSubscription({ subscription: { applicationId: app.applicationId, apiId, tier: "Silver" } });
    const issued = await server.grpc.getNewApplicationAccessToken({
      request: { clientId: app.consumerKey, clientSecret: app.consumerSecret, grantType: "client_credentials" },
    });
    await server.grpc.revokeToken({ token: issued.token?.accessToken ?? "" });

    const w = watch();
    await w.until("a whole snapshot", (x) => x.snapshot() !== undefined);
    const snapshot = w.snapshot();
    assert.ok(snapshot);
    assert.ok(w.chunks().every((c) => c.reason === SnapshotReason.FIRST && c.version === snapshot.version));
    const head = await new ChangeLogRepository(db).head();
    assert.ok(snapshot.version > 0n && snapshot.version <= BigInt(head));

    const a = entitiesOf(snapshot.entities, "api").find((x) => x.apiId === apiId);
    assert.ok(a, "the API");
    assert.equal(a.context, "/snap");
    assert.equal(a.apiTier, "Gold");
    assert.deepEqual(
      a.resources.map((r) => [r.uriTemplate, r.httpVerb, r.authLevel, r.scopes, r.throttlingTier]),
      [
        ["/orders", "GET", AuthLevel.APPLICATION_USER, ["read:orders"], "Gold"],
        ["/orders/{id}", "DELETE", AuthLevel.APPLICATION, [], "Unlimited"],
      ],
    );
    const mapping = entitiesOf(snapshot.entities, "keyMapping").find((m) => m.consumerKey === app.consumerKey);
    assert.ok(mapping, "the key mapping");
    assert.equal(mapping.keyType, KeyType.PRODUCTION);
    assert.equal(mapping.tokenType, TokenType.OPAQUE);
    assert.equal(mapping.keyManager, "Resident Key Manager");
    assert.deepEqual(
      [mapping.application?.applicationId, mapping.application?.name, mapping.application?.owner, mapping.application?.tier],
      [app.applicationId, "PizzaApp", "admin", "Gold"],
    );
    const sub = entitiesOf(snapshot.entities, "subscription").find((s) => s.applicationId === app.applicationId);
    assert.ok(sub, "the subscription");
    assert.deepEqual([sub.apiId, sub.tier, sub.state], [apiId, "Silver", SubscriptionState.UNBLOCKED]);
    const [jwks] = entitiesOf(snapshot.entities, "signingKeys");
    assert.ok(jwks && jwks.keys.length > 0 && jwks.issuer.startsWith("http"), "the JWKS and its issuer");
    assert.equal(jwks.validateRemotely, false, "enable_self_validation_jwt by default: gateways verify the JWTs with these keys");
    assert.ok(
      jwks.keys.every((k) => typeof k.kid === "string" && k.d === undefined),
      "public keys only",
    );
    const revoked = entitiesOf(snapshot.entities, "revokedToken").filter((t) => t.consumerKey === app.consumerKey);
    assert.equal(revoked.length, 1, "the revoked token, until it expires");
    assert.ok(Number(revoked[0]?.expireTime?.seconds) * 1000 > Date.now());
  });

  test("events follow in commit order, strictly increasing, each the state its change left; never a subscription before its API", async () => {
    const w = watch();
    await w.until("a snapshot", (x) => x.snapshot() !== undefined);
    const apiId = await api("/ordered");
    const app = await application();
    const created = await subs.createSubscription({ subscription: { applicationId: app.applicationId, apiId, tier: "Gold" } });
    const id = created.subscription?.subscriptionId ?? "";
    await subs.updateSubscription({ subscription: { subscriptionId: id, state: SubscriptionState.BLOCKED }, updateMask: { paths: ["state"] } });
    await subs.deleteSubscription({ subscriptionId: id });
    await subs.deleteApi({ apiId });
    await w.until("the API's delete", (x) =>
      x.events().some((e) => e.change.case === "delete" && e.change.value.key.case === "apiId" && e.change.value.key.value === apiId),
    );
    const events = w.events();
    const versions = events.map((e) => e.version);
    assert.ok(
      versions.every((v, i) => i === 0 || v > (versions[i - 1] as bigint)),
      "strictly increasing",
    );
    assert.ok((versions[0] as bigint) > (w.snapshot()?.version ?? 0n), "after the snapshot's version");
    const mine = events.filter((e) => describes(e, apiId, app.consumerKey));
    assert.deepEqual(mine.map(summary), [
      "api upsert",
      "keyMapping upsert",
      "subscription upsert UNBLOCKED",
      "subscription upsert BLOCKED",
      "subscription delete",
      "api delete",
    ]);

    // Many APIs and subscriptions committed concurrently: each subscription after its API.
    const pairs = await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        const id = await api(`/concurrent${i}`);
        await subs.createSubscription({ subscription: { applicationId: app.applicationId, apiId: id, tier: "Gold" } });
        return id;
      }),
    );
    await w.until("every concurrent subscription", (x) => pairs.every((p) => x.events().some((e) => upserted(e, "subscription")?.apiId === p)));
    const known = new Set(entitiesOf(w.snapshot()?.entities ?? [], "api").map((a) => a.apiId));
    for (const e of w.events()) {
      const a = upserted(e, "api");
      if (a) known.add(a.apiId);
      if (e.change.case === "delete" && e.change.value.key.case === "apiId") known.delete(e.change.value.key.value);
      const s = upserted(e, "subscription");
      if (s) assert.ok(known.has(s.apiId), `subscription to ${s.apiId} at version ${e.version} before its API`);
    }
  });

  test("a resume gets exactly the missed events; past retention a new snapshot says so; from a version never handed out, a fresh one", async () => {
    const steady = watch();
    const cut = watch();
    await Promise.all([steady, cut].map((w) => w.until("a snapshot", (x) => x.snapshot() !== undefined)));
    await api("/before-cut");
    await cut.until("the change before the cut", (x) => x.events().length > 0);
    const from = cut.lastVersion();
    await cut.close();
    const apiId = await api("/while-cut");
    const app = await application();
    await subs.createSubscription({ subscription: { applicationId: app.applicationId, apiId, tier: "Gold" } });
    await steady.until("the three changes", (x) => x.events().some((e) => upserted(e, "subscription")?.apiId === apiId));

    const resumed = watch({ fromVersion: from });
    await resumed.until("the missed changes", (x) => x.events().some((e) => upserted(e, "subscription")?.apiId === apiId));
    assert.equal(resumed.chunks().length, 0, "no snapshot");
    const missed = steady.events().filter((e) => e.version > from);
    assert.deepEqual(
      resumed
        .events()
        .slice(0, missed.length)
        .map((e) => e.version),
      missed.map((e) => e.version),
      "none lost, none twice",
    );
    assert.deepEqual(resumed.events().slice(0, missed.length).map(summary), missed.map(summary));
    await resumed.close();

    // The log forgets everything (as retention would): a resume from before gets a snapshot.
    const purged = await new ChangeLogRepository(db).purgeBefore(Date.now() + 60_000, 1_000_000);
    assert.ok(purged > 0);
    const tooOld = watch({ fromVersion: from });
    await tooOld.until("a snapshot", (x) => x.snapshot() !== undefined);
    assert.equal(tooOld.chunks()[0]?.reason, SnapshotReason.RESUME_TOO_OLD);
    assert.ok(
      entitiesOf(tooOld.snapshot()?.entities ?? [], "subscription").some((s) => s.apiId === apiId),
      "the current state",
    );
    const head = BigInt(await new ChangeLogRepository(db).head());
    const current = watch({ fromVersion: head });
    const fresh = watch({ fromVersion: head + 1000n });
    await fresh.until("a snapshot", (x) => x.snapshot() !== undefined);
    assert.equal(fresh.chunks()[0]?.reason, SnapshotReason.FRESH);
    await current.until("a heartbeat", (x) => x.messages.some((m) => m.message.case === "heartbeat"));
    assert.equal(current.chunks().length, 0, "from the head itself: nothing missed, no snapshot");
  });

  test("heartbeats carry the version reached and the server's time", async () => {
    const w = watch({}, "connect");
    await w.until("a snapshot", (x) => x.snapshot() !== undefined);
    const apiId = await api("/beat");
    await w.until("the API", (x) => x.events().some((e) => upserted(e, "api")?.apiId === apiId));
    const eventVersion = w.events().at(-1)?.version ?? 0n;
    const seen = w.messages.length;
    await w.until("a heartbeat after it", (x) => x.messages.slice(seen).some((m) => m.message.case === "heartbeat"));
    const beat = w.messages.slice(seen).find((m) => m.message.case === "heartbeat")?.message.value as { version: bigint; serverTime?: { seconds: bigint } };
    assert.ok(beat.version >= eventVersion);
    assert.ok(Math.abs(Number(beat.serverTime?.seconds) * 1000 - Date.now()) < 60_000);
  });

  test("filters: some APIs by context (and their subscriptions), one key type", async () => {
    const kept = await api("/kept");
    const other = await api("/other");
    const prod = await application(KeyType.PRODUCTION);
    const sandbox = await application(KeyType.SANDBOX);
    await subs.createSubscription({ subscription: { applicationId: prod.applicationId, apiId: kept, tier: "Gold" } });
    await subs.createSubscription({ subscription: { applicationId: prod.applicationId, apiId: other, tier: "Gold" } });
    const w = watch({ apiContexts: ["/kept"], keyType: KeyType.SANDBOX });
    await w.until("a snapshot", (x) => x.snapshot() !== undefined);
    const entities = w.snapshot()?.entities ?? [];
    assert.deepEqual(
      entitiesOf(entities, "api").map((a) => a.context),
      ["/kept"],
    );
    assert.deepEqual(
      entitiesOf(entities, "subscription").map((s) => s.apiId),
      [kept],
    );
    const keys = entitiesOf(entities, "keyMapping");
    assert.ok(keys.some((k) => k.consumerKey === sandbox.consumerKey));
    assert.ok(keys.every((k) => k.keyType === KeyType.SANDBOX));
    // Changes outside the filters are left out; an API moving out of them is a delete.
    const later = await application(KeyType.PRODUCTION);
    await subs.createSubscription({ subscription: { applicationId: later.applicationId, apiId: other, tier: "Gold" } });
    await subs.createSubscription({ subscription: { applicationId: later.applicationId, apiId: kept, tier: "Gold" } });
    await subs.updateApi({ api: { apiId: kept, context: "/moved" }, updateMask: { paths: ["context"] } });
    await w.until("the API leaving the filter", (x) => x.events().some((e) => e.change.case === "delete" && e.change.value.key.value === kept));
    assert.deepEqual(w.events().map(summary), ["subscription upsert UNBLOCKED", "api delete"]);
    assert.equal(upserted(w.events()[0] as WatchEvent, "subscription")?.apiId, kept);
  });

  test(`the snapshot comes in chunks of at most ${CHUNK_ENTITIES} entities, one version, the last one flagged`, async () => {
    const apiId = await api("/chunked");
    for (let i = 0; i < 3 * CHUNK_ENTITIES; i++) {
      const app = await application();
      await subs.createSubscription({ subscription: { applicationId: app.applicationId, apiId: i % 2 ? apiId : await api(`/c${i}`), tier: "Gold" } });
    }
    const w = watch();
    await w.until("a snapshot", (x) => x.snapshot() !== undefined);
    const chunks = w.chunks();
    assert.ok(chunks.length >= 6, `${chunks.length} chunks`);
    assert.ok(chunks.every((c) => c.entities.length <= CHUNK_ENTITIES && c.entities.length > 0));
    assert.ok(chunks.every((c, i) => c.lastChunk === (i === chunks.length - 1)));
    assert.equal(new Set(chunks.map((c) => c.version)).size, 1);
    const ids = entitiesOf(w.snapshot()?.entities ?? [], "subscription").map((s) => s.subscriptionId);
    assert.equal(new Set(ids).size, ids.length, "each subscription once");
    const [{ count }] = (await db("subscriptions").count({ count: "*" })) as [{ count: number | string }];
    assert.equal(ids.length, Number(count));
  });

  test("authorization: no token UNAUTHENTICATED, another scope PERMISSION_DENIED, on both ports", async () => {
    const store = (await server.caller([SCOPES.store], { subscriber: "admin" })).token;
    for (const protocol of ["grpc", "connect"] as const) {
      await rejectsWith(drain(sync(protocol, "")), Code.Unauthenticated);
      await rejectsWith(drain(sync(protocol, store)), Code.PermissionDenied, /km:gateway/);
      await rejectsWith(drain(sync(protocol), { keyType: 7 as KeyType }), Code.InvalidArgument, /key_type/);
      await rejectsWith(drain(sync(protocol), { apiContexts: ["no-slash"] }), Code.InvalidArgument, /api_contexts\[0\]/);
    }
  });
});

async function drain(client: Client<typeof GatewaySyncService>, request = {}): Promise<void> {
  for await (const _ of client.watch(request, { timeoutMs: 10_000 })) {
    // Authorized callers get a snapshot: these requests must not be.
    throw new Error("a message came");
  }
}

function describes(e: WatchEvent, apiId: string, consumerKey: string): boolean {
  if (e.change.case === "delete") return Object.values(e.change.value.key.value ?? {}).includes(apiId) || e.change.value.key.value === apiId;
  const entity: GatewayEntity["entity"] | undefined = e.change.value?.entity;
  if (entity?.case === "api") return entity.value.apiId === apiId;
  if (entity?.case === "keyMapping") return entity.value.consumerKey === consumerKey;
  if (entity?.case === "subscription") return entity.value.apiId === apiId;
  return false;
}

function summary(e: WatchEvent): string {
  if (e.change.case === "delete") return `${e.change.value.key.case === "apiId" ? "api" : e.change.value.key.case} delete`;
  const entity = e.change.value?.entity;
  if (entity?.case === "subscription") return `subscription upsert ${SubscriptionState[entity.value.state]}`;
  return `${entity?.case} upsert`;
}
