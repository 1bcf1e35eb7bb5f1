import assert from "node:assert/strict";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import Fastify, { type FastifyInstance } from "fastify";
import { startServer, type TestServer } from "../../../test/support/server.js";
import { createGatewayValidator, createNodeGuard, fastifyGateway, type GatewayValidator, gatewayMiddleware } from "../src/index.js";
import { API, createFixture, type Fixture } from "./fixture.js";

let server: TestServer;
let fixture: Fixture;
let validator: GatewayValidator;

before(async () => {
  server = await startServer();
  fixture = await createFixture(server);
  validator = createGatewayValidator({ target: `127.0.0.1:${server.grpcPort}`, token: fixture.gatewayToken });
});
after(async () => {
  await validator?.close();
  await server?.close();
});

const byName = (name: string) => fixture.tokens.find((t) => t.name === name)?.token ?? assert.fail(name);

/** The upstream: answers 200 with the headers it got. */
function echo(req: http.IncomingMessage, res: http.ServerResponse) {
  res.writeHead(200, { "content-type": "application/json" });
  res.end(JSON.stringify({ headers: req.headers, url: req.url }));
}

async function listen(server: http.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

interface Gateway {
  name: string;
  start(): Promise<string>;
  stop(): Promise<void>;
}

// Made in start(): the validator exists once the suite's before() has run.
function nodeGateway(): Gateway {
  const s = http.createServer();
  return {
    name: "node:http guard",
    start() {
      const guard = createNodeGuard({ validator, api: { context: API.context, version: API.version } });
      s.on("request", async (req, res) => {
        if (await guard(req, res)) echo(req, res);
      });
      return listen(s);
    },
    stop: () => new Promise((r) => s.close(() => r())),
  };
}

function expressStyleGateway(): Gateway {
  const s = http.createServer();
  return {
    name: "Express-style (req, res, next)",
    start() {
      const middleware = gatewayMiddleware({ validator, api: (req) => (req.url?.startsWith(`${API.context}/`) ? API : undefined) });
      s.on("request", (req, res) =>
        middleware(req, res, (err) => {
          if (err) {
            res.writeHead(500).end();
            return;
          }
          echo(req, res);
        }),
      );
      return listen(s);
    },
    stop: () => new Promise((r) => s.close(() => r())),
  };
}

function fastifyGatewayApp(): Gateway {
  let app: FastifyInstance;
  return {
    name: "Fastify plugin",
    async start() {
      app = Fastify();
      await app.register(async (scope) => {
        await scope.register(fastifyGateway, { validator, api: { context: API.context, version: API.version } });
        scope.all(`${API.context}/*`, async (request, reply) => reply.send({ headers: request.headers, url: request.url }));
      });
      app.get("/unguarded", async () => ({ ok: true }));
      return app.listen({ port: 0, host: "127.0.0.1" });
    },
    stop: () => app.close(),
  };
}

for (const make of [nodeGateway, expressStyleGateway, fastifyGatewayApp]) {
  const gateway = make();
  describe(gateway.name, () => {
    let base: string;
    before(async () => {
      base = await gateway.start();
    });
    after(() => gateway.stop());

    async function call(path: string, token: string | undefined, init: RequestInit = {}) {
      const headers = new Headers(init.headers);
      if (token !== undefined) headers.set("authorization", `Bearer ${token}`);
      const res = await fetch(`${base}${path}`, { ...init, headers });
      return { res, body: (await res.json()) as Record<string, unknown> & { headers?: Record<string, string> } };
    }

    test("allowed: the upstream gets consumer key, application, tiers, key type and end user; forged ones are replaced", async () => {
      const { res, body } = await call("/pizzashack/1.0.0/order", byName("user token"), {
        method: "POST",
        headers: { "x-consumer-key": "forged", "x-end-user": "mallory" },
      });
      assert.equal(res.status, 200);
      const mapping = fixture.keyMappings.find((m) => m.applicationName === "App subscribed")!;
      assert.equal(body.headers?.["x-consumer-key"], mapping.consumerKey);
      assert.equal(body.headers?.["x-application-id"], mapping.applicationId);
      assert.equal(body.headers?.["x-application-name"], "App subscribed");
      assert.equal(body.headers?.["x-application-tier"], "50PerMin");
      assert.equal(body.headers?.["x-subscription-tier"], "Gold");
      assert.equal(body.headers?.["x-key-type"], "PRODUCTION");
      assert.equal(body.headers?.["x-end-user"], "alice");
    });

    test("an application token: no end user header, and a caller's own one taken off", async () => {
      const { res, body } = await call("/pizzashack/1.0.0/menu", fixture.good, { headers: { "x-end-user": "mallory" } });
      assert.equal(res.status, 200);
      assert.equal(body.headers?.["x-end-user"], undefined);
    });

    test("no token: 401, WWW-Authenticate invalid_token, WSO2's body 900902", async () => {
      const { res, body } = await call("/pizzashack/1.0.0/menu", undefined);
      assert.equal(res.status, 401);
      assert.equal(res.headers.get("www-authenticate"), 'Bearer error="invalid_token"');
      assert.equal(body.code, 900902);
      assert.equal(body.message, "Missing Credentials");
      assert.equal(typeof body.description, "string");
    });

    test("a revoked token: 401 with 900901, the token not in the body", async () => {
      const token = byName("revoked app token");
      const { res, body } = await call("/pizzashack/1.0.0/menu", token);
      assert.equal(res.status, 401);
      assert.equal(res.headers.get("www-authenticate"), 'Bearer error="invalid_token"');
      assert.deepEqual(body, { code: 900901, message: "Invalid Credentials", description: "the access token was revoked" });
      assert.ok(!JSON.stringify(body).includes(token));
    });

    for (const [name, path, method, code] of [
      ["blocked app token", "/pizzashack/1.0.0/menu", "GET", 900907],
      ["unsubscribed token", "/pizzashack/1.0.0/menu", "GET", 900908],
      ["on-hold token", "/pizzashack/1.0.0/menu", "GET", 900909],
      ["app token without scope", "/pizzashack/1.0.0/order/7", "DELETE", 900910],
      ["user token", "/pizzashack/1.0.0/order/7", "DELETE", 900905],
      ["app token", "/pizzashack/1.0.0/nowhere", "GET", 900906],
    ] as const) {
      test(`${name}, ${method} ${path}: 403 with ${code}`, async () => {
        const { res, body } = await call(path, byName(name), { method });
        assert.equal(res.status, 403);
        assert.equal(body.code, code);
        assert.equal(res.headers.get("www-authenticate"), code === 900910 ? 'Bearer error="insufficient_scope"' : null);
      });
    }

    test("a resource with auth level NONE: allowed without a token", async () => {
      const { res } = await call("/pizzashack/1.0.0/health", undefined);
      assert.equal(res.status, 200);
    });
  });
}

test("the key manager unreachable: 503 with 900912", async () => {
  const unreachable = createGatewayValidator({ target: "127.0.0.1:1", token: "t", callTimeoutMs: 500 });
  const guard = createNodeGuard({ validator: unreachable, api: API });
  const s = http.createServer(async (req, res) => {
    if (await guard(req, res)) echo(req, res);
  });
  const base = await listen(s);
  try {
    const res = await fetch(`${base}/pizzashack/1.0.0/menu`, { headers: { authorization: `Bearer ${fixture.good}` } });
    assert.equal(res.status, 503);
    assert.equal(((await res.json()) as { code: number }).code, 900912);
  } finally {
    await unreachable.close();
    await new Promise((r) => s.close(() => r(undefined)));
  }
});

test("no API for the path: 403 with 900908", async () => {
  const middleware = gatewayMiddleware({ validator, api: () => undefined });
  const s = http.createServer((req, res) => middleware(req, res, () => echo(req, res)));
  const base = await listen(s);
  try {
    const res = await fetch(`${base}/other/1.0/x`, { headers: { authorization: `Bearer ${fixture.good}` } });
    assert.equal(res.status, 403);
    assert.equal(((await res.json()) as { code: number }).code, 900908);
  } finally {
    await new Promise((r) => s.close(() => r(undefined)));
  }
});

test("configured header names and removeTokenHeader", async () => {
  const guard = createNodeGuard({
    validator,
    api: API,
    upstreamHeaders: { consumerKey: "x-wso2-consumer", endUser: "" },
    removeTokenHeader: true,
  });
  const s = http.createServer(async (req, res) => {
    if (await guard(req, res)) echo(req, res);
  });
  const base = await listen(s);
  try {
    const res = await fetch(`${base}/pizzashack/1.0.0/menu`, { headers: { authorization: `Bearer ${fixture.good}` } });
    const body = (await res.json()) as { headers: Record<string, string> };
    assert.equal(res.status, 200);
    assert.ok(body.headers["x-wso2-consumer"]);
    assert.equal(body.headers["x-consumer-key"], undefined);
    assert.equal(body.headers.authorization, undefined);
  } finally {
    await new Promise((r) => s.close(() => r(undefined)));
  }
});
