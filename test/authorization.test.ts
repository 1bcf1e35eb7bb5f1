import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { KeyManagerService } from "../gen/keymanager/v1/key_manager_service_pb.js";
import { SubscriptionService } from "../gen/keymanager/v1/subscription_service_pb.js";
import { SystemClientService } from "../gen/keymanager/v1/system_client_service_pb.js";
import { TokenValidationService } from "../gen/keymanager/v1/token_validation_service_pb.js";
import { UserService } from "../gen/keymanager/v1/user_service_pb.js";
import { TrustedIssuerService } from "../gen/keymanager/v1/trusted_issuer_service_pb.js";
import { ScopeService } from "../gen/keymanager/v1/scope_service_pb.js";
import { KeyType } from "../gen/keymanager/v1/types_pb.js";
import { DEFAULT_THROTTLE_LIMITS } from "../src/oauth/authentication-throttle.js";
import { capturedLog } from "./support/captured-log.js";
import { rejectsWith } from "./support/assert-rpc.js";
import { TestClock } from "./support/clock.js";
import { createRequest } from "./support/fixtures.js";
import { startServer, type TestServer } from "./support/server.js";

const FREE_FAILURES = DEFAULT_THROTTLE_LIMITS.freeFailures;
const clock = new TestClock();
const { lines: logLines, raw: rawLines, logger } = capturedLog("trace");
let server: TestServer;
before(async () => {
  server = await startServer({ clock, logger });
});
after(() => server.close());

const protocols = ["grpc", "connect"] as const;

describe("callers authenticate", () => {
  for (const protocol of protocols) {
    test(`no token, a malformed one or an unknown one: UNAUTHENTICATED, nothing written (${protocol})`, async () => {
      for (const token of ["", "not-a-token-we-issued", "x".repeat(43)]) {
        const km = server.client(KeyManagerService, { protocol, token });
        const request = createRequest();
        await rejectsWith(km.createApplication(request), Code.Unauthenticated);
        await rejectsWith(
          server.grpc.retrieveApplication({
            selector: { case: "applicationKey", value: { applicationId: request.application.applicationId as string, keyType: KeyType.PRODUCTION } },
          }),
          Code.NotFound,
        );
        await rejectsWith(
          server
            .client(TokenValidationService, { protocol, token })
            .validateToken({ context: "/a", version: "1", accessToken: "t", matchingResource: "/", httpVerb: "GET" }),
          Code.Unauthenticated,
        );
        await rejectsWith(server.client(SubscriptionService, { protocol, token }).listApis({}), Code.Unauthenticated);
      }
    });
  }

  test("a revoked caller token, a regenerated system client secret and a deleted system client stop working at once", async () => {
    const store = await server.caller(["apim:subscribe"], { subscriber: "dave" });
    const km = server.client(KeyManagerService, { token: store.token });
    await km.createApplication(createRequest({ appOwner: "" }));
    // Revoked through the RFC 7009 endpoint by the client itself.
    const res = await fetch(`http://127.0.0.1:${server.httpPort}/oauth2/revoke`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        authorization: `Basic ${Buffer.from(`${store.clientId}:${store.clientSecret}`).toString("base64")}`,
      },
      body: `token=${store.token}`,
    });
    assert.equal(res.status, 200);
    await rejectsWith(km.createApplication(createRequest({ appOwner: "" })), Code.Unauthenticated);

    const gateway = await server.caller(["km:gateway"]);
    const check = server.client(TokenValidationService, { token: gateway.token });
    await check.validateToken({ context: "/a", version: "1", accessToken: "t", matchingResource: "/", httpVerb: "GET" });
    // A regenerated secret ends the tokens of the old one, as an application's does.
    const regenerated = await server.client(SystemClientService).regenerateSystemClientSecret({ clientId: gateway.clientId });
    await rejectsWith(check.validateToken({ context: "/a", version: "1", accessToken: "t", matchingResource: "/", httpVerb: "GET" }), Code.Unauthenticated);
    const res2 = await fetch(`http://127.0.0.1:${server.httpPort}/oauth2/token`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        authorization: `Basic ${Buffer.from(`${gateway.clientId}:${regenerated.clientSecret}`).toString("base64")}`,
      },
      body: "grant_type=client_credentials",
    });
    assert.equal(res2.status, 200);
    const renewed = server.client(TokenValidationService, { token: ((await res2.json()) as { access_token: string }).access_token });
    await renewed.validateToken({ context: "/a", version: "1", accessToken: "t", matchingResource: "/", httpVerb: "GET" });

    await server.client(SystemClientService).deleteSystemClient({ clientId: gateway.clientId });
    await rejectsWith(renewed.validateToken({ context: "/a", version: "1", accessToken: "t", matchingResource: "/", httpVerb: "GET" }), Code.Unauthenticated);
  });
});

describe("scopes gate groups of calls", () => {
  let gatewayToken: string;
  let storeToken: string;
  let adminToken: string;
  before(async () => {
    gatewayToken = (await server.caller(["km:gateway"])).token;
    storeToken = (await server.caller(["apim:subscribe"], { subscriber: "erin" })).token;
    adminToken = (await server.caller(["km:admin"])).token;
  });

  for (const protocol of protocols) {
    test(`wrong scope: PERMISSION_DENIED naming the scope, nothing written (${protocol})`, async () => {
      const request = createRequest({ appOwner: "" });
      await rejectsWith(
        server.client(KeyManagerService, { protocol, token: gatewayToken }).createApplication(request),
        Code.PermissionDenied,
        /apim:subscribe/,
      );
      await rejectsWith(server.client(KeyManagerService, { protocol, token: adminToken }).createApplication(request), Code.PermissionDenied, /apim:subscribe/);
      await rejectsWith(
        server.grpc.retrieveApplication({
          selector: { case: "applicationKey", value: { applicationId: request.application.applicationId as string, keyType: KeyType.PRODUCTION } },
        }),
        Code.NotFound,
      );

      await rejectsWith(
        server.client(SubscriptionService, { protocol, token: storeToken }).createApi({ api: { apiId: "x", name: "x", context: "/x", version: "1" } }),
        Code.PermissionDenied,
        /km:admin/,
      );
      await rejectsWith(server.grpc.getResourceByApiId({ apiId: "x" }), Code.NotFound);
      await rejectsWith(
        server.client(KeyManagerService, { protocol, token: storeToken }).registerNewResource({ resource: { apiId: "x", resources: [] } }),
        Code.PermissionDenied,
        /km:admin/,
      );
      await rejectsWith(server.client(KeyManagerService, { protocol, token: storeToken }).getKeyManagerConfiguration({}), Code.PermissionDenied);
      await rejectsWith(
        server.client(UserService, { protocol, token: gatewayToken }).createUser({ user: { username: "mallory" }, password: "mallory-password" }),
        Code.PermissionDenied,
      );
      await rejectsWith(
        server.client(SystemClientService, { protocol, token: storeToken }).createSystemClient({ systemClient: { name: "x", scopes: ["km:admin"] } }),
        Code.PermissionDenied,
      );
      await rejectsWith(
        server
          .client(TokenValidationService, { protocol, token: storeToken })
          .validateToken({ context: "/a", version: "1", accessToken: "t", matchingResource: "/", httpVerb: "GET" }),
        Code.PermissionDenied,
        /km:gateway/,
      );
      // GetUserClaims is a gateway's call (a backend JWT's claims), not the store's or an admin's.
      for (const token of [storeToken, adminToken]) {
        await rejectsWith(server.client(KeyManagerService, { protocol, token }).getUserClaims({ username: "mallory" }), Code.PermissionDenied, /km:gateway/);
      }
      await rejectsWith(server.client(KeyManagerService, { protocol, token: gatewayToken }).getUserClaims({ username: "mallory" }), Code.NotFound);
      await rejectsWith(
        server.client(UserService, { protocol, token: gatewayToken }).listUserConsents({ username: "mallory" }),
        Code.PermissionDenied,
        /km:admin/,
      );
      await rejectsWith(
        server.client(UserService, { protocol, token: storeToken }).revokeUserConsent({ username: "mallory", consumerKey: "x" }),
        Code.PermissionDenied,
        /km:admin/,
      );
      const users = await server.client(UserService).listUsers({});
      assert.ok(!users.users.some((u) => u.username === "mallory"));
      // TrustedIssuerService: km:admin only; trusting an issuer would let its JWTs become user tokens.
      for (const token of [storeToken, gatewayToken]) {
        await rejectsWith(
          server.client(TrustedIssuerService, { protocol, token }).createTrustedIssuer({
            trustedIssuer: { issuer: `https://mallory-${protocol}.example.com`, jwksUri: "https://mallory.example.com/jwks", allowedSubjects: ["*"] },
          }),
          Code.PermissionDenied,
          /km:admin/,
        );
      }
      await rejectsWith(server.client(TrustedIssuerService).getTrustedIssuer({ issuer: `https://mallory-${protocol}.example.com` }), Code.NotFound);
    });
  }

  test("the newer KeyManager RPCs in the matrix: each refused to the scopes it is not for, nothing written", async () => {
    const app = (await server.grpc.createApplication(createRequest({ appOwner: "" }))).application;
    assert.ok(app);
    const storeCalls = (km: ReturnType<typeof server.client<typeof KeyManagerService>>) => [
      km.createConsumerSecret({ secret: { consumerKey: app.consumerKey } }),
      km.listConsumerSecrets({ consumerKey: app.consumerKey }),
      km.revokeConsumerSecret({ consumerKey: app.consumerKey, secretId: "x" }),
      km.updateApplicationOwner({ consumerKey: app.consumerKey, appOwner: "mallory" }),
    ];
    for (const token of [gatewayToken, adminToken]) {
      for (const call of storeCalls(server.client(KeyManagerService, { token }))) await rejectsWith(call, Code.PermissionDenied, /apim:subscribe/);
    }
    assert.equal((await server.grpc.listConsumerSecrets({ consumerKey: app.consumerKey })).secrets.length, 0);
    assert.equal((await server.grpc.retrieveApplication({ selector: { case: "consumerKey", value: app.consumerKey } })).application?.appOwner, "");
    for (const token of [storeToken, adminToken]) {
      await rejectsWith(server.client(KeyManagerService, { token }).canHandleToken({ token: "t" }), Code.PermissionDenied, /km:gateway/);
    }
    assert.equal((await server.client(KeyManagerService, { token: gatewayToken }).canHandleToken({ token: "t" })).keyManager, "Resident Key Manager");
    const store = server.client(KeyManagerService, { token: storeToken });
    await rejectsWith(store.listConsumerSecrets({ consumerKey: app.consumerKey }), Code.NotFound, /no OAuth application/);
  });

  test("ScopeService in the matrix: every RPC km:admin only, refused to the store and gateways, nothing written", async () => {
    await server.client(SubscriptionService).createApi({ api: { apiId: "scoped-api", name: "s", context: "/scoped-api", version: "1" } });
    await server.grpc.registerNewResource({
      resource: { apiId: "scoped-api", resources: [{ uriTemplate: "/x", httpVerb: "GET", authLevel: 1, scopes: [], throttlingTier: "Unlimited" }] },
    });
    await server.client(ScopeService).registerScope({ scope: { name: "matrix:kept" } });
    const resources = [{ uriTemplate: "/x", httpVerb: "GET", scopes: ["matrix:kept"] }];
    // Thunks by method, so the count is checked without calling anything.
    const calls = (s: ReturnType<typeof server.client<typeof ScopeService>>): Record<string, () => Promise<unknown>> => ({
      registerScope: () => s.registerScope({ scope: { name: "matrix:new" } }),
      getScopeByName: () => s.getScopeByName({ name: "matrix:kept" }),
      getAllScopes: () => s.getAllScopes({}),
      updateScope: () => s.updateScope({ scope: { name: "matrix:kept", description: "changed" } }),
      deleteScope: () => s.deleteScope({ name: "matrix:kept" }),
      isScopeExists: () => s.isScopeExists({ name: "matrix:kept" }),
      validateScopes: () => s.validateScopes({ names: ["matrix:kept"] }),
      getScopesForAPIs: () => s.getScopesForAPIs({ apiIds: ["scoped-api"] }),
      attachResourceScopes: () => s.attachResourceScopes({ apiId: "scoped-api", resources }),
      updateResourceScopes: () => s.updateResourceScopes({ apiId: "scoped-api", resources }),
      detachResourceScopes: () => s.detachResourceScopes({ apiId: "scoped-api", resources }),
    });
    assert.deepEqual(Object.keys(calls(server.client(ScopeService))).sort(), ScopeService.methods.map((m) => m.localName).sort(), "every RPC of the service");
    for (const protocol of protocols) {
      for (const token of [storeToken, gatewayToken]) {
        for (const call of Object.values(calls(server.client(ScopeService, { protocol, token })))) await rejectsWith(call(), Code.PermissionDenied, /km:admin/);
      }
      for (const call of Object.values(calls(server.client(ScopeService, { protocol, token: "" })))) await rejectsWith(call(), Code.Unauthenticated);
    }
    const admin = server.client(ScopeService, { token: adminToken });
    assert.equal((await admin.isScopeExists({ name: "matrix:new" })).exists, false);
    assert.equal((await admin.getScopeByName({ name: "matrix:kept" })).scope?.description, "");
    assert.deepEqual((await server.grpc.getResourceByApiId({ apiId: "scoped-api" })).resource?.resources[0]?.scopes, []);
  });

  test("each scope opens its own group", async () => {
    const answer = await server
      .client(TokenValidationService, { token: gatewayToken })
      .validateToken({ context: "/a", version: "1", accessToken: "t", matchingResource: "/", httpVerb: "GET" });
    assert.equal(answer.authorized, false);
    assert.ok((await server.client(KeyManagerService, { token: storeToken }).createApplication(createRequest({ appOwner: "" }))).application);
    assert.ok((await server.client(KeyManagerService, { token: adminToken }).getKeyManagerConfiguration({})).configuration);
    assert.deepEqual((await server.client(TrustedIssuerService, { token: adminToken }).listTrustedIssuers({})).trustedIssuers, []);
  });

  test("applications may not hold system scopes, and system clients are not applications", async () => {
    await rejectsWith(server.grpc.createApplication(createRequest({ scopes: ["read:orders", "km:admin"] })), Code.InvalidArgument, /scopes\[1\]: is reserved/);
    const caller = await server.caller(["km:gateway"]);
    await rejectsWith(server.grpc.retrieveApplication({ selector: { case: "consumerKey", value: caller.clientId } }), Code.NotFound);
    await rejectsWith(server.grpc.regenerateConsumerSecret({ consumerKey: caller.clientId }), Code.NotFound);
    await rejectsWith(server.grpc.deleteApplication({ consumerKey: caller.clientId }), Code.NotFound);
    await rejectsWith(
      server.grpc.mapOAuthApplication({
        application: {
          applicationId: crypto.randomUUID(),
          keyType: KeyType.PRODUCTION,
          consumerKey: caller.clientId,
          consumerSecret: caller.clientSecret,
        },
      }),
      Code.InvalidArgument,
      /^consumer_secret: does not match/,
    );
    // Still a working caller.
    await server
      .client(TokenValidationService, { token: caller.token })
      .validateToken({ context: "/a", version: "1", accessToken: "t", matchingResource: "/", httpVerb: "GET" });
  });
});

describe("store callers see only their own applications", () => {
  let alice: ReturnType<typeof server.client<typeof KeyManagerService>>;
  let bob: ReturnType<typeof server.client<typeof KeyManagerService>>;
  let teamB: ReturnType<typeof server.client<typeof KeyManagerService>>;
  before(async () => {
    alice = server.client(KeyManagerService, { token: (await server.caller(["apim:subscribe"], { subscriber: "alice" })).token });
    bob = server.client(KeyManagerService, { token: (await server.caller(["apim:subscribe"], { subscriber: "bob" })).token });
    teamB = server.client(KeyManagerService, { token: (await server.caller(["apim:subscribe"], { subscriber: "trent", groupIds: ["team-b"] })).token });
  });

  test("another subscriber's application answers exactly like a missing one", async () => {
    const app = (await alice.createApplication(createRequest({ appOwner: "" }))).application;
    assert.ok(app);
    assert.equal(app.appOwner, "alice", "a store caller's application belongs to its subscriber");
    const missing = await rejectsWith(bob.retrieveApplication({ selector: { case: "consumerKey", value: "no-such-key" } }), Code.NotFound);
    const hidden = await rejectsWith(bob.retrieveApplication({ selector: { case: "consumerKey", value: app.consumerKey } }), Code.NotFound);
    assert.equal(hidden.rawMessage, missing.rawMessage);
    const byKeyMissing = await rejectsWith(
      bob.retrieveApplication({ selector: { case: "applicationKey", value: { applicationId: crypto.randomUUID(), keyType: KeyType.PRODUCTION } } }),
      Code.NotFound,
    );
    const byKeyHidden = await rejectsWith(
      bob.retrieveApplication({ selector: { case: "applicationKey", value: { applicationId: app.applicationId, keyType: KeyType.PRODUCTION } } }),
      Code.NotFound,
    );
    assert.equal(byKeyHidden.rawMessage, byKeyMissing.rawMessage);

    await rejectsWith(bob.updateApplication({ application: { consumerKey: app.consumerKey, clientName: "stolen" } }), Code.NotFound);
    await rejectsWith(bob.regenerateConsumerSecret({ consumerKey: app.consumerKey }), Code.NotFound);
    await rejectsWith(bob.deleteMappedApplication({ consumerKey: app.consumerKey }), Code.NotFound);
    await rejectsWith(bob.deleteApplication({ consumerKey: app.consumerKey }), Code.NotFound);
    await rejectsWith(bob.getActiveTokensByConsumerKey({ consumerKey: app.consumerKey }), Code.NotFound);
    await rejectsWith(bob.getAccessTokenByConsumerKey({ consumerKey: app.consumerKey }), Code.NotFound);
    await rejectsWith(
      bob.getNewApplicationAccessToken({ request: { clientId: app.consumerKey, clientSecret: app.consumerSecret, grantType: "client_credentials" } }),
      Code.Unauthenticated,
    );

    const token =
      (await alice.getNewApplicationAccessToken({ request: { clientId: app.consumerKey, clientSecret: app.consumerSecret, grantType: "client_credentials" } }))
        .token?.accessToken ?? "";
    const seenByBob = (await bob.getTokenMetadata({ accessToken: token })).token;
    assert.equal(seenByBob?.tokenValid, false);
    assert.equal(seenByBob?.consumerKey, "");
    await bob.revokeToken({ token });
    assert.equal((await alice.getTokenMetadata({ accessToken: token })).token?.tokenValid, true, "bob's revocation had no effect");

    const still = (await alice.retrieveApplication({ selector: { case: "consumerKey", value: app.consumerKey } })).application;
    assert.equal(still?.clientName, app.clientName);
    assert.equal(still?.consumerSecret, app.consumerSecret);
    await alice.revokeToken({ token });
    assert.equal((await alice.getTokenMetadata({ accessToken: token })).token?.tokenValid, false);
  });

  test("a store caller may not create applications for another subscriber or group", async () => {
    const request = createRequest({ appOwner: "alice" });
    await rejectsWith(bob.createApplication(request), Code.PermissionDenied, /app_owner/);
    await rejectsWith(bob.createApplication(createRequest({ appOwner: "", groupId: "team-b" })), Code.PermissionDenied, /group_id/);
    await rejectsWith(
      server.grpc.retrieveApplication({
        selector: { case: "applicationKey", value: { applicationId: request.application.applicationId as string, keyType: KeyType.PRODUCTION } },
      }),
      Code.NotFound,
    );
  });

  test("members of an application's group see it; admins see everything", async () => {
    const shared = (await server.grpc.createApplication(createRequest({ appOwner: "carol", groupId: "team-a,team-b" }))).application;
    assert.ok(shared);
    assert.ok((await teamB.retrieveApplication({ selector: { case: "consumerKey", value: shared.consumerKey } })).application);
    await rejectsWith(bob.retrieveApplication({ selector: { case: "consumerKey", value: shared.consumerKey } }), Code.NotFound);
    const created = (await teamB.createApplication(createRequest({ appOwner: "", groupId: "team-b" }))).application;
    assert.equal(created?.appOwner, "trent");
    const own = (await alice.createApplication(createRequest({ appOwner: "" }))).application;
    assert.ok((await server.grpc.retrieveApplication({ selector: { case: "consumerKey", value: own?.consumerKey ?? "" } })).application);
  });
});

describe("error messages", () => {
  test("never repeat a token or a secret they were given", async () => {
    const bogus = `bogus-${"z".repeat(40)}`;
    const unauthenticated = await rejectsWith(server.client(UserService, { token: bogus }).listUsers({}), Code.Unauthenticated);
    assert.ok(!unauthenticated.rawMessage.includes(bogus));
    const app = (await server.grpc.createApplication(createRequest())).application;
    assert.ok(app);
    const wrongSecret = `secret-${"q".repeat(40)}`;
    const badClient = await rejectsWith(
      server.grpc.getNewApplicationAccessToken({ request: { clientId: app.consumerKey, clientSecret: wrongSecret, grantType: "client_credentials" } }),
      Code.Unauthenticated,
    );
    assert.ok(!badClient.rawMessage.includes(wrongSecret));
    const badRefresh = await rejectsWith(
      server.grpc.getNewApplicationAccessToken({
        request: { clientId: app.consumerKey, clientSecret: app.consumerSecret, grantType: "refresh_token", refreshToken: bogus },
      }),
      Code.InvalidArgument,
    );
    assert.ok(!badRefresh.rawMessage.includes(bogus) && !badRefresh.rawMessage.includes(app.consumerSecret));
    const mapped = await rejectsWith(
      server.grpc.mapOAuthApplication({
        application: {
          applicationId: crypto.randomUUID(),
          keyType: KeyType.SANDBOX,
          consumerKey: app.consumerKey,
          consumerSecret: wrongSecret,
        },
      }),
      Code.InvalidArgument,
    );
    assert.ok(!mapped.rawMessage.includes(wrongSecret) && !mapped.rawMessage.includes(app.consumerSecret));
    const res = await fetch(`http://127.0.0.1:${server.httpPort}/oauth2/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `grant_type=client_credentials&client_id=${app.consumerKey}&client_secret=${wrongSecret}`,
    });
    const text = await res.text();
    assert.equal(res.status, 401);
    assert.ok(!text.includes(wrongSecret) && !text.includes(app.consumerSecret));
  });
});

describe("client authentication floods are slowed down", () => {
  test(`after ${FREE_FAILURES} failures from one address, that address is paused for the client id, even with its right secret, then recovers`, async () => {
    const app = (await server.grpc.createApplication(createRequest())).application;
    assert.ok(app);
    const attempt = (secret: string) =>
      fetch(`http://127.0.0.1:${server.httpPort}/oauth2/token`, {
        method: "POST",
        headers: {
          "content-type": "application/x-www-form-urlencoded",
          authorization: `Basic ${Buffer.from(`${app.consumerKey}:${secret}`).toString("base64")}`,
        },
        body: "grant_type=client_credentials",
      });
    for (let i = 0; i < FREE_FAILURES; i++) assert.equal((await attempt(`wrong-${i}`)).status, 401);
    const paused = await attempt(app.consumerSecret);
    assert.equal(paused.status, 429);
    assert.match(((await paused.json()) as { error_description: string }).error_description, /retry in \d+ s/);
    await rejectsWith(
      server.grpc.getNewApplicationAccessToken({ request: { clientId: app.consumerKey, clientSecret: app.consumerSecret, grantType: "client_credentials" } }),
      Code.ResourceExhausted,
    );
    clock.advance(2);
    assert.equal((await attempt(app.consumerSecret)).status, 200, "the pause is over");
    assert.equal((await attempt("wrong-again")).status, 401, "a success cleared the count");
  });
});

describe("logs", () => {
  test("every change leaves an audit line (who, what, target) and no secret or token is ever logged", async () => {
    const admin = await server.caller(["km:admin", "apim:subscribe"]);
    const km = server.client(KeyManagerService, { token: admin.token });
    const app = (await km.createApplication(createRequest())).application;
    assert.ok(app);
    const token = (
      await km.getNewApplicationAccessToken({ request: { clientId: app.consumerKey, clientSecret: app.consumerSecret, grantType: "client_credentials" } })
    ).token;
    await km.revokeToken({ token: token?.accessToken ?? "" });
    const regenerated = await km.regenerateConsumerSecret({ consumerKey: app.consumerKey });
    await rejectsWith(
      km.getNewApplicationAccessToken({ request: { clientId: app.consumerKey, clientSecret: app.consumerSecret, grantType: "client_credentials" } }),
      Code.Unauthenticated,
    );
    await server.client(UserService, { token: admin.token }).createUser({ user: { username: "logged-user" }, password: "a very secret password" });

    const audit = logLines.filter((l) => l.log === "audit");
    const about = (what: string) => audit.filter((l) => l.what === `keymanager.v1.${what}` && l.who === admin.clientId);
    assert.equal(about("KeyManagerService/CreateApplication").length, 1);
    assert.deepEqual((about("KeyManagerService/CreateApplication")[0]?.target as Record<string, unknown> | undefined)?.applicationId, app.applicationId);
    assert.equal(about("KeyManagerService/RevokeToken").length, 1);
    assert.equal(about("KeyManagerService/RegenerateConsumerSecret").length, 1);
    assert.equal(about("UserService/CreateUser").length, 1);
    assert.equal(about("KeyManagerService/RetrieveApplication").length, 0, "reads are not changes");
    assert.ok(audit.every((l) => typeof l.at === "string" && typeof l.who === "string"));

    const secrets = [
      app.consumerSecret,
      regenerated.consumerSecret,
      token?.accessToken ?? "",
      admin.token,
      admin.clientSecret,
      server.token,
      "a very secret password",
    ];
    const all = rawLines.join("\n");
    for (const secret of secrets) {
      assert.ok(secret.length > 8);
      assert.ok(!all.includes(secret), "a secret or token reached the log");
    }
    assert.ok(logLines.length > 10, "the log was captured");
  });
});

// Last: it moves the clock past every caller token of this file.
describe("expiry", () => {
  test("an expired caller token is refused", async () => {
    const admin = await server.caller(["km:admin"]);
    const users = server.client(UserService, { token: admin.token });
    await users.listUsers({});
    clock.advance(301 * 24 * 3600);
    await rejectsWith(users.listUsers({}), Code.Unauthenticated);
  });
});
