import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";
import { AuthLevel, KeyType, SubscriptionService } from "@keymanager/client";
import { SCOPES } from "../../../src/auth/scopes.js";
import { TestClock } from "../../../test/support/clock.js";
import { EXTERNAL_TOKEN_PATTERN, type ExternalServer, startOidcServer } from "../../../test/support/oidc-server.js";
import { startServer, type TestServer } from "../../../test/support/server.js";
import { createGatewayValidator, type GatewayValidator, type ValidateInput } from "../src/index.js";
import { serverAnswer } from "./fixture.js";

const API = { apiId: "ext-opaque", name: "OpaqueAPI", context: "/opaque", version: "1.0.0", publisher: "admin", apiTier: "Gold" };
const KM = "opaque-idp";
const CACHE_SECONDS = 30;

/**
 * An external key manager's opaque tokens: the library asks the server and keeps its answer, but
 * no longer than the server keeps the external server's word (validation_cache_seconds, streamed
 * with the key manager): a token revoked at the external server itself (never through this key
 * manager, so no revocation is streamed) is refused by the library when the server refuses it.
 */
let idp: ExternalServer;
let server: TestServer;
let v: GatewayValidator;
const clock = new TestClock(Date.now());
let token = "";
const request: Omit<ValidateInput, "token"> = { context: API.context, version: API.version, resource: "/items", verb: "GET" };

before(async () => {
  idp = await startOidcServer();
  server = await startServer({
    clock,
    overrides: {
      gateway_sync: { heartbeat_interval_ms: 100 },
      external: [
        {
          name: KM,
          issuer: idp.issuer,
          client_id: idp.serviceClient.clientId,
          client_secret: idp.serviceClient.clientSecret,
          initial_access_token: idp.initialAccessToken,
          token_pattern: EXTERNAL_TOKEN_PATTERN,
          timeout_ms: 2000,
          validation_cache_seconds: CACHE_SECONDS,
        },
      ],
    },
  });
  await server.client(SubscriptionService).createApi({ api: API });
  await server.grpc.registerNewResource({
    resource: { apiId: API.apiId, resources: [{ uriTemplate: "/items", httpVerb: "GET", authLevel: AuthLevel.ANY, scopes: [], throttlingTier: "Unlimited" }] },
  });
  const applicationId = randomUUID();
  const app = (
    await server.grpc.createApplication({
      application: {
        applicationId,
        keyType: KeyType.PRODUCTION,
        clientName: "opaque-app",
        grantTypes: ["client_credentials"],
        scopes: ["read"],
        keyManager: KM,
      },
    })
  ).application;
  assert.ok(app);
  await server.client(SubscriptionService).createSubscription({ subscription: { applicationId, apiId: API.apiId, tier: "Gold" } });
  token =
    (
      await server.grpc.getNewApplicationAccessToken({
        request: { clientId: app.consumerKey, clientSecret: app.consumerSecret, grantType: "client_credentials", scopes: ["read"] },
      })
    ).token?.accessToken ?? "";
  assert.match(token, new RegExp(`^${EXTERNAL_TOKEN_PATTERN}$`), "an opaque token of the external server");
  const gateway = await server.caller([SCOPES.gateway]);
  v = createGatewayValidator({ target: `127.0.0.1:${server.grpcPort}`, token: gateway.token }, { now: () => clock.now().getTime() });
  await v.ready();
});
after(async () => {
  await v?.close();
  await server?.close();
  await idp?.stop().catch(() => {});
});

test(`a kept answer on an external opaque token lasts no longer than the server's validation cache (${CACHE_SECONDS} s)`, async () => {
  const input = { ...request, token };
  const first = await v.validate(input);
  assert.equal(first.authorized, true, first.statusDescription);
  assert.deepEqual(first, await serverAnswer(server, input));
  const asked = v.stats().remote;
  assert.deepEqual(await v.validate(input), first);
  assert.equal(v.stats().remote, asked, "the second answer is the kept one");

  // Revoked at the external server itself: nothing reaches the stream.
  const stored = await idp.provider.ClientCredentials.find(token);
  assert.ok(stored);
  await stored.destroy();

  clock.advance(CACHE_SECONDS - 10);
  assert.equal((await v.validate(input)).authorized, true, "within the period: kept, as the server keeps its own");
  assert.deepEqual(await v.validate(input), await serverAnswer(server, input));

  clock.advance(11);
  const after = await v.validate(input);
  assert.equal(after.authorized, false);
  assert.equal(after.statusCode, 900901);
  assert.deepEqual(after, await serverAnswer(server, input), "refused by the library as the server refuses it");
  assert.equal(v.stats().remote, asked + 1, "asked once more");
});
