import assert from "node:assert/strict";
import type * as http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { backend } from "../examples/gateway/backend.js";
import { API, createFixture, type Fixture } from "../packages/gateway/test/fixture.js";
import { type ExampleGateway, startExampleGateway } from "./support/example-gateway.js";
import { startServer, type TestServer } from "./support/server.js";

let server: TestServer;
let fixture: Fixture;
let upstream: http.Server;
let gateway: ExampleGateway;
let base: string;

before(async () => {
  server = await startServer({ overrides: { gateway_sync: { heartbeat_interval_ms: 1000 } } });
  fixture = await createFixture(server);
  upstream = backend();
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
  gateway = await startExampleGateway({
    KM_GRPC: `127.0.0.1:${server.grpcPort}`,
    KM_GATEWAY_TOKEN: fixture.gatewayToken,
    UPSTREAM: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
    API_CONTEXT: API.context,
    API_VERSION: API.version,
  });
  assert.equal(gateway.started.copy.usable, true, "it starts once its copy is loaded");
  assert.equal(gateway.started.copy.apis, 1);
  base = gateway.base;
});
after(async () => {
  await gateway?.stop();
  upstream?.close();
  await server?.close();
});

const byName = (name: string) => fixture.tokens.find((t) => t.name === name)?.token ?? assert.fail(name);

async function call(path: string, token?: string, method = "GET") {
  const res = await fetch(`${base}${path}`, { method, headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: res.status, res, body: (await res.json()) as { code?: number; path?: string; headers?: Record<string, string> } };
}

test("authorized: proxied to the backend with the consumer key, application and tiers", async () => {
  const { status, body } = await call("/pizzashack/1.0.0/menu?size=large", fixture.good);
  assert.equal(status, 200);
  assert.equal(body.path, "/pizzashack/1.0.0/menu?size=large");
  const mapping = fixture.keyMappings.find((m) => m.applicationName === "App subscribed")!;
  assert.equal(body.headers?.["x-consumer-key"], mapping.consumerKey);
  assert.equal(body.headers?.["x-application-name"], "App subscribed");
  assert.equal(body.headers?.["x-subscription-tier"], "Gold");
});

test("refused: WSO2's gateway errors (blocked, not subscribed, no token, wrong token type, JWT forged)", async () => {
  for (const [token, path, method, status, code] of [
    [byName("blocked app token"), "/pizzashack/1.0.0/menu", "GET", 403, 900907],
    [byName("unsubscribed token"), "/pizzashack/1.0.0/menu", "GET", 403, 900908],
    [undefined, "/pizzashack/1.0.0/menu", "GET", 401, 900902],
    [byName("user token"), "/pizzashack/1.0.0/order/7", "DELETE", 403, 900905],
    [byName("forged JWT"), "/pizzashack/1.0.0/menu", "GET", 401, 900901],
    [fixture.good, "/other/1.0.0/menu", "GET", 403, 900908],
  ] as const) {
    const r = await call(path, token, method);
    assert.equal(r.status, status, `${path} ${code}`);
    assert.equal(r.body.code, code);
  }
});

test("a token revoked at the key manager is refused through the gateway within the stream's latency", async () => {
  const client = fixture.clients.get("App subscribed, JWT")!;
  const issued = await server.grpc.getNewApplicationAccessToken({ request: { ...client, grantType: "client_credentials" } });
  const token = issued.token!.accessToken;
  assert.equal((await call("/pizzashack/1.0.0/menu", token)).status, 200);
  await server.grpc.revokeToken({ token });
  const revoked = performance.now();
  let status = 200;
  while (status === 200) {
    assert.ok(performance.now() - revoked < 20_000, "refused within 20 s");
    status = (await call("/pizzashack/1.0.0/menu", token)).status;
  }
  const ms = performance.now() - revoked;
  assert.equal(status, 401);
  console.log(`# revoked JWT refused through the example gateway ${ms.toFixed(1)} ms after RevokeToken answered`);
});
