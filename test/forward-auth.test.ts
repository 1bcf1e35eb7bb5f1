// Forward auth on the HTTP port (/gateway/forward-auth), asked as nginx auth_request, Caddy
// forward_auth and Traefik ForwardAuth ask it, with plain HTTP requests. The same endpoint behind
// real nginx and Caddy: test/gateways.test.ts.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { type GatewayFixture, gatewayFixture } from "./support/gateway-fixture.js";
import { startServer, type TestServer } from "./support/server.js";

let server: TestServer;
let fixture: GatewayFixture;
let gatewayToken: string;
const SECRETS = ["first-secret-4d1f0c7e9a2b", "rotated-secret-8b3e6a5d2c1f"];

before(async () => {
  server = await startServer({ overrides: { gateway: { caller_secrets_sha256: SECRETS.map((s) => createHash("sha256").update(s).digest("hex")) } } });
  fixture = await gatewayFixture(server);
  gatewayToken = (await server.caller(["km:gateway"])).token;
});
after(() => server?.close());

function ask(headers: Record<string, string>, options: { caller?: string; method?: string } = {}) {
  const caller = options.caller ?? gatewayToken;
  return fetch(`http://127.0.0.1:${server.httpPort}/gateway/forward-auth`, {
    method: options.method ?? "GET",
    headers: { ...(caller ? { "x-km-authorization": `Bearer ${caller}` } : {}), ...headers },
  });
}

const nginx = (method: string, uri: string, token?: string) => ({
  "x-original-method": method,
  "x-original-uri": uri,
  ...(token ? { authorization: `Bearer ${token}` } : {}),
});
const caddy = (method: string, uri: string, token?: string) => ({
  "x-forwarded-method": method,
  "x-forwarded-uri": uri,
  "x-forwarded-host": "api.example.com",
  "x-forwarded-proto": "https",
  ...(token ? { authorization: `Bearer ${token}` } : {}),
});

describe("forward auth", () => {
  test("allowed: 200 with the upstream headers, as nginx (X-Original-*) and Caddy/Traefik (X-Forwarded-*) ask", async () => {
    for (const headers of [nginx("GET", "/pizzashack/1.0.0/menu?lang=en", fixture.appToken), caddy("GET", "/pizzashack/1.0.0/menu", fixture.appToken)]) {
      const res = await ask(headers, { method: "HEAD" });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get("x-consumer-key"), fixture.consumerKey);
      assert.equal(res.headers.get("x-application-id"), fixture.applicationId);
      assert.equal(res.headers.get("x-application-name"), "PizzaApp");
      assert.equal(res.headers.get("x-subscription-tier"), "Gold");
      assert.equal(res.headers.get("x-key-type"), "PRODUCTION");
      assert.equal(res.headers.get("x-end-user"), "", "an application token has no end user: sent empty");
      assert.equal(res.headers.get("cache-control"), "no-store");
    }
    const user = await ask(caddy("GET", "/pizzashack/1.0.0/order/7", fixture.userToken));
    assert.equal(user.status, 200);
    assert.equal(user.headers.get("x-end-user"), "alice");
  });

  test("refused: 401 with WWW-Authenticate, 403, WSO2's body and the code header", async () => {
    const cases: [Record<string, string>, number, number][] = [
      [nginx("GET", "/pizzashack/1.0.0/menu"), 401, 900902],
      [nginx("GET", "/pizzashack/1.0.0/menu", "not-ours"), 401, 900901],
      [caddy("GET", "/pizzashack/1.0.0/menu", fixture.unsubscribedToken), 403, 900908],
      [caddy("DELETE", "/pizzashack/1.0.0/menu", fixture.appToken), 403, 900906],
      [nginx("GET", "/burgers/1.0/menu", fixture.appToken), 403, 900908],
    ];
    for (const [headers, status, code] of cases) {
      const res = await ask(headers);
      assert.equal(res.status, status, JSON.stringify(headers));
      assert.equal(res.headers.get("x-km-status-code"), String(code));
      assert.equal(res.headers.get("www-authenticate"), status === 401 ? 'Bearer error="invalid_token"' : null);
      assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
      const body = await res.json();
      assert.equal(body.code, code);
      assert.equal(typeof body.message, "string");
      assert.equal(typeof body.description, "string");
      assert.equal(res.headers.get("x-consumer-key"), null);
    }
  });

  test("the gateway must authenticate (a configured secret, or km:gateway): else 500 with a 900900 body saying how, never a decision", async () => {
    const headers = nginx("GET", "/pizzashack/1.0.0/menu", fixture.appToken);
    const store = (await server.caller(["apim:subscribe"], { subscriber: "store" })).token;
    for (const caller of ["", "not-a-token", store, fixture.appToken]) {
      const res = await ask(headers, { caller });
      assert.equal(res.status, 500, caller);
      const body = await res.json();
      assert.equal(body.code, 900900);
      assert.match(body.description, /the gateway is not authenticated to the key manager: .*x-km-authorization: Bearer <secret>/);
      assert.equal(res.headers.get("x-consumer-key"), null);
    }
    // A configured secret (any of them: rotation) authenticates the gateway; another does not.
    for (const secret of SECRETS) assert.equal((await ask(headers, { caller: secret })).status, 200);
    assert.equal((await ask(headers, { caller: `${SECRETS[0]}x` })).status, 500);
    // The API caller's Authorization never authenticates the gateway.
    const res = await fetch(`http://127.0.0.1:${server.httpPort}/gateway/forward-auth`, { headers: { ...headers, authorization: `Bearer ${gatewayToken}` } });
    assert.equal(res.status, 500);
  });

  test("a gateway that leaves out the original URI or method gets 500 saying which header", async () => {
    const noUri = await ask({ "x-original-method": "GET", authorization: `Bearer ${fixture.appToken}` });
    assert.equal(noUri.status, 500);
    assert.match((await noUri.json()).description, /X-Original-URI \(nginx\) or X-Forwarded-Uri/);
    const noMethod = await ask({ "x-original-uri": "/pizzashack/1.0.0/menu", authorization: `Bearer ${fixture.appToken}` });
    assert.equal(noMethod.status, 500);
    assert.match((await noMethod.json()).description, /X-Original-Method/);
  });
});
