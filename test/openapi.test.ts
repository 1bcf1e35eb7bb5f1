import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { UserService } from "../gen/keymanager/v1/user_service_pb.js";
import { createRequest } from "./support/fixtures.js";
import { OpenApiChecker } from "./support/openapi.js";
import { startServer, type TestServer } from "./support/server.js";
import { FormBrowser, formOf } from "./support/form-browser.js";

// The OpenAPI documents the server serves (GET /openapi/store.json, /openapi/oauth2.json): each a
// valid OpenAPI 3.1 document, and every real answer of the server, for every documented status,
// matches it (status documented, content type, body schema with additionalProperties: false,
// headers). Statuses documented but not reached here are listed and must stay that short list.

let server: TestServer;
let base = "";
before(async () => {
  server = await startServer();
  base = `http://127.0.0.1:${server.httpPort}`;
});
after(() => server.close());

async function served(name: string): Promise<OpenApiChecker> {
  const res = await fetch(`${base}/openapi/${name}.json`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
  return OpenApiChecker.of(name, await res.json());
}

const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`;
const FORM = "application/x-www-form-urlencoded";

describe("OpenAPI documents against real answers", () => {
  test("the Store REST API", async () => {
    const doc = await served("store");
    const path = "/api/am/store/v0.13/applications/{applicationId}/keys/{keyType}";
    const app = (await server.grpc.createApplication(createRequest())).application;
    assert.ok(app);
    const url = (appId: string, keyType = "PRODUCTION") => `${base}/api/am/store/v0.13/applications/${appId}/keys/${keyType}`;
    const auth = { authorization: `Bearer ${server.token}` };
    const gateway = await server.caller(["km:gateway"]);

    const read = await fetch(url(app.applicationId), { headers: auth });
    const etag = read.headers.get("etag") ?? "";
    const key = (await doc.check(path, "get", read)) as { consumerKey: string };
    assert.equal(key.consumerKey, app.consumerKey);
    await doc.check(path, "get", await fetch(url(app.applicationId, "STAGING"), { headers: auth }));
    await doc.check(path, "get", await fetch(url(app.applicationId)));
    await doc.check(path, "get", await fetch(url(app.applicationId), { headers: { authorization: `Bearer ${gateway.token}` } }));
    await doc.check(path, "get", await fetch(url("00000000-0000-0000-0000-000000000000"), { headers: auth }));
    await doc.check(path, "get", await fetch(url(app.applicationId), { headers: { ...auth, accept: "text/html" } }));

    const put = (body: string, headers: Record<string, string> = {}) =>
      fetch(url(app.applicationId), { method: "PUT", headers: { ...auth, "content-type": "application/json", ...headers }, body });
    const update = JSON.stringify({ supportedGrantTypes: ["client_credentials"], callbackUrl: "https://cb.example/x" });
    const written = (await doc.check(path, "put", await put(update, { "if-match": etag }))) as { callbackUrl: string };
    assert.equal(written.callbackUrl, "https://cb.example/x");
    await doc.check(path, "put", await put(update, { "if-match": etag })); // stale now: 412
    await doc.check(path, "put", await put('{"supportedGrantTypes": 5}'));
    await doc.check(path, "put", await put(update, { "content-type": "text/plain" }));
    await doc.check(path, "put", await put(JSON.stringify({ callbackUrl: "x".repeat(70 * 1024) })));
    await doc.check(path, "put", await put(update, { authorization: "" }));
    await doc.check(path, "put", await put(update, { authorization: `Bearer ${gateway.token}` }));
    await doc.check(path, "put", await put(update, { accept: "text/html" }));
    await doc.check(
      path,
      "put",
      await fetch(url("00000000-0000-0000-0000-000000000000"), { method: "PUT", headers: { ...auth, "content-type": "application/json" }, body: update }),
    );
    // 503 is the answer while the database does not answer: test/database-faults.test.ts checks it.
    assert.deepEqual(doc.unseen(), [
      "get /api/am/store/v0.13/applications/{applicationId}/keys/{keyType} 503",
      "put /api/am/store/v0.13/applications/{applicationId}/keys/{keyType} 503",
    ]);
  });

  test("the OAuth2 endpoints and /healthz", async () => {
    const doc = await served("oauth2");
    const app = (
      await server.grpc.createApplication(
        createRequest({ grantTypes: ["client_credentials", "password", "refresh_token", "urn:ietf:params:oauth:grant-type:token-exchange"] }),
      )
    ).application;
    assert.ok(app);
    await server.client(UserService).createUser({ user: { username: "openapi-user" }, password: "a long password 1" });
    const post = (path: string, body: string, headers: Record<string, string> = {}) =>
      fetch(`${base}${path}`, { method: "POST", headers: { "content-type": FORM, ...headers }, body });
    const asApp = { authorization: basic(app.consumerKey, app.consumerSecret) };

    const issued = (await doc.check("/oauth2/token", "post", await post("/oauth2/token", "grant_type=client_credentials", asApp))) as { access_token: string };
    const user = (await doc.check(
      "/oauth2/token",
      "post",
      await post("/oauth2/token", "grant_type=password&username=openapi-user&password=a+long+password+1", asApp),
    )) as { access_token: string; refresh_token?: string };
    assert.ok(user.refresh_token, "the password grant answers a refresh token too");
    // Token exchange (RFC 8693) of the client's own user token: its answer names issued_token_type.
    const exchange = `grant_type=${encodeURIComponent("urn:ietf:params:oauth:grant-type:token-exchange")}&subject_token=${user.access_token}&subject_token_type=${encodeURIComponent("urn:ietf:params:oauth:token-type:access_token")}`;
    const exchanged = (await doc.check("/oauth2/token", "post", await post("/oauth2/token", exchange, asApp))) as { issued_token_type?: string };
    assert.equal(exchanged.issued_token_type, "urn:ietf:params:oauth:token-type:access_token");
    await doc.check("/oauth2/token", "post", await post("/oauth2/token", `${exchange}&audience=elsewhere`, asApp));
    await doc.check("/oauth2/token", "post", await post("/oauth2/token", "grant_type=implicit", asApp));
    await doc.check("/oauth2/token", "post", await post("/oauth2/token", "grant_type=client_credentials", { authorization: basic(app.consumerKey, "wrong") }));

    const active = (await doc.check("/oauth2/introspect", "post", await post("/oauth2/introspect", `token=${issued.access_token}`, asApp))) as {
      active: boolean;
    };
    assert.equal(active.active, true);
    const inactive = (await doc.check("/oauth2/introspect", "post", await post("/oauth2/introspect", "token=nope", asApp))) as { active: boolean };
    assert.equal(inactive.active, false);
    await doc.check("/oauth2/introspect", "post", await post("/oauth2/introspect", "token=x", { ...asApp, "content-type": "text/plain" }));
    await doc.check("/oauth2/introspect", "post", await post("/oauth2/introspect", "token=x", { authorization: basic(app.consumerKey, "wrong") }));

    await doc.check("/oauth2/revoke", "post", await post("/oauth2/revoke", `token=${issued.access_token}`, asApp));
    await doc.check("/oauth2/revoke", "post", await post("/oauth2/revoke", "", asApp));
    await doc.check("/oauth2/revoke", "post", await post("/oauth2/revoke", "token=x", { authorization: basic(app.consumerKey, "wrong") }));

    // Five wrong secrets for one client id from this address pause it: 429 at every endpoint.
    const locked = { authorization: basic("openapi-locked-out", "wrong") };
    for (let i = 0; i < 5; i++) await (await post("/oauth2/token", "grant_type=client_credentials", locked)).arrayBuffer();
    await doc.check("/oauth2/token", "post", await post("/oauth2/token", "grant_type=client_credentials", locked));
    await doc.check("/oauth2/introspect", "post", await post("/oauth2/introspect", "token=x", locked));
    await doc.check("/oauth2/revoke", "post", await post("/oauth2/revoke", "token=x", locked));

    await doc.check("/oauth2/jwks", "get", await fetch(`${base}/oauth2/jwks`));
    await doc.check("/.well-known/oauth-authorization-server", "get", await fetch(`${base}/.well-known/oauth-authorization-server`));
    await doc.check("/healthz", "get", await fetch(`${base}/healthz`));
    await doc.check("/livez", "get", await fetch(`${base}/livez`));
    await checkAuthorizationPages(doc);
    await doc.check("/.well-known/openid-configuration", "get", await fetch(`${base}/.well-known/openid-configuration`));
    await doc.check("/oauth2/userinfo", "get", await fetch(`${base}/oauth2/userinfo`));
    await doc.check("/oauth2/userinfo", "get", await fetch(`${base}/oauth2/userinfo`, { headers: { authorization: `Bearer ${issued.access_token}` } }));
    // An active token without openid (an application's): 403 insufficient_scope.
    const appToken = ((await (await post("/oauth2/token", "grant_type=client_credentials", asApp)).json()) as { access_token: string }).access_token;
    await doc.check("/oauth2/userinfo", "get", await fetch(`${base}/oauth2/userinfo`, { headers: { authorization: `Bearer ${appToken}` } }));
    // /healthz 503 is the answer of a stopping server or one without its database, and 503
    // temporarily_unavailable that of a database that does not answer: test/database-faults.test.ts
    // checks those answers against this document.
    assert.deepEqual(doc.unseen(), ["post /oauth2/token 503", "post /oauth2/introspect 503", "post /oauth2/revoke 503", "get /healthz 503"]);
  });

  test("the documents are open to all, GET or HEAD only", async () => {
    assert.equal((await fetch(`${base}/openapi/store.json`, { method: "HEAD" })).status, 200);
    const res = await fetch(`${base}/openapi/oauth2.json`, { method: "POST" });
    assert.equal(res.status, 405);
    assert.equal(res.headers.get("allow"), "GET, HEAD");
  });
});

/** Every documented answer of the authorization endpoint and its pages (test/authorization-code.test.ts tests what they do). */
async function checkAuthorizationPages(doc: OpenApiChecker): Promise<void> {
  const callback = "http://127.0.0.1:9/cb";
  const app = (await server.grpc.createApplication(createRequest({ grantTypes: ["authorization_code"], callbackUrls: [callback] }))).application;
  assert.ok(app);
  await server.client(UserService).createUser({ user: { username: "openapi-page-user" }, password: "a long password 2" });
  const challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
  const query = new URLSearchParams({
    response_type: "code",
    client_id: app.consumerKey,
    code_challenge: challenge,
    code_challenge_method: "S256",
    state: "s",
    scope: "openid profile",
  });
  const browser = new FormBrowser(base);
  const authorize = "/oauth2/authorize";
  const loginPage = await browser.get(`${authorize}?${query}`);
  const loginHtml = await loginPage.clone().text();
  await doc.check(authorize, "get", loginPage);
  await doc.check(authorize, "get", await browser.get(`${authorize}?${query}&response_type=token`.replace("response_type=code&", "")));
  await doc.check(authorize, "get", await browser.get(`${authorize}?response_type=code&client_id=nobody`));
  const post = (fields: Record<string, string | undefined>, html = loginHtml) => browser.submit(html, fields);
  await doc.check(authorize, "post", await post({ username: "openapi-page-user", password: "wrong password" }));
  await doc.check(authorize, "post", await post({ csrf_token: undefined, username: "openapi-page-user", password: "a long password 2" }));
  await doc.check(authorize, "post", await fetch(`${base}${authorize}`, { method: "POST", headers: { "content-type": "text/plain" }, body: "x" }));
  const consent = await post({ username: "openapi-page-user", password: "a long password 2" });
  const consentHtml = await consent.clone().text();
  await doc.check(authorize, "post", consent);
  const approved = await browser.submit(consentHtml, {}, { button: "consent" });
  const code = new URL(approved.clone().headers.get("location") ?? "").searchParams.get("code") ?? "";
  await doc.check(authorize, "post", approved);
  // An OpenID Connect code's token (with id_token) and its userinfo.
  const tokens = (await doc.check(
    "/oauth2/token",
    "post",
    await fetch(`${base}/oauth2/token`, {
      method: "POST",
      headers: { "content-type": FORM, authorization: basic(app.consumerKey, app.consumerSecret) },
      body: new URLSearchParams({ grant_type: "authorization_code", code, code_verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk" }),
    }),
  )) as { access_token: string; id_token?: string };
  assert.ok(tokens.id_token, JSON.stringify(tokens));
  await doc.check("/oauth2/userinfo", "get", await fetch(`${base}/oauth2/userinfo`, { headers: { authorization: `Bearer ${tokens.access_token}` } }));
  for (let i = 0; i < 5; i++) await (await post({ username: "openapi-flooded", password: "wrong password" })).arrayBuffer();
  await doc.check(authorize, "post", await post({ username: "openapi-flooded", password: "wrong password" }));

  const logoutPage = await browser.get("/oauth2/logout");
  const logoutHtml = await logoutPage.clone().text();
  await doc.check("/oauth2/logout", "get", logoutPage);
  await doc.check("/oauth2/logout", "post", await browser.post("/oauth2/logout", new URLSearchParams({ csrf_token: "forged" })));
  await doc.check("/oauth2/logout", "post", await fetch(`${base}/oauth2/logout`, { method: "POST", headers: { "content-type": "text/plain" }, body: "x" }));
  await doc.check("/oauth2/logout", "post", await browser.post("/oauth2/logout", new URLSearchParams(formOf(logoutHtml).fields)));
}
