import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { GatewaySyncService } from "../gen/keymanager/v1/gateway_sync_service_pb.js";
import { KeyManagerService, UpdateApplicationOwnerRequestSchema, UpdateApplicationOwnerResponseSchema } from "../gen/keymanager/v1/key_manager_service_pb.js";
import { SubscriptionService } from "../gen/keymanager/v1/subscription_service_pb.js";
import { AuthLevel } from "../gen/keymanager/v1/types_pb.js";
import { TokenValidationService } from "../gen/keymanager/v1/token_validation_service_pb.js";
import { SCOPES } from "../src/auth/scopes.js";
import { rejectsWith } from "./support/assert-rpc.js";
import { TestClock } from "./support/clock.js";
import { describeOnEachDatabase } from "./support/each-database.js";
import { createRequest } from "./support/fixtures.js";
import { startServer, type TestServer } from "./support/server.js";
import { upserted, Watcher } from "./support/watcher.js";

describeOnEachDatabase("UpdateApplicationOwner", (database) => {
  const clock = new TestClock();
  let server: TestServer;
  before(async () => {
    server = await startServer({ databaseUrl: database.url(), clock, overrides: { cluster: { poll_interval_ms: 50 } } });
  });
  after(() => server?.close());

  const retrieve = async (consumerKey: string) =>
    (await server.grpc.retrieveApplication({ selector: { case: "consumerKey", value: consumerKey } })).application;

  for (const transport of ["grpc", "connect"] as const) {
    test(`an admin gives an application to another owner; the answer, RetrieveApplication and ValidateToken show it (${transport})`, async () => {
      const app = (await server.grpc.createApplication(createRequest({ appOwner: "alice", grantTypes: ["client_credentials"], scopes: [] }))).application;
      assert.ok(app);
      const apiId = `api-${randomUUID()}`;
      const subs = server.client(SubscriptionService);
      await subs.createApi({ api: { apiId, name: "Owned", context: `/owned-${transport}`, version: "1", publisher: "admin" } });
      await server.grpc.registerNewResource({ resource: { apiId, resources: [{ uriTemplate: "/x", httpVerb: "GET", authLevel: AuthLevel.APPLICATION }] } });
      await subs.createSubscription({ subscription: { applicationId: app.applicationId, apiId, tier: "Gold" } });
      const token =
        (
          await server.grpc.getNewApplicationAccessToken({
            request: { clientId: app.consumerKey, clientSecret: app.consumerSecret, grantType: "client_credentials" },
          })
        ).token?.accessToken ?? "";
      const check = () =>
        server
          .client(TokenValidationService)
          .validateToken({ context: `/owned-${transport}`, version: "1", accessToken: token, matchingResource: "/x", httpVerb: "GET" });
      assert.equal((await check()).subscriber, "alice");

      clock.advance(5);
      const changed = (await server[transport].updateApplicationOwner({ consumerKey: app.consumerKey, appOwner: "bob" })).application;
      assert.equal(changed?.appOwner, "bob");
      assert.equal(changed?.consumerKey, app.consumerKey);
      assert.equal(changed?.applicationId, app.applicationId);
      assert.equal(changed?.consumerSecret, app.consumerSecret, "nothing else changes");
      assert.equal(timestampDate(changed?.updateTime ?? assert.fail()).getTime(), clock.now().getTime());
      assert.deepEqual(await retrieve(app.consumerKey), changed);
      assert.equal((await check()).subscriber, "bob", "the gateway check's cached answer was dropped");
    });
  }

  test("the change reaches the Watch stream: the key mapping again, with its new owner", async () => {
    const gateway = await server.caller([SCOPES.gateway]);
    const w = new Watcher(server.client(GatewaySyncService, { token: gateway.token }));
    try {
      await w.until("a snapshot", (x) => x.snapshot() !== undefined);
      const app = (await server.grpc.createApplication(createRequest({ appOwner: "carol" }))).application;
      assert.ok(app);
      await server.grpc.updateApplicationOwner({ consumerKey: app.consumerKey, appOwner: "dave" });
      const mine = () =>
        w
          .events()
          .flatMap((e) => upserted(e, "keyMapping") ?? [])
          .filter((m) => m.consumerKey === app.consumerKey);
      await w.until("the owner's change", () => mine().some((m) => m.application?.owner === "dave"));
      assert.deepEqual(
        mine().map((m) => m.application?.owner),
        ["carol", "dave"],
      );
    } finally {
      await w.close();
    }
  });

  describe("store callers: the owners' rules", () => {
    let alice: ReturnType<typeof server.client<typeof KeyManagerService>>;
    let bob: ReturnType<typeof server.client<typeof KeyManagerService>>;
    let trent: ReturnType<typeof server.client<typeof KeyManagerService>>;
    before(async () => {
      alice = server.client(KeyManagerService, { token: (await server.caller(["apim:subscribe"], { subscriber: "alice" })).token });
      bob = server.client(KeyManagerService, { token: (await server.caller(["apim:subscribe"], { subscriber: "bob" })).token });
      trent = server.client(KeyManagerService, { token: (await server.caller(["apim:subscribe"], { subscriber: "trent", groupIds: ["team-b"] })).token });
    });

    test("a subscriber may give its own application away, then no longer sees it; the new owner does", async () => {
      const app = (await alice.createApplication(createRequest({ appOwner: "" }))).application;
      assert.ok(app);
      assert.equal((await alice.updateApplicationOwner({ consumerKey: app.consumerKey, appOwner: "bob" })).application?.appOwner, "bob");
      await rejectsWith(alice.retrieveApplication({ selector: { case: "consumerKey", value: app.consumerKey } }), Code.NotFound);
      assert.equal((await bob.retrieveApplication({ selector: { case: "consumerKey", value: app.consumerKey } })).application?.appOwner, "bob");
      await rejectsWith(alice.updateApplicationOwner({ consumerKey: app.consumerKey, appOwner: "alice" }), Code.NotFound, /no OAuth application/);
    });

    test("another's application answers as a missing one, and does not move", async () => {
      const app = (await alice.createApplication(createRequest({ appOwner: "" }))).application;
      assert.ok(app);
      const missing = await rejectsWith(bob.updateApplicationOwner({ consumerKey: "no-such-key", appOwner: "bob" }), Code.NotFound);
      const hidden = await rejectsWith(bob.updateApplicationOwner({ consumerKey: app.consumerKey, appOwner: "bob" }), Code.NotFound);
      assert.equal(hidden.rawMessage, missing.rawMessage);
      assert.equal((await retrieve(app.consumerKey))?.appOwner, "alice");
    });

    test("a group member sees the group's application but may not move it (PERMISSION_DENIED); an admin may", async () => {
      const shared = (await server.grpc.createApplication(createRequest({ appOwner: "carol", groupId: "team-b" }))).application;
      assert.ok(shared);
      assert.ok((await trent.retrieveApplication({ selector: { case: "consumerKey", value: shared.consumerKey } })).application);
      await rejectsWith(
        trent.updateApplicationOwner({ consumerKey: shared.consumerKey, appOwner: "trent" }),
        Code.PermissionDenied,
        /only the application's owner/,
      );
      assert.equal((await retrieve(shared.consumerKey))?.appOwner, "carol");
      assert.equal((await server.grpc.updateApplicationOwner({ consumerKey: shared.consumerKey, appOwner: "trent" })).application?.appOwner, "trent");
      assert.equal((await trent.updateApplicationOwner({ consumerKey: shared.consumerKey, appOwner: "erin" })).application?.appOwner, "erin");
    });
  });

  test("bad input: a clear error naming the field, nothing changed", async () => {
    const app = (await server.grpc.createApplication(createRequest({ appOwner: "frank" }))).application;
    assert.ok(app);
    const cases: Array<[Parameters<typeof server.grpc.updateApplicationOwner>[0], Code, RegExp]> = [
      [{}, Code.InvalidArgument, /^consumer_key: is required; app_owner: is required$/],
      [{ consumerKey: app.consumerKey }, Code.InvalidArgument, /^app_owner: is required$/],
      [{ consumerKey: app.consumerKey, appOwner: "   " }, Code.InvalidArgument, /^app_owner: is required$/],
      [{ consumerKey: app.consumerKey, appOwner: "x".repeat(256) }, Code.InvalidArgument, /^app_owner: must be at most 255 characters$/],
      [{ consumerKey: app.consumerKey, appOwner: "eve\nadmin" }, Code.InvalidArgument, /^app_owner: must not contain control characters$/],
      [{ consumerKey: "no-such-key", appOwner: "grace" }, Code.NotFound, /^no OAuth application with this consumer key$/],
    ];
    for (const [request, code, message] of cases) await rejectsWith(server.grpc.updateApplicationOwner(request), code, message);
    const caller = await server.caller(["km:gateway"]);
    await rejectsWith(server.grpc.updateApplicationOwner({ consumerKey: caller.clientId, appOwner: "grace" }), Code.NotFound, /no OAuth application/);
    assert.equal((await retrieve(app.consumerKey))?.appOwner, "frank");
  });

  test("plain grpc-js", async () => {
    const app = (await server.grpc.createApplication(createRequest({ appOwner: "heidi" }))).application;
    assert.ok(app);
    const client = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
    try {
      const metadata = new grpc.Metadata();
      metadata.set("authorization", `Bearer ${server.token}`);
      const call = (appOwner: string) =>
        new Promise<ReturnType<typeof fromBinary<typeof UpdateApplicationOwnerResponseSchema>>>((resolve, reject) =>
          client.makeUnaryRequest(
            `/${KeyManagerService.typeName}/UpdateApplicationOwner`,
            (r: ReturnType<typeof create<typeof UpdateApplicationOwnerRequestSchema>>) => Buffer.from(toBinary(UpdateApplicationOwnerRequestSchema, r)),
            (b: Buffer) => fromBinary(UpdateApplicationOwnerResponseSchema, b),
            create(UpdateApplicationOwnerRequestSchema, { consumerKey: app.consumerKey, appOwner }),
            metadata,
            (err, res) => (err || !res ? reject(err) : resolve(res)),
          ),
        );
      assert.equal((await call("ivan")).application?.appOwner, "ivan");
      const refused = await call("").then(
        () => assert.fail("accepted an empty owner"),
        (err: grpc.ServiceError) => err,
      );
      assert.equal(refused.code, grpc.status.INVALID_ARGUMENT);
      assert.equal(refused.details, "app_owner: is required");
      assert.equal((await retrieve(app.consumerKey))?.appOwner, "ivan");
    } finally {
      client.close();
    }
  });
});
