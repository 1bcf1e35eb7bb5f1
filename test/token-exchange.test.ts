import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import * as http from "node:http";
import * as net from "node:net";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { decodeJwt } from "jose";
import { SubscriptionService } from "../gen/keymanager/v1/subscription_service_pb.js";
import { TokenValidationService } from "../gen/keymanager/v1/token_validation_service_pb.js";
import { TrustedIssuerService } from "../gen/keymanager/v1/trusted_issuer_service_pb.js";
import { AuthLevel } from "../gen/keymanager/v1/types_pb.js";
import { TestClock } from "./support/clock.js";
import { describeOnEachDatabase } from "./support/each-database.js";
import { createRequest } from "./support/fixtures.js";
import { type ExternalServer, startOidcServer } from "./support/oidc-server.js";
import { startServer, type TestServer } from "./support/server.js";
import { environmentWithoutKm, markedScript, README_BLOCK_MARK, readmeShellBlocks } from "./support/readme.js";

const JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";
const JWT_TYPE = "urn:ietf:params:oauth:token-type:jwt";
const SCOPES = ["order:read", "order:write", "order:admin"];
const API = { apiId: "orders-api", name: "OrdersAPI", context: "/orders", version: "1.0.0", publisher: "admin", apiTier: "Gold" };
const RESOURCES = [
  { uriTemplate: "/orders", httpVerb: "POST", authLevel: AuthLevel.APPLICATION_USER, scopes: ["order:write"], throttlingTier: "Gold" },
  { uriTemplate: "/orders", httpVerb: "GET", authLevel: AuthLevel.APPLICATION_USER, scopes: ["order:read"], throttlingTier: "Gold" },
];
const IDP_CLIENTS = [
  { clientId: "alice-app", clientSecret: "alice-app-secret-0123456789", subject: "alice" },
  { clientId: "bob-app", clientSecret: "bob-app-secret-0123456789", subject: "bob" },
  { clientId: "mallory-app", clientSecret: "mallory-app-secret-0123456789", subject: "mallory" },
];

interface Answer {
  status: number;
  body: Record<string, string | number>;
}

describeOnEachDatabase("JWT bearer and token exchange with trusted issuers", (database) => {
  // oidc-provider stamps its tokens with the real time: the key manager's clock starts there.
  const clock = new TestClock(Date.now());
  let server: TestServer;
  let base: string;
  let idp: ExternalServer;
  let stranger: ExternalServer;
  let slowIdp: ExternalServer;
  let silent: net.Server;
  let app: { consumerKey: string; consumerSecret: string };
  let plainApp: { consumerKey: string; consumerSecret: string };

  before(async () => {
    server = await startServer({ clock, databaseUrl: database.url(), overrides: { trusted_issuers: { jwks_timeout_ms: 500 } } });
    base = `http://127.0.0.1:${server.httpPort}`;
    const options = { jwtAccessTokens: true, jwtAudience: `${base}/oauth2/token`, clients: IDP_CLIENTS, scopes: SCOPES };
    [idp, stranger, slowIdp] = await Promise.all([startOidcServer(options), startOidcServer(options), startOidcServer(options)]);
    // Accepts connections and never answers: a JWKS endpoint that hangs.
    silent = net.createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    await server.client(TrustedIssuerService).createTrustedIssuer({
      trustedIssuer: {
        issuer: idp.issuer,
        jwksUri: `${idp.issuer}/jwks`,
        allowedSubjects: ["alice", "bob"],
        allowedScopes: ["order:read", "order:write"],
        maxTokenSeconds: 900n,
      },
    });
    const subs = server.client(SubscriptionService);
    await subs.createApi({ api: API });
    await server.grpc.registerNewResource({ resource: { apiId: API.apiId, resources: RESOURCES } });
    const applicationId = randomUUID();
    const created = (
      await server.grpc.createApplication(createRequest({ applicationId, grantTypes: ["client_credentials", JWT_BEARER, TOKEN_EXCHANGE], scopes: SCOPES }))
    ).application;
    assert.ok(created);
    app = created;
    await subs.createSubscription({ subscription: { applicationId, apiId: API.apiId, tier: "Gold" } });
    const other = (await server.grpc.createApplication(createRequest({ grantTypes: ["client_credentials"], scopes: SCOPES }))).application;
    assert.ok(other);
    plainApp = other;
  });
  after(async () => {
    await Promise.all([idp?.stop(), stranger?.stop(), slowIdp?.stop()]);
    silent?.close();
    await server?.close();
  });

  /** An access token (a JWT for the key manager's token endpoint) from an oidc-provider client. */
  async function idpToken(from: ExternalServer, clientId: string, form: Record<string, string> = {}): Promise<string> {
    const client = IDP_CLIENTS.find((c) => c.clientId === clientId);
    assert.ok(client);
    const res = await fetch(`${from.issuer}/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: basic(client.clientId, client.clientSecret) },
      body: new URLSearchParams({ grant_type: "client_credentials", scope: "order:read order:write", ...form }),
    });
    const body = (await res.json()) as { access_token?: string };
    assert.equal(res.status, 200, JSON.stringify(body));
    assert.ok(body.access_token);
    return body.access_token;
  }

  async function token(form: Record<string, string>, client = app): Promise<Answer> {
    const res = await fetch(`${base}/oauth2/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", authorization: basic(client.consumerKey, client.consumerSecret) },
      body: new URLSearchParams(form),
    });
    return { status: res.status, body: (await res.json()) as Answer["body"] };
  }

  async function refused(form: Record<string, string>, status: number, error: string, description: RegExp, client = app): Promise<void> {
    const before = await activeTokens(client.consumerKey);
    const answer = await token(form, client);
    assert.equal(answer.status, status, JSON.stringify(answer.body));
    assert.equal(answer.body.error, error);
    assert.match(String(answer.body.error_description), description);
    assert.equal(answer.body.access_token, undefined);
    assert.equal(await activeTokens(client.consumerKey), before, "a refused request issues nothing");
  }

  async function activeTokens(consumerKey: string): Promise<number> {
    return (await server.grpc.getActiveTokensByConsumerKey({ consumerKey, pageSize: 1000 })).tokens.length;
  }

  function validate(accessToken: string, verb = "POST") {
    return server
      .client(TokenValidationService)
      .validateToken({ context: API.context, version: API.version, accessToken, matchingResource: "/orders", httpVerb: verb });
  }

  test("jwt-bearer: oidc-provider's JWT for alice gives a user token of alice that passes ValidateToken; the assertion works once", async () => {
    const assertion = await idpToken(idp, "alice-app");
    const answer = await token({ grant_type: JWT_BEARER, assertion, scope: "order:write" });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.scope, "order:write");
    // The issuer's max_token_seconds (900) bounds the client's user token validity (3600).
    assert.equal(answer.body.expires_in, 900);
    assert.equal(answer.body.refresh_token, undefined);
    const check = await validate(String(answer.body.access_token));
    assert.equal(check.authorized, true, check.statusName);
    assert.equal(check.endUserName, "alice");
    assert.equal(check.isApplicationToken, false);
    assert.equal(check.consumerKey, app.consumerKey);
    // Scopes come from the request: order:read was not asked for.
    assert.equal((await validate(String(answer.body.access_token), "GET")).statusCode, 900910);

    await refused({ grant_type: JWT_BEARER, assertion, scope: "order:write" }, 400, "invalid_grant", /assertion: has been used already \(jti\)/);
  });

  test("jwt-bearer through GetNewApplicationAccessToken (gRPC): the assertion in request_parameters", async () => {
    const assertion = await idpToken(idp, "bob-app");
    const issued = await server.grpc.getNewApplicationAccessToken({
      request: { clientId: app.consumerKey, clientSecret: app.consumerSecret, grantType: JWT_BEARER, requestParameters: { assertion } },
    });
    assert.equal(issued.token?.endUserName, "bob");
    // None asked for: the assertion's own scopes the issuer allows and the client may have.
    assert.deepEqual([...(issued.token?.scopes ?? [])].sort(), ["order:read", "order:write"]);
  });

  test("token exchange: a trusted JWT for an access token, or a JWT with the actor in act; both pass ValidateToken and end with the subject token", async () => {
    const subjectToken = await idpToken(idp, "alice-app");
    const subjectExp = decodeJwt(subjectToken).exp as number;
    const opaque = await token({ grant_type: TOKEN_EXCHANGE, subject_token: subjectToken, subject_token_type: ACCESS_TOKEN_TYPE, scope: "order:read" });
    assert.equal(opaque.status, 200, JSON.stringify(opaque.body));
    assert.equal(opaque.body.issued_token_type, ACCESS_TOKEN_TYPE);
    assert.equal(opaque.body.token_type, "Bearer");
    assert.ok(Number(opaque.body.expires_in) <= subjectExp - Math.floor(clock.now().getTime() / 1000));
    const check = await validate(String(opaque.body.access_token), "GET");
    assert.equal(check.authorized, true, check.statusName);
    assert.equal(check.endUserName, "alice");

    const actorToken = await idpToken(idp, "bob-app");
    const jwt = await token({
      grant_type: TOKEN_EXCHANGE,
      subject_token: subjectToken,
      subject_token_type: JWT_TYPE,
      actor_token: actorToken,
      actor_token_type: JWT_TYPE,
      requested_token_type: JWT_TYPE,
      audience: API.apiId,
    });
    assert.equal(jwt.status, 200, JSON.stringify(jwt.body));
    assert.equal(jwt.body.issued_token_type, JWT_TYPE);
    const claims = decodeJwt(String(jwt.body.access_token));
    assert.equal(claims.sub, "alice");
    assert.deepEqual(claims.act, { sub: "bob", iss: idp.issuer });
    assert.equal(claims.iss, base);
    assert.ok((claims.exp as number) <= subjectExp);
    const jwtCheck = await validate(String(jwt.body.access_token));
    assert.equal(jwtCheck.authorized, true, jwtCheck.statusName);
    assert.equal(jwtCheck.endUserName, "alice");
  });

  test("token exchange of this key manager's own user token: narrowed; another client's or an application token is not the client's to trade", async () => {
    const user = await token({ grant_type: JWT_BEARER, assertion: await idpToken(idp, "alice-app") });
    assert.equal(user.status, 200, JSON.stringify(user.body));
    const own = String(user.body.access_token);
    const narrowed = await token({ grant_type: TOKEN_EXCHANGE, subject_token: own, subject_token_type: ACCESS_TOKEN_TYPE, scope: "order:read" });
    assert.equal(narrowed.status, 200, JSON.stringify(narrowed.body));
    assert.equal(narrowed.body.scope, "order:read");
    assert.equal((await validate(String(narrowed.body.access_token), "GET")).endUserName, "alice");
    // Nothing wider than the subject token held.
    await refused(
      { grant_type: TOKEN_EXCHANGE, subject_token: own, subject_token_type: ACCESS_TOKEN_TYPE, scope: "order:admin" },
      400,
      "invalid_scope",
      /scopes/,
    );

    const plainGrants = await server.grpc.updateApplication({
      application: { consumerKey: plainApp.consumerKey, grantTypes: ["client_credentials", TOKEN_EXCHANGE] },
      updateMask: { paths: ["grant_types"] },
    });
    assert.ok(plainGrants.application);
    const otherClients = { grant_type: TOKEN_EXCHANGE, subject_token: own, subject_token_type: ACCESS_TOKEN_TYPE };
    await refused(
      otherClients,
      400,
      "invalid_request",
      /subject_token: is neither a JWT of a trusted issuer nor an active user token of this client/,
      plainApp,
    );
    const appToken = await token({ grant_type: "client_credentials" });
    await refused(
      { grant_type: TOKEN_EXCHANGE, subject_token: String(appToken.body.access_token), subject_token_type: ACCESS_TOKEN_TYPE },
      400,
      "invalid_request",
      /subject_token: is neither/,
    );
  });

  test("bad input: untrusted issuer, bad signature, wrong audience, disallowed subject, scope outside the allowed set, unknown token types, targets", async () => {
    const alice = await idpToken(idp, "alice-app");
    const [header, payload] = alice.split(".");
    const forged = `${header}.${payload}.${(await idpToken(stranger, "alice-app")).split(".")[2]}`;
    const cases: Array<[string, string, RegExp]> = [
      [await idpToken(stranger, "alice-app"), "invalid_grant", /is not from a trusted issuer/],
      [forged, "invalid_grant", /is not signed by a key of its trusted issuer/],
      [await idpToken(idp, "alice-app", { resource: "urn:other-api" }), "invalid_grant", /is not for this key manager \(aud\)/],
      [await idpToken(idp, "mallory-app"), "invalid_grant", /names a subject its trusted issuer does not allow/],
      ["not-a-jwt", "invalid_grant", /is not a JWT/],
    ];
    for (const [assertion, error, description] of cases) {
      await refused({ grant_type: JWT_BEARER, assertion }, 400, error, new RegExp(`assertion: ${description.source}`));
      // The same tokens as token exchange's subject: invalid_request (RFC 8693 section 2.2.2).
      await refused({ grant_type: TOKEN_EXCHANGE, subject_token: assertion, subject_token_type: JWT_TYPE }, 400, "invalid_request", /subject_token: /);
    }
    // order:admin: the client may have it, the issuer does not allow it.
    await refused({ grant_type: JWT_BEARER, assertion: await idpToken(idp, "alice-app"), scope: "order:admin" }, 400, "invalid_scope", /scopes/);
    const subject = { grant_type: TOKEN_EXCHANGE, subject_token: await idpToken(idp, "alice-app") };
    await refused(
      { ...subject, subject_token_type: "urn:ietf:params:oauth:token-type:saml2" },
      400,
      "invalid_request",
      /subject_token_type: unsupported token type/,
    );
    await refused({ ...subject }, 400, "invalid_request", /subject_token_type: is required/);
    await refused(
      { ...subject, subject_token_type: JWT_TYPE, requested_token_type: "urn:ietf:params:oauth:token-type:refresh_token" },
      400,
      "invalid_request",
      /requested_token_type: unsupported token type/,
    );
    await refused({ ...subject, subject_token_type: JWT_TYPE, actor_token: "x" }, 400, "invalid_request", /actor_token_type: is required/);
    await refused({ ...subject, subject_token_type: JWT_TYPE, audience: "https://elsewhere.example.com" }, 400, "invalid_target", /audience/);
    await refused({ ...subject, subject_token_type: JWT_TYPE, resource: "https://elsewhere.example.com/api" }, 400, "invalid_target", /resource/);
    await refused({ ...subject, subject_token_type: JWT_TYPE, scope: "order:admin" }, 400, "invalid_scope", /scopes/);
    await refused({ grant_type: TOKEN_EXCHANGE, subject_token_type: JWT_TYPE }, 400, "invalid_request", /subject_token: is required/);
    await refused({ grant_type: JWT_BEARER }, 400, "invalid_request", /assertion: is required/);
    // A client must be registered with the grant.
    await refused({ grant_type: JWT_BEARER, assertion: await idpToken(idp, "alice-app") }, 400, "unauthorized_client", /jwt-bearer/, plainApp);
  });

  test("keys that cannot be fetched: 503 temporarily_unavailable within the timeout, never a hang; a static JWK works without a fetch", async () => {
    const trusted = server.client(TrustedIssuerService);
    await trusted.createTrustedIssuer({
      trustedIssuer: {
        issuer: slowIdp.issuer,
        jwksUri: `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}/jwks`,
        allowedSubjects: ["*"],
        allowedScopes: ["order:read"],
      },
    });
    const assertion = await idpToken(slowIdp, "mallory-app");
    const started = Date.now();
    await refused({ grant_type: JWT_BEARER, assertion }, 503, "temporarily_unavailable", /keys of trusted issuer .* cannot be fetched/);
    const waited = Date.now() - started;
    assert.ok(waited >= 400 && waited < 3000, `answered after ${waited} ms (jwks_timeout_ms 500)`);

    // A JWKS answer past jwks_max_bytes (here one that never ends) is a fetch failure too.
    const endless = http.createServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      const more = (): void => {
        if (!res.destroyed) res.write(`{"keys":[${" ".repeat(64 * 1024)}`, () => setImmediate(more));
      };
      more();
    });
    await new Promise<void>((resolve) => endless.listen(0, "127.0.0.1", resolve));
    try {
      await trusted.updateTrustedIssuer({
        trustedIssuer: { issuer: slowIdp.issuer, jwksUri: `http://127.0.0.1:${(endless.address() as net.AddressInfo).port}/jwks` },
        updateMask: { paths: ["jwks_uri"] },
      });
      const bigStarted = Date.now();
      await refused({ grant_type: JWT_BEARER, assertion }, 503, "temporarily_unavailable", /cannot be fetched/);
      assert.ok(Date.now() - bigStarted < 3000);
    } finally {
      endless.closeAllConnections();
      endless.close();
    }

    // Its key given as a JWK instead (the one its JWKS publishes): no fetch, and the same
    // assertion, unspent by the refusal, is accepted for its subject (any, "*").
    const jwks = (await (await fetch(`${slowIdp.issuer}/jwks`)).json()) as { keys: Array<Record<string, unknown>> };
    const signing = jwks.keys.find((k) => k.kty === "RSA");
    assert.ok(signing);
    await trusted.updateTrustedIssuer({ trustedIssuer: { issuer: slowIdp.issuer, jwk: JSON.stringify(signing) }, updateMask: { paths: ["jwks_uri", "jwk"] } });
    const answer = await token({ grant_type: JWT_BEARER, assertion });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal((await validate(String(answer.body.access_token), "GET")).endUserName, "mallory");

    // Deleted: its JWTs are refused from then on.
    await trusted.deleteTrustedIssuer({ issuer: slowIdp.issuer });
    await refused({ grant_type: JWT_BEARER, assertion: await idpToken(slowIdp, "mallory-app") }, 400, "invalid_grant", /is not from a trusted issuer/);
  });

  // Last: moves the key manager's clock past the tokens' expiry.
  test("expired: JWTs past exp (beyond the clock skew) are refused by both grants", async () => {
    const assertion = await idpToken(idp, "alice-app");
    // Past exp by more than the skew (60 s); the test clock may lag the issuer's real one.
    clock.advance((decodeJwt(assertion).exp as number) + 61 - clock.now().getTime() / 1000);
    await refused({ grant_type: JWT_BEARER, assertion }, 400, "invalid_grant", /assertion: has expired/);
    await refused({ grant_type: TOKEN_EXCHANGE, subject_token: assertion, subject_token_type: JWT_TYPE }, 400, "invalid_request", /subject_token: has expired/);
  });
});

function basic(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString("base64")}`;
}

// The README's section, as written: its sh blocks in one bash session against a server and an
// external issuer of this test's own, given through the variables the README names.
test("the README's trusted issuer commands, as written", { timeout: 120_000 }, async () => {
  const server = await startServer();
  const base = `http://127.0.0.1:${server.httpPort}`;
  const idp = await startOidcServer({ jwtAccessTokens: true, jwtAudience: `${base}/oauth2/token`, clients: IDP_CLIENTS, scopes: SCOPES });
  try {
    const blocks = readmeShellBlocks("Trusted issuers: JWT bearer and token exchange");
    assert.equal(blocks.length, 4, "the blocks this test knows how to check");
    // The jwt-bearer block once more: the same assertion is refused the second time.
    const script = [markedScript(blocks), blocks[2]?.split("\n").slice(2).join("\n") ?? ""].join("\n");
    const alice = IDP_CLIENTS[0];
    assert.ok(alice);
    const { stdout } = await promisify(execFile)("bash", ["-c", script], {
      cwd: fileURLToPath(new URL("..", import.meta.url)),
      env: {
        ...environmentWithoutKm(),
        KM_HTTP: base,
        KM_GRPC: `http://127.0.0.1:${server.grpcPort}`,
        TOKEN: server.token,
        IDP_ISSUER: idp.issuer,
        IDP_CLIENT_ID: alice.clientId,
        IDP_CLIENT_SECRET: alice.clientSecret,
      },
      timeout: 110_000,
    });
    const [created, keys, bearer, exchanged, replayed] = stdout.split(`${README_BLOCK_MARK}\n`).map((o) => o.trim());
    assert.deepEqual(JSON.parse(created ?? "").trustedIssuer.allowedSubjects, ["alice", "bob"]);
    assert.equal(keys, "", "variables only");
    const issued = JSON.parse(bearer ?? "");
    assert.equal(issued.expires_in, 900);
    assert.equal(issued.scope, "order:read");
    const user = await server.grpc.getTokenMetadata({ accessToken: issued.access_token });
    assert.equal(user.token?.endUserName, "alice");
    const exchange = JSON.parse(exchanged ?? "");
    assert.equal(exchange.issued_token_type, "urn:ietf:params:oauth:token-type:jwt");
    assert.equal(decodeJwt(exchange.access_token).sub, "alice");
    assert.deepEqual(JSON.parse(replayed ?? ""), { error: "invalid_grant", error_description: "assertion: has been used already (jti)" });
  } finally {
    await idp.stop();
    await server.close();
  }
});
