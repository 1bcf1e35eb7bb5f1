import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test, type TestContext } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { type Client, Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { KeyManagerService } from "../gen/keymanager/v1/key_manager_service_pb.js";
import { hashToken } from "../src/oauth/token-hash.js";
import { createKnex } from "../src/storage/database.js";
import type { AccessTokenRequest } from "../src/domain/model/index.js";
import type { IssuedToken } from "../src/oauth/token-service.js";
import { type TestDatabase, testDatabases } from "./support/databases.js";
import { createRequest } from "./support/fixtures.js";
import { clientToken, type ReplicaProcess, startReplica } from "./support/replica-process.js";
import { RUN_TS } from "./support/run-ts.js";
import { bearer, startServer } from "./support/server.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const run = promisify(execFile);
const dataDir = mkdtempSync(join(tmpdir(), "km-durability-"));
after(() => rmSync(dataDir, { recursive: true, force: true }));

// ---------------------------------------------------------------------------------------------
// The service as a separate process (test/support/replica-process.ts) on this test's data
// directory and database, so a restart finds both.
// ---------------------------------------------------------------------------------------------

/** The database of the test running now (each runs on its own). */
let databaseUrl = "";

/** The data directory and database of every process of the test. */
function childEnv(): Record<string, string> {
  return { KM_DATA_DIR: dataDir, ...(databaseUrl ? { KM_DATABASE_URL: databaseUrl } : {}) };
}

function startChild(): Promise<ReplicaProcess> {
  return startReplica(childEnv());
}

/** An admin system client made by the bootstrap command, and a token of it from /oauth2/token. */
async function bootstrapAdmin(): Promise<{ clientId: string; clientSecret: string }> {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("KM_")));
  const { stdout } = await run(process.execPath, [...RUN_TS, "src/cli.ts", "bootstrap"], {
    cwd: ROOT,
    env: { ...inherited, ...childEnv(), KM_LOG_LEVEL: "silent" },
    timeout: 30_000,
  });
  const created = JSON.parse(stdout) as { client_id: string; client_secret: string };
  return { clientId: created.client_id, clientSecret: created.client_secret };
}

function keyManager(port: number, token: string): Client<typeof KeyManagerService> {
  // Each client its own transport: its own HTTP/2 connection.
  return createClient(KeyManagerService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${port}`, interceptors: [bearer(token)], defaultTimeoutMs: 10_000 }));
}

// ---------------------------------------------------------------------------------------------
// Load: concurrent clients create applications and get tokens; every acknowledged call recorded
// ---------------------------------------------------------------------------------------------

interface AckedApp {
  applicationId: string;
  consumerKey: string;
  consumerSecret: string;
}

interface Load {
  apps: AckedApp[];
  tokens: { accessToken: string; consumerKey: string }[];
  /** Creations whose answer never came (sent, then the process went away). */
  unansweredApps: string[];
  unansweredTokens: number;
  /** Error codes of calls that failed, before and after the stop. */
  errorsBeforeStop: string[];
  errorsAfterStop: Record<string, number>;
  /** Stops the load: calls from now on are expected to fail. */
  stop(): void;
  done: Promise<void>;
}

function startLoad(port: number, token: string, workers: number): Load {
  const load: Load = {
    apps: [],
    tokens: [],
    unansweredApps: [],
    unansweredTokens: 0,
    errorsBeforeStop: [],
    errorsAfterStop: {},
    stop: () => {
      stopped = true;
    },
    done: Promise.resolve(),
  };
  let stopped = false;
  const failed = (err: unknown) => {
    const ce = ConnectError.from(err);
    if (!stopped) {
      load.errorsBeforeStop.push(`${Code[ce.code]}: ${ce.rawMessage}`);
      return;
    }
    // REFUSED_STREAM (a stream the server did not process, after its GOAWAY) is a refusal too,
    // though connect-node reports it as INTERNAL.
    const kind = /REFUSED_STREAM/.test(`${ce.rawMessage} ${String(ce.cause)}`) ? "RefusedStream" : Code[ce.code];
    load.errorsAfterStop[kind] = (load.errorsAfterStop[kind] ?? 0) + 1;
  };
  const worker = async (w: number) => {
    const client = keyManager(port, token);
    for (let i = 0; ; i++) {
      const applicationId = randomUUID();
      const req = createRequest({ applicationId, clientName: `durable-${w}-${i}` });
      let app: AckedApp;
      try {
        const created = (await client.createApplication(req)).application;
        assert.ok(created);
        app = { applicationId: created.applicationId, consumerKey: created.consumerKey, consumerSecret: created.consumerSecret };
        load.apps.push(app);
      } catch (err) {
        failed(err);
        load.unansweredApps.push(applicationId);
        return;
      }
      for (let t = 0; t < 3; t++) {
        try {
          const issued = await client.getNewApplicationAccessToken({
            request: { clientId: app.consumerKey, clientSecret: app.consumerSecret, grantType: "client_credentials" },
          });
          const accessToken = issued.token?.accessToken;
          assert.ok(accessToken);
          load.tokens.push({ accessToken, consumerKey: app.consumerKey });
        } catch (err) {
          failed(err);
          load.unansweredTokens++;
          return;
        }
      }
    }
  };
  load.done = Promise.all(Array.from({ length: workers }, (_, w) => worker(w))).then(() => undefined);
  return load;
}

/** Waits until the load has run `ms` and has at least `apps` acknowledged applications. */
async function loadFor(load: Load, ms: number, apps: number): Promise<void> {
  const start = Date.now();
  while (Date.now() - start < ms || load.apps.length < apps) {
    assert.deepEqual(load.errorsBeforeStop, [], "no call fails while the service runs");
    assert.ok(Date.now() - start < 20_000, `only ${load.apps.length} applications in 20 s`);
    await sleep(20);
  }
}

/** `fn` over `items`, `concurrency` at a time. */
async function forEach<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
}

/** Every acknowledged application and token is there, intact, on the restarted service. */
async function verifyAcknowledged(t: TestContext, client: Client<typeof KeyManagerService>, load: Load): Promise<void> {
  await forEach(load.apps, 16, async (app) => {
    const { application } = await client.retrieveApplication({ selector: { case: "consumerKey", value: app.consumerKey } });
    assert.equal(application?.applicationId, app.applicationId);
    assert.equal(application?.consumerSecret, app.consumerSecret, "the secret decrypts to the one acknowledged");
  });
  await forEach(load.tokens, 16, async (token) => {
    const { token: info } = await client.getTokenMetadata({ accessToken: token.accessToken });
    assert.equal(info?.tokenValid, true, `an acknowledged token of ${token.consumerKey} is not active`);
    assert.equal(info?.consumerKey, token.consumerKey);
  });
  let found = 0;
  await forEach(load.unansweredApps, 16, async (applicationId) => {
    try {
      await client.retrieveApplication({ selector: { case: "applicationKey", value: { applicationId, keyType: createRequest().application.keyType } } });
      found++;
    } catch (err) {
      assert.equal(ConnectError.from(err).code, Code.NotFound);
    }
  });
  t.diagnostic(
    `acknowledged: ${load.apps.length} applications, ${load.tokens.length} tokens, all present after the restart; ` +
      `unanswered at the stop: ${load.unansweredApps.length} creations (${found} committed anyway), ${load.unansweredTokens} token requests; ` +
      `errors after the stop: ${JSON.stringify(load.errorsAfterStop)}`,
  );
}

// ---------------------------------------------------------------------------------------------

for (const database of testDatabases()) {
  test(`SIGKILL under load loses nothing acknowledged; SIGTERM finishes what it accepted (${database.name})`, {
    timeout: 120_000,
    skip: database.skip,
  }, async (t) => {
    const handle = await (database.create as () => Promise<TestDatabase>)();
    databaseUrl = handle.url;
    t.after(() => handle.drop());
    await killAndRestart(t, database.name === "sqlite");
  });
}

async function killAndRestart(t: TestContext, sqlite: boolean): Promise<void> {
  const admin = await bootstrapAdmin();

  // 1. Load, then SIGKILL at an arbitrary moment.
  const first = await startChild();
  t.after(() => {
    first.process.kill("SIGKILL");
    return first.stop();
  });
  const token = await clientToken(first, admin);
  const killed = startLoad(first.grpcPort, token, 8);
  await loadFor(killed, 1000 + Math.floor(Math.random() * 500), 30);
  killed.stop();
  first.process.kill("SIGKILL");
  assert.deepEqual(await first.exited, { code: null, signal: "SIGKILL" });
  await killed.done;

  // 2. Restart on the same data directory: every acknowledged call is there.
  const second = await startChild();
  t.after(() => {
    second.process.kill("SIGKILL");
    return second.stop();
  });
  const client = keyManager(second.grpcPort, token);
  await verifyAcknowledged(t, client, killed);

  // 3. SIGTERM under load: a graceful stop. Calls it accepted are answered; new ones refused.
  const termed = startLoad(second.grpcPort, token, 8);
  await loadFor(termed, 500, 10);
  termed.stop();
  second.process.kill("SIGTERM");
  const exit = await second.exited;
  await termed.done;
  assert.deepEqual(exit, { code: 0, signal: null }, "exit status 0 after SIGTERM");
  assert.ok(
    second.log.some((l) => l.msg === "stopped"),
    "the service logs its orderly stop",
  );
  const cut = Object.keys(termed.errorsAfterStop).filter((c) => c !== "Unavailable" && c !== "RefusedStream");
  assert.deepEqual(cut, [], `calls after SIGTERM are refused (UNAVAILABLE, REFUSED_STREAM), not cut: ${JSON.stringify(termed.errorsAfterStop)}`);

  // 4. The database itself, the service stopped: no half records, every acknowledgement in it.
  const db = createKnex({ url: databaseUrl, poolMax: 1 });
  try {
    if (sqlite) {
      const [integrity] = (await db.raw("PRAGMA integrity_check")) as { integrity_check: string }[];
      assert.equal(integrity?.integrity_check, "ok");
    }
    const clientsWithoutKeys = await db("oauth_clients as c")
      .leftJoin("application_keys as k", "k.consumer_key", "c.consumer_key")
      .where("c.system_client", false)
      .whereNull("k.consumer_key")
      .pluck("c.consumer_key");
    assert.deepEqual(clientsWithoutKeys, [], "an application's client without its application key");
    const keysWithoutClients = await db("application_keys as k")
      .leftJoin("oauth_clients as c", "c.consumer_key", "k.consumer_key")
      .whereNull("c.consumer_key")
      .pluck("k.consumer_key");
    assert.deepEqual(keysWithoutClients, [], "an application key without its client");
    const tokensWithoutClients = await db("access_tokens as t")
      .leftJoin("oauth_clients as c", "c.consumer_key", "t.consumer_key")
      .whereNull("c.consumer_key")
      .pluck("t.id");
    assert.deepEqual(tokensWithoutClients, [], "a token without its client");

    const keys = new Set<string>(await db("application_keys").pluck("consumer_key"));
    const missingApps = termed.apps.filter((a) => !keys.has(a.consumerKey));
    assert.deepEqual(missingApps, [], "applications acknowledged before SIGTERM");
    const hashes = new Set<string>(await db("access_tokens").whereNull("revoked_at").pluck("token_hash"));
    const missingTokens = termed.tokens.filter((tk) => !hashes.has(hashToken(tk.accessToken)));
    assert.equal(missingTokens.length, 0, "tokens acknowledged before SIGTERM");

    const count = async (table: string) => Number(((await db(table).count({ n: "*" })) as { n: number | string }[])[0]?.n ?? 0);
    const [clients, applicationKeys, accessTokens] = [await count("oauth_clients"), await count("application_keys"), await count("access_tokens")];
    assert.ok(applicationKeys >= killed.apps.length + termed.apps.length);
    assert.ok(accessTokens >= killed.tokens.length + termed.tokens.length);
    t.diagnostic(
      `SIGTERM: ${termed.apps.length} applications and ${termed.tokens.length} tokens acknowledged, all stored; ` +
        `errors after the stop: ${JSON.stringify(termed.errorsAfterStop)}; ` +
        `database: ${clients} clients (system ones included), ${applicationKeys} application keys, ${accessTokens} tokens, no half records`,
    );
  } finally {
    await db.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// Graceful shutdown in process: App.close() lets calls in flight finish and refuses new ones
// ---------------------------------------------------------------------------------------------

test("App.close(): calls in flight on both ports complete, new calls are refused", { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "km-close-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const server = await startServer({ dataDir: dir });
  const tokens = server.app.tokens;
  assert.ok(tokens);
  const apps: AckedApp[] = [];
  for (let i = 0; i < 30; i++) {
    const app = (await server.grpc.createApplication(createRequest({ clientName: `close-${i}` }))).application;
    assert.ok(app);
    apps.push(app);
  }

  // Token requests are held inside the service (after the transport accepted them, before their
  // database write) until released: calls certainly in flight when close() begins.
  const issue = tokens.issue.bind(tokens);
  let entered = 0;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  tokens.issue = async (request: AccessTokenRequest, source: string): Promise<IssuedToken> => {
    entered++;
    await gate;
    return issue(request, source);
  };
  const request = (app: AckedApp) => ({
    request: { clientId: app.consumerKey, clientSecret: app.consumerSecret, grantType: "client_credentials" },
  });
  const inFlight = apps.map((app, i) => (i % 3 === 2 ? server.connect : server.grpc).getNewApplicationAccessToken(request(app)));
  const settled = Promise.allSettled(inFlight);
  while (entered < inFlight.length) await sleep(5);

  const closing = server.app.close();
  let closed = false;
  void closing.then(() => (closed = true));
  await sleep(50);
  assert.equal(closed, false, "close() waits for the calls in flight");

  // New calls: on the existing gRPC connection (GOAWAY) and on new connections of both ports.
  const fresh = (protocol: "grpc" | "connect") =>
    createClient(
      KeyManagerService,
      protocol === "grpc"
        ? createGrpcTransport({ baseUrl: `http://127.0.0.1:${server.grpcPort}`, interceptors: [bearer(server.token)], defaultTimeoutMs: 3000 })
        : createConnectTransport({
            baseUrl: `http://127.0.0.1:${server.httpPort}`,
            httpVersion: "1.1",
            interceptors: [bearer(server.token)],
            defaultTimeoutMs: 3000,
          }),
    );
  const late = [
    server.grpc.createApplication(createRequest()),
    fresh("grpc").createApplication(createRequest()),
    fresh("connect").createApplication(createRequest()),
  ];
  const lateResults = await Promise.allSettled(late);
  const lateCodes = lateResults.map((r) => (r.status === "fulfilled" ? "OK" : Code[ConnectError.from(r.reason).code]));
  assert.deepEqual(lateCodes, ["Unavailable", "Unavailable", "Unavailable"], "calls after close() are refused");
  assert.equal(entered, inFlight.length, "no new call reached the service");

  release();
  const results = await settled;
  const answeredAt = Date.now();
  const failures = results.filter((r) => r.status === "rejected").map((r) => String((r as PromiseRejectedResult).reason));
  assert.deepEqual(failures, [], "every call in flight when close() began is answered");
  await closing;
  const stopMs = Date.now() - answeredAt;
  // Not held up by the Connect clients' keep-alive connections (5 s keep-alive timeout).
  assert.ok(stopMs < 2000, `close() took ${stopMs} ms after the last answer`);

  // What they were answered is stored: a restart on the same directory knows every token.
  const again = await startServer({ dataDir: dir });
  try {
    for (const r of results) {
      const accessToken = (r as PromiseFulfilledResult<{ token?: { accessToken: string } }>).value.token?.accessToken ?? "";
      const { token: info } = await again.grpc.getTokenMetadata({ accessToken });
      assert.equal(info?.tokenValid, true);
    }
  } finally {
    await again.close();
  }
  t.diagnostic(
    `${inFlight.length} calls in flight during close() (gRPC and Connect) answered and stored; close() done ${stopMs} ms after the last answer; late calls: ${lateCodes.join(", ")}`,
  );
});
