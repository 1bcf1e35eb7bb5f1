import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import * as oauth from "openid-client";
import { createRequest } from "./support/fixtures.js";
import { describeOnEachDatabase } from "./support/each-database.js";
import { startServer, type TestServer } from "./support/server.js";
import { UserService } from "../gen/keymanager/v1/user_service_pb.js";

describeOnEachDatabase("OAuth2 HTTP endpoints", (database) => {
  let server: TestServer;
  let app: { consumerKey: string; consumerSecret: string };
  let config: oauth.Configuration;
  let base: string;

  before(async () => {
    server = await startServer({ databaseUrl: database.url() });
    base = `http://127.0.0.1:${server.httpPort}`;
    const created = (await server.grpc.createApplication(createRequest())).application;
    assert.ok(created);
    app = created;
    await server.client(UserService).createUser({ user: { username: "carol" }, password: "carol-password" });
    // An ordinary OAuth2 client library, discovering us through RFC 8414 metadata.
    config = await oauth.discovery(new URL(base), app.consumerKey, app.consumerSecret, undefined, {
      algorithm: "oauth2",
      execute: [oauth.allowInsecureRequests],
    });
  });
  after(() => server?.close());

  test("openid-client: discovery, client_credentials, introspection, revocation", async () => {
    const metadata = config.serverMetadata();
    assert.equal(metadata.token_endpoint, `${base}/oauth2/token`);
    assert.equal(metadata.jwks_uri, `${base}/oauth2/jwks`);

    const tokens = await oauth.clientCredentialsGrant(config, { scope: "read:orders" });
    assert.equal(tokens.token_type.toLowerCase(), "bearer");
    assert.equal(tokens.scope, "read:orders");
    assert.equal(tokens.expires_in, 3600);

    const active = await oauth.tokenIntrospection(config, tokens.access_token);
    assert.equal(active.active, true);
    assert.equal(active.client_id, app.consumerKey);

    await oauth.tokenRevocation(config, tokens.access_token);
    assert.equal((await oauth.tokenIntrospection(config, tokens.access_token)).active, false);
  });

  test("openid-client: password grant and refresh rotation", async () => {
    const first = await oauth.genericGrantRequest(config, "password", { username: "carol", password: "carol-password", scope: "write:orders" });
    assert.ok(first.refresh_token);
    const second = await oauth.refreshTokenGrant(config, first.refresh_token);
    assert.ok(second.refresh_token && second.refresh_token !== first.refresh_token);
    assert.equal((await oauth.tokenIntrospection(config, second.access_token)).username, "carol");
    await assert.rejects(oauth.refreshTokenGrant(config, first.refresh_token), (err: oauth.ResponseBodyError) => err.error === "invalid_grant");
  });

  async function post(path: string, body: Record<string, string>, headers: Record<string, string> = {}) {
    return fetch(`${base}${path}`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
      body: new URLSearchParams(body),
    });
  }

  test("RFC 6749 errors: invalid_client (401 with a challenge), unsupported_grant_type, invalid_request", async () => {
    const basic = `Basic ${Buffer.from(`${app.consumerKey}:wrong`).toString("base64")}`;
    const bad = await post("/oauth2/token", { grant_type: "client_credentials" }, { authorization: basic });
    assert.equal(bad.status, 401);
    assert.match(bad.headers.get("www-authenticate") ?? "", /^Basic/);
    assert.equal(((await bad.json()) as { error: string }).error, "invalid_client");
    assert.equal(bad.headers.get("cache-control"), "no-store");

    const saml = await post("/oauth2/token", {
      grant_type: "urn:ietf:params:oauth:grant-type:saml2-bearer",
      client_id: app.consumerKey,
      client_secret: app.consumerSecret,
    });
    assert.equal(saml.status, 400);
    assert.equal(((await saml.json()) as { error: string }).error, "unsupported_grant_type");

    const json = await fetch(`${base}/oauth2/token`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    assert.equal(json.status, 400);
    assert.equal(((await json.json()) as { error: string }).error, "invalid_request");

    const repeated = await fetch(`${base}/oauth2/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "grant_type=client_credentials&grant_type=password",
    });
    assert.equal(repeated.status, 400);

    const get = await fetch(`${base}/oauth2/token`);
    assert.equal(get.status, 405);
  });

  test("revocation only touches the caller's own tokens, and unknown tokens are fine", async () => {
    const other = (await server.grpc.createApplication(createRequest())).application;
    assert.ok(other);
    const tokens = await oauth.clientCredentialsGrant(config);
    const res = await post("/oauth2/revoke", { token: tokens.access_token, client_id: other.consumerKey, client_secret: other.consumerSecret });
    assert.equal(res.status, 200);
    assert.equal((await oauth.tokenIntrospection(config, tokens.access_token)).active, true);
    const unknown = await post("/oauth2/revoke", { token: "never-issued", client_id: app.consumerKey, client_secret: app.consumerSecret });
    assert.equal(unknown.status, 200);
  });
});
