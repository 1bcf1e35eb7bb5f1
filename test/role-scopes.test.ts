import assert from "node:assert/strict";
import { createHash, generateKeyPairSync, randomUUID } from "node:crypto";
import { after, before, test } from "node:test";
import { SignJWT } from "jose";
import { ScopeService } from "../gen/keymanager/v1/scope_service_pb.js";
import { TrustedIssuerService } from "../gen/keymanager/v1/trusted_issuer_service_pb.js";
import { UserService } from "../gen/keymanager/v1/user_service_pb.js";
import { describeOnEachDatabase } from "./support/each-database.js";
import { createRequest } from "./support/fixtures.js";
import { FormBrowser } from "./support/form-browser.js";
import { startServer, type TestServer } from "./support/server.js";

const JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
const CALLBACK = "http://127.0.0.1:9/callback";
const PASSWORD = "role-password";
const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
const ISSUER = "https://idp.roles.example.com";
const AUDIENCE = "urn:test:role-scopes";

// kitchen:cook is bound to the role chef; menu:read to no role; both registered.
describeOnEachDatabase("role-based scopes", (database) => {
  let server: TestServer;
  let base: string;
  let app: { consumerKey: string; consumerSecret: string };

  before(async () => {
    server = await startServer({ databaseUrl: database.url() });
    base = `http://127.0.0.1:${server.httpPort}`;
    const scopes = server.client(ScopeService);
    await scopes.registerScope({ scope: { name: "kitchen:cook", roles: ["chef", "sous-chef"] } });
    await scopes.registerScope({ scope: { name: "menu:read" } });
    const users = server.client(UserService);
    await users.createUser({ user: { username: "carla", roles: ["chef"] }, password: PASSWORD });
    await users.createUser({ user: { username: "gus", roles: ["guest"] }, password: PASSWORD });
    await server.client(TrustedIssuerService).createTrustedIssuer({
      trustedIssuer: {
        issuer: ISSUER,
        jwk: JSON.stringify(publicKey.export({ format: "jwk" })),
        allowedSubjects: ["*"],
        allowedScopes: ["kitchen:cook", "menu:read"],
        audience: AUDIENCE,
      },
    });
    const created = (
      await server.grpc.createApplication(
        createRequest({
          scopes: ["kitchen:cook", "menu:read"],
          grantTypes: ["client_credentials", "password", "refresh_token", "authorization_code", JWT_BEARER, TOKEN_EXCHANGE],
          callbackUrls: [CALLBACK],
        }),
      )
    ).application;
    assert.ok(created);
    app = created;
  });
  after(() => server?.close());

  async function token(body: Record<string, string>) {
    const res = await fetch(`${base}/oauth2/token`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        authorization: `Basic ${Buffer.from(`${app.consumerKey}:${app.consumerSecret}`).toString("base64")}`,
      },
      body: new URLSearchParams(body),
    });
    const json = (await res.json()) as Record<string, string>;
    assert.equal(res.status, 200, JSON.stringify(json));
    return json;
  }

  const password = (username: string, scope: string) => token({ grant_type: "password", username, password: PASSWORD, scope });
  const assertion = (sub: string) =>
    new SignJWT({ scope: "kitchen:cook menu:read" })
      .setProtectedHeader({ alg: "ES256" })
      .setIssuer(ISSUER)
      .setSubject(sub)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime("5m")
      .setJti(randomUUID())
      .sign(privateKey);

  async function introspect(accessToken: string) {
    const res = await fetch(`${base}/oauth2/introspect`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        authorization: `Basic ${Buffer.from(`${app.consumerKey}:${app.consumerSecret}`).toString("base64")}`,
      },
      body: new URLSearchParams({ token: accessToken }),
    });
    return (await res.json()) as { active: boolean; scope?: string };
  }

  test("password grant: a role-bound scope only for a user holding a bound role; unbound scopes for everyone", async () => {
    assert.equal((await password("carla", "kitchen:cook menu:read")).scope, "kitchen:cook menu:read");
    assert.equal((await password("gus", "kitchen:cook menu:read")).scope, "menu:read");
    assert.equal((await password("gus", "kitchen:cook")).scope, "default");
  });

  test("client credentials: an application token gets what its client may have, whatever the roles", async () => {
    assert.equal((await token({ grant_type: "client_credentials", scope: "kitchen:cook menu:read" })).scope, "kitchen:cook menu:read");
  });

  test("refresh token: the refreshed token keeps only role-bound scopes the user holds", async () => {
    const first = await password("carla", "kitchen:cook menu:read");
    const refreshed = await token({ grant_type: "refresh_token", refresh_token: first.refresh_token ?? "" });
    assert.equal(refreshed.scope, "kitchen:cook menu:read");
    // Bindings changed meanwhile (the role left the scope): the next refresh drops it.
    await server.client(ScopeService).updateScope({ scope: { name: "kitchen:cook", roles: ["sous-chef"] }, updateMask: { paths: ["roles"] } });
    try {
      assert.equal((await token({ grant_type: "refresh_token", refresh_token: refreshed.refresh_token ?? "" })).scope, "menu:read");
    } finally {
      await server.client(ScopeService).updateScope({ scope: { name: "kitchen:cook", roles: ["chef", "sous-chef"] }, updateMask: { paths: ["roles"] } });
    }
  });

  test("authorization code: the code's scopes narrowed by the user's roles", async () => {
    for (const [username, expected] of [
      ["carla", "kitchen:cook menu:read"],
      ["gus", "menu:read"],
    ] as const) {
      const browser = new FormBrowser(base);
      const verifier = randomUUID() + randomUUID();
      const challenge = createHash("sha256").update(verifier).digest("base64url");
      const query = new URLSearchParams({
        response_type: "code",
        client_id: app.consumerKey,
        redirect_uri: CALLBACK,
        scope: "kitchen:cook menu:read",
        state: "s",
        code_challenge: challenge,
        code_challenge_method: "S256",
      });
      const login = await browser.get(`/oauth2/authorize?${query}`);
      const consent = await browser.submit(await login.text(), { username, password: PASSWORD });
      const answer = consent.status === 303 ? consent : await browser.submit(await consent.text(), {}, { button: "consent" });
      const code = new URL(answer.headers.get("location") ?? "").searchParams.get("code") ?? "";
      assert.notEqual(code, "");
      const issued = await token({ grant_type: "authorization_code", code, redirect_uri: CALLBACK, code_verifier: verifier });
      assert.equal(issued.scope, expected, username);
    }
  });

  test("JWT bearer and token exchange: a subject that is a user here by its roles; an outside subject holds none", async () => {
    assert.equal(
      (await token({ grant_type: JWT_BEARER, assertion: await assertion("carla"), scope: "kitchen:cook menu:read" })).scope,
      "kitchen:cook menu:read",
    );
    assert.equal((await token({ grant_type: JWT_BEARER, assertion: await assertion("gus"), scope: "kitchen:cook menu:read" })).scope, "menu:read");
    assert.equal((await token({ grant_type: JWT_BEARER, assertion: await assertion("stranger"), scope: "kitchen:cook menu:read" })).scope, "menu:read");
    const exchange = async (sub: string) =>
      (
        await token({
          grant_type: TOKEN_EXCHANGE,
          subject_token: await assertion(sub),
          subject_token_type: "urn:ietf:params:oauth:token-type:jwt",
          scope: "kitchen:cook menu:read",
        })
      ).scope;
    assert.equal(await exchange("carla"), "kitchen:cook menu:read");
    assert.equal(await exchange("gus"), "menu:read");
  });

  test("SetUserAttributes: a change of roles revokes the user's tokens; other attributes do not", async () => {
    const users = server.client(UserService);
    await users.createUser({ user: { username: `dora-${database.name}`, roles: ["chef"] }, password: PASSWORD });
    const username = `dora-${database.name}`;
    const issued = await password(username, "kitchen:cook menu:read");
    assert.equal(issued.scope, "kitchen:cook menu:read");
    await users.setUserAttributes({ user: { username, email: "dora@example.com", roles: ["chef"] } });
    assert.equal((await introspect(issued.access_token ?? "")).active, true, "same roles: kept");
    await users.setUserAttributes({ user: { username, email: "dora@example.com", roles: ["guest"] } });
    assert.equal((await introspect(issued.access_token ?? "")).active, false, "roles changed: revoked");
    assert.equal((await password(username, "kitchen:cook menu:read")).scope, "menu:read");
  });
});
