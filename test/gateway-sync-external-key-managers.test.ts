import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Knex } from "knex";
import { GatewaySyncService } from "../gen/keymanager/v1/gateway_sync_service_pb.js";
import { SubscriptionService } from "../gen/keymanager/v1/subscription_service_pb.js";
import { TokenValidationService } from "../gen/keymanager/v1/token_validation_service_pb.js";
import { AuthLevel } from "../gen/keymanager/v1/types_pb.js";
import { SCOPES } from "../src/auth/scopes.js";
import { createKnex } from "../src/storage/database.js";
import { capturedLog } from "./support/captured-log.js";
import { describeOnEachDatabase } from "./support/each-database.js";
import { startServer, type TestServer } from "./support/server.js";
import { entitiesOf, upserted, Watcher } from "./support/watcher.js";

// External key managers come from the deployment file: a reload changing what a gateway receives
// of them reaches connected Watch streams at once, as one event listing them all; a reload
// changing nothing a gateway sees sends nothing.

const HEARTBEAT_MS = 200;

interface External {
  name: string;
  issuer: string;
  jwks?: string;
  validation?: "jwks" | "introspection";
  cacheSeconds?: number;
  timeoutMs?: number;
}

function toml(externals: External[], extra = ""): string {
  const tables = externals.map(
    (km) =>
      `[[key_manager.external]]\nname = "${km.name}"\nissuer = "${km.issuer}"\njwt_validation = "${km.validation ?? "jwks"}"\n` +
      `validation_cache_seconds = ${km.cacheSeconds ?? 60}\ntimeout_ms = ${km.timeoutMs ?? 3000}\n` +
      (km.jwks ? `[key_manager.external.endpoints]\njwks = "${km.jwks}"\n` : ""),
  );
  return `${extra}${tables.join("\n")}`;
}

describeOnEachDatabase("gateway sync: external key managers changed by a reload", (database) => {
  let server: TestServer;
  let dir: string;
  let file: string;
  let gatewayToken: string;
  let db: Knex;
  const { raw: logs, logger } = capturedLog("error");
  /** This replica's caches told its external key managers changed (published "local"). */
  let localPublishes = 0;
  const watchers: Watcher[] = [];
  const watch = () => {
    const w = new Watcher(server.client(GatewaySyncService, { token: gatewayToken }));
    watchers.push(w);
    return w;
  };
  const a: External = { name: "idp-a", issuer: "https://a.example.com", jwks: "https://a.example.com/jwks" };
  const b: External = { name: "idp-b", issuer: "https://b.example.com", validation: "introspection" };

  async function reload(externals: External[], extra = ""): Promise<void> {
    writeFileSync(file, toml(externals, extra));
    const reloaded = await server.grpc.loadConfiguration({});
    assert.deepEqual(reloaded.restartRequired, []);
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "km-sync-ext-"));
    file = join(dir, "keymanager.toml");
    writeFileSync(file, toml([a, b]));
    server = await startServer({
      databaseUrl: database.url(),
      configFile: file,
      overrides: { gateway_sync: { heartbeat_interval_ms: HEARTBEAT_MS }, cluster: { poll_interval_ms: 50 }, log_level: "error" },
      logger,
    });
    gatewayToken = (await server.caller([SCOPES.gateway])).token;
    db = createKnex({ url: database.url(), poolMax: 1 });
    (server.app.changeEvents ?? assert.fail("started")).subscribe((change, origin) => {
      if (change.kind === "external-key-managers" && origin === "local") localPublishes++;
    });
  });
  after(async () => {
    await Promise.all(watchers.map((w) => w.close()));
    await db?.destroy();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test("changed, added and removed: a connected stream gets them all as one event, without a new snapshot; nothing a gateway sees changed: no event", async () => {
    const w = watch();
    await w.until("a whole snapshot", (x) => x.snapshot() !== undefined);
    const snapshot = w.snapshot();
    assert.deepEqual(
      entitiesOf(snapshot?.entities ?? [], "externalKeyManager").map((km) => km.name),
      ["idp-a", "idp-b"],
    );
    const snapshotChunks = w.chunks().length;
    const announced = () => w.events().flatMap((e) => upserted(e, "externalKeyManagers") ?? []);

    // idp-a's JWKS location and cache time changed, idp-b removed, idp-c added.
    const c: External = { name: "idp-c", issuer: "https://c.example.com", jwks: "https://c.example.com/keys" };
    const publishedBefore = localPublishes;
    await reload([{ ...a, jwks: "https://a.example.com/v2/jwks", cacheSeconds: 5 }, c]);
    await w.until("the external key managers event", () => announced().length === 1);
    // The entry committed (its Watch event came after): the caches were flushed by the reload, not again by the commit.
    await sleep(100);
    assert.equal(localPublishes - publishedBefore, 1, "one reload, one flush of this replica's caches");
    const [first] = announced();
    assert.deepEqual(
      first?.keyManagers.map(({ name, issuer, jwksUri, jwtValidation, tokenPattern, validationCacheSeconds }) => ({
        name,
        issuer,
        jwksUri,
        jwtValidation,
        tokenPattern,
        validationCacheSeconds,
      })),
      [
        {
          name: "idp-a",
          issuer: "https://a.example.com",
          jwksUri: "https://a.example.com/v2/jwks",
          jwtValidation: "jwks",
          tokenPattern: "",
          validationCacheSeconds: 5,
        },
        {
          name: "idp-c",
          issuer: "https://c.example.com",
          jwksUri: "https://c.example.com/keys",
          jwtValidation: "jwks",
          tokenPattern: "",
          validationCacheSeconds: 60,
        },
      ],
      "every external key manager configured now: idp-b is gone",
    );

    // Only what a gateway does not receive (a timeout, the resident key manager's name): nothing
    // is sent. A change after it is the next event the stream gets.
    await reload([{ ...a, jwks: "https://a.example.com/v2/jwks", cacheSeconds: 5, timeoutMs: 1000 }, c], '[key_manager]\nname = "Renamed KM"\n');
    const events = w.events().length;
    await server.client(SubscriptionService).createApi({
      api: { apiId: "api-after-reload", name: "After", context: "/after", version: "1.0.0", publisher: "admin", apiTier: "Gold" },
    });
    await w.until("the API's event", (x) => x.events().length > events);
    assert.equal(upserted(w.events()[events] ?? assert.fail("an event"), "api")?.apiId, "api-after-reload", "no external key managers event came first");

    // Every one removed: an empty list.
    await reload([]);
    await w.until("the second external key managers event", () => announced().length === 2);
    assert.deepEqual(announced()[1]?.keyManagers, []);

    assert.equal(w.chunks().length, snapshotChunks, "no new snapshot");
    assert.equal(w.ended, false, "the stream is still open");

    // A stream opened now gets none in its snapshot.
    const late = watch();
    await late.until("a whole snapshot", (x) => x.snapshot() !== undefined);
    assert.deepEqual(entitiesOf(late.snapshot()?.entities ?? [], "externalKeyManager"), []);
  });

  test("the change log unable to record it: ValidateToken follows at once all the same; logged, and recorded at the next reload still differing from what gateways were told", async () => {
    await reload([]);
    await server.client(SubscriptionService).createApi({
      api: { apiId: "api-down", name: "Down", context: "/down", version: "1.0.0", publisher: "admin", apiTier: "Gold" },
    });
    await server.grpc.registerNewResource({
      resource: {
        apiId: "api-down",
        resources: [{ uriTemplate: "/items", httpVerb: "GET", authLevel: AuthLevel.APPLICATION, scopes: [], throttlingTier: "Gold" }],
      },
    });
    // A JWT naming idp-a as its issuer (its JWKS cannot be had: idp-a is not reachable).
    const part = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
    const now = Math.floor(Date.now() / 1000);
    const jwt = `${part({ alg: "RS256", kid: "k" })}.${part({ iss: a.issuer, iat: now, exp: now + 3600, client_id: "c" })}.${part({ s: 1 })}`;
    const validate = async () =>
      (
        await server
          .client(TokenValidationService, { token: gatewayToken })
          .validateToken({ context: "/down", version: "1.0.0", accessToken: jwt, matchingResource: "/items", httpVerb: "GET" })
      ).statusCode;
    assert.equal(await validate(), 900901, "no key manager vouches for it");
    assert.equal(await validate(), 900901, "kept");
    const w = watch();
    await w.until("a whole snapshot", (x) => x.snapshot() !== undefined);
    const announced = () => w.events().flatMap((e) => upserted(e, "externalKeyManagers") ?? []);
    const logged = () => logs.filter((l) => l.includes("could not record it for the gateways")).length;
    const before = logged();
    // The change log's head cannot be moved: nothing can be recorded.
    await db.schema.renameTable("change_log_head", "change_log_head_away");
    try {
      const publishedBefore = localPublishes;
      await reload([a]);
      assert.equal(localPublishes - publishedBefore, 1, "the caches flushed at once, the database failing");
      const deadline = Date.now() + 10_000;
      while (logged() === before) {
        assert.ok(Date.now() < deadline, "the failure was logged");
        await sleep(10);
      }
      assert.equal(await validate(), 900912, "idp-a's now (its JWKS cannot be had): ValidateToken follows the reload whatever the change log");
      assert.equal(localPublishes - publishedBefore, 1, "and not again");
    } finally {
      await db.schema.renameTable("change_log_head_away", "change_log_head");
    }
    assert.equal(announced().length, 0, "nothing was recorded, nothing sent");
    // The same file again: the gateways were not told of it yet.
    const publishedBeforeRetry = localPublishes;
    await reload([a]);
    await w.until("the external key managers event", () => announced().length === 1);
    await sleep(100);
    assert.ok(localPublishes - publishedBeforeRetry <= 1, "recording it late flushes the caches no more than the reload did");
    assert.deepEqual(
      announced()[0]?.keyManagers.map((km) => km.name),
      ["idp-a"],
    );
  });
});

describeOnEachDatabase("gateway sync: external key managers changed across a restart", (database) => {
  let dir: string;
  let file: string;
  let dataDir: string;
  let server: TestServer | undefined;
  const watchers: Watcher[] = [];
  const a: External = { name: "idp-a", issuer: "https://a.example.com", jwks: "https://a.example.com/jwks" };
  const b: External = { name: "idp-b", issuer: "https://b.example.com", validation: "introspection" };
  const c: External = { name: "idp-c", issuer: "https://c.example.com", jwks: "https://c.example.com/keys" };

  /** The server on the same database and data directory, with the deployment file holding `externals`. */
  async function start(externals: External[]): Promise<TestServer> {
    writeFileSync(file, toml(externals));
    server = await startServer({
      databaseUrl: database.url(),
      configFile: file,
      dataDir,
      overrides: { gateway_sync: { heartbeat_interval_ms: HEARTBEAT_MS }, cluster: { poll_interval_ms: 50 } },
    });
    return server;
  }

  before(() => {
    dir = mkdtempSync(join(tmpdir(), "km-sync-ext-restart-"));
    file = join(dir, "keymanager.toml");
    dataDir = mkdtempSync(join(tmpdir(), "km-sync-ext-restart-data-"));
  });
  after(async () => {
    await Promise.all(watchers.map((w) => w.close()));
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  });

  test("a gateway resuming its stream (from_version) after a restart with a changed file gets the new list as an event, without a snapshot; all removed: an empty list", async () => {
    let s = await start([a, b]);
    const gatewayToken = (await s.caller([SCOPES.gateway])).token;
    const first = new Watcher(s.client(GatewaySyncService, { token: gatewayToken }));
    watchers.push(first);
    await first.until("a whole snapshot", (x) => x.snapshot() !== undefined);
    assert.deepEqual(
      entitiesOf(first.snapshot()?.entities ?? [], "externalKeyManager").map((km) => km.name),
      ["idp-a", "idp-b"],
    );
    await first.until("a heartbeat", (x) => x.messages.at(-1)?.message.case === "heartbeat");
    let resumeFrom = first.lastVersion();
    await first.close();

    /** Restarts the server with `externals` and resumes the stream where it was: the list it gets. */
    const restartAndResume = async (externals: External[]) => {
      await s.close();
      s = await start(externals);
      const resumed = new Watcher(s.client(GatewaySyncService, { token: gatewayToken }), { fromVersion: resumeFrom });
      watchers.push(resumed);
      const announced = () => resumed.events().flatMap((e) => upserted(e, "externalKeyManagers") ?? []);
      await resumed.until("the external key managers event", () => announced().length > 0);
      assert.equal(resumed.chunks().length, 0, "resumed: no snapshot");
      await resumed.until("a heartbeat", (x) => x.messages.at(-1)?.message.case === "heartbeat");
      assert.equal(announced().length, 1, "one event");
      resumeFrom = resumed.lastVersion();
      await resumed.close();
      return announced()[0]?.keyManagers.map(({ name, jwksUri }) => ({ name, jwksUri }));
    };

    // idp-a's JWKS location changed, idp-b removed, idp-c added while the server was down.
    assert.deepEqual(await restartAndResume([{ ...a, jwks: "https://a.example.com/v2/jwks" }, c]), [
      { name: "idp-a", jwksUri: "https://a.example.com/v2/jwks" },
      { name: "idp-c", jwksUri: "https://c.example.com/keys" },
    ]);
    // Every one removed: the gateway is told so.
    assert.deepEqual(await restartAndResume([]), []);
  });
});
