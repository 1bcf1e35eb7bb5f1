import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { AuthLevel, KeyType, SubscriptionService, SubscriptionState } from "@keymanager/client";
import { SCOPES } from "../../../src/auth/scopes.js";
import { TestClock } from "../../../test/support/clock.js";
import { describeOnEachDatabase } from "../../../test/support/each-database.js";
import { type ExternalServer, startOidcServer } from "../../../test/support/oidc-server.js";
import { startServer, type TestServer } from "../../../test/support/server.js";
import { createGatewayValidator, type GatewayValidator, type ValidateInput } from "../src/index.js";
import { serverAnswer } from "./fixture.js";

const API = { apiId: "ext-weather", name: "WeatherAPI", context: "/weather", version: "2.0.0", publisher: "admin", apiTier: "Gold" };
const RESOURCES = [
  { uriTemplate: "/forecast", httpVerb: "GET", authLevel: AuthLevel.APPLICATION, scopes: [], throttlingTier: "Unlimited" },
  { uriTemplate: "/alerts", httpVerb: "GET", authLevel: AuthLevel.ANY, scopes: ["write"], throttlingTier: "Gold" },
  { uriTemplate: "/me", httpVerb: "GET", authLevel: AuthLevel.APPLICATION_USER, scopes: [], throttlingTier: "Gold" },
];
const REQUESTS: Omit<ValidateInput, "token">[] = [
  { context: API.context, version: API.version, resource: "/forecast", verb: "GET" },
  { context: API.context, version: API.version, path: "/weather/2.0.0/alerts?x=1", verb: "GET" },
  { context: API.context, version: API.version, resource: "/me", verb: "GET" },
  { context: API.context, version: "1.0.0", resource: "/forecast", verb: "GET" },
];

/**
 * External key managers configured for JWKS validation: their JWTs are verified in process by
 * the library (the snapshot names their issuer and JWKS location, or leaves it to discovery),
 * and decided with @keymanager/core exactly as ValidateToken decides them; the server's answer is
 * the reference, field by field, against a real external issuer (oidc-provider).
 */
describeOnEachDatabase("external key managers' JWTs decided in process", (database) => {
  let discovered: ExternalServer;
  let configured: ExternalServer;
  let server: TestServer;
  let v: GatewayValidator;
  const clock = new TestClock(Date.now());
  const tokens: { name: string; token: string }[] = [];
  const subscriptions: string[] = [];

  before(async () => {
    discovered = await startOidcServer({ jwtAccessTokens: true });
    configured = await startOidcServer({ jwtAccessTokens: true });
    server = await startServer({
      clock,
      databaseUrl: database.url(),
      overrides: {
        gateway_sync: { heartbeat_interval_ms: 100 },
        external: [
          // Its JWKS location left to discovery (the snapshot carries none): the library reads the issuer's metadata.
          { name: "jwt-discovered", issuer: discovered.issuer, initial_access_token: discovered.initialAccessToken, jwt_validation: "jwks", timeout_ms: 2000 },
          // Its JWKS location configured (the snapshot carries it).
          {
            name: "jwt-configured",
            issuer: `${configured.issuer}/`,
            endpoints: { jwks: `${configured.issuer}/jwks` },
            initial_access_token: configured.initialAccessToken,
            jwt_validation: "jwks",
            timeout_ms: 2000,
          },
        ],
      },
    });
    await server.client(SubscriptionService).createApi({ api: API });
    await server.grpc.registerNewResource({ resource: { apiId: API.apiId, resources: RESOURCES } });
    const apps: [string, string, boolean][] = [
      ["jwt-discovered", "subscribed", true],
      ["jwt-configured", "subscribed", true],
      ["jwt-discovered", "not subscribed", false],
    ];
    for (const [keyManager, what, subscribe] of apps) {
      const applicationId = randomUUID();
      const app = (
        await server.grpc.createApplication({
          application: {
            applicationId,
            keyType: KeyType.PRODUCTION,
            clientName: `${keyManager}-${what}`.replace(/ /g, "-"),
            grantTypes: ["client_credentials"],
            scopes: ["read", "write"],
            keyManager,
          },
        })
      ).application;
      assert.ok(app);
      if (subscribe) {
        const sub = await server.client(SubscriptionService).createSubscription({ subscription: { applicationId, apiId: API.apiId, tier: "Gold" } });
        subscriptions.push(sub.subscription?.subscriptionId ?? "");
      }
      for (const scopes of [["read"], ["read", "write"]]) {
        const res = await server.grpc.getNewApplicationAccessToken({
          request: { clientId: app.consumerKey, clientSecret: app.consumerSecret, grantType: "client_credentials", scopes },
        });
        const token = res.token?.accessToken ?? "";
        assert.equal(token.split(".").length, 3, "a JWT");
        tokens.push({ name: `${keyManager}, ${what}, scopes ${scopes.join(" ")}`, token });
      }
    }
    const first = tokens[0]!.token;
    tokens.push({ name: "forged", token: `${first.slice(0, -6)}AAAAAA` });
    const gateway = await server.caller([SCOPES.gateway]);
    v = createGatewayValidator({ target: `127.0.0.1:${server.grpcPort}`, token: gateway.token }, { now: () => clock.now().getTime() });
    await v.ready();
  });
  after(async () => {
    await v?.close();
    await server?.close();
    await discovered?.stop().catch(() => {});
    await configured?.stop().catch(() => {});
  });

  async function assertEquivalent(when: string): Promise<number> {
    let cases = 0;
    for (const { name, token } of tokens) {
      for (const r of REQUESTS) {
        const input = { ...r, token };
        assert.deepEqual(await v.validate(input), await serverAnswer(server, input), `${when}: ${name}, ${JSON.stringify(r)}`);
        cases++;
      }
    }
    return cases;
  }

  /** Waits until the copy shows a change made now (an event past the version it had). */
  async function delivered(before: bigint): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (BigInt(v.stats().copy?.version || "0") <= before) {
      assert.ok(Date.now() < deadline, "the change reached the copy");
      await sleep(5);
    }
  }

  test("the snapshot names the external issuers; their JWTs are verified and decided in process, as ValidateToken decides them", async () => {
    const before = v.stats();
    const jwksFetches = discovered.requests("/jwks") + configured.requests("/jwks");
    const cases = await assertEquivalent("at start");
    const after = v.stats();
    assert.equal(after.remote, before.remote, "no external JWT was asked of the server");
    assert.equal(after.local - before.local, cases);
    assert.ok(discovered.requests("/jwks") + configured.requests("/jwks") > jwksFetches || jwksFetches > 0, "the JWKS were fetched");
    const authorized = await v.validate({ ...REQUESTS[0]!, token: tokens[0]!.token });
    assert.equal(authorized.authorized, true, authorized.statusDescription);
    assert.equal(authorized.keyManager, "jwt-discovered");
    assert.equal(authorized.tokenType, "JWT");
    const configuredAnswer = await v.validate({ ...REQUESTS[1]!, token: tokens[3]!.token });
    assert.equal(configuredAnswer.authorized, true, configuredAnswer.statusDescription);
    assert.equal(configuredAnswer.keyManager, "jwt-configured");
    assert.equal((await v.validate({ ...REQUESTS[1]!, token: tokens[2]!.token })).statusCode, 900910, "scope read only");
    assert.equal((await v.validate({ ...REQUESTS[0]!, token: tokens[4]!.token })).statusCode, 900908, "not subscribed");
    assert.equal((await v.validate({ ...REQUESTS[0]!, token: tokens[6]!.token })).statusCode, 900901, "forged");
    console.log(`# ${database.name}: ${cases} external-JWT cases equal to ValidateToken, every one decided in process`);
  });

  test("a subscription blocked reaches the copy: still decided in process, still as ValidateToken", async () => {
    const version = BigInt(v.stats().copy?.version || "0");
    await server.client(SubscriptionService).updateSubscription({
      subscription: { subscriptionId: subscriptions[0], state: SubscriptionState.BLOCKED },
      updateMask: { paths: ["state"] },
    });
    await delivered(version);
    const before = v.stats().remote;
    await assertEquivalent("blocked");
    assert.equal(v.stats().remote, before);
    assert.equal((await v.validate({ ...REQUESTS[0]!, token: tokens[0]!.token })).statusCode, 900907);
  });

  test("once expired (both clocks two hours on), refused as the server refuses them", async () => {
    clock.advance(2 * 3600);
    // The copy was last confirmed two hours ago by the moved clock: wait for the next heartbeat.
    const deadline = Date.now() + 10_000;
    while (!v.stats().copy?.usable) {
      assert.ok(Date.now() < deadline, "a heartbeat confirmed the copy");
      await sleep(5);
    }
    const before = v.stats().remote;
    await assertEquivalent("expired");
    assert.equal(v.stats().remote, before, "decided in process");
    assert.equal((await v.validate({ ...REQUESTS[0]!, token: tokens[2]!.token })).statusCode, 900901);
  });
});
