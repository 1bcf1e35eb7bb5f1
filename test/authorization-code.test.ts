import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Code, type ConnectError } from "@connectrpc/connect";
import { createHash } from "node:crypto";
import { createRemoteJWKSet, jwtVerify } from "jose";
import * as oauth from "openid-client";
import { KeyManagerService } from "../gen/keymanager/v1/key_manager_service_pb.js";
import { ScopeService } from "../gen/keymanager/v1/scope_service_pb.js";
import { UserService } from "../gen/keymanager/v1/user_service_pb.js";
import { TestClock } from "./support/clock.js";
import { describeOnEachDatabase } from "./support/each-database.js";
import { createRequest } from "./support/fixtures.js";
import { FormBrowser, formOf } from "./support/form-browser.js";
import { startServer, type TestServer } from "./support/server.js";

const CALLBACK = "http://127.0.0.1:9/callback";
const PASSWORD = "dana-password";

describeOnEachDatabase("authorization code flow with PKCE", (database) => {
  const clock = new TestClock();
  let server: TestServer;
  let base: string;
  let confidential: { consumerKey: string; consumerSecret: string };
  let publicClient: { consumerKey: string };
  let config: oauth.Configuration;
  let publicConfig: oauth.Configuration;

  before(async () => {
    server = await startServer({ databaseUrl: database.url(), clock });
    base = `http://127.0.0.1:${server.httpPort}`;
    const app = (
      await server.grpc.createApplication(
        createRequest({ clientName: "Pizza Web", grantTypes: ["authorization_code", "refresh_token"], callbackUrls: [CALLBACK, `${CALLBACK}/second`] }),
      )
    ).application;
    assert.ok(app);
    confidential = app;
    const spa = (
      await server.grpc.createApplication(
        createRequest({
          clientName: "Pizza SPA",
          grantTypes: ["authorization_code", "refresh_token"],
          callbackUrls: [CALLBACK],
          tokenEndpointAuthMethod: "none",
        }),
      )
    ).application;
    assert.ok(spa);
    assert.equal(spa.consumerSecret, "");
    assert.equal(spa.tokenEndpointAuthMethod, "none");
    publicClient = spa;
    for (const username of ["dana", "erin", "flood", "gina"]) {
      await server.client(UserService).createUser({ user: { username }, password: PASSWORD });
    }
    await server.client(UserService).createUser({ user: { username: "olive", email: "olive@example.com", name: "Olive Oyl" }, password: PASSWORD });
    const options = { algorithm: "oauth2" as const, execute: [oauth.allowInsecureRequests] };
    config = await oauth.discovery(new URL(base), confidential.consumerKey, confidential.consumerSecret, undefined, options);
    publicConfig = await oauth.discovery(new URL(base), publicClient.consumerKey, undefined, oauth.None(), options);
  });
  after(() => server?.close());

  interface Started {
    browser: FormBrowser;
    verifier: string;
    state: string;
    url: URL;
  }

  async function start(cfg: oauth.Configuration, params: Record<string, string> = {}, browser = new FormBrowser(base)): Promise<Started> {
    const verifier = oauth.randomPKCECodeVerifier();
    const state = oauth.randomState();
    const url = oauth.buildAuthorizationUrl(cfg, {
      redirect_uri: CALLBACK,
      scope: "read:orders",
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state,
      ...params,
    });
    return { browser, verifier, state, url };
  }

  /** The login and consent pages, driven by plain HTTP requests following their forms: the callback URL. */
  async function authorize(cfg: oauth.Configuration, username = "dana", params: Record<string, string> = {}): Promise<Started & { callback: URL }> {
    const started = await start(cfg, params);
    const login = await started.browser.get(started.url.href);
    assert.equal(login.status, 200);
    const loginHtml = await login.text();
    assert.match(loginHtml, /<label for="username">Username<\/label>/);
    const consent = await started.browser.submit(loginHtml, { username, password: PASSWORD });
    // Consented before (an earlier test): the code comes with the login's answer.
    if (consent.status === 303) return { ...started, callback: new URL(consent.headers.get("location") ?? "") };
    assert.equal(consent.status, 200);
    const consentHtml = await consent.text();
    assert.match(consentHtml, /<li>read:orders<\/li>/);
    const answer = await started.browser.submit(consentHtml, {}, { button: "consent" });
    assert.equal(answer.status, 303);
    return { ...started, callback: new URL(answer.headers.get("location") ?? "") };
  }

  async function tokenRequest(body: Record<string, string>) {
    const res = await fetch(`${base}/oauth2/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, string> };
  }

  test("openid-client: the whole flow, confidential client: authorization URL, login, consent, code, tokens, refresh", async () => {
    const metadata = config.serverMetadata();
    assert.equal(metadata.authorization_endpoint, `${base}/oauth2/authorize`);
    assert.deepEqual(metadata.code_challenge_methods_supported, ["S256"]);

    const { callback, verifier, state } = await authorize(config);
    assert.equal(callback.origin + callback.pathname, CALLBACK);
    assert.equal(callback.searchParams.get("state"), state);
    const tokens = await oauth.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state });
    assert.equal(tokens.scope, "read:orders");
    assert.ok(tokens.refresh_token);
    const active = await oauth.tokenIntrospection(config, tokens.access_token);
    assert.equal(active.active, true);
    assert.equal(active.username, "dana");
    assert.equal(active.client_id, confidential.consumerKey);

    // Rotation as for every refresh token: the old one is spent, presenting it again ends the family.
    const refreshed = await oauth.refreshTokenGrant(config, tokens.refresh_token);
    assert.ok(refreshed.refresh_token && refreshed.refresh_token !== tokens.refresh_token);
    assert.equal((await oauth.tokenIntrospection(config, refreshed.access_token)).username, "dana");
    await assert.rejects(oauth.refreshTokenGrant(config, tokens.refresh_token), (err: oauth.ResponseBodyError) => err.error === "invalid_grant");
    assert.equal((await oauth.tokenIntrospection(config, refreshed.access_token)).active, false);
  });

  test("openid-client: a public client (no secret) with PKCE gets tokens and refreshes them", async () => {
    const { callback, verifier, state } = await authorize(publicConfig, "erin");
    const tokens = await oauth.authorizationCodeGrant(publicConfig, callback, { pkceCodeVerifier: verifier, expectedState: state });
    assert.ok(tokens.refresh_token);
    const refreshed = await oauth.refreshTokenGrant(publicConfig, tokens.refresh_token);
    assert.ok(refreshed.access_token);
    // A public client cannot use the grants that need a secret, nor be given one.
    const cc = await tokenRequest({ grant_type: "client_credentials", client_id: publicClient.consumerKey });
    assert.equal(cc.status, 400);
    await assert.rejects(
      server.grpc.regenerateConsumerSecret({ consumerKey: publicClient.consumerKey }),
      (e: ConnectError) => e.code === Code.FailedPrecondition,
    );
    const badGrant = server.grpc.createApplication(
      createRequest({ grantTypes: ["authorization_code", "client_credentials"], callbackUrls: [CALLBACK], tokenEndpointAuthMethod: "none" }),
    );
    await assert.rejects(badGrant, (e: ConnectError) => e.code === Code.InvalidArgument && /public client/.test(e.message));
  });

  test("consent is remembered per client and user, listed, and revocable (with the tokens it gave)", async () => {
    const first = await authorize(config, "erin");
    const tokens = await oauth.authorizationCodeGrant(config, first.callback, { pkceCodeVerifier: first.verifier, expectedState: first.state });
    // Signed in and consented: the code comes at once, no page.
    const again = await start(config, {}, first.browser);
    const direct = await again.browser.get(again.url.href);
    assert.equal(direct.status, 302);
    assert.ok(new URL(direct.headers.get("location") ?? "").searchParams.get("code"));
    // A scope not consented to yet shows the consent page again.
    const more = await start(config, { scope: "read:orders write:orders" }, first.browser);
    const page = await more.browser.get(more.url.href);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<li>write:orders<\/li>/);

    const users = server.client(UserService);
    const listed = await users.listUserConsents({ username: "erin" });
    const mine = listed.consents.find((c) => c.consumerKey === confidential.consumerKey);
    assert.deepEqual(mine?.scopes, ["read:orders"]);
    await users.revokeUserConsent({ username: "erin", consumerKey: confidential.consumerKey });
    assert.equal((await oauth.tokenIntrospection(config, tokens.access_token)).active, false);
    assert.equal((await users.listUserConsents({ username: "erin" })).consents.filter((c) => c.consumerKey === confidential.consumerKey).length, 0);
    await assert.rejects(users.revokeUserConsent({ username: "erin", consumerKey: confidential.consumerKey }), (e: ConnectError) => e.code === Code.NotFound);
    const after = await start(config, {}, first.browser);
    assert.equal((await after.browser.get(after.url.href)).status, 200);
  });

  test("the consent page shows the scopes the user's roles give, and apart, escaped, those they do not; token and consent agree", async () => {
    // orders:refund is bound to the role cashier, the other (a name needing escapes) to manager.
    const withheld = "<b>&'manage";
    const scopes = server.client(ScopeService);
    await scopes.registerScope({ scope: { name: "orders:refund", roles: ["cashier"] } });
    await scopes.registerScope({ scope: { name: withheld, roles: ["manager"] } });
    const users = server.client(UserService);
    await users.createUser({ user: { username: "hugo", roles: ["cashier"] }, password: PASSWORD });
    const app = (
      await server.grpc.createApplication(
        createRequest({ clientName: "Pizza Till", scopes: ["orders:refund", withheld], grantTypes: ["authorization_code"], callbackUrls: [CALLBACK] }),
      )
    ).application;
    assert.ok(app);
    const tillConfig = await oauth.discovery(new URL(base), app.consumerKey, app.consumerSecret, undefined, {
      algorithm: "oauth2",
      execute: [oauth.allowInsecureRequests],
    });

    const started = await start(tillConfig, { scope: `orders:refund ${withheld}` });
    const login = await started.browser.get(started.url.href);
    const consent = await started.browser.submit(await login.text(), { username: "hugo", password: PASSWORD });
    assert.equal(consent.status, 200);
    const html = await consent.text();
    assert.match(html, /<ul id="scopes">\n<li>orders:refund<\/li>\n<\/ul>/);
    assert.match(html, /Not granted: your roles do not allow/);
    assert.match(html, /<ul id="not-granted"[^>]*>\n<li>&lt;b&gt;&amp;&#39;manage<\/li>\n<\/ul>/);
    assert.doesNotMatch(html, /<b>/);
    const answer = await started.browser.submit(html, {}, { button: "consent" });
    assert.equal(answer.status, 303);
    const tokens = await oauth.authorizationCodeGrant(tillConfig, new URL(answer.headers.get("location") ?? ""), {
      pkceCodeVerifier: started.verifier,
      expectedState: started.state,
    });
    assert.equal(tokens.scope, "orders:refund");
    const remembered = (await users.listUserConsents({ username: "hugo" })).consents.find((c) => c.consumerKey === app.consumerKey);
    assert.deepEqual(remembered?.scopes, ["orders:refund"]);
  });

  test("a redirect_uri not registered is shown on a page, never redirected to", async () => {
    for (const redirect of ["http://127.0.0.1:9/callbackx", "http://evil.example/callback", `${CALLBACK}?x=1`]) {
      const { browser, url } = await start(config, { redirect_uri: redirect });
      const res = await browser.get(url.href);
      assert.equal(res.status, 400);
      assert.equal(res.headers.get("location"), null);
      assert.match(await res.text(), /redirect_uri is not registered/);
    }
    const unknown = await new FormBrowser(base).get(`/oauth2/authorize?response_type=code&client_id=nobody&redirect_uri=${encodeURIComponent(CALLBACK)}`);
    assert.equal(unknown.status, 400);
    // Two callback URLs registered: which one must be said.
    const none = await new FormBrowser(base).get(`/oauth2/authorize?response_type=code&client_id=${confidential.consumerKey}`);
    assert.equal(none.status, 400);
  });

  test("errors after the redirect URI is trusted go back to it with state (RFC 6749 4.1.2.1)", async () => {
    const cases: Array<[Record<string, string>, string]> = [
      [{ response_type: "token" }, "unsupported_response_type"],
      [{ code_challenge_method: "plain" }, "invalid_request"],
      [{ code_challenge: "short" }, "invalid_request"],
      [{ scope: 'bad"scope' }, "invalid_scope"],
    ];
    for (const [params, error] of cases) {
      const { browser, url, state } = await start(config, params);
      const res = await browser.get(url.href);
      assert.equal(res.status, 302, JSON.stringify(params));
      const location = new URL(res.headers.get("location") ?? "");
      assert.equal(location.origin + location.pathname, CALLBACK);
      assert.equal(location.searchParams.get("error"), error);
      assert.equal(location.searchParams.get("state"), state);
    }
    // The user says no.
    const started = await start(config);
    const login = await started.browser.get(started.url.href);
    const consent = await started.browser.submit(await login.text(), { username: "gina", password: PASSWORD });
    assert.equal(consent.status, 200);
    const denied = await started.browser.submit(await consent.text(), {}, { button: "deny" });
    assert.equal(new URL(denied.headers.get("location") ?? "").searchParams.get("error"), "access_denied");
  });

  test("PKCE: a public client without it is refused, so is any client by default; the verifier must be sent and match", async () => {
    for (const cfg of [publicConfig, config]) {
      const url = oauth.buildAuthorizationUrl(cfg, { redirect_uri: CALLBACK, scope: "read:orders", state: "s1" });
      const res = await new FormBrowser(base).get(url.href);
      assert.equal(res.status, 302);
      const location = new URL(res.headers.get("location") ?? "");
      assert.equal(location.searchParams.get("error"), "invalid_request");
      assert.match(location.searchParams.get("error_description") ?? "", /code_challenge/);
    }
    const { callback, verifier } = await authorize(publicConfig);
    const code = callback.searchParams.get("code") ?? "";
    const exchange = { grant_type: "authorization_code", client_id: publicClient.consumerKey, code, redirect_uri: CALLBACK };
    const missing = await tokenRequest(exchange);
    assert.equal(missing.status, 400);
    assert.equal(missing.body.error, "invalid_grant");
    assert.match(missing.body.error_description ?? "", /code_verifier/);
    const wrong = await tokenRequest({ ...exchange, code_verifier: oauth.randomPKCECodeVerifier() });
    assert.equal(wrong.body.error, "invalid_grant");
    // A refused verifier spends nothing: the right one still works.
    const right = await tokenRequest({ ...exchange, code_verifier: verifier });
    assert.equal(right.status, 200, JSON.stringify(right.body));
  });

  test("a code asked for with another redirect_uri than the authorization request's is refused", async () => {
    const { callback, verifier } = await authorize(config);
    const res = await tokenRequest({
      grant_type: "authorization_code",
      client_id: confidential.consumerKey,
      client_secret: confidential.consumerSecret,
      code: callback.searchParams.get("code") ?? "",
      code_verifier: verifier,
      redirect_uri: `${CALLBACK}/second`,
    });
    assert.equal(res.status, 400);
    assert.equal(res.body.error, "invalid_grant");
    assert.match(res.body.error_description ?? "", /redirect_uri/);
  });

  test("a code used twice: refused, and the tokens the first use gave are revoked", async () => {
    const { callback, verifier, state } = await authorize(config);
    const tokens = await oauth.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state });
    assert.equal((await oauth.tokenIntrospection(config, tokens.access_token)).active, true);
    await assert.rejects(
      oauth.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state }),
      (err: oauth.ResponseBodyError) => err.error === "invalid_grant",
    );
    assert.equal((await oauth.tokenIntrospection(config, tokens.access_token)).active, false);
    await assert.rejects(oauth.refreshTokenGrant(config, tokens.refresh_token ?? ""), (err: oauth.ResponseBodyError) => err.error === "invalid_grant");
  });

  test("a code lives 60 s at most", async () => {
    const { callback, verifier, state } = await authorize(config);
    clock.advance(61);
    await assert.rejects(
      oauth.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state }),
      (err: oauth.ResponseBodyError) => err.error === "invalid_grant" && /expired/.test(err.error_description ?? ""),
    );
  });

  test("a form without its anti-CSRF token (or with another browser's) is refused and signs nobody in", async () => {
    const started = await start(config);
    const login = await started.browser.get(started.url.href);
    const html = await login.text();
    const missing = await started.browser.submit(html, { username: "dana", password: PASSWORD, csrf_token: undefined });
    assert.equal(missing.status, 403);
    assert.equal(started.browser.cookies.has("km_session"), false);
    const other = new FormBrowser(base);
    await other.get(started.url.href);
    const forged = await other.submit(html, { username: "dana", password: PASSWORD });
    assert.equal(forged.status, 403);
    assert.equal(other.cookies.has("km_session"), false);
  });

  test("the pages: strict CSP, no script, labelled fields; session cookie HttpOnly and SameSite=Lax; logout", async () => {
    const started = await start(config);
    const login = await started.browser.get(started.url.href);
    const csp = login.headers.get("content-security-policy") ?? "";
    assert.match(csp, /default-src 'none'/);
    assert.doesNotMatch(csp, /script-src|unsafe-inline/);
    assert.match(csp, /form-action 'self' http:\/\/127\.0\.0\.1:9/);
    assert.equal(login.headers.get("x-frame-options"), "DENY");
    const html = await login.text();
    assert.doesNotMatch(html, /<script/i);
    assert.match(html, /<html lang="en">/);
    assert.match(html, /<input id="password" name="password" type="password" autocomplete="current-password" required>/);
    const consent = await started.browser.post(
      "/oauth2/authorize",
      new URLSearchParams({ ...formOf(html).fields, action: "login", username: "dana", password: PASSWORD }),
    );
    const cookie = consent.headers.getSetCookie().find((c) => c.startsWith("km_session="));
    assert.match(cookie ?? "", /HttpOnly/);
    assert.match(cookie ?? "", /SameSite=Lax/);
    assert.doesNotMatch(cookie ?? "", /Secure/); // plain HTTP here; TLS (or an https issuer) adds it

    const logoutPage = await started.browser.get("/oauth2/logout");
    const signedOut = await started.browser.submit(await logoutPage.text(), {});
    assert.equal(signedOut.status, 200);
    assert.equal(started.browser.cookies.has("km_session"), false);
    const again = await started.browser.get(started.url.href);
    assert.match(await again.text(), /Sign in to continue/);
  });

  test("behind TLS (an https issuer) the pages' cookies are Secure", async () => {
    // A server of its own (its own data directory and key): only its cookies are looked at.
    const tls = await startServer({ overrides: { issuer: "https://km.example" } });
    try {
      const page = await fetch(`http://127.0.0.1:${tls.httpPort}/oauth2/logout`);
      const cookie = page.headers.getSetCookie().find((c) => c.startsWith("km_csrf=")) ?? "";
      assert.match(cookie, /; Secure/);
      assert.match(cookie, /HttpOnly/);
    } finally {
      await tls.close();
    }
  });

  test("a login flood is throttled as client secrets are: the address pauses for that user, others carry on", async () => {
    const started = await start(config);
    let html = await (await started.browser.get(started.url.href)).text();
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) {
      const res = await started.browser.submit(html, { username: "flood", password: "wrong-password" });
      statuses.push(res.status);
      html = await res.text();
    }
    assert.deepEqual(statuses, [401, 401, 401, 401, 401, 429, 429]);
    assert.match(html, /Too many failed sign-ins/);
    // Paused: even the right password is not looked at.
    const right = await started.browser.submit(html, { username: "flood", password: PASSWORD });
    assert.equal(right.status, 429);
    assert.ok(Number(right.headers.get("retry-after")) >= 1);
    // Another user from the same address is not paused.
    const other = await started.browser.submit(await right.text(), { username: "dana", password: PASSWORD });
    assert.equal(other.status, 303);
    clock.advance(120);
    const later = await start(config);
    const page = await (await later.browser.get(later.url.href)).text();
    assert.equal((await later.browser.submit(page, { username: "flood", password: PASSWORD })).status, 200);
  });

  test("OpenID Connect: discovery, an id_token signed with the signing keys (nonce, at_hash), userinfo", async () => {
    const users = server.client(UserService);
    const set = await users.setUserAttributes({ user: { username: "olive", email: "olive@example.com", name: "Olive Oyl", roles: ["buyer", "auditor"] } });
    assert.deepEqual(set.user?.roles, ["buyer", "auditor"]);
    // The server runs on the test's clock: the client judges the id_token's times by it too.
    const skew = Math.round((clock.now().getTime() - Date.now()) / 1000);
    const oidc = await oauth.discovery(
      new URL(base),
      confidential.consumerKey,
      { client_secret: confidential.consumerSecret, [oauth.clockSkew]: skew },
      undefined,
      { execute: [oauth.allowInsecureRequests] },
    );
    const metadata = oidc.serverMetadata();
    assert.equal(metadata.issuer, base);
    assert.equal(metadata.userinfo_endpoint, `${base}/oauth2/userinfo`);
    const nonce = oauth.randomNonce();
    const { callback, verifier, state } = await authorize(oidc, "olive", { scope: "openid profile email roles read:orders", nonce });
    const tokens = await oauth.authorizationCodeGrant(oidc, callback, {
      pkceCodeVerifier: verifier,
      expectedState: state,
      expectedNonce: nonce,
      idTokenExpected: true,
    });
    assert.equal(tokens.scope, "read:orders openid profile email roles");
    const claims = tokens.claims();
    assert.ok(claims);
    assert.equal(claims.sub, "olive");
    assert.equal(claims.aud, confidential.consumerKey);
    assert.equal(claims.nonce, nonce);
    assert.equal(claims.email, "olive@example.com");
    assert.equal(claims.name, "Olive Oyl");
    assert.deepEqual(claims.roles, ["buyer", "auditor"]);
    assert.equal(claims.client_id, undefined, "an id_token names no client_id: no gateway takes it for an access token");
    // Signed with a key of the JWKS, at_hash the left half of the access token's SHA-256.
    const idToken = tokens.id_token ?? "";
    const verified = await jwtVerify(idToken, createRemoteJWKSet(new URL(metadata.jwks_uri ?? "")), {
      issuer: base,
      audience: confidential.consumerKey,
      currentDate: clock.now(),
    });
    assert.equal(verified.protectedHeader.typ, "JWT");
    const digest = createHash("sha256").update(tokens.access_token).digest();
    assert.equal(verified.payload.at_hash, digest.subarray(0, 16).toString("base64url"));
    assert.equal((await oauth.tokenIntrospection(config, idToken)).active, false);

    const info = await oauth.fetchUserInfo(oidc, tokens.access_token, "olive");
    assert.deepEqual(info, { sub: "olive", name: "Olive Oyl", email: "olive@example.com", roles: ["buyer", "auditor"] });
    // Only the claims the scopes give.
    const narrow = await authorize(oidc, "olive", { scope: "openid email", nonce });
    const narrowTokens = await oauth.authorizationCodeGrant(oidc, narrow.callback, {
      pkceCodeVerifier: narrow.verifier,
      expectedState: narrow.state,
      expectedNonce: nonce,
    });
    assert.deepEqual(await oauth.fetchUserInfo(oidc, narrowTokens.access_token, "olive"), { sub: "olive", email: "olive@example.com" });

    const userinfo = (token?: string) => fetch(`${base}/oauth2/userinfo`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    const noToken = await userinfo();
    assert.equal(noToken.status, 401);
    assert.match(noToken.headers.get("www-authenticate") ?? "", /^Bearer/);
    const plain = await authorize(config, "olive");
    const plainTokens = await oauth.authorizationCodeGrant(config, plain.callback, { pkceCodeVerifier: plain.verifier, expectedState: plain.state });
    assert.equal(plainTokens.id_token, undefined);
    const noOpenid = await userinfo(plainTokens.access_token);
    assert.equal(noOpenid.status, 403);
    assert.match(noOpenid.headers.get("www-authenticate") ?? "", /insufficient_scope/);
    await oauth.tokenRevocation(oidc, tokens.access_token);
    const revoked = await userinfo(tokens.access_token);
    assert.equal(revoked.status, 401);
    assert.match(revoked.headers.get("www-authenticate") ?? "", /invalid_token/);

    // getUserClaims as an RPC, for gateways.
    const gateway = await server.caller(["km:gateway"]);
    const { claims: all } = await server.client(KeyManagerService, { token: gateway.token }).getUserClaims({ username: "olive" });
    assert.deepEqual(all, { sub: "olive", name: "Olive Oyl", email: "olive@example.com", roles: "buyer,auditor" });
    await assert.rejects(server.grpc.getUserClaims({ username: "nobody" }), (e: ConnectError) => e.code === Code.PermissionDenied || e.code === Code.NotFound);
    await assert.rejects(
      server.client(KeyManagerService, { token: gateway.token }).getUserClaims({ username: "nobody" }),
      (e: ConnectError) => e.code === Code.NotFound,
    );
    await assert.rejects(
      users.setUserAttributes({ user: { username: "olive", email: "not an email", roles: ["a,b"] } }),
      (e: ConnectError) => e.code === Code.InvalidArgument && /user\.email/.test(e.message) && /roles\[0\]/.test(e.message),
    );
  });

  test("the authorization_code grant over GetNewApplicationAccessToken: the code in the request's parameters", async () => {
    const { callback, verifier } = await authorize(config);
    const res = await server.grpc.getNewApplicationAccessToken({
      request: {
        clientId: confidential.consumerKey,
        clientSecret: confidential.consumerSecret,
        grantType: "authorization_code",
        callbackUri: CALLBACK,
        requestParameters: { code: callback.searchParams.get("code") ?? "", code_verifier: verifier },
      },
    });
    assert.equal(res.token?.endUserName, "dana");
  });
});
