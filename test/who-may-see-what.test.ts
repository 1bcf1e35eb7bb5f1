/**
 * Issue #11, "who may see what": store callers act for a named subscriber, unowned applications
 * are for admins, introspection tells a client only about its own tokens (gateways excepted),
 * and system clients' tokens are short-lived whatever they ask. On every database.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { KeyManagerService } from "../gen/keymanager/v1/key_manager_service_pb.js";
import { SubscriptionService } from "../gen/keymanager/v1/subscription_service_pb.js";
import { SystemClientService } from "../gen/keymanager/v1/system_client_service_pb.js";
import { TokenValidationService } from "../gen/keymanager/v1/token_validation_service_pb.js";
import { UserService } from "../gen/keymanager/v1/user_service_pb.js";
import { AuthLevel, KeyType } from "../gen/keymanager/v1/types_pb.js";
import { DEFAULT_THROTTLE_LIMITS } from "../src/oauth/authentication-throttle.js";
import { createKnex } from "../src/storage/database.js";
import { rejectsWith } from "./support/assert-rpc.js";
import { describeOnEachDatabase } from "./support/each-database.js";
import { createRequest } from "./support/fixtures.js";
import { startServer, type TestServer } from "./support/server.js";

function basic(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString("base64")}`;
}

async function postForm(server: TestServer, path: string, form: Record<string, string>, authorization?: string) {
  const res = await fetch(`http://127.0.0.1:${server.httpPort}${path}`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...(authorization ? { authorization } : {}) },
    body: new URLSearchParams(form).toString(),
  });
  return { status: res.status, body: (await res.json().catch(() => ({}))) as Record<string, unknown> };
}

describeOnEachDatabase("who may see what", (database) => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ databaseUrl: database.url() });
  });
  after(() => server?.close());

  describe("store callers act for a named subscriber (#11 point 8)", () => {
    test("CreateSystemClient refuses apim:subscribe without a subscriber, naming the field, and writes nothing", async () => {
      const admin = server.client(SystemClientService);
      const before = (await admin.listSystemClients({ pageSize: 1000 })).systemClients.length;
      for (const subscriber of ["", "   "]) {
        await rejectsWith(
          admin.createSystemClient({ systemClient: { name: "anonymous store", scopes: ["apim:subscribe"], subscriber } }),
          Code.InvalidArgument,
          /^subscriber: is required with scope apim:subscribe/,
        );
        await rejectsWith(
          admin.createSystemClient({ systemClient: { name: "anonymous store", scopes: ["apim:subscribe", "km:gateway"], subscriber } }),
          Code.InvalidArgument,
          /subscriber/,
        );
      }
      assert.equal((await admin.listSystemClients({ pageSize: 1000 })).systemClients.length, before);
      // With a subscriber, or as an admin (who acts for every subscriber), it is fine.
      await admin.createSystemClient({ systemClient: { name: "alice's store", scopes: ["apim:subscribe"], subscriber: "alice" } });
      await admin.createSystemClient({ systemClient: { name: "operator", scopes: ["apim:subscribe", "km:admin"] } });
    });

    test("a subscriber-less store client already stored is refused store calls, and cannot read another's secrets", async () => {
      const victim = (await server.grpc.createApplication(createRequest({ appOwner: "" }))).application;
      assert.ok(victim);
      const legacy = await server.caller(["apim:subscribe"], { subscriber: "placeholder" });
      // As a row written before subscribers were required.
      const db = createKnex(server.app.configStore.current.database);
      try {
        await db("oauth_clients").where({ consumer_key: legacy.clientId }).update({ app_owner: "" });
      } finally {
        await db.destroy();
      }
      const token = (await postForm(server, "/oauth2/token", { grant_type: "client_credentials" }, basic(legacy.clientId, legacy.clientSecret))).body
        .access_token as string;
      const km = server.client(KeyManagerService, { token });
      await rejectsWith(km.retrieveApplication({ selector: { case: "consumerKey", value: victim.consumerKey } }), Code.PermissionDenied, /subscriber/);
      await rejectsWith(km.regenerateConsumerSecret({ consumerKey: victim.consumerKey }), Code.PermissionDenied, /subscriber/);
      await rejectsWith(km.createApplication(createRequest({ appOwner: "" })), Code.PermissionDenied, /subscriber/);
      const rest = await fetch(`http://127.0.0.1:${server.httpPort}/api/am/store/v0.13/applications/${victim.applicationId}/keys/PRODUCTION`, {
        headers: { authorization: `Bearer ${token}` },
      });
      assert.equal(rest.status, 403);
      // The victim's secret is unchanged.
      const still = (await server.grpc.retrieveApplication({ selector: { case: "consumerKey", value: victim.consumerKey } })).application;
      assert.equal(still?.consumerSecret, victim.consumerSecret);
    });

    test("an application without an owner is visible to admins only", async () => {
      const unowned = (await server.grpc.createApplication(createRequest({ appOwner: "" }))).application;
      assert.ok(unowned);
      assert.equal(unowned.appOwner, "");
      const alice = server.client(KeyManagerService, { token: (await server.caller(["apim:subscribe"], { subscriber: "alice" })).token });
      const missing = await rejectsWith(alice.retrieveApplication({ selector: { case: "consumerKey", value: "no-such-consumer-key" } }), Code.NotFound);
      const hidden = await rejectsWith(alice.retrieveApplication({ selector: { case: "consumerKey", value: unowned.consumerKey } }), Code.NotFound);
      assert.equal(hidden.rawMessage, missing.rawMessage);
      await rejectsWith(alice.regenerateConsumerSecret({ consumerKey: unowned.consumerKey }), Code.NotFound);
      await rejectsWith(alice.getActiveTokensByConsumerKey({ consumerKey: unowned.consumerKey }), Code.NotFound);
      const admin = server.client(KeyManagerService, { token: (await server.caller(["km:admin", "apim:subscribe"])).token });
      const seen = (await admin.retrieveApplication({ selector: { case: "consumerKey", value: unowned.consumerKey } })).application;
      assert.equal(seen?.consumerSecret, unowned.consumerSecret);
    });
  });

  describe("introspection tells a client about its own tokens only (#11 point 9)", () => {
    let appA: { consumerKey: string; consumerSecret: string };
    let appB: { consumerKey: string; consumerSecret: string };
    let tokenA: string;
    let tokenB: string;
    let userTokenB: string;
    before(async () => {
      const create = async () => {
        const app = (await server.grpc.createApplication(createRequest())).application;
        assert.ok(app);
        return app;
      };
      appA = await create();
      appB = await create();
      const issue = async (app: { consumerKey: string; consumerSecret: string }, form: Record<string, string>) =>
        (await postForm(server, "/oauth2/token", form, basic(app.consumerKey, app.consumerSecret))).body.access_token as string;
      tokenA = await issue(appA, { grant_type: "client_credentials" });
      tokenB = await issue(appB, { grant_type: "client_credentials" });
      await server.client(UserService).createUser({ user: { username: "introspected-user" }, password: "a long enough password" });
      userTokenB = await issue(appB, { grant_type: "password", username: "introspected-user", password: "a long enough password" });
    });

    const introspect = async (caller: { consumerKey: string; consumerSecret: string }, token: string) =>
      postForm(server, "/oauth2/introspect", { token }, basic(caller.consumerKey, caller.consumerSecret));

    test("an application learns about its own token", async () => {
      const own = await introspect(appA, tokenA);
      assert.equal(own.status, 200);
      assert.equal(own.body.active, true);
      assert.equal(own.body.client_id, appA.consumerKey);
    });

    test("another application's, another's user token and the admin's token read {active:false}, nothing more", async () => {
      const adminClient = await server.caller(["km:admin"]);
      for (const token of [tokenB, userTokenB, server.token, adminClient.token]) {
        const other = await introspect(appA, token);
        assert.equal(other.status, 200);
        assert.deepEqual(other.body, { active: false });
      }
      // Nor does a system client without the gateway scope learn about others' tokens.
      const adminAsClient = { consumerKey: adminClient.clientId, consumerSecret: adminClient.clientSecret };
      assert.deepEqual((await introspect(adminAsClient, tokenB)).body, { active: false });
      assert.equal((await introspect(adminAsClient, adminClient.token)).body.active, true, "its own token");
      // The tokens still work for their owners.
      assert.equal((await introspect(appB, tokenB)).body.active, true);
      assert.equal((await introspect(appB, userTokenB)).body.username, "introspected-user");
    });

    test("a gateway (system client with km:gateway) learns about every token", async () => {
      const gateway = await server.caller(["km:gateway"]);
      const asGateway = { consumerKey: gateway.clientId, consumerSecret: gateway.clientSecret };
      const seen = await introspect(asGateway, tokenB);
      assert.equal(seen.body.active, true);
      assert.equal(seen.body.client_id, appB.consumerKey);
      assert.equal((await introspect(asGateway, userTokenB)).body.username, "introspected-user");
      assert.deepEqual((await introspect(asGateway, "not-a-token")).body, { active: false });
    });

    test("GetTokenMetadata: a store caller learns about its subscriber's tokens only", async () => {
      const bob = server.client(KeyManagerService, { token: (await server.caller(["apim:subscribe"], { subscriber: "bob" })).token });
      const seen = (await bob.getTokenMetadata({ accessToken: tokenB })).token;
      assert.equal(seen?.tokenValid, false);
      assert.equal(seen?.consumerKey, "");
      assert.equal((await bob.getTokenMetadata({ accessToken: server.token })).token?.consumerKey, "");
    });
  });

  describe("MapOAuthApplication is no secret oracle (#11 point 10)", () => {
    type Km = ReturnType<typeof server.client<typeof KeyManagerService>>;
    let alice: Km;
    let bob: Km;
    before(async () => {
      alice = server.client(KeyManagerService, { token: (await server.caller(["apim:subscribe"], { subscriber: "alice" })).token });
      bob = server.client(KeyManagerService, { token: (await server.caller(["apim:subscribe"], { subscriber: "bob" })).token });
    });
    const map = (km: Km, consumerKey: string, consumerSecret: string, applicationId: string = crypto.randomUUID(), keyType = KeyType.PRODUCTION) =>
      km.mapOAuthApplication({ application: { applicationId, keyType, consumerKey, consumerSecret } });

    test("another's consumer key (wrong or right secret), a system client id and a wrong secret of one's own all answer alike", async () => {
      const alices = (await alice.createApplication(createRequest({ appOwner: "" }))).application;
      const bobs = (await bob.createApplication(createRequest({ appOwner: "" }))).application;
      assert.ok(alices && bobs);
      await bob.deleteMappedApplication({ consumerKey: bobs.consumerKey });
      const gateway = await server.caller(["km:gateway"]);
      const answers = [
        await rejectsWith(map(bob, alices.consumerKey, "wrong-secret-0123456789"), Code.InvalidArgument),
        await rejectsWith(map(bob, alices.consumerKey, alices.consumerSecret), Code.InvalidArgument),
        await rejectsWith(map(bob, gateway.clientId, gateway.clientSecret), Code.InvalidArgument),
        await rejectsWith(map(bob, bobs.consumerKey, "wrong-secret-0123456789"), Code.InvalidArgument),
      ];
      for (const answer of answers) {
        assert.equal(answer.rawMessage, "consumer_secret: does not match the consumer key's secret");
        assert.ok(!answer.rawMessage.includes(alices.consumerSecret));
      }
      // Nothing was mapped or changed; bob's own key with its secret maps again.
      const still = (await alice.retrieveApplication({ selector: { case: "consumerKey", value: alices.consumerKey } })).application;
      assert.equal(still?.applicationId, alices.applicationId);
      const remapped = (await map(bob, bobs.consumerKey, bobs.consumerSecret)).application;
      assert.equal(remapped?.appOwner, "bob");
    });

    test(`wrong secrets are throttled as at the token endpoint: after ${DEFAULT_THROTTLE_LIMITS.freeFailures} the address is paused for that key, the token endpoint too`, async () => {
      const target = (await alice.createApplication(createRequest({ appOwner: "" }))).application;
      assert.ok(target);
      for (let i = 0; i < DEFAULT_THROTTLE_LIMITS.freeFailures; i++) {
        await rejectsWith(map(bob, target.consumerKey, `guess-${i}-0123456789`), Code.InvalidArgument);
      }
      // Paused, even with the right secret: guessing stops here.
      await rejectsWith(map(bob, target.consumerKey, target.consumerSecret), Code.ResourceExhausted, /retry in \d+ s/);
      const token = await postForm(server, "/oauth2/token", { grant_type: "client_credentials" }, basic(target.consumerKey, target.consumerSecret));
      assert.equal(token.status, 429, "the same throttle as the token endpoint");
      // Other keys from this address are not affected.
      const other = (await alice.createApplication(createRequest({ appOwner: "" }))).application;
      assert.ok(other);
      const fine = await postForm(server, "/oauth2/token", { grant_type: "client_credentials" }, basic(other.consumerKey, other.consumerSecret));
      assert.equal(fine.status, 200);
    });

    test("another subscriber's application id answers as one with keys, and takes no keys of another type", async () => {
      const alices = (await alice.createApplication(createRequest({ appOwner: "" }))).application;
      const bobs = (await bob.createApplication(createRequest({ appOwner: "" }))).application;
      assert.ok(alices && bobs);
      const own = await rejectsWith(bob.createApplication(createRequest({ appOwner: "", applicationId: bobs.applicationId })), Code.AlreadyExists);
      const others = await rejectsWith(bob.createApplication(createRequest({ appOwner: "", applicationId: alices.applicationId })), Code.AlreadyExists);
      assert.equal(others.rawMessage, own.rawMessage);
      const sandbox = await rejectsWith(
        bob.createApplication(createRequest({ appOwner: "", applicationId: alices.applicationId, keyType: KeyType.SANDBOX })),
        Code.AlreadyExists,
        /SANDBOX/,
      );
      assert.ok(!sandbox.rawMessage.includes("alice"));
      const fresh = `fresh-key-${crypto.randomUUID()}`;
      await rejectsWith(map(bob, fresh, "a-secret-0123456789", alices.applicationId, KeyType.SANDBOX), Code.AlreadyExists);
      await rejectsWith(server.grpc.retrieveApplication({ selector: { case: "consumerKey", value: fresh } }), Code.NotFound);
      await rejectsWith(
        server.grpc.retrieveApplication({ selector: { case: "applicationKey", value: { applicationId: alices.applicationId, keyType: KeyType.SANDBOX } } }),
        Code.NotFound,
      );
      // Alice adds her own sandbox keys as before.
      assert.ok((await alice.createApplication(createRequest({ appOwner: "", applicationId: alices.applicationId, keyType: KeyType.SANDBOX }))).application);
    });
  });

  describe("an unknown key manager name is refused (#11 point 14)", () => {
    test("CreateApplication and MapOAuthApplication name key_manager; nothing is created", async () => {
      const create = createRequest({ keyManager: "corp-idp" });
      await rejectsWith(server.grpc.createApplication(create), Code.InvalidArgument, /^key_manager: no key manager of this name is configured$/);
      await rejectsWith(server.connect.createApplication(create), Code.InvalidArgument, /key_manager/);
      const ref = { applicationId: create.application.applicationId as string, keyType: KeyType.PRODUCTION };
      await rejectsWith(server.grpc.retrieveApplication({ selector: { case: "applicationKey", value: ref } }), Code.NotFound);
      const consumerKey = `mapped-${crypto.randomUUID()}`;
      await rejectsWith(
        server.grpc.mapOAuthApplication({
          application: {
            applicationId: ref.applicationId,
            keyType: KeyType.PRODUCTION,
            consumerKey,
            consumerSecret: "a-secret-0123456789",
            keyManager: "corp-idp",
          },
        }),
        Code.InvalidArgument,
        /^key_manager: /,
      );
      await rejectsWith(server.grpc.retrieveApplication({ selector: { case: "consumerKey", value: consumerKey } }), Code.NotFound);
      // The resident key manager's own name is fine.
      const named = (await server.grpc.createApplication(createRequest({ keyManager: server.app.configStore.current.name }))).application;
      assert.equal(named?.keyManager, server.app.configStore.current.name);
    });
  });

  describe("identifiers compare exactly (#11 point 12)", () => {
    const swapCase = (s: string) => [...s].map((c) => (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase())).join("");

    test("a case-swapped client id or one with a trailing space is another (unknown) client", async () => {
      const app = (await server.grpc.createApplication(createRequest({ applicationId: `Exact-App-${crypto.randomUUID()}` }))).application;
      assert.ok(app);
      const swapped = swapCase(app.consumerKey);
      assert.notEqual(swapped, app.consumerKey);
      for (const clientId of [swapped, `${app.consumerKey} `]) {
        const res = await postForm(server, "/oauth2/token", { grant_type: "client_credentials", client_id: clientId, client_secret: app.consumerSecret });
        assert.equal(res.status, 401, JSON.stringify(clientId));
        assert.equal(res.body.error, "invalid_client");
        await rejectsWith(server.grpc.retrieveApplication({ selector: { case: "consumerKey", value: clientId } }), Code.NotFound);
      }
      await rejectsWith(
        server.grpc.retrieveApplication({
          selector: { case: "applicationKey", value: { applicationId: app.applicationId.toLowerCase(), keyType: KeyType.PRODUCTION } },
        }),
        Code.NotFound,
      );
      const ok = await postForm(server, "/oauth2/token", { grant_type: "client_credentials", client_id: app.consumerKey, client_secret: app.consumerSecret });
      assert.equal(ok.status, 200);
    });

    test("usernames: another case or a trailing space is another user", async () => {
      const users = server.client(UserService);
      await users.createUser({ user: { username: "Exact.User" }, password: "the right password" });
      const app = (await server.grpc.createApplication(createRequest())).application;
      assert.ok(app);
      for (const username of ["exact.user", "EXACT.USER", "Exact.User "]) {
        const res = await postForm(
          server,
          "/oauth2/token",
          { grant_type: "password", username, password: "the right password" },
          basic(app.consumerKey, app.consumerSecret),
        );
        assert.equal(res.status, 400, JSON.stringify(username));
        assert.equal(res.body.error, "invalid_grant");
      }
      await rejectsWith(users.getUser({ username: "exact.user" }), Code.NotFound);
      // A distinct user may take the other case.
      await users.createUser({ user: { username: "exact.user" }, password: "another password" });
      const own = await postForm(
        server,
        "/oauth2/token",
        { grant_type: "password", username: "Exact.User", password: "the right password" },
        basic(app.consumerKey, app.consumerSecret),
      );
      assert.equal(own.status, 200);
    });
  });

  describe("a regenerated consumer secret revokes the client's tokens (#11 point 13)", () => {
    const api = { apiId: `regen-${crypto.randomUUID()}`, name: "RegenAPI", context: `/regen-${crypto.randomUUID().slice(0, 8)}`, version: "1.0.0" };
    before(async () => {
      await server.client(SubscriptionService).createApi({ api });
      await server.grpc.registerNewResource({
        resource: {
          apiId: api.apiId,
          resources: [{ uriTemplate: "/menu", httpVerb: "GET", authLevel: AuthLevel.ANY, scopes: [], throttlingTier: "Unlimited" }],
        },
      });
      await server.client(UserService).createUser({ user: { username: "regen-user" }, password: "regen user password" });
    });

    test("ValidateToken refuses them at once, introspection calls them inactive, their refresh tokens are spent; new tokens work", async () => {
      const app = (await server.grpc.createApplication(createRequest())).application;
      assert.ok(app);
      await server.client(SubscriptionService).createSubscription({ subscription: { applicationId: app.applicationId, apiId: api.apiId, tier: "Gold" } });
      const issue = async (secret: string, form: Record<string, string>) =>
        (await postForm(server, "/oauth2/token", form, basic(app.consumerKey, secret))).body;
      const appToken = (await issue(app.consumerSecret, { grant_type: "client_credentials" })).access_token as string;
      const user = await issue(app.consumerSecret, { grant_type: "password", username: "regen-user", password: "regen user password" });
      const gateway = server.client(TokenValidationService);
      const check = async (accessToken: string) =>
        (await gateway.validateToken({ context: api.context, version: api.version, accessToken, matchingResource: "/menu", httpVerb: "GET" })).statusCode;
      assert.equal(await check(appToken), 0);
      assert.equal(await check(user.access_token as string), 0, "both answers are now in the caches");

      const { consumerSecret } = await server.grpc.regenerateConsumerSecret({ consumerKey: app.consumerKey });
      assert.equal(await check(appToken), 900901);
      assert.equal(await check(user.access_token as string), 900901);
      assert.equal((await server.grpc.getTokenMetadata({ accessToken: appToken })).token?.tokenValid, false);
      assert.deepEqual((await server.grpc.getActiveTokensByConsumerKey({ consumerKey: app.consumerKey })).tokens, []);
      const refreshed = await postForm(
        server,
        "/oauth2/token",
        { grant_type: "refresh_token", refresh_token: user.refresh_token as string },
        basic(app.consumerKey, consumerSecret),
      );
      assert.equal(refreshed.status, 400);
      assert.equal(refreshed.body.error, "invalid_grant");
      const fresh = (await issue(consumerSecret, { grant_type: "client_credentials" })).access_token as string;
      assert.equal(await check(fresh), 0);
    });
  });

  describe("system clients' tokens are capped (#11 point 11)", () => {
    let defaults: TestServer;
    before(async () => {
      // The default cap: nothing configured.
      defaults = await startServer({ databaseUrl: database.url(), dataDir: server.dataDir, overrides: { validity: { system_token: undefined } } });
    });
    after(() => defaults?.close());

    test("at one hour by default, whatever validity_period asks", async () => {
      const admin = await defaults.caller(["km:admin", "apim:subscribe"]);
      const res = await postForm(
        defaults,
        "/oauth2/token",
        { grant_type: "client_credentials", validity_period: "999999999999" },
        basic(admin.clientId, admin.clientSecret),
      );
      assert.equal(res.status, 200);
      assert.equal(res.body.expires_in, 3600);
      const km = defaults.client(KeyManagerService, { token: res.body.access_token as string });
      const viaRpc = await km.getNewApplicationAccessToken({
        request: { clientId: admin.clientId, clientSecret: admin.clientSecret, grantType: "client_credentials", validityPeriodSeconds: 10n ** 11n },
      });
      assert.equal(viaRpc.token?.validityPeriodMs, 3_600_000n);
      const gateway = await defaults.caller(["km:gateway"]);
      const seen = await postForm(defaults, "/oauth2/introspect", { token: res.body.access_token as string }, basic(gateway.clientId, gateway.clientSecret));
      assert.equal((seen.body.exp as number) - (seen.body.iat as number), 3600);
      // Applications keep their own limits.
      const app = (await defaults.grpc.createApplication(createRequest())).application;
      assert.ok(app);
      const long = await postForm(
        defaults,
        "/oauth2/token",
        { grant_type: "client_credentials", validity_period: "999999999999" },
        basic(app.consumerKey, app.consumerSecret),
      );
      assert.equal(long.body.expires_in, 365 * 24 * 3600);
    });

    test("at validity.system_token when configured", async () => {
      const short = await startServer({ databaseUrl: database.url(), dataDir: server.dataDir, overrides: { validity: { system_token: 120 } } });
      try {
        const admin = await short.caller(["km:admin"]);
        const res = await postForm(
          short,
          "/oauth2/token",
          { grant_type: "client_credentials", validity_period: "7200" },
          basic(admin.clientId, admin.clientSecret),
        );
        assert.equal(res.body.expires_in, 120);
        const asked = await postForm(
          short,
          "/oauth2/token",
          { grant_type: "client_credentials", validity_period: "60" },
          basic(admin.clientId, admin.clientSecret),
        );
        assert.equal(asked.body.expires_in, 60, "a shorter one asked for is given");
      } finally {
        await short.close();
      }
    });
  });
});
