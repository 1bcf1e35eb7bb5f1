import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { AuthLevel, SubscriptionService, TokenType } from "@keymanager/client";
import { SCOPES } from "../../../src/auth/scopes.js";
import { createRequest } from "../../../test/support/fixtures.js";
import { startServer, type TestServer } from "../../../test/support/server.js";
import { createGatewayValidator, type GatewayValidator, type ValidateInput } from "../src/index.js";
import { serverAnswer } from "./fixture.js";

/**
 * A JWT carries its issue time in whole seconds. A consumer key revoked (a secret regenerated) in
 * the same second as a JWT's iat cannot tell from the copy whether the token came before or
 * after it: the library asks the server, and answers as it does. A revocation a second or more
 * after the iat is decided in process.
 */
const API = { apiId: "same-second", name: "SameSecond", context: "/same", version: "1.0.0", publisher: "admin", apiTier: "Gold" };
const REQUEST: Omit<ValidateInput, "token"> = { context: API.context, version: API.version, resource: "/items", verb: "GET" };

let server: TestServer;
let v: GatewayValidator;
let app: { consumerKey: string; consumerSecret: string };

before(async () => {
  server = await startServer({ overrides: { gateway_sync: { heartbeat_interval_ms: 100 } } });
  await server.client(SubscriptionService).createApi({ api: API });
  await server.grpc.registerNewResource({
    resource: { apiId: API.apiId, resources: [{ uriTemplate: "/items", httpVerb: "GET", authLevel: AuthLevel.ANY, scopes: [], throttlingTier: "Gold" }] },
  });
  const applicationId = randomUUID();
  const created = (await server.grpc.createApplication(createRequest({ applicationId, tokenType: TokenType.JWT }))).application;
  assert.ok(created);
  app = created;
  await server.client(SubscriptionService).createSubscription({ subscription: { applicationId, apiId: API.apiId, tier: "Gold" } });
  const gateway = await server.caller([SCOPES.gateway]);
  v = createGatewayValidator({ target: `127.0.0.1:${server.grpcPort}`, token: gateway.token });
  await v.ready();
});
after(async () => {
  await v?.close();
  await server?.close();
});

async function issue(): Promise<string> {
  const res = await server.grpc.getNewApplicationAccessToken({
    request: { clientId: app.consumerKey, clientSecret: app.consumerSecret, grantType: "client_credentials" },
  });
  return res.token?.accessToken ?? assert.fail("a token");
}

/** Regenerates the secret (every token of the client revoked) and waits until the copy has the revocation. */
async function regenerate(): Promise<void> {
  const before = BigInt(v.stats().copy?.version || "0");
  app = { ...app, consumerSecret: (await server.grpc.regenerateConsumerSecret({ consumerKey: app.consumerKey })).consumerSecret };
  const deadline = Date.now() + 10_000;
  while (BigInt(v.stats().copy?.version || "0") <= before) {
    assert.ok(Date.now() < deadline, "the revocation reached the copy");
    await sleep(5);
  }
}

async function same(token: string, what: string) {
  const input = { ...REQUEST, token };
  const local = await v.validate(input);
  assert.deepEqual(local, await serverAnswer(server, input), what);
  return local;
}

test("a JWT issued in the same second as its consumer key's revocation: asked of the server, answered as it answers", async () => {
  for (let attempt = 1; ; attempt++) {
    const before = await issue();
    assert.equal((await same(before, "issued before")).authorized, true);
    // Early in a second, so that the revocation and the next token fall in the same one.
    await sleep(1000 - (Date.now() % 1000) + 20);
    const second = Math.floor(Date.now() / 1000);
    await regenerate();
    const after = await issue();
    if (Math.floor(Date.now() / 1000) !== second) {
      assert.ok(attempt < 5, "revocation and issue in one second (a loaded machine: tried 5 times)");
      continue;
    }
    const remote = v.stats().remote;
    assert.equal((await same(after, "issued after the revocation, same second")).authorized, true, "the token issued after stays valid");
    assert.equal(v.stats().remote, remote + 1, "asked of the server");
    // Issued a second before: revoked for sure, in process.
    assert.equal((await same(before, "issued the second before the revocation")).statusCode, 900901);
    assert.equal(v.stats().remote, remote + 1, "decided in process");
    return;
  }
});

test("a revocation a second or more after a JWT's iat is decided in process", async () => {
  const token = await issue();
  assert.equal((await same(token, "before")).authorized, true);
  await sleep(1000 - (Date.now() % 1000) + 1050);
  await regenerate();
  const remote = v.stats().remote;
  const refused = await same(token, "revoked a second or more after its iat");
  assert.equal(refused.statusCode, 900901);
  assert.equal(refused.statusDescription, "the access token was revoked");
  assert.equal(v.stats().remote, remote, "decided in process");
});
