import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { Health, HealthCheckResponse_ServingStatus } from "../gen/grpc/health/v1/health_pb.js";
import { KeyManagerService } from "../gen/keymanager/v1/key_manager_service_pb.js";
import { SCOPES, SYSTEM_SCOPES } from "../src/auth/scopes.js";
import { createKnex } from "../src/storage/database.js";
import { DATABASE_UNAVAILABLE_MESSAGE } from "../src/transport/error-mapping.js";
import { type TestDatabase, testDatabases } from "./support/databases.js";
import { FaultProxy } from "./support/fault-proxy.js";
import { OpenApiChecker } from "./support/openapi.js";
import { createRequest } from "./support/fixtures.js";
import { startServer, type TestServer } from "./support/server.js";

// Short deadlines, so a test of faults takes seconds: a call waits at most acquire + statement.
const STATEMENT_MS = 1000;
const ACQUIRE_MS = 1000;
const DEADLINES = { statement_timeout_ms: STATEMENT_MS, acquire_timeout_ms: ACQUIRE_MS, connect_timeout_ms: 1000, health_check_interval_ms: 250 };
/** The longest a call may take to fail UNAVAILABLE: its deadlines plus room for a loaded 2-core machine. */
const UNAVAILABLE_WITHIN_MS = ACQUIRE_MS + STATEMENT_MS + 2000;
/** The issue's stall. */
const STALL_MS = 8000;
/** "Within 1 s of the database coming back every call works again", with room for a loaded machine. */
const RECOVERY_WITHIN_MS = 2000;

interface Credentials {
  name: string;
  clientId: string;
  clientSecret: string;
}

interface Answer {
  status: number;
  body: { access_token?: string; error?: string; error_description?: string };
  ms: number;
}

function tokenRequest(server: TestServer, who: Credentials, timeoutMs = 30_000): Promise<Answer> {
  const started = performance.now();
  return fetch(`http://127.0.0.1:${server.httpPort}/oauth2/token`, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(who.clientId)}:${encodeURIComponent(who.clientSecret)}`).toString("base64")}`,
    },
    body: "grant_type=client_credentials",
    signal: AbortSignal.timeout(timeoutMs),
  }).then(async (res) => ({ status: res.status, body: (await res.json()) as Answer["body"], ms: performance.now() - started }));
}

function assertUnavailable(answer: Answer, who: string): void {
  assert.equal(answer.status, 503, `${who}: ${JSON.stringify(answer.body)}`);
  assert.equal(answer.body.error, "temporarily_unavailable");
  assert.equal(answer.body.error_description, DATABASE_UNAVAILABLE_MESSAGE, "nothing internal in the answer");
  assert.ok(answer.ms < UNAVAILABLE_WITHIN_MS, `${who}: UNAVAILABLE after ${Math.round(answer.ms)} ms, not within ${UNAVAILABLE_WITHIN_MS} ms`);
}

async function healthz(server: TestServer, path = "/healthz"): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${server.httpPort}${path}`, { signal: AbortSignal.timeout(10_000) });
  await res.arrayBuffer();
  return res.status;
}

/** Milliseconds until `/healthz` answers `status`, polled every 25 ms. */
async function untilHealthz(server: TestServer, status: number, withinMs: number): Promise<number> {
  const started = performance.now();
  for (;;) {
    if ((await healthz(server)) === status) return performance.now() - started;
    assert.ok(performance.now() - started < withinMs, `/healthz did not answer ${status} within ${withinMs} ms`);
    await sleep(25);
  }
}

/**
 * Milliseconds from now until every caller gets a token in one round (calls meanwhile may only
 * fail UNAVAILABLE), then a few more rounds that must all work: nothing is left stuck.
 */
async function recovery(server: TestServer, who: readonly Credentials[]): Promise<number> {
  const started = performance.now();
  let recovered: number | undefined;
  while (recovered === undefined) {
    const round = await Promise.all(who.map((w) => tokenRequest(server, w, 10_000)));
    if (round.every((a) => a.status === 200)) recovered = performance.now() - started;
    else {
      for (const a of round) assert.ok(a.status === 200 || a.status === 503, JSON.stringify(a.body));
      assert.ok(performance.now() - started < 10_000, "calls still fail 10 s after the database came back");
      await sleep(20);
    }
  }
  for (let i = 0; i < 3; i++) for (const w of who) assert.equal((await tokenRequest(server, w)).status, 200, w.name);
  return recovered;
}

/** The server's own OpenAPI document of the OAuth2 endpoints and health checks. */
async function oauthDocument(server: TestServer): Promise<OpenApiChecker> {
  const res = await fetch(`http://127.0.0.1:${server.httpPort}/openapi/oauth2.json`);
  return OpenApiChecker.of("oauth2", await res.json());
}

function form(server: TestServer, path: string, who: Credentials, body: string): Promise<Response> {
  return fetch(`http://127.0.0.1:${server.httpPort}${path}`, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      authorization: `Basic ${Buffer.from(`${who.clientId}:${who.clientSecret}`).toString("base64")}`,
    },
    body,
  });
}

/** The callers of the issue's scenario: the admin's and a gateway's system clients, and an application. */
async function callers(server: TestServer): Promise<Credentials[]> {
  const admin = await server.caller(SYSTEM_SCOPES);
  const gateway = await server.caller([SCOPES.gateway]);
  const app = (await server.grpc.createApplication(createRequest({ grantTypes: ["client_credentials"] }))).application;
  assert.ok(app);
  return [
    { name: "admin system client", ...admin },
    { name: "gateway system client", ...gateway },
    { name: "application", clientId: app.consumerKey, clientSecret: app.consumerSecret },
  ];
}

for (const entry of testDatabases()) {
  if (entry.name === "sqlite") continue;
  describe(`database faults through a fault-injecting proxy on ${entry.name}`, { skip: entry.skip }, () => {
    let database: TestDatabase;
    let proxy: FaultProxy;
    let server: TestServer;
    let who: Credentials[];
    const health = () => createClient(Health, createGrpcTransport({ baseUrl: `http://127.0.0.1:${server.grpcPort}` }));
    const servingOf = async (service: string) => (await health().check({ service })).status;

    before(async () => {
      if (!entry.create) throw new Error(`no ${entry.name} database`);
      database = await entry.create();
      const target = new URL(database.url);
      proxy = await FaultProxy.start({ host: target.hostname, port: Number(target.port || (entry.name === "postgres" ? 5432 : 3306)) });
      server = await startServer({ databaseUrl: proxy.url(database.url), overrides: { database: { url: proxy.url(database.url), ...DEADLINES } } });
      who = await callers(server);
      for (const w of who) assert.equal((await tokenRequest(server, w)).status, 200, `${w.name} gets a token before any fault`);
    });
    after(async () => {
      proxy?.pass();
      await server?.close();
      await proxy?.close();
      await database?.drop();
    });

    test("a stall of 8 s: client_credentials of every caller UNAVAILABLE within the deadline, all working again within ~1 s after", async (t) => {
      proxy.stall();
      const stalled = performance.now();
      // Calls in flight when the database stops answering, then more all through the stall.
      const answers: Array<Promise<[string, Answer]>> = [];
      let sawNotReady = false;
      while (performance.now() - stalled < STALL_MS - UNAVAILABLE_WITHIN_MS) {
        for (const w of who) answers.push(tokenRequest(server, w).then((a) => [w.name, a]));
        if ((await healthz(server)) === 503) sawNotReady = true;
        assert.equal(await healthz(server, "/livez"), 200, "alive all along");
        await sleep(500);
      }
      const rpc = await server.grpc.createApplication(createRequest()).then(
        () => undefined,
        (err: unknown) => ConnectError.from(err),
      );
      for (const [name, answer] of await Promise.all(answers)) assertUnavailable(answer, name);
      assert.equal(rpc?.code, Code.Unavailable, "an RPC needing the database: UNAVAILABLE");
      assert.equal(rpc?.rawMessage, DATABASE_UNAVAILABLE_MESSAGE);
      assert.ok(sawNotReady, "/healthz said NOT_SERVING during the stall");
      const slowest = Math.max(...(await Promise.all(answers)).map(([, a]) => a.ms));
      await sleep(Math.max(0, STALL_MS - (performance.now() - stalled)));

      proxy.pass();
      const recovered = await recovery(server, who);
      assert.ok((await server.grpc.createApplication(createRequest())).application?.consumerKey);
      t.diagnostic(
        `${entry.name}: ${answers.length} token requests during the ${STALL_MS} ms stall, all 503 temporarily_unavailable, the slowest after ${Math.round(slowest)} ms; ` +
          `every caller gets tokens again ${Math.round(recovered)} ms after the stall ended`,
      );
      assert.ok(recovered < RECOVERY_WITHIN_MS, `recovered after ${Math.round(recovered)} ms`);
      await untilHealthz(server, 200, 5000);
    });

    test("database down: UNAVAILABLE fast, readiness NOT_SERVING and liveness SERVING, then SERVING again", async (t) => {
      assert.equal(await healthz(server), 200);
      const app = (await server.grpc.createApplication(createRequest())).application;
      assert.ok(app);
      const storeDoc = await OpenApiChecker.of("store", await (await fetch(`http://127.0.0.1:${server.httpPort}/openapi/store.json`)).json());
      proxy.reset();
      // The periodic probe alone, no call to notice it.
      const notReadyMs = await untilHealthz(server, 503, 5000);
      const answer = await tokenRequest(server, who[0] as Credentials);
      assertUnavailable(answer, "admin system client");
      const rpc = await server.connect.createApplication(createRequest()).then(
        () => undefined,
        (err: unknown) => ConnectError.from(err),
      );
      assert.equal(rpc?.code, Code.Unavailable, "Connect RPC: UNAVAILABLE (HTTP 503)");
      assert.equal(rpc?.rawMessage, DATABASE_UNAVAILABLE_MESSAGE);
      assert.equal(await servingOf(""), HealthCheckResponse_ServingStatus.NOT_SERVING);
      assert.equal(await servingOf(KeyManagerService.typeName), HealthCheckResponse_ServingStatus.NOT_SERVING);
      assert.equal(await servingOf("liveness"), HealthCheckResponse_ServingStatus.SERVING);
      assert.equal(await healthz(server, "/livez"), 200);
      // The answers as the served OpenAPI document describes them.
      const doc = await oauthDocument(server);
      await doc.check("/healthz", "get", await fetch(`http://127.0.0.1:${server.httpPort}/healthz`));
      await doc.check("/livez", "get", await fetch(`http://127.0.0.1:${server.httpPort}/livez`));
      await doc.check("/oauth2/token", "post", await form(server, "/oauth2/token", who[1] as Credentials, "grant_type=client_credentials"));
      await doc.check("/oauth2/introspect", "post", await form(server, "/oauth2/introspect", who[1] as Credentials, "token=unknown-token"));
      // The Store REST API: 503 with WSO2's error body, as its document says.
      const keys = `http://127.0.0.1:${server.httpPort}/api/am/store/v0.13/applications/${app.applicationId}/keys/PRODUCTION`;
      const storeHeaders = { authorization: `Bearer ${server.token}`, "content-type": "application/json" };
      const storePath = "/api/am/store/v0.13/applications/{applicationId}/keys/{keyType}";
      const read = await fetch(keys, { headers: storeHeaders });
      assert.equal(read.status, 503);
      await storeDoc.check(storePath, "get", read);
      const write = await fetch(keys, { method: "PUT", headers: storeHeaders, body: JSON.stringify({ callbackUrl: "https://cb.example/x" }) });
      assert.equal(write.status, 503);
      await storeDoc.check(storePath, "put", write);

      proxy.pass();
      const readyMs = await untilHealthz(server, 200, 5000);
      assert.equal(await servingOf(""), HealthCheckResponse_ServingStatus.SERVING);
      assert.equal(await servingOf(KeyManagerService.typeName), HealthCheckResponse_ServingStatus.SERVING);
      const recovered = await recovery(server, who);
      assert.ok(recovered < RECOVERY_WITHIN_MS, `tokens again ${Math.round(recovered)} ms after readiness came back`);
      t.diagnostic(
        `${entry.name}: down -> 503 temporarily_unavailable after ${Math.round(answer.ms)} ms; readiness NOT_SERVING ${Math.round(notReadyMs)} ms after the database went down ` +
          `(probe every ${DEADLINES.health_check_interval_ms} ms), SERVING ${Math.round(readyMs)} ms after it came back`,
      );
    });

    test("a slow database: calls succeed within the deadline, or fail UNAVAILABLE within it", async (t) => {
      proxy.slow(20);
      const slow = await Promise.all(who.flatMap((w) => [tokenRequest(server, w), tokenRequest(server, w)]));
      for (const a of slow) {
        assert.ok(a.status === 200 || a.status === 503, JSON.stringify(a.body));
        assert.ok(a.ms < UNAVAILABLE_WITHIN_MS, `answered after ${Math.round(a.ms)} ms`);
      }
      assert.ok(
        slow.some((a) => a.status === 200),
        "20 ms per chunk leaves room within a 1 s deadline",
      );
      // Slower than the statement deadline: every call fails, each within its deadline.
      proxy.slow(STATEMENT_MS + 500);
      const slower = await Promise.all(who.map((w) => tokenRequest(server, w)));
      for (const [i, a] of slower.entries()) assertUnavailable(a, who[i]?.name ?? "");
      proxy.pass();
      const recovered = await recovery(server, who);
      assert.ok(recovered < RECOVERY_WITHIN_MS, `tokens again ${Math.round(recovered)} ms after the database sped up`);
      await untilHealthz(server, 200, 5000);
      t.diagnostic(
        `${entry.name}: 20 ms per chunk: ${slow.filter((a) => a.status === 200).length}/${slow.length} tokens, slowest ${Math.round(Math.max(...slow.map((a) => a.ms)))} ms; ` +
          `${STATEMENT_MS + 500} ms per chunk: all 503 within ${Math.round(Math.max(...slower.map((a) => a.ms)))} ms; every caller gets tokens again ${Math.round(recovered)} ms after it sped up`,
      );
    });
  });
}

describe("database faults on sqlite", () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ overrides: { database: DEADLINES } });
  });
  after(async () => {
    await server?.close();
  });

  test("no network to fault; the deadline is the busy timeout: a write lock held elsewhere gives UNAVAILABLE, then tokens again", async (t) => {
    t.diagnostic("SQLite has no network: the fault-injecting proxy tests run on postgres and mysql (MariaDB); here a write lock held by another connection");
    const [app] = await callers(server).then((c) => c.slice(2));
    assert.ok(app);
    const issued = (await tokenRequest(server, app)).body.access_token;
    assert.ok(issued);
    const other = createKnex({ url: server.app.configStore.current.database.url, poolMax: 1 });
    try {
      // One connection (pool of one): the transaction stays open on it until the ROLLBACK.
      await other.raw("BEGIN IMMEDIATE");
      const answer = await tokenRequest(server, app);
      assertUnavailable(answer, "application");
      assert.ok(answer.ms >= STATEMENT_MS * 0.9, `waited its busy timeout (${Math.round(answer.ms)} ms)`);
      assert.equal(await healthz(server), 200, "reads still answer: ready");
      const doc = await oauthDocument(server);
      await doc.check("/oauth2/token", "post", await form(server, "/oauth2/token", app, "grant_type=client_credentials"));
      await doc.check("/oauth2/revoke", "post", await form(server, "/oauth2/revoke", app, `token=${issued}`));
      await other.raw("ROLLBACK");
      assert.equal((await tokenRequest(server, app)).status, 200);
      t.diagnostic(`sqlite: write lock held elsewhere -> 503 temporarily_unavailable after ${Math.round(answer.ms)} ms (busy timeout ${STATEMENT_MS} ms)`);
    } finally {
      await other.destroy();
    }
  });
});
