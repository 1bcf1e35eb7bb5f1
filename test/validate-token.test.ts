import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { type Client, Code } from "@connectrpc/connect";
import { pino } from "pino";
import { SubscriptionService } from "../gen/keymanager/v1/subscription_service_pb.js";
import { TokenValidationService } from "../gen/keymanager/v1/token_validation_service_pb.js";
import { AuthLevel, KeyType, SubscriptionState, TokenType } from "../gen/keymanager/v1/types_pb.js";
import { UserService } from "../gen/keymanager/v1/user_service_pb.js";
import { ChangeEvents } from "../src/domain/change-events.js";
import type { Store } from "../src/storage/store.js";
import { DecisionCache } from "../src/validation/decision-cache.js";
import { TokenValidator } from "../src/validation/token-validator.js";
import { ValidationCache } from "../src/validation/validation-cache.js";
import { rejectsWith } from "./support/assert-rpc.js";
import { TestClock } from "./support/clock.js";
import { createRequest } from "./support/fixtures.js";
import { describeOnEachDatabase } from "./support/each-database.js";
import { startServer, type TestServer } from "./support/server.js";

const API = { apiId: "pizzashack", name: "PizzaShackAPI", context: "/pizzashack", version: "1.0.0", publisher: "admin", apiTier: "Gold" };
const RESOURCES = [
  { uriTemplate: "/menu", httpVerb: "GET", authLevel: AuthLevel.ANY, scopes: [], throttlingTier: "Unlimited" },
  { uriTemplate: "/order", httpVerb: "POST", authLevel: AuthLevel.APPLICATION_USER, scopes: ["order:write"], throttlingTier: "Gold" },
  { uriTemplate: "/order/{id}", httpVerb: "DELETE", authLevel: AuthLevel.APPLICATION, scopes: ["order:admin"], throttlingTier: "Silver" },
  { uriTemplate: "/health", httpVerb: "GET", authLevel: AuthLevel.NONE, scopes: [], throttlingTier: "Unlimited" },
];

describeOnEachDatabase("gateway check", (database) => {
  const clock = new TestClock();
  let server: TestServer;
  let gateway: Client<typeof TokenValidationService>;
  let subs: Client<typeof SubscriptionService>;

  before(async () => {
    server = await startServer({ clock, databaseUrl: database.url() });
    gateway = server.client(TokenValidationService);
    subs = server.client(SubscriptionService);
    await subs.createApi({ api: API });
    await server.grpc.registerNewResource({ resource: { apiId: API.apiId, resources: RESOURCES } });
    await server.client(UserService).createUser({ user: { username: "alice" }, password: "alice-password" });
  });
  after(() => server?.close());

  /** An application with PRODUCTION (or SANDBOX) keys, subscribed to the API, and one of its tokens. */
  async function subscribedApp(options: { keyType?: KeyType; state?: SubscriptionState; scopes?: string[]; tokenType?: TokenType; user?: boolean } = {}) {
    const applicationId = randomUUID();
    const app = (
      await server.grpc.createApplication(
        createRequest({
          applicationId,
          keyType: options.keyType ?? KeyType.PRODUCTION,
          scopes: ["order:write", "order:admin"],
          tokenType: options.tokenType,
          applicationName: "PizzaApp",
          applicationTier: "50PerMin",
        }),
      )
    ).application;
    assert.ok(app);
    const subscription = (await subs.createSubscription({ subscription: { applicationId, apiId: API.apiId, tier: "Gold", state: options.state } }))
      .subscription;
    const request = {
      clientId: app.consumerKey,
      clientSecret: app.consumerSecret,
      scopes: options.scopes ?? ["order:write", "order:admin"],
      ...(options.user
        ? { grantType: "password", resourceOwnerUsername: "alice", resourceOwnerPassword: "alice-password" }
        : { grantType: "client_credentials" }),
    };
    const token = (await server.grpc.getNewApplicationAccessToken({ request })).token?.accessToken ?? "";
    return { app, applicationId, subscription, token };
  }

  function validate(accessToken: string, resource = "/menu", verb = "GET", extra: Record<string, unknown> = {}) {
    return gateway.validateToken({ context: "/pizzashack", version: "1.0.0", accessToken, matchingResource: resource, httpVerb: verb, ...extra });
  }

  async function expectStatus(accessToken: string, code: number, resource?: string, verb?: string, extra?: Record<string, unknown>) {
    const res = await validate(accessToken, resource, verb, extra);
    assert.equal(res.statusCode, code, `status ${res.statusCode} ${res.statusName}`);
    assert.equal(res.authorized, code === 0);
    return res;
  }

  describe("ValidateToken: every status code", () => {
    test("authorized: the gateway gets consumer key, application, tiers, scopes and API", async () => {
      const { app, applicationId, token } = await subscribedApp();
      const res = await expectStatus(token, 0, "/order/{id}", "DELETE");
      assert.equal(res.consumerKey, app.consumerKey);
      assert.equal(res.applicationId, applicationId);
      assert.equal(res.applicationName, "PizzaApp");
      assert.equal(res.applicationTier, "50PerMin");
      assert.equal(res.subscriber, "admin");
      assert.equal(res.subscriptionTier, "Gold");
      assert.equal(res.keyType, KeyType.PRODUCTION);
      assert.equal(res.apiName, "PizzaShackAPI");
      assert.equal(res.apiPublisher, "admin");
      assert.equal(res.apiTier, "Gold");
      assert.equal(res.resourceTier, "Silver");
      assert.equal(res.isApplicationToken, true);
      assert.deepEqual(res.scopes, ["order:write", "order:admin"]);
      assert.equal(res.validityPeriodMs, 3_600_000n);
      assert.equal(res.keyManager, "Resident Key Manager");
    });

    test("a user token on an Application_User resource, with the end user", async () => {
      const { token } = await subscribedApp({ user: true });
      const res = await expectStatus(token, 0, "/order", "POST");
      assert.equal(res.endUserName, "alice");
      assert.equal(res.isApplicationToken, false);
    });

    test("JWT tokens validate too, and a forged one does not", async () => {
      const { token } = await subscribedApp({ tokenType: TokenType.JWT });
      const res = await expectStatus(token, 0);
      assert.equal(res.tokenType, TokenType.JWT);
      await expectStatus(`${token.slice(0, -6)}AAAAAA`, 900901);
    });

    test("None resources need no token", async () => {
      await expectStatus("", 0, "/health", "GET");
    });

    test("900901: unknown, expired and revoked tokens", async () => {
      await expectStatus("no-such-token", 900901);
      const { app, token } = await subscribedApp();
      await expectStatus(token, 0);
      await server.grpc.revokeToken({ token });
      await expectStatus(token, 900901);
      const short =
        (
          await server.grpc.getNewApplicationAccessToken({
            request: { clientId: app.consumerKey, clientSecret: app.consumerSecret, grantType: "client_credentials", validityPeriodSeconds: 10n },
          })
        ).token?.accessToken ?? "";
      await expectStatus(short, 0);
      clock.advance(11);
      await expectStatus(short, 900901);
    });

    test("900902: no token", async () => {
      await expectStatus("", 900902);
    });

    test("900905: an application token on an Application_User resource and the reverse", async () => {
      const appToken = (await subscribedApp()).token;
      await expectStatus(appToken, 900905, "/order", "POST");
      const userToken = (await subscribedApp({ user: true })).token;
      await expectStatus(userToken, 900905, "/order/{id}", "DELETE");
      await expectStatus(userToken, 900905, "/menu", "GET", { requiredAuthLevel: AuthLevel.APPLICATION });
    });

    test("900906: no such resource or verb", async () => {
      const { token } = await subscribedApp();
      await expectStatus(token, 900906, "/nothing", "GET");
      await expectStatus(token, 900906, "/menu", "PATCH");
    });

    test("900907: BLOCKED, and PROD_ONLY_BLOCKED with PRODUCTION keys (SANDBOX still passes)", async () => {
      await expectStatus((await subscribedApp({ state: SubscriptionState.BLOCKED })).token, 900907);
      await expectStatus((await subscribedApp({ state: SubscriptionState.PROD_ONLY_BLOCKED })).token, 900907);
      await expectStatus((await subscribedApp({ state: SubscriptionState.PROD_ONLY_BLOCKED, keyType: KeyType.SANDBOX })).token, 0);
      await expectStatus((await subscribedApp({ state: SubscriptionState.TIER_UPDATE_PENDING })).token, 0);
    });

    test("900908: no such API, no key mapping, no subscription", async () => {
      const { app, token, subscription } = await subscribedApp();
      const res = await gateway.validateToken({ context: "/unknown", version: "1.0.0", accessToken: token, matchingResource: "/menu", httpVerb: "GET" });
      assert.equal(res.statusCode, 900908);
      await subs.deleteSubscription({ subscriptionId: subscription?.subscriptionId ?? "" });
      await expectStatus(token, 900908);
      const mapped = await subscribedApp();
      await server.grpc.deleteMappedApplication({ consumerKey: mapped.app.consumerKey });
      await expectStatus(mapped.token, 900908);
      assert.ok(app);
    });

    test("900909: ON_HOLD and REJECTED subscriptions", async () => {
      await expectStatus((await subscribedApp({ state: SubscriptionState.ON_HOLD })).token, 900909);
      await expectStatus((await subscribedApp({ state: SubscriptionState.REJECTED })).token, 900909);
    });

    test("900910: the token lacks every scope the resource requires", async () => {
      const { token } = await subscribedApp({ scopes: ["order:write"] });
      await expectStatus(token, 900910, "/order/{id}", "DELETE");
    });

    test("900900: an unexpected failure is an answer, not an RPC error", async () => {
      const failing = { apis: { findByContext: () => Promise.reject(new Error("database on fire")) } } as unknown as Store;
      const events = new ChangeEvents();
      const validator = new TokenValidator(
        failing,
        {} as never,
        new ValidationCache(events),
        new DecisionCache(events, 10, 10_000),
        () => server.app.configStore.current,
        clock,
        pino({ level: "silent" }),
      );
      const res = await validator.validate({
        context: "/x",
        version: "1",
        accessToken: "t",
        requiredAuthLevel: undefined,
        matchingResource: "/",
        httpVerb: "GET",
      });
      assert.equal(res.status.code, 900900);
      assert.equal(res.authorized, false);
    });

    test("900912 (KEY_MANAGER_NOT_AVAILABLE) belongs to external key managers; the resident one never answers it", async () => {
      const { token } = await subscribedApp();
      assert.notEqual((await validate(token)).statusCode, 900912);
    });

    test("a malformed request is INVALID_ARGUMENT, not an answer", async () => {
      await rejectsWith(gateway.validateToken({ accessToken: "x" }), Code.InvalidArgument, /context: is required; version: is required/);
    });
  });

  describe("the cache is invalidated at once on this node", () => {
    test("revocation, subscription blocking, tier change, resource change, API change", async () => {
      const { token, subscription } = await subscribedApp();
      await expectStatus(token, 0);
      await subs.updateSubscription({ subscription: { subscriptionId: subscription?.subscriptionId ?? "", state: SubscriptionState.BLOCKED } });
      await expectStatus(token, 900907);
      await subs.updateSubscription({
        subscription: { subscriptionId: subscription?.subscriptionId ?? "", state: SubscriptionState.UNBLOCKED, tier: "Bronze" },
      });
      assert.equal((await expectStatus(token, 0)).subscriptionTier, "Bronze");

      await server.grpc.updateRegisteredResource({ resource: { apiId: API.apiId, resources: RESOURCES.filter((r) => r.uriTemplate !== "/menu") } });
      await expectStatus(token, 900906);
      await server.grpc.updateRegisteredResource({ resource: { apiId: API.apiId, resources: RESOURCES } });
      await expectStatus(token, 0);

      await subs.updateApi({ api: { apiId: API.apiId, version: "2.0.0" }, updateMask: { paths: ["version"] } });
      await expectStatus(token, 900908);
      await subs.updateApi({ api: { apiId: API.apiId, version: "1.0.0" }, updateMask: { paths: ["version"] } });
      await expectStatus(token, 0);

      await server.grpc.revokeToken({ token });
      await expectStatus(token, 900901);
    });

    test("the cache serves repeated checks without the database", async () => {
      const { token } = await subscribedApp();
      await expectStatus(token, 0);
      const cache = (server.app as unknown as { cache: ValidationCache }).cache;
      assert.ok(cache.tokens.size > 0 && cache.subscriptions.size > 0);
    });
  });

  describe("SubscriptionService", () => {
    test("APIs and subscriptions: create, read, list, change, delete, errors", async () => {
      const api = { apiId: `api-${randomUUID()}`, name: "Orders", context: "/orders/", version: "v1", publisher: "", apiTier: "" };
      const created = (await subs.createApi({ api })).api;
      assert.equal(created?.context, "/orders", "trailing slash dropped");
      await rejectsWith(subs.createApi({ api }), Code.AlreadyExists);
      await rejectsWith(subs.createApi({ api: { ...api, apiId: "other" } }), Code.AlreadyExists, /context and version/);
      await rejectsWith(subs.createApi({ api: { ...api, apiId: "x", context: "no-slash" } }), Code.InvalidArgument, /api.context/);
      assert.ok((await subs.listApis({})).apis.some((a) => a.apiId === api.apiId));

      const sub = (await subs.createSubscription({ subscription: { applicationId: "app-1", apiId: api.apiId } })).subscription;
      assert.equal(sub?.tier, "Unlimited");
      assert.equal(sub?.state, SubscriptionState.UNBLOCKED);
      await rejectsWith(subs.createSubscription({ subscription: { applicationId: "app-1", apiId: api.apiId } }), Code.AlreadyExists);
      await rejectsWith(subs.createSubscription({ subscription: { applicationId: "app-1", apiId: "missing-api" } }), Code.FailedPrecondition, /no such API/);
      await rejectsWith(
        subs.createSubscription({ subscription: { applicationId: "app-1", apiId: api.apiId, state: 42 as SubscriptionState } }),
        Code.InvalidArgument,
        /state/,
      );
      assert.equal((await subs.listSubscriptions({ applicationId: "app-1" })).subscriptions.length, 1);
      await rejectsWith(subs.listSubscriptions({}), Code.InvalidArgument);
      await rejectsWith(subs.updateSubscription({ subscription: { subscriptionId: sub?.subscriptionId ?? "" } }), Code.InvalidArgument, /tier/);
      await rejectsWith(subs.getSubscription({ subscriptionId: "nope" }), Code.NotFound);

      await subs.deleteApi({ apiId: api.apiId });
      await rejectsWith(subs.getSubscription({ subscriptionId: sub?.subscriptionId ?? "" }), Code.NotFound, /subscription/);
      await rejectsWith(subs.getApi({ apiId: api.apiId }), Code.NotFound);
    });
  });
});
