// ValidateToken with a raw request path instead of a matched template (the server matches it with
// @keymanager/core's URI templates), and status_description: which check failed. Through the
// generated client over gRPC (grpc-js port) and Connect (HTTP port), on every database.
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { type Client, Code } from "@connectrpc/connect";
import { SubscriptionService } from "../gen/keymanager/v1/subscription_service_pb.js";
import { TokenValidationService, type ValidateTokenRequest } from "../gen/keymanager/v1/token_validation_service_pb.js";
import { AuthLevel, KeyType, SubscriptionState } from "../gen/keymanager/v1/types_pb.js";
import { UserService } from "../gen/keymanager/v1/user_service_pb.js";
import { rejectsWith } from "./support/assert-rpc.js";
import { describeOnEachDatabase } from "./support/each-database.js";
import { createRequest } from "./support/fixtures.js";
import { startServer, type TestServer } from "./support/server.js";

const API = { apiId: "pizzashack", name: "PizzaShackAPI", context: "/pizzashack", version: "1.0.0", publisher: "admin", apiTier: "Gold" };
const resource = (httpVerb: string, uriTemplate: string, authLevel = AuthLevel.ANY, scopes: string[] = []) => ({
  uriTemplate,
  httpVerb,
  authLevel,
  scopes,
  throttlingTier: `tier ${uriTemplate}`,
});
const RESOURCES = [
  resource("GET", "/menu"),
  resource("GET", "/order/{orderId}", AuthLevel.ANY, ["order:read"]),
  resource("GET", "/order/special", AuthLevel.NONE),
  resource("GET", "/order/{id}/items/*"),
  resource("GET", "/files/{name}.json"),
  resource("GET", "/*", AuthLevel.APPLICATION),
  resource("POST", "/order", AuthLevel.APPLICATION_USER),
];

describeOnEachDatabase("ValidateToken by request path, saying which check failed", (database) => {
  let server: TestServer;
  let subs: Client<typeof SubscriptionService>;
  const gateways: Record<string, Client<typeof TokenValidationService>> = {};

  before(async () => {
    server = await startServer({ databaseUrl: database.url() });
    gateways.grpc = server.client(TokenValidationService);
    gateways.connect = server.client(TokenValidationService, { protocol: "connect" });
    subs = server.client(SubscriptionService);
    await subs.createApi({ api: API });
    await server.grpc.registerNewResource({ resource: { apiId: API.apiId, resources: RESOURCES } });
    await server.client(UserService).createUser({ user: { username: "alice" }, password: "alice-password" });
  });
  after(() => server?.close());

  async function subscribedApp(options: { state?: SubscriptionState; keyType?: KeyType; user?: boolean; subscribe?: boolean } = {}) {
    const applicationId = randomUUID();
    const app = (
      await server.grpc.createApplication(
        createRequest({ applicationId, keyType: options.keyType ?? KeyType.PRODUCTION, applicationName: "PizzaApp", scopes: ["order:write"] }),
      )
    ).application;
    assert.ok(app);
    if (options.subscribe !== false) await subs.createSubscription({ subscription: { applicationId, apiId: API.apiId, tier: "Gold", state: options.state } });
    const grant = options.user
      ? { grantType: "password", resourceOwnerUsername: "alice", resourceOwnerPassword: "alice-password" }
      : { grantType: "client_credentials" };
    const request = { clientId: app.consumerKey, clientSecret: app.consumerSecret, scopes: ["order:write"], ...grant };
    const token = (await server.grpc.getNewApplicationAccessToken({ request })).token?.accessToken ?? "";
    return { app, applicationId, token };
  }

  for (const protocol of ["grpc", "connect"] as const) {
    const check = (req: Partial<Pick<ValidateTokenRequest, "context" | "version" | "accessToken" | "matchingResource" | "requestPath" | "httpVerb">>) =>
      gateways[protocol]!.validateToken({ context: "/pizzashack", version: "1.0.0", httpVerb: "GET", ...req }).then((res) => {
        if (req.accessToken) assert.ok(!res.statusDescription.includes(req.accessToken), "a description never holds the token");
        return res;
      });

    describe(`over ${protocol}`, () => {
      test("the most specific template for the verb: literal over variable over wildcard, query ignored, version segment optional", async () => {
        const { token } = await subscribedApp();
        const cases: [string, string, number, string][] = [
          ["GET", "/pizzashack/1.0.0/menu?lang=en&next=/order/1", 0, "/menu"],
          ["GET", "/pizzashack/menu/", 0, "/menu"],
          ["GET", "/pizzashack/1.0.0/order/42", 900910, "/order/{orderId}"],
          ["GET", "/pizzashack/1.0.0/order/7/items/3/x", 0, "/order/{id}/items/*"],
          ["GET", "/pizzashack/1.0.0/order/7/items", 0, "/order/{id}/items/*"],
          ["GET", "/pizzashack/1.0.0/files/a%20b.json", 0, "/files/{name}.json"],
          ["GET", "/pizzashack/1.0.0/anything/else", 0, "/*"],
          ["get", "/pizzashack/1.0.0/", 0, "/*"],
        ];
        for (const [httpVerb, requestPath, code, template] of cases) {
          const res = await check({ accessToken: token, requestPath, httpVerb });
          assert.deepEqual([res.statusCode, res.matchedResource], [code, template], `${httpVerb} ${requestPath}: ${res.statusDescription}`);
          assert.equal(res.resourceTier, `tier ${template}`);
        }
        const open = await check({ accessToken: "", requestPath: "/pizzashack/1.0.0/order/special" });
        assert.deepEqual([open.authorized, open.matchedResource], [true, "/order/special"]);
        // A matched template, when given, is used as it is.
        const given = await check({ accessToken: token, matchingResource: "/menu", requestPath: "/pizzashack/1.0.0/order/42" });
        assert.deepEqual([given.statusCode, given.matchedResource], [0, "/menu"]);
      });

      test("900906 says why no resource was found", async () => {
        const { token } = await subscribedApp();
        const cases: [string, string, string][] = [
          [
            "POST",
            "/pizzashack/1.0.0/menu",
            'no resource of API "PizzaShackAPI" (context "/pizzashack", version "1.0.0") matches "POST" "/pizzashack/1.0.0/menu"',
          ],
          [
            "GET",
            "/burgers/1.0.0/menu?key=abc",
            'request path "/burgers/1.0.0/menu" is not under the context of API "PizzaShackAPI" (context "/pizzashack", version "1.0.0")',
          ],
          ["GET", "/pizzashack/1.0.0/x/../menu", 'request path "/pizzashack/1.0.0/x/../menu" cannot be matched'],
          ["GET", "/pizzashack/1.0.0/%zz", "cannot be matched"],
        ];
        for (const [httpVerb, requestPath, description] of cases) {
          const res = await check({ accessToken: token, requestPath, httpVerb });
          assert.equal(res.statusCode, 900906);
          assert.ok(res.statusDescription.includes(description), res.statusDescription);
          assert.equal(res.matchedResource, "");
        }
        const template = await check({ accessToken: token, matchingResource: "/nothing" });
        assert.equal(template.statusDescription, 'API "PizzaShackAPI" (context "/pizzashack", version "1.0.0") has no resource "GET" "/nothing"');
      });

      test("status_description for every refusal, empty when authorized", async () => {
        const ok = await subscribedApp();
        const okRes = await check({ accessToken: ok.token, matchingResource: "/menu" });
        assert.deepEqual([okRes.statusCode, okRes.statusDescription], [0, ""]);

        const noApi = await check({ context: "/nope/", version: "9", accessToken: ok.token, matchingResource: "/menu" });
        assert.deepEqual([noApi.statusCode, noApi.statusDescription], [900908, 'no API with context "/nope" and version "9"']);

        const missing = await check({ accessToken: "", matchingResource: "/menu" });
        assert.equal(missing.statusCode, 900902);
        assert.match(missing.statusDescription, /^resource GET "\/menu" of API "PizzaShackAPI" .* needs an access token \(auth level ANY\)$/);

        const unknown = await check({ accessToken: "not-a-token-of-ours", matchingResource: "/menu" });
        assert.deepEqual(
          [unknown.statusCode, unknown.statusDescription],
          [900901, "the access token is not known here: not issued by this key manager, or not genuine"],
        );

        const revoked = await subscribedApp();
        await server.grpc.revokeToken({ token: revoked.token });
        const revokedRes = await check({ accessToken: revoked.token, matchingResource: "/menu" });
        assert.deepEqual([revokedRes.statusCode, revokedRes.statusDescription], [900901, "the access token was revoked"]);

        const wrongType = await check({ accessToken: ok.token, matchingResource: "/order", httpVerb: "POST" });
        assert.equal(wrongType.statusCode, 900905);
        assert.match(wrongType.statusDescription, /needs a user token \(auth level APPLICATION_USER\); this is an application token$/);

        const unsubscribed = await subscribedApp({ subscribe: false });
        const noSub = await check({ accessToken: unsubscribed.token, matchingResource: "/menu" });
        assert.equal(noSub.statusCode, 900908);
        assert.equal(
          noSub.statusDescription,
          `application "PizzaApp" (id "${unsubscribed.applicationId}") has no subscription to API "PizzaShackAPI" (context "/pizzashack", version "1.0.0")`,
        );

        const unmapped = await subscribedApp();
        await server.grpc.deleteMappedApplication({ consumerKey: unmapped.app.consumerKey });
        const noMapping = await check({ accessToken: unmapped.token, matchingResource: "/menu" });
        assert.deepEqual([noMapping.statusCode, noMapping.statusDescription], [900908, "the token's OAuth client is not mapped to any application"]);

        const blocked = await subscribedApp({ state: SubscriptionState.PROD_ONLY_BLOCKED });
        const blockedRes = await check({ accessToken: blocked.token, matchingResource: "/menu" });
        assert.equal(blockedRes.statusCode, 900907);
        assert.match(blockedRes.statusDescription, /is PROD_ONLY_BLOCKED and the token is of its PRODUCTION keys$/);

        const onHold = await subscribedApp({ state: SubscriptionState.ON_HOLD });
        const onHoldRes = await check({ accessToken: onHold.token, matchingResource: "/menu" });
        assert.equal(onHoldRes.statusCode, 900909);
        assert.match(onHoldRes.statusDescription, / is ON_HOLD$/);

        const scope = await check({ accessToken: ok.token, requestPath: "/pizzashack/1.0.0/order/1" });
        assert.equal(scope.statusCode, 900910);
        assert.match(scope.statusDescription, /needs one of the scopes "order:read"; the token has "order:write"$/);
      });
    });
  }

  test("neither matching_resource nor request_path is INVALID_ARGUMENT", async () => {
    await rejectsWith(
      gateways.grpc!.validateToken({ context: "/pizzashack", version: "1.0.0", accessToken: "x", httpVerb: "GET" }),
      Code.InvalidArgument,
      /matching_resource: is required \(or request_path\)/,
    );
  });

  test("a template the matcher cannot use is refused at registration, naming it", async () => {
    for (const uriTemplate of ["/order/{id", "/a/{+rest}/b", "/a//b", "/x/{}"]) {
      await rejectsWith(
        server.grpc.registerNewResource({ resource: { apiId: `bad-${randomUUID()}`, resources: [resource("GET", "/ok"), resource("GET", uriTemplate)] } }),
        Code.InvalidArgument,
        /resources\[1\]\.uri_template: is not a URI template/,
      );
    }
  });

  test("answers by path are kept per path without its query, and dropped when resources or the token change", async () => {
    const { token } = await subscribedApp();
    const decisions = (server.app as unknown as { decisions: { size: number } }).decisions;
    const byPath = (requestPath: string) =>
      gateways.grpc!.validateToken({ context: "/pizzashack", version: "1.0.0", httpVerb: "GET", accessToken: token, requestPath });
    assert.equal((await byPath("/pizzashack/1.0.0/menu?n=0")).matchedResource, "/menu");
    const kept = decisions.size;
    for (let n = 1; n < 20; n++) assert.equal((await byPath(`/pizzashack/1.0.0/menu?n=${n}`)).statusCode, 0);
    assert.equal(decisions.size, kept, "one answer for every query string");

    await server.grpc.updateRegisteredResource({ resource: { apiId: API.apiId, resources: RESOURCES.filter((r) => r.uriTemplate !== "/menu") } });
    assert.equal((await byPath("/pizzashack/1.0.0/menu")).matchedResource, "/*");
    await server.grpc.updateRegisteredResource({ resource: { apiId: API.apiId, resources: RESOURCES } });
    assert.equal((await byPath("/pizzashack/1.0.0/menu")).matchedResource, "/menu");

    await server.grpc.revokeToken({ token });
    assert.equal((await byPath("/pizzashack/1.0.0/menu")).statusCode, 900901);
  });
});
