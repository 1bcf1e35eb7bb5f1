import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type Client, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { SubscriptionService } from "../gen/keymanager/v1/subscription_service_pb.js";
import { TokenValidationService } from "../gen/keymanager/v1/token_validation_service_pb.js";
import { AuthLevel } from "../gen/keymanager/v1/types_pb.js";
import { createRequest } from "./support/fixtures.js";
import { describeOnEachDatabase } from "./support/each-database.js";
import { has, scrape, total } from "./support/prometheus.js";
import { bearer, startServer, type TestServer } from "./support/server.js";

const API = { apiId: "metered", name: "Metered", context: "/metered", version: "1.0.0", publisher: "admin", apiTier: "Gold" };
const RESOURCES = [{ uriTemplate: "/items", httpVerb: "GET", authLevel: AuthLevel.ANY, scopes: [], throttlingTier: "Unlimited" }];
const VALIDATIONS = "keymanager_token_validations_total";
const DURATION_COUNT = "keymanager_request_duration_seconds_count";

function form(fields: Record<string, string>) {
  return { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(fields).toString() };
}

describe("metrics", () => {
  let server: TestServer;
  let gateway: Client<typeof TokenValidationService>;
  let connectGateway: Client<typeof TokenValidationService>;
  /** Every token and secret this test made: none may appear in a scrape. */
  const secrets: string[] = [];
  let consumerKey = "";
  let consumerSecret = "";
  let token = "";

  before(async () => {
    // A low pause threshold, so a few wrong secrets lock an address out.
    server = await startServer({ overrides: { authentication: { failures_before_pause: 3 } } });
    secrets.push(server.token);
    gateway = server.client(TokenValidationService);
    connectGateway = createClient(
      TokenValidationService,
      createConnectTransport({ baseUrl: `http://127.0.0.1:${server.httpPort}`, httpVersion: "1.1", interceptors: [bearer(server.token)] }),
    );
    const subs = server.client(SubscriptionService);
    await subs.createApi({ api: API });
    await server.grpc.registerNewResource({ resource: { apiId: API.apiId, resources: RESOURCES } });
    const applicationId = randomUUID();
    const app = (await server.grpc.createApplication(createRequest({ applicationId, grantTypes: ["client_credentials"], scopes: [] }))).application;
    assert.ok(app);
    consumerKey = app.consumerKey;
    consumerSecret = app.consumerSecret;
    secrets.push(consumerSecret);
    await subs.createSubscription({ subscription: { applicationId, apiId: API.apiId, tier: "Gold" } });
    const issued = await fetch(
      `http://127.0.0.1:${server.httpPort}/oauth2/token`,
      form({ grant_type: "client_credentials", client_id: consumerKey, client_secret: consumerSecret }),
    );
    assert.equal(issued.status, 200);
    token = ((await issued.json()) as { access_token: string }).access_token;
    secrets.push(token);
  });
  after(() => server?.close());

  const metricsUrl = () => `http://127.0.0.1:${server.httpPort}/metrics`;

  test("a scrape during a ValidateToken load finds the decisions by code, the latencies and the pool figures; no label holds a token or secret", async () => {
    const before = await scrape(metricsUrl());
    assert.equal(before.status, 200);
    const refused = Array.from({ length: 20 }, () => randomBytes(24).toString("base64url"));
    secrets.push(...refused);
    const ask = (client: Client<typeof TokenValidationService>, accessToken: string) =>
      client.validateToken({ context: API.context, version: API.version, accessToken, matchingResource: "/items", httpVerb: "GET" });
    let valid = 0;
    let invalid = 0;
    let missing = 0;
    const scrapes: Array<Promise<Awaited<ReturnType<typeof scrape>>>> = [];
    const calls: Array<Promise<unknown>> = [];
    for (let i = 0; i < 400; i++) {
      const client = i % 4 === 3 ? connectGateway : gateway;
      if (i % 5 === 0) {
        calls.push(ask(client, refused[i % refused.length] as string).then((r) => assert.equal(r.statusCode, 900901)));
        invalid++;
      } else if (i % 13 === 0) {
        calls.push(ask(client, "").then((r) => assert.equal(r.statusCode, 900902)));
        missing++;
      } else {
        calls.push(ask(client, token).then((r) => assert.equal(r.statusCode, 0)));
        valid++;
      }
      // Scraped while the calls are in flight.
      if (i % 100 === 50) scrapes.push(scrape(metricsUrl()));
    }
    await Promise.all(calls);
    for (const during of await Promise.all(scrapes)) {
      assert.equal(during.status, 200);
      assert.ok(has(during.samples, "keymanager_db_pool_connections_in_use"), "the pool's figures are scraped during the load");
    }
    const { samples, text } = await scrape(metricsUrl());
    const delta = (name: string, labels: Record<string, string>) => total(samples, name, labels) - total(before.samples, name, labels);

    assert.equal(delta(VALIDATIONS, { code: "0", status: "OK" }), valid);
    assert.equal(delta(VALIDATIONS, { code: "900901", status: "API_AUTH_INVALID_CREDENTIALS" }), invalid);
    assert.equal(delta(VALIDATIONS, { code: "900902", status: "API_AUTH_MISSING_CREDENTIALS" }), missing);
    const rpc = { service: "keymanager.v1.TokenValidationService", method: "ValidateToken", code: "OK" };
    assert.equal(delta(DURATION_COUNT, { ...rpc, port: "grpc" }) + delta(DURATION_COUNT, { ...rpc, port: "http" }), 400);
    assert.equal(delta(DURATION_COUNT, { ...rpc, port: "http" }), 100, "the Connect calls on the HTTP port");
    assert.ok(total(samples, "keymanager_request_duration_seconds_sum", { ...rpc, port: "grpc" }) > 0, "latencies are summed");
    assert.ok(has(samples, "keymanager_request_duration_seconds_bucket", { ...rpc, port: "grpc", le: "0.001" }), "latency buckets");
    // SQLite: one connection.
    assert.equal(total(samples, "keymanager_db_pool_connections_max"), 1);
    assert.ok(has(samples, "keymanager_db_pool_waiting"));
    assert.ok(delta("keymanager_cache_hits_total", { cache: "decisions" }) > 0, "answers served from the decision cache");
    assert.ok(total(samples, "keymanager_cache_misses_total", { cache: "validation_tokens" }) > 0, "unknown tokens looked up");
    assert.ok(total(samples, "keymanager_cache_entries", { cache: "callers" }) >= 1);
    assert.ok(total(samples, "keymanager_token_grants_total", { grant_type: "client_credentials", outcome: "issued" }) >= 1);
    assert.equal(total(samples, "keymanager_stream_watchers"), 0);
    assert.ok(has(samples, "process_cpu_seconds_total"), "process metrics");
    for (const secret of secrets) assert.ok(!text.includes(secret), "no token or secret in the scrape");
  });

  test("refused grants, lockouts and unknown paths are counted under fixed labels", async () => {
    const base = `http://127.0.0.1:${server.httpPort}`;
    const wrong = randomBytes(16).toString("hex");
    secrets.push(wrong);
    const madeUpGrant = `grant-${randomBytes(8).toString("hex")}`;
    await fetch(`${base}/oauth2/token`, form({ grant_type: madeUpGrant, client_id: consumerKey, client_secret: consumerSecret }));
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${base}/oauth2/token`, form({ grant_type: "client_credentials", client_id: consumerKey, client_secret: wrong }));
      assert.ok(res.status === 401 || res.status === 429, `status ${res.status}`);
    }
    const unknownPath = `/nothing/${token}/${randomUUID()}`;
    assert.equal((await fetch(`${base}${unknownPath}`)).status, 404);
    const storePath = `/api/am/store/v0.13/applications/${randomUUID()}/keys/PRODUCTION`;
    await fetch(`${base}${storePath}`, { headers: { authorization: `Bearer ${token}` } });

    const { samples, text } = await scrape(metricsUrl());
    assert.ok(total(samples, "keymanager_token_grants_total", { grant_type: "client_credentials", outcome: "invalid_client" }) >= 3);
    assert.ok(total(samples, "keymanager_token_grants_total", { grant_type: "client_credentials", outcome: "throttled" }) >= 1);
    assert.equal(
      total(samples, "keymanager_token_grants_total", { grant_type: "other", outcome: "unsupported_grant_type" }),
      1,
      "a made-up grant type is 'other'",
    );
    assert.ok(total(samples, "keymanager_authentication_lockouts_total", { scope: "pair" }) >= 1);
    assert.equal(total(samples, DURATION_COUNT, { port: "http", service: "http", method: "other", code: "404" }), 1);
    assert.ok(total(samples, DURATION_COUNT, { port: "http", method: "/oauth2/token", code: "401" }) >= 3);
    assert.ok(total(samples, DURATION_COUNT, { port: "http", method: "/api/am/store/v0.13/applications/{applicationId}/keys/{keyType}" }) >= 1);
    assert.ok(!text.includes(madeUpGrant) && !text.includes(unknownPath) && !text.includes(storePath.split("/")[6] as string));
    for (const secret of secrets) assert.ok(!text.includes(secret), "no token or secret in the scrape");
  });
});

describe("metrics: where they are served", () => {
  test("a port of their own: /metrics there, not on the HTTP port", async () => {
    const server = await startServer({ overrides: { metrics: { port: 0 } } });
    try {
      const { metricsPort } = server;
      assert.ok(metricsPort);
      const own = await scrape(`http://127.0.0.1:${metricsPort}/metrics`);
      assert.equal(own.status, 200);
      assert.ok(has(own.samples, "keymanager_db_pool_connections_max"));
      assert.equal((await fetch(`http://127.0.0.1:${server.httpPort}/metrics`)).status, 404);
      assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/other`)).status, 404);
    } finally {
      await server.close();
    }
  });

  test("[metrics] enabled = false: nothing served", async () => {
    const server = await startServer({ overrides: { metrics: { enabled: false } } });
    try {
      assert.equal((await fetch(`http://127.0.0.1:${server.httpPort}/metrics`)).status, 404);
    } finally {
      await server.close();
    }
  });
});

describeOnEachDatabase("metrics: pool and change feed", (database) => {
  test("the pool's bound, and other replicas' changes with their lag", {
    skip: database.name === "sqlite" && "SQLite serves one process: no feed",
  }, async () => {
    // One data directory: the replicas share the encryption key, as replicas must.
    const dataDir = mkdtempSync(join(tmpdir(), "km-metrics-"));
    const a = await startServer({ databaseUrl: database.url(), dataDir });
    const b = await startServer({ databaseUrl: database.url(), dataDir });
    try {
      await a.client(SubscriptionService).createApi({ api: { ...API, apiId: "feed", context: "/feed" } });
      let lagged = 0;
      for (let i = 0; i < 100 && lagged === 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        lagged = total((await scrape(`http://127.0.0.1:${b.httpPort}/metrics`)).samples, "keymanager_change_feed_lag_seconds_count");
      }
      assert.ok(lagged >= 1, "B measured the lag of A's change");
      const { samples } = await scrape(`http://127.0.0.1:${b.httpPort}/metrics`);
      assert.equal(total(samples, "keymanager_db_pool_connections_max"), 10);
      assert.ok(total(samples, "keymanager_db_pool_connections_in_use") + total(samples, "keymanager_db_pool_connections_idle") >= 1);
    } finally {
      await Promise.all([a.close(), b.close()]);
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe("the Grafana dashboard", () => {
  test("every expression of deploy/grafana/keymanager.json names metrics a real /metrics scrape declares", async () => {
    const dashboard = JSON.parse(readFileSync(new URL("../deploy/grafana/keymanager.json", import.meta.url), "utf8")) as {
      panels: Array<{ title: string; targets: Array<{ expr: string }> }>;
    };
    const server = await startServer();
    try {
      const { text } = await scrape(`http://127.0.0.1:${server.httpPort}/metrics`);
      // Declared names, with the series a histogram or summary adds.
      const declared = new Set<string>();
      for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
        declared.add(name as string);
        if (type === "histogram") for (const suffix of ["_bucket", "_sum", "_count"]) declared.add(`${name}${suffix}`);
        if (type === "summary") for (const suffix of ["_sum", "_count"]) declared.add(`${name}${suffix}`);
      }
      let exprs = 0;
      for (const panel of dashboard.panels) {
        assert.ok(panel.targets.length > 0, `${panel.title} has a query`);
        for (const { expr } of panel.targets) {
          exprs++;
          const names = [...expr.matchAll(/\b(?:keymanager|process|nodejs)_[a-zA-Z0-9_]+/g)].map((m) => m[0]);
          assert.ok(names.length > 0, `${panel.title}: ${expr} names a metric`);
          for (const name of names) assert.ok(declared.has(name), `${panel.title}: ${name} is not in the scrape`);
        }
      }
      assert.ok(exprs >= 10);
    } finally {
      await server.close();
    }
  });
});
