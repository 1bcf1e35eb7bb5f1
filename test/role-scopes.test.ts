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

// kitchen:cook is bound to the roles chef and sous-chef; pantry:stock to storekeeper; menu:read to no role; all registered.
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
    await scopes.registerScope({ scope: { name: "pantry:stock", roles: ["storekeeper"] } });
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
          scopes: ["kitchen:cook", "menu:read", "pantry:stock"],
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

  /** An authorization request for `scope` in `browser` (signed in as `username` when it shows the login page): the answer after login and its page. */
  async function authorizeAs(browser: FormBrowser, username: string, scope: string) {
    const verifier = randomUUID() + randomUUID();
    const query = new URLSearchParams({
      response_type: "code",
      client_id: app.consumerKey,
      redirect_uri: CALLBACK,
      scope,
      code_challenge: createHash("sha256").update(verifier).digest("base64url"),
      code_challenge_method: "S256",
    });
    const first = await browser.get(`/oauth2/authorize?${query}`);
    const html = await first.text();
    const answer = /<h1>Sign in<\/h1>/.test(html) ? await browser.submit(html, { username, password: PASSWORD }) : first;
    return { answer, page: answer === first ? html : await answer.text(), verifier };
  }

  const listed = (html: string, id: string) =>
    [...(new RegExp(`<ul id="${id}"[^>]*>([^]*?)</ul>`).exec(html)?.[1] ?? "").matchAll(/<li>([^<]*)<\/li>/g)].map((m) => m[1]);
  const codeOf = (res: Response) => new URL(res.headers.get("location") ?? "").searchParams.get("code") ?? "";
  const exchange = async (res: Response, verifier: string) => {
    const code = codeOf(res);
    assert.notEqual(code, "");
    return (await token({ grant_type: "authorization_code", code, redirect_uri: CALLBACK, code_verifier: verifier })).scope;
  };

  test("authorization code: the consent page shows the scopes the roles give, and apart those they do not; token and consent agree", async () => {
    const username = `remy-${database.name}`;
    const users = server.client(UserService);
    await users.createUser({ user: { username, roles: ["chef"] }, password: PASSWORD });
    const browser = new FormBrowser(base);
    const consented = async () => (await users.listUserConsents({ username })).consents.find((c) => c.consumerKey === app.consumerKey)?.scopes;

    // chef: kitchen:cook yes, pantry:stock (storekeeper's) no.
    const asked = await authorizeAs(browser, username, "kitchen:cook pantry:stock");
    assert.equal(asked.answer.status, 200);
    const { page } = asked;
    assert.deepEqual(listed(page, "scopes"), ["kitchen:cook"]);
    assert.deepEqual(listed(page, "not-granted"), ["pantry:stock"]);
    assert.match(page, /Not granted: your roles do not allow/);
    const allowed = await browser.submit(page, {}, { button: "consent" });
    assert.equal(allowed.status, 303);
    assert.equal(await exchange(allowed, asked.verifier), "kitchen:cook");
    assert.deepEqual(await consented(), ["kitchen:cook"]);

    // Asked again with the same roles: remembered, no page.
    const again = await authorizeAs(browser, username, "kitchen:cook pantry:stock");
    assert.equal(again.answer.status, 302);
    assert.equal(await exchange(again.answer, again.verifier), "kitchen:cook");

    // A role gained: the scope it newly gives is asked for.
    await users.setUserAttributes({ user: { username, roles: ["chef", "storekeeper"] } });
    const gained = await authorizeAs(browser, username, "kitchen:cook pantry:stock");
    assert.equal(gained.answer.status, 200);
    const gainedPage = gained.page;
    assert.deepEqual(listed(gainedPage, "scopes"), ["kitchen:cook", "pantry:stock"]);
    assert.doesNotMatch(gainedPage, /not-granted/);
    const allowedBoth = await browser.submit(gainedPage, {}, { button: "consent" });
    assert.equal(await exchange(allowedBoth, gained.verifier), "kitchen:cook pantry:stock");
    assert.deepEqual((await consented())?.sort(), ["kitchen:cook", "pantry:stock"]);

    // A role lost: remembered consent still covers what is left; the token simply lacks the scope.
    await users.setUserAttributes({ user: { username, roles: ["storekeeper"] } });
    const lost = await authorizeAs(browser, username, "kitchen:cook pantry:stock");
    assert.equal(lost.answer.status, 302);
    assert.equal(await exchange(lost.answer, lost.verifier), "pantry:stock");

    // No role giving any scope asked for: "default", as token issuance gives; both shown as not granted.
    await users.setUserAttributes({ user: { username, roles: [] } });
    const none = await authorizeAs(browser, username, "kitchen:cook pantry:stock");
    assert.equal(none.answer.status, 200);
    const nonePage = none.page;
    assert.deepEqual(listed(nonePage, "scopes"), ["default"]);
    assert.deepEqual(listed(nonePage, "not-granted"), ["kitchen:cook", "pantry:stock"]);
    assert.equal(await exchange(await browser.submit(nonePage, {}, { button: "consent" }), none.verifier), "default");
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
