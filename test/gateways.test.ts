// Gateways no one here wrote: Debian's nginx (auth_request) and Caddy (forward_auth), run with the
// README's configurations (examples/nginx/nginx.conf, examples/caddy/Caddyfile) in front of a test
// backend, asking this service's forward auth. Real HTTP requests through them: allowed ones
// reach the backend with the key manager's upstream headers (and not the caller's own), refused
// ones get 401 with WWW-Authenticate or 403, with WSO2's error body. nginx and Caddy are
// installed with apt-get when missing; when they cannot be, this test fails.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { type GatewayFixture, gatewayFixture } from "./support/gateway-fixture.js";
import { example, type RunningGateway, type SeenRequest, startBackend, startCaddy, startNginx } from "./support/real-gateways.js";
import { startServer, type TestServer } from "./support/server.js";

const README = readFileSync(new URL("../README.md", import.meta.url), "utf8");

let server: TestServer;
let fixture: GatewayFixture;
let backend: Awaited<ReturnType<typeof startBackend>>;
const gateways: Record<string, RunningGateway> = {};

before(async () => {
  // The gateways authenticate with a shared secret, as a static configuration file can.
  const gatewaySecret = randomBytes(32).toString("base64url");
  server = await startServer({ overrides: { gateway: { caller_secrets_sha256: [createHash("sha256").update(gatewaySecret).digest("hex")] } } });
  fixture = await gatewayFixture(server);
  backend = await startBackend();
  const values = { kmHttpAddress: `127.0.0.1:${server.httpPort}`, backendAddress: backend.address, gatewaySecret };
  gateways.nginx = await startNginx(values);
  gateways.caddy = await startCaddy(values);
});
after(async () => {
  await Promise.all(Object.values(gateways).map((g) => g.stop()));
  await backend?.close();
  await server?.close();
});

test("the README shows the configurations these tests run, as they are", () => {
  for (const file of ["nginx/nginx.conf", "caddy/Caddyfile"]) assert.ok(README.includes(example(file).trim()), `README.md shows examples/${file} verbatim`);
});

for (const name of ["nginx", "caddy"] as const) {
  describe(`${name} in front of an API`, () => {
    const call = (path: string, headers: Record<string, string> = {}, method = "GET") =>
      fetch(`http://127.0.0.1:${gateways[name]?.port}${path}`, { method, headers, redirect: "manual" });
    /** What reached the backend during `action`. */
    const reaching = async (action: () => Promise<Response>): Promise<{ res: Response; seen: SeenRequest[] }> => {
      const before = backend.seen.length;
      const res = await action();
      await res.arrayBuffer().catch(() => undefined);
      return { res, seen: backend.seen.slice(before) };
    };

    test("allowed: 200 from the backend, which sees the upstream headers and none the caller forged", async () => {
      const { res, seen } = await reaching(() =>
        call("/pizzashack/1.0.0/menu?lang=en", {
          authorization: `Bearer ${fixture.appToken}`,
          "x-end-user": "mallory",
          "x-consumer-key": "forged",
        }),
      );
      assert.equal(res.status, 200);
      assert.equal(seen.length, 1);
      const request = seen[0] as SeenRequest;
      assert.equal(request.url, "/pizzashack/1.0.0/menu?lang=en");
      assert.equal(request.headers["x-consumer-key"], fixture.consumerKey);
      assert.equal(request.headers["x-application-id"], fixture.applicationId);
      assert.equal(request.headers["x-application-name"], "PizzaApp");
      assert.equal(request.headers["x-subscription-tier"], "Gold");
      assert.equal(request.headers["x-key-type"], "PRODUCTION");
      // An application token has no end user: the caller's own is dropped (nginx sends none, Caddy an empty one).
      assert.equal(request.headers["x-end-user"] ?? "", "");

      const user = await reaching(() => call("/pizzashack/1.0.0/order/7", { authorization: `Bearer ${fixture.userToken}` }));
      assert.equal(user.res.status, 200);
      assert.equal(user.seen[0]?.headers["x-end-user"], "alice");

      const post = await reaching(() =>
        call("/pizzashack/1.0.0/order", { authorization: `Bearer ${fixture.appToken}`, "content-type": "application/json" }, "POST"),
      );
      assert.equal(post.res.status, 200);
      assert.equal(post.seen[0]?.method, "POST");
    });

    const refusals: [string, string, Record<string, string>, string, number, number][] = [
      ["no token", "GET", {}, "/pizzashack/1.0.0/menu", 401, 900902],
      ["a bad token", "GET", { authorization: "Bearer not-a-token-of-ours" }, "/pizzashack/1.0.0/menu", 401, 900901],
      ["an application not subscribed", "GET", { authorization: "UNSUBSCRIBED" }, "/pizzashack/1.0.0/menu", 403, 900908],
      ["a verb the API does not have", "DELETE", { authorization: "APP" }, "/pizzashack/1.0.0/menu", 403, 900906],
      ["an unknown API", "GET", { authorization: "APP" }, "/burgers/1.0/menu", 403, 900908],
    ];
    for (const [what, method, given, path, status, code] of refusals) {
      test(`${what}: ${status} with WSO2's body (${code}), the backend never asked`, async () => {
        const token = given.authorization === "APP" ? fixture.appToken : given.authorization === "UNSUBSCRIBED" ? fixture.unsubscribedToken : undefined;
        const headers = token ? { authorization: `Bearer ${token}` } : given;
        const before = backend.seen.length;
        const res = await call(path, headers, method);
        assert.equal(res.status, status);
        assert.equal(res.headers.get("www-authenticate"), status === 401 ? 'Bearer error="invalid_token"' : null);
        assert.equal(res.headers.get("x-km-status-code"), String(code));
        assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
        const body = await res.json();
        assert.equal(body.code, code);
        assert.equal(typeof body.message, "string");
        assert.equal(typeof body.description, "string");
        assert.equal(backend.seen.length, before, "a refused request never reaches the backend");
      });
    }
  });
}
