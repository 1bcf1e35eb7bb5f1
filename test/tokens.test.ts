import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from "jose";
import { TokenState, TokenType } from "../gen/keymanager/v1/types_pb.js";
import { UserService } from "../gen/keymanager/v1/user_service_pb.js";
import { rejectsWith } from "./support/assert-rpc.js";
import { TestClock } from "./support/clock.js";
import { createRequest } from "./support/fixtures.js";
import { describeOnEachDatabase } from "./support/each-database.js";
import { startServer, type TestServer } from "./support/server.js";

describeOnEachDatabase("tokens", (database) => {
  const clock = new TestClock();
  let server: TestServer;
  before(async () => {
    server = await startServer({ clock, databaseUrl: database.url() });
    await usersClient().createUser({ user: { username: "alice" }, password: "correct horse battery" });
  });
  after(() => server?.close());

  function usersClient() {
    return server.client(UserService);
  }

  async function newClient(overrides: Parameters<typeof createRequest>[0] = {}) {
    const app = (await server.grpc.createApplication(createRequest(overrides))).application;
    assert.ok(app);
    return app;
  }

  function tokenRequest(app: { consumerKey: string; consumerSecret: string }, extra: Record<string, unknown> = {}) {
    return { request: { clientId: app.consumerKey, clientSecret: app.consumerSecret, grantType: "client_credentials", ...extra } };
  }

  describe("GetNewApplicationAccessToken", () => {
    test("client_credentials: opaque token, granted scopes, metadata, validity capped per request", async () => {
      const app = await newClient({ applicationTokenValiditySeconds: 1800n });
      const { token } = await server.grpc.getNewApplicationAccessToken(tokenRequest(app, { scopes: ["read:orders", "admin"] }));
      assert.ok(token);
      assert.match(token.accessToken, /^[A-Za-z0-9_-]{43}$/);
      assert.equal(token.refreshToken, "", "no refresh token for client_credentials");
      assert.deepEqual(token.scopes, ["read:orders"], "requested scopes the client may not have are dropped");
      assert.equal(token.validityPeriodMs, 1_800_000n);
      assert.equal(token.isApplicationToken, true);
      assert.equal(token.tokenType, TokenType.OPAQUE);

      const { token: info } = await server.grpc.getTokenMetadata({ accessToken: token.accessToken });
      assert.equal(info?.tokenValid, true);
      assert.equal(info?.tokenState, TokenState.ACTIVE);
      assert.equal(info?.consumerKey, app.consumerKey);
      assert.equal(info?.accessToken, "", "the token is never read back");

      const none = await server.grpc.getNewApplicationAccessToken(tokenRequest(app));
      assert.deepEqual(none.token?.scopes, ["default"], "no scope asked: the default scope");
      const short = await server.grpc.getNewApplicationAccessToken(tokenRequest(app, { validityPeriodSeconds: 60n }));
      assert.equal(short.token?.validityPeriodMs, 60_000n);
      const huge = await server.grpc.getNewApplicationAccessToken(tokenRequest(app, { validityPeriodSeconds: 10n ** 10n }));
      assert.equal(huge.token?.validityPeriodMs, 365n * 24n * 3600n * 1000n, "capped by validity.max_token");
    });

    test("expired tokens are inactive (clock moved, no sleeping)", async () => {
      const app = await newClient();
      const { token } = await server.grpc.getNewApplicationAccessToken(tokenRequest(app, { validityPeriodSeconds: 30n }));
      clock.advance(31);
      const { token: info } = await server.grpc.getTokenMetadata({ accessToken: token?.accessToken ?? "" });
      assert.equal(info?.tokenValid, false);
      assert.equal(info?.tokenState, TokenState.EXPIRED);
    });

    test("token_to_revoke revokes the old token first; a revoked or unknown one is not an error", async () => {
      const app = await newClient();
      const first = (await server.grpc.getNewApplicationAccessToken(tokenRequest(app))).token?.accessToken ?? "";
      const second = await server.grpc.getNewApplicationAccessToken(tokenRequest(app, { tokenToRevoke: first }));
      assert.ok(second.token?.accessToken);
      assert.equal((await server.grpc.getTokenMetadata({ accessToken: first })).token?.tokenState, TokenState.REVOKED);
      await server.grpc.getNewApplicationAccessToken(tokenRequest(app, { tokenToRevoke: first }));
      await server.grpc.getNewApplicationAccessToken(tokenRequest(app, { tokenToRevoke: "never-issued" }));
    });

    test("another client's token in token_to_revoke is left alone", async () => {
      const a = await newClient();
      const b = await newClient();
      const tokenOfA = (await server.grpc.getNewApplicationAccessToken(tokenRequest(a))).token?.accessToken ?? "";
      await server.grpc.getNewApplicationAccessToken(tokenRequest(b, { tokenToRevoke: tokenOfA }));
      assert.equal((await server.grpc.getTokenMetadata({ accessToken: tokenOfA })).token?.tokenValid, true);
    });

    test("password grant with refresh rotation; reusing a spent refresh token revokes the family", async () => {
      const app = await newClient();
      const user = { grantType: "password", resourceOwnerUsername: "alice", resourceOwnerPassword: "correct horse battery" };
      await rejectsWith(
        server.grpc.getNewApplicationAccessToken(tokenRequest(app, { ...user, resourceOwnerPassword: "wrong" })),
        Code.InvalidArgument,
        /invalid resource owner credentials/,
      );
      const first = (await server.grpc.getNewApplicationAccessToken(tokenRequest(app, user))).token;
      assert.ok(first?.refreshToken);
      assert.equal(first.endUserName, "alice");
      assert.equal(first.isApplicationToken, false);

      const refresh = { grantType: "refresh_token", refreshToken: first.refreshToken };
      await rejectsWith(
        server.grpc.getNewApplicationAccessToken(tokenRequest(app, { ...refresh, scopes: ["admin"] })),
        Code.InvalidArgument,
        /scopes: exceed the original grant/,
      );
      const second = (await server.grpc.getNewApplicationAccessToken(tokenRequest(app, refresh))).token;
      assert.ok(second?.refreshToken, "a refused refresh (invalid_scope) does not spend the refresh token");
      assert.notEqual(second.refreshToken, first.refreshToken, "rotated");
      assert.equal(second.endUserName, "alice");
      assert.equal((await server.grpc.getTokenMetadata({ accessToken: first.accessToken })).token?.tokenValid, false, "the refreshed token is retired");

      await rejectsWith(server.grpc.getNewApplicationAccessToken(tokenRequest(app, refresh)), Code.InvalidArgument, /invalid refresh token/);
      const secondInfo = await server.grpc.getTokenMetadata({ accessToken: second.accessToken });
      assert.equal(secondInfo.token?.tokenState, TokenState.REVOKED, "reuse revoked the whole family");
      await rejectsWith(
        server.grpc.getNewApplicationAccessToken(tokenRequest(app, { grantType: "refresh_token", refreshToken: second.refreshToken })),
        Code.InvalidArgument,
      );
    });

    test("a changed password revokes the user's tokens", async () => {
      const app = await newClient();
      await usersClient().createUser({ user: { username: "bob" }, password: "bob-password-1" });
      const t = (
        await server.grpc.getNewApplicationAccessToken(
          tokenRequest(app, { grantType: "password", resourceOwnerUsername: "bob", resourceOwnerPassword: "bob-password-1" }),
        )
      ).token;
      await usersClient().setUserPassword({ username: "bob", password: "bob-password-2" });
      assert.equal((await server.grpc.getTokenMetadata({ accessToken: t?.accessToken ?? "" })).token?.tokenValid, false);
    });

    test("JWT tokens: signed with ES256, kid, verifiable with the published JWKS", async () => {
      const app = await newClient({ tokenType: TokenType.JWT });
      const { token } = await server.grpc.getNewApplicationAccessToken(tokenRequest(app, { scopes: ["write:orders"] }));
      assert.ok(token);
      assert.equal(token.tokenType, TokenType.JWT);
      const header = decodeProtectedHeader(token.accessToken);
      assert.equal(header.alg, "ES256");
      assert.ok(header.kid);
      const jwks = await (await fetch(`http://127.0.0.1:${server.httpPort}/oauth2/jwks`)).json();
      const { payload } = await jwtVerify(token.accessToken, createLocalJWKSet(jwks), { currentDate: clock.now() });
      assert.equal(payload.client_id, app.consumerKey);
      assert.equal(payload.scope, "write:orders");
      const { configuration } = await server.grpc.getKeyManagerConfiguration({});
      assert.equal(payload.iss, configuration?.issuer);
      assert.equal(configuration?.issuer, `http://127.0.0.1:${server.httpPort}`, "the issuer names the bound port");
      assert.equal((await server.grpc.getTokenMetadata({ accessToken: token.accessToken })).token?.tokenValid, true);
      const forged = `${token.accessToken.slice(0, -4)}AAAA`;
      assert.equal((await server.grpc.getTokenMetadata({ accessToken: forged })).token?.tokenValid, false);
    });

    test("errors: bad secret, grant not allowed, unsupported and unknown grants, missing fields", async () => {
      const app = await newClient({ grantTypes: ["client_credentials", "urn:ietf:params:oauth:grant-type:saml2-bearer"] });
      await rejectsWith(server.grpc.getNewApplicationAccessToken(tokenRequest({ ...app, consumerSecret: "nope" })), Code.Unauthenticated);
      await rejectsWith(server.grpc.getNewApplicationAccessToken(tokenRequest({ ...app, consumerKey: "nobody" })), Code.Unauthenticated);
      await rejectsWith(
        server.grpc.getNewApplicationAccessToken(tokenRequest(app, { grantType: "password", resourceOwnerUsername: "alice", resourceOwnerPassword: "x" })),
        Code.PermissionDenied,
      );
      await rejectsWith(
        server.grpc.getNewApplicationAccessToken(tokenRequest(app, { grantType: "urn:ietf:params:oauth:grant-type:saml2-bearer" })),
        Code.Unimplemented,
      );
      await rejectsWith(server.grpc.getNewApplicationAccessToken(tokenRequest(app, { grantType: "magic" })), Code.InvalidArgument, /grant_type/);
      // The client is authenticated before the rest of the request is looked at.
      await rejectsWith(server.grpc.getNewApplicationAccessToken({}), Code.InvalidArgument, /^client_id: is required; client_secret: is required$/);
      await rejectsWith(server.grpc.getNewApplicationAccessToken(tokenRequest(app, { grantType: "" })), Code.InvalidArgument, /^grant_type: is required$/);
      await rejectsWith(server.grpc.getNewApplicationAccessToken(tokenRequest(app, { scopes: ["bad scope"] })), Code.InvalidArgument, /scopes\[0\]/);
    });
  });

  describe("concurrent issuing", () => {
    test("200 parallel requests for one client: 200 distinct tokens, every one stored", async () => {
      const app = await newClient();
      const issued = await Promise.all(Array.from({ length: 200 }, () => server.grpc.getNewApplicationAccessToken(tokenRequest(app))));
      const tokens = issued.map((r) => r.token?.accessToken ?? "");
      assert.equal(new Set(tokens).size, 200);
      const { tokens: active } = await server.grpc.getActiveTokensByConsumerKey({ consumerKey: app.consumerKey, pageSize: 200 });
      assert.equal(active.length, 200);
      for (const t of tokens.slice(0, 20)) assert.equal((await server.grpc.getTokenMetadata({ accessToken: t })).token?.tokenValid, true);
    });
  });

  describe("token listings and revocation", () => {
    test("active tokens, the newest application token, RevokeToken", async () => {
      const app = await newClient();
      const a = (await server.grpc.getNewApplicationAccessToken(tokenRequest(app))).token;
      clock.advance(1);
      const b = (await server.grpc.getNewApplicationAccessToken(tokenRequest(app))).token;
      const { tokens } = await server.grpc.getActiveTokensByConsumerKey({ consumerKey: app.consumerKey });
      assert.deepEqual(
        tokens.map((t) => t.tokenId),
        [b?.tokenId, a?.tokenId],
      );
      assert.ok(tokens.every((t) => t.accessToken === ""));
      const latest = await server.grpc.getAccessTokenByConsumerKey({ consumerKey: app.consumerKey });
      assert.equal(latest.token?.tokenId, b?.tokenId);

      await server.grpc.revokeToken({ token: b?.accessToken ?? "" });
      await server.grpc.revokeToken({ token: b?.accessToken ?? "" });
      await server.grpc.revokeToken({ token: "unknown-token" });
      const after = await server.grpc.getActiveTokensByConsumerKey({ consumerKey: app.consumerKey });
      assert.deepEqual(
        after.tokens.map((t) => t.tokenId),
        [a?.tokenId],
      );
      await rejectsWith(server.grpc.getActiveTokensByConsumerKey({ consumerKey: "unknown" }), Code.NotFound);
      await rejectsWith(server.grpc.revokeToken({ token: "" }), Code.InvalidArgument, /token: is required/);
    });
  });

  describe("BuildAccessTokenRequest*", () => {
    test("from JSON: fields and extra parameters merged into the given request", async () => {
      const { request } = await server.grpc.buildAccessTokenRequestFromJson({
        json: JSON.stringify({ grant_type: "password", scope: "a b", validityPeriod: 120, username: "alice", tenant: "carbon.super", nested: { x: 1 } }),
        request: { clientId: "ck", clientSecret: "cs" },
      });
      assert.equal(request?.clientId, "ck");
      assert.equal(request?.grantType, "password");
      assert.deepEqual(request?.scopes, ["a", "b"]);
      assert.equal(request?.validityPeriodSeconds, 120n);
      assert.equal(request?.resourceOwnerUsername, "alice");
      assert.deepEqual(request?.requestParameters, { tenant: "carbon.super", nested: '{"x":1}' });
      await rejectsWith(server.grpc.buildAccessTokenRequestFromJson({ json: "[1]" }), Code.InvalidArgument, /json: must be a JSON object/);
      await rejectsWith(server.grpc.buildAccessTokenRequestFromJson({ json: "{" }), Code.InvalidArgument, /json: is not valid JSON/);
      await rejectsWith(server.grpc.buildAccessTokenRequestFromJson({ json: '{"validityPeriod":-1}' }), Code.InvalidArgument, /validityPeriod/);
    });

    test("from an OAuth application: its key and secret, client_credentials by default", async () => {
      const app = await newClient({ callbackUrls: ["https://a.example/cb"] });
      const { request } = await server.grpc.buildAccessTokenRequestFromOAuthApp({ application: app });
      assert.equal(request?.clientId, app.consumerKey);
      assert.equal(request?.clientSecret, app.consumerSecret);
      assert.equal(request?.grantType, "client_credentials");
      assert.equal(request?.callbackUri, "https://a.example/cb");
      const issued = await server.grpc.getNewApplicationAccessToken({ request });
      assert.ok(issued.token?.accessToken);
      await rejectsWith(
        server.grpc.buildAccessTokenRequestFromOAuthApp({ application: { consumerKey: "x" } }),
        Code.InvalidArgument,
        /application.consumer_secret: is required/,
      );
    });
  });

  describe("client authentication after changes", () => {
    test("a regenerated secret takes effect at once; a deleted client is refused at once", async () => {
      const app = await newClient();
      await server.grpc.getNewApplicationAccessToken(tokenRequest(app));
      const { consumerSecret } = await server.grpc.regenerateConsumerSecret({ consumerKey: app.consumerKey });
      await rejectsWith(server.grpc.getNewApplicationAccessToken(tokenRequest(app)), Code.Unauthenticated);
      await server.grpc.getNewApplicationAccessToken(tokenRequest({ ...app, consumerSecret }));
      await server.grpc.deleteApplication({ consumerKey: app.consumerKey });
      await rejectsWith(server.grpc.getNewApplicationAccessToken(tokenRequest({ ...app, consumerSecret })), Code.Unauthenticated);
    });
  });
});
