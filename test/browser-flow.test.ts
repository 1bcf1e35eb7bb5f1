import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdirSync } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, test } from "node:test";
import * as oauth from "openid-client";
import type { Browser } from "playwright-core";
import { AuthLevel } from "../gen/keymanager/v1/types_pb.js";
import { ScopeService } from "../gen/keymanager/v1/scope_service_pb.js";
import { SubscriptionService } from "../gen/keymanager/v1/subscription_service_pb.js";
import { TokenValidationService } from "../gen/keymanager/v1/token_validation_service_pb.js";
import { UserService } from "../gen/keymanager/v1/user_service_pb.js";
import { launchChromium } from "./support/chromium.js";
import { describeOnEachDatabase } from "./support/each-database.js";
import { createRequest } from "./support/fixtures.js";
import { startServer, type TestServer } from "./support/server.js";

/** Screenshots of the pages, kept after the run (git-ignored). */
const ARTIFACTS = join(import.meta.dirname, "artifacts");

const API = { apiId: "browser-api", name: "BrowserAPI", context: "/browser", version: "1.0.0", publisher: "admin", apiTier: "Gold" };
const RESOURCES = [{ uriTemplate: "/orders", httpVerb: "POST", authLevel: AuthLevel.APPLICATION_USER, scopes: ["write:orders"], throttlingTier: "Gold" }];

describeOnEachDatabase("authorization code flow in a real browser (Debian chromium, playwright-core)", (database) => {
  let server: TestServer;
  let browser: Browser;
  let callbackServer: http.Server;
  let callback = "";
  let app: { consumerKey: string; consumerSecret: string };
  const arrived: string[] = [];

  before(async () => {
    browser = await launchChromium();
    // The client's redirect URI: a loopback server of the test, as a native or local web app would have.
    callbackServer = http.createServer((req, res) => {
      arrived.push(req.url ?? "");
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end("<!DOCTYPE html><title>Signed in</title><p>Back at the application.</p>");
    });
    await new Promise<void>((resolve) => callbackServer.listen(0, "127.0.0.1", resolve));
    callback = `http://127.0.0.1:${(callbackServer.address() as AddressInfo).port}/callback`;

    server = await startServer({ databaseUrl: database.url() });
    const applicationId = randomUUID();
    const created = (
      await server.grpc.createApplication(
        createRequest({
          applicationId,
          clientName: "Pizza Browser App",
          grantTypes: ["authorization_code", "refresh_token", "client_credentials"],
          callbackUrls: [callback],
        }),
      )
    ).application;
    assert.ok(created);
    app = created;
    const subs = server.client(SubscriptionService);
    await subs.createApi({ api: API });
    await server.grpc.registerNewResource({ resource: { apiId: API.apiId, resources: RESOURCES } });
    await subs.createSubscription({ subscription: { applicationId, apiId: API.apiId, tier: "Gold" } });
    await server.client(UserService).createUser({ user: { username: "browser-user" }, password: "browser-password" });
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    await new Promise((resolve) => callbackServer?.close(resolve));
  });

  /** The client's configuration from discovery and an authorization URL asking for `scope` with PKCE (S256) and a state. */
  async function authorizationRequest(consumerKey: string, consumerSecret: string, scope: string) {
    const config = await oauth.discovery(new URL(`http://127.0.0.1:${server.httpPort}`), consumerKey, consumerSecret, undefined, {
      algorithm: "oauth2",
      execute: [oauth.allowInsecureRequests],
    });
    const verifier = oauth.randomPKCECodeVerifier();
    const state = oauth.randomState();
    const url = oauth.buildAuthorizationUrl(config, {
      redirect_uri: callback,
      scope,
      code_challenge: await oauth.calculatePKCECodeChallenge(verifier),
      code_challenge_method: "S256",
      state,
    });
    return { config, verifier, state, url };
  }

  test("login and consent in chromium, the code exchanged, the user token valid on an Application_User resource", async (t) => {
    const { config, verifier, state, url } = await authorizationRequest(app.consumerKey, app.consumerSecret, "write:orders");

    const context = await browser.newContext();
    const page = await context.newPage();
    const violations: string[] = [];
    page.on("console", (m) => {
      if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
    });
    await page.goto(url.href);
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    mkdirSync(ARTIFACTS, { recursive: true });
    const loginShot = join(ARTIFACTS, `login-${database.name}.png`);
    await page.screenshot({ path: loginShot, fullPage: true });
    // Filled through the labels, sent with the keyboard: the form works without a mouse.
    await page.getByLabel("Username").fill("browser-user");
    await page.getByLabel("Password").fill("browser-password");
    await page.getByLabel("Password").press("Enter");

    await page.getByRole("heading", { name: "Allow access" }).waitFor();
    assert.equal(
      await page
        .locator("#scopes li")
        .allTextContents()
        .then((s) => s.join(" ")),
      "write:orders",
    );
    const consentShot = join(ARTIFACTS, `consent-${database.name}.png`);
    await page.screenshot({ path: consentShot, fullPage: true });
    await Promise.all([page.waitForURL(`${callback}?**`), page.getByRole("button", { name: "Allow" }).click()]);
    t.diagnostic(`screenshots: ${loginShot} ${consentShot}`);
    console.log(`browser-flow screenshots: ${loginShot} ${consentShot}`);
    assert.deepEqual(violations, []);

    const landed = new URL(page.url());
    assert.equal(arrived.length > 0, true, "the callback server was reached");
    assert.equal(landed.searchParams.get("state"), state);
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === "km_session");
    assert.equal(session?.httpOnly, true);
    assert.equal(session?.sameSite, "Lax");
    await context.close();

    const tokens = await oauth.authorizationCodeGrant(config, landed, { pkceCodeVerifier: verifier, expectedState: state });
    const gateway = server.client(TokenValidationService);
    const check = (accessToken: string) =>
      gateway.validateToken({ context: API.context, version: API.version, accessToken, matchingResource: "/orders", httpVerb: "POST" });
    const res = await check(tokens.access_token);
    assert.equal(res.authorized, true, `${res.statusCode} ${res.statusName}`);
    assert.equal(res.endUserName, "browser-user");
    assert.equal(res.isApplicationToken, false);
    // An application token of the same client is not a user's: refused on an Application_User resource.
    const appToken = await oauth.clientCredentialsGrant(config, { scope: "write:orders" });
    assert.equal((await check(appToken.access_token)).authorized, false);
  });

  test("the consent page in chromium: the scopes the user's roles give, and apart those they do not; the token has the first only", async () => {
    const scopes = server.client(ScopeService);
    await scopes.registerScope({ scope: { name: "oven:bake", roles: ["baker"] } });
    await scopes.registerScope({ scope: { name: "oven:repair", roles: ["technician"] } });
    await server.client(UserService).createUser({ user: { username: "browser-baker", roles: ["baker"] }, password: "browser-password" });
    const oven = (
      await server.grpc.createApplication(
        createRequest({ clientName: "Oven App", scopes: ["oven:bake", "oven:repair"], grantTypes: ["authorization_code"], callbackUrls: [callback] }),
      )
    ).application;
    assert.ok(oven);
    const { config, verifier, state, url } = await authorizationRequest(oven.consumerKey, oven.consumerSecret, "oven:bake oven:repair");

    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(url.href);
    await page.getByLabel("Username").fill("browser-baker");
    await page.getByLabel("Password").fill("browser-password");
    await page.getByLabel("Password").press("Enter");
    await page.getByRole("heading", { name: "Allow access" }).waitFor();
    assert.deepEqual(await page.locator("#scopes li").allTextContents(), ["oven:bake"]);
    assert.deepEqual(
      await page
        .getByRole("list", { name: /Not granted: your roles do not allow/ })
        .getByRole("listitem")
        .allTextContents(),
      ["oven:repair"],
    );
    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, `consent-not-granted-${database.name}.png`), fullPage: true });
    await Promise.all([page.waitForURL(`${callback}?**`), page.getByRole("button", { name: "Allow" }).click()]);
    const landed = new URL(page.url());
    await context.close();

    const tokens = await oauth.authorizationCodeGrant(config, landed, { pkceCodeVerifier: verifier, expectedState: state });
    assert.equal(tokens.scope, "oven:bake");
  });
});
