import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { createKeyManagerClient, KeyType, TokenSource } from "@keymanager/client";
import { SCOPES } from "../../../src/auth/scopes.js";
import { startServer, type TestServer } from "../../../test/support/server.js";

let server: TestServer;
let store: { clientId: string; clientSecret: string; token: string };
before(async () => {
  server = await startServer();
  store = await server.caller([SCOPES.store], { subscriber: "admin" });
});
after(() => server?.close());

const httpUrl = () => `http://127.0.0.1:${server.httpPort}`;
const tokenUrl = () => `${httpUrl()}/oauth2/token`;

function application() {
  return { applicationId: randomUUID(), keyType: KeyType.PRODUCTION, clientName: "client_test", grantTypes: ["client_credentials"] };
}

test("with credentials: the token is got from /oauth2/token and every service is callable (Connect)", async () => {
  const km = createKeyManagerClient({ baseUrl: httpUrl(), credentials: { clientId: store.clientId, clientSecret: store.clientSecret } });
  const created = await km.keyManager.createApplication({ application: application() });
  assert.ok(created.application?.consumerKey);
  const admin = createKeyManagerClient({ baseUrl: httpUrl(), token: server.token });
  const apis = await admin.subscriptions.listApis({});
  assert.deepEqual(apis.apis, []);
  // The store's token has no admin scope: refused as the server refuses it.
  await assert.rejects(km.subscriptions.listApis({}), (err) => ConnectError.from(err).code === Code.PermissionDenied);
});

test("over gRPC to the gRPC port, the token from the HTTP port's token endpoint", async () => {
  const km = createKeyManagerClient({
    baseUrl: `http://127.0.0.1:${server.grpcPort}`,
    protocol: "grpc",
    tokenUrl: tokenUrl(),
    credentials: { clientId: store.clientId, clientSecret: store.clientSecret },
  });
  const created = await km.keyManager.createApplication({ application: application() });
  assert.ok(created.application?.consumerSecret);
});

test("a revoked token is replaced once the server refuses it", async () => {
  const km = createKeyManagerClient({ baseUrl: httpUrl(), credentials: { clientId: store.clientId, clientSecret: store.clientSecret } });
  await km.keyManager.createApplication({ application: application() });
  const first = await km.tokens?.token();
  assert.ok(first);
  const basic = Buffer.from(`${store.clientId}:${store.clientSecret}`).toString("base64");
  const revoked = await fetch(`${httpUrl()}/oauth2/revoke`, {
    method: "POST",
    headers: { authorization: `Basic ${basic}`, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ token: first }),
  });
  assert.equal(revoked.status, 200);
  await km.keyManager.createApplication({ application: application() });
  assert.notEqual(await km.tokens?.token(), first);
});

test("TokenSource: a new token before expiry, the old one used meanwhile, one fetch for many callers", async () => {
  let now = Date.now();
  const tokens = new TokenSource({ tokenUrl: tokenUrl(), credentials: { clientId: store.clientId, clientSecret: store.clientSecret }, now: () => now });
  const first = await Promise.all(Array.from({ length: 20 }, () => tokens.token()));
  assert.equal(new Set(first).size, 1, "concurrent callers share one token");
  const token = first[0] as string;
  now += 60_000;
  assert.equal(await tokens.token(), token, "well before expiry: the same token");
  // The server's system tokens live 3600 s; 60 s before, a new one is fetched, the old one still used.
  now += 3_600_000 - 60_000 - 30_000;
  assert.equal(await tokens.token(), token, "the old token while the new one is fetched");
  await new Promise((r) => setTimeout(r, 300));
  const next = await tokens.token();
  assert.notEqual(next, token);
  now += 3_600_000;
  const afterExpiry = await tokens.token();
  assert.notEqual(afterExpiry, next, "past expiry: waits for a new one");
});

test("wrong credentials: an error naming the endpoint's answer, never the secret", async () => {
  const km = createKeyManagerClient({ baseUrl: httpUrl(), credentials: { clientId: store.clientId, clientSecret: "not-the-secret" } });
  await assert.rejects(km.keyManager.createApplication({ application: application() }), (err) => {
    const message = ConnectError.from(err).message;
    assert.match(message, /HTTP 401/);
    assert.doesNotMatch(message, /not-the-secret/);
    return true;
  });
});

test("either a token or credentials", () => {
  assert.throws(() => createKeyManagerClient({ baseUrl: httpUrl() }), TypeError);
  assert.throws(() => createKeyManagerClient({ baseUrl: httpUrl(), token: "t", credentials: { clientId: "a", clientSecret: "b" } }), TypeError);
});
