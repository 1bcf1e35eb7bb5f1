import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AuthLevel, GatewaySyncService, KeyType, SubscriptionService } from "@keymanager/client";
import type { Knex } from "knex";
import { SCOPES } from "../../../src/auth/scopes.js";
import { createKnex } from "../../../src/storage/database.js";
import { describeOnEachDatabase } from "../../../test/support/each-database.js";
import { EXTERNAL_TOKEN_PATTERN, type ExternalServer, startOidcServer } from "../../../test/support/oidc-server.js";
import { bearer, startServer, type TestServer } from "../../../test/support/server.js";
import { createGatewayValidator, type GatewayValidator, type ValidateInput } from "../src/index.js";
import { CutProxy } from "./cut-proxy.js";
import { serverAnswer } from "./fixture.js";

const API = { apiId: "ext-reload", name: "ReloadAPI", context: "/reload", version: "1.0.0", publisher: "admin", apiTier: "Gold" };
const REQUEST: Omit<ValidateInput, "token"> = { context: API.context, version: API.version, resource: "/items", verb: "GET" };

/**
 * An external key manager added, changed or removed by a reload of the server's deployment file
 * reaches a connected gateway at once (an external_key_managers event, without reconnecting):
 * the library decides its JWTs as ValidateToken does from then on.
 */
describeOnEachDatabase("external key managers changed by a reload, in @keymanager/gateway", (database) => {
  let idp: ExternalServer;
  let opaqueIdp: ExternalServer;
  let opaque: string;
  let server: TestServer;
  let dir: string;
  let file: string;
  let v: GatewayValidator;
  let jwt: string;
  let db: Knex;
  const streamErrors: unknown[] = [];

  /**
   * The deployment file: the JWT issuer with `validation` (absent: not configured), and the
   * opaque tokens' key manager (introspected) unless left out.
   */
  const configure = (validation: "jwks" | "introspection" | undefined, withOpaque = true) =>
    writeFileSync(
      file,
      (validation === undefined
        ? ""
        : `[[key_manager.external]]\nname = "idp"\nissuer = "${idp.issuer}"\ninitial_access_token = "${idp.initialAccessToken}"\njwt_validation = "${validation}"\ntimeout_ms = 2000\n`) +
        (withOpaque
          ? `[[key_manager.external]]\nname = "opaque-idp"\nissuer = "${opaqueIdp.issuer}"\nclient_id = "${opaqueIdp.serviceClient.clientId}"\n` +
            `client_secret = "${opaqueIdp.serviceClient.clientSecret}"\ninitial_access_token = "${opaqueIdp.initialAccessToken}"\n` +
            `token_pattern = "${EXTERNAL_TOKEN_PATTERN}"\ntimeout_ms = 2000\n`
          : ""),
    );

  before(async () => {
    idp = await startOidcServer({ jwtAccessTokens: true });
    opaqueIdp = await startOidcServer();
    dir = mkdtempSync(join(tmpdir(), "km-extreload-"));
    file = join(dir, "keymanager.toml");
    configure("jwks");
    server = await startServer({ databaseUrl: database.url(), configFile: file, overrides: { gateway_sync: { heartbeat_interval_ms: 200 } } });
    await server.client(SubscriptionService).createApi({ api: API });
    await server.grpc.registerNewResource({
      resource: {
        apiId: API.apiId,
        resources: [{ uriTemplate: "/items", httpVerb: "GET", authLevel: AuthLevel.APPLICATION, scopes: [], throttlingTier: "Gold" }],
      },
    });
    const applicationId = randomUUID();
    const app = (
      await server.grpc.createApplication({
        application: { applicationId, keyType: KeyType.PRODUCTION, clientName: "reload-app", grantTypes: ["client_credentials"], keyManager: "idp" },
      })
    ).application;
    assert.ok(app);
    await server.client(SubscriptionService).createSubscription({ subscription: { applicationId, apiId: API.apiId, tier: "Gold" } });
    const issued = await server.grpc.getNewApplicationAccessToken({
      request: { clientId: app.consumerKey, clientSecret: app.consumerSecret, grantType: "client_credentials" },
    });
    jwt = issued.token?.accessToken ?? "";
    assert.equal(jwt.split(".").length, 3, "a JWT");
    const opaqueAppId = randomUUID();
    const opaqueApp = (
      await server.grpc.createApplication({
        application: {
          applicationId: opaqueAppId,
          keyType: KeyType.PRODUCTION,
          clientName: "reload-opaque-app",
          grantTypes: ["client_credentials"],
          keyManager: "opaque-idp",
        },
      })
    ).application;
    assert.ok(opaqueApp);
    await server.client(SubscriptionService).createSubscription({ subscription: { applicationId: opaqueAppId, apiId: API.apiId, tier: "Gold" } });
    opaque =
      (
        await server.grpc.getNewApplicationAccessToken({
          request: { clientId: opaqueApp.consumerKey, clientSecret: opaqueApp.consumerSecret, grantType: "client_credentials" },
        })
      ).token?.accessToken ?? "";
    assert.match(opaque, new RegExp(`^${EXTERNAL_TOKEN_PATTERN}$`), "an opaque token of the external server");
    const gateway = await server.caller([SCOPES.gateway]);
    v = createGatewayValidator({ target: `127.0.0.1:${server.grpcPort}`, token: gateway.token }, { onStreamError: (err) => streamErrors.push(err) });
    await v.ready();
    db = createKnex({ url: database.url(), poolMax: 1 });
  });
  after(async () => {
    await v?.close();
    await db?.destroy();
    await server?.close();
    await idp?.stop().catch(() => {});
    await opaqueIdp?.stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  });

  /** Reloads the server's file, and waits until the copy has an event past the version it had. */
  async function reload(validation: "jwks" | "introspection" | undefined, withOpaque = true): Promise<void> {
    const version = BigInt(v.stats().copy?.version || "0");
    configure(validation, withOpaque);
    const reloaded = await server.grpc.loadConfiguration({});
    assert.deepEqual(reloaded.restartRequired, [], "applied at once");
    const deadline = Date.now() + 10_000;
    while (BigInt(v.stats().copy?.version || "0") <= version) {
      assert.ok(Date.now() < deadline, "the external key managers event reached the copy");
      await sleep(5);
    }
  }

  /** The library's answer, equal to ValidateToken's, and whether the server was asked for it. */
  async function validated(what: string, token = jwt, validator = v): Promise<{ statusCode: number; asked: boolean }> {
    const input = { ...REQUEST, token };
    const remote = validator.stats().remote;
    const answer = await validator.validate(input);
    assert.deepEqual(answer, await serverAnswer(server, input), `${what}: as ValidateToken answers`);
    return { statusCode: answer.statusCode, asked: validator.stats().remote > remote };
  }

  test("removed: its JWT refused as ValidateToken refuses it; added again: authorized in process; introspected: asked of the server", async () => {
    try {
      assert.deepEqual(await validated("configured, jwks"), { statusCode: 0, asked: false }, "verified in process");
      assert.deepEqual(await validated("configured, jwks, again"), { statusCode: 0, asked: false });

      await reload(undefined);
      assert.equal((await validated("removed")).statusCode, 900901, "no key manager vouches for it any more");

      await reload("jwks");
      assert.deepEqual(await validated("added again"), { statusCode: 0, asked: false }, "verified in process again");

      await reload("introspection");
      // Whatever the server makes of it (this test server does not introspect its JWTs): its answer.
      assert.equal((await validated("introspection")).asked, true, "its JWTs are the server's to judge now");
    } finally {
      configure("jwks");
      await server.grpc.loadConfiguration({});
    }
    assert.equal(v.stats().copy?.snapshots, 1, "one snapshot: the changes came as events");
    assert.deepEqual(streamErrors, [], "the Watch stream was not broken");
  });

  test("the change log unable to record the removal: ValidateToken refuses at once all the same (its kept answer retired); the next reload tells the gateway", async () => {
    const input = { ...REQUEST, token: jwt };
    // Configured again by the last test: verified in process once the copy has that.
    const deadline = Date.now() + 10_000;
    while ((await validated("configured")).asked) {
      assert.ok(Date.now() < deadline, "the copy has the key manager again");
      await sleep(20);
    }
    assert.equal((await serverAnswer(server, input)).statusCode, 0, "the server's answer, kept");
    await db.schema.renameTable("change_log_head", "change_log_head_away");
    try {
      configure(undefined);
      await server.grpc.loadConfiguration({});
      assert.equal((await serverAnswer(server, input)).statusCode, 900901, "ValidateToken follows the reload at once");
    } finally {
      await db.schema.renameTable("change_log_head_away", "change_log_head");
    }
    try {
      await reload(undefined);
      assert.equal((await validated("removed, told at the next reload")).statusCode, 900901);
    } finally {
      configure("jwks");
      await server.grpc.loadConfiguration({});
    }
  });

  test("an opaque token's answer kept by the library: asked again once its key manager is removed, refused as ValidateToken refuses it", async () => {
    // Configured again by the last test: the copy has that before an answer is kept.
    const deadline = Date.now() + 10_000;
    while ((await validated("configured")).asked) {
      assert.ok(Date.now() < deadline, "the copy has the key managers again");
      await sleep(20);
    }
    assert.deepEqual(await validated("opaque", opaque), { statusCode: 0, asked: true }, "asked of the server");
    assert.deepEqual(await validated("opaque, kept", opaque), { statusCode: 0, asked: false }, "its answer kept");
    try {
      await reload("jwks", false);
      assert.deepEqual(await validated("its key manager removed", opaque), { statusCode: 900901, asked: true }, "asked again");
    } finally {
      configure("jwks");
      await server.grpc.loadConfiguration({});
    }
  });

  test("a new snapshot (the stream reset, resuming too old) bringing a different list: an opaque token's kept answer is asked again, refused as ValidateToken refuses it", async () => {
    const proxy = new CutProxy(server.grpcPort);
    await proxy.start();
    const gateway = await server.caller([SCOPES.gateway]);
    const watchClient = createClient(
      GatewaySyncService,
      createGrpcTransport({ baseUrl: `http://127.0.0.1:${proxy.port}`, interceptors: [bearer(gateway.token)] }),
    );
    const reset = createGatewayValidator(
      { target: `127.0.0.1:${server.grpcPort}`, token: gateway.token, reconnectInitialDelayMs: 50, reconnectMaxDelayMs: 200 },
      { watchClient },
    );
    try {
      await reset.ready();
      assert.deepEqual(await validated("opaque", opaque, reset), { statusCode: 0, asked: true }, "asked of the server");
      assert.deepEqual(await validated("opaque, kept", opaque, reset), { statusCode: 0, asked: false }, "its answer kept");
      await proxy.cut();
      // Its key manager removed while the stream is down, the announcement not recorded, and the
      // change log purged past the copy's version: the stream resumes with a new snapshot.
      await db.schema.renameTable("change_log_head", "change_log_head_away");
      try {
        configure("jwks", false);
        await server.grpc.loadConfiguration({});
      } finally {
        await db.schema.renameTable("change_log_head_away", "change_log_head");
      }
      await server.client(SubscriptionService).createApi({ api: { ...API, apiId: "ext-reload-2", context: "/reload-2" } });
      await db("change_events").delete();
      await proxy.restore();
      const deadline = Date.now() + 20_000;
      while (reset.stats().copy?.snapshots !== 2 || !reset.stats().copy?.usable) {
        assert.ok(Date.now() < deadline, "a second snapshot");
        await sleep(10);
      }
      assert.deepEqual(await validated("its key manager gone in the new snapshot", opaque, reset), { statusCode: 900901, asked: true }, "asked again");
    } finally {
      await reset.close();
      await proxy.close();
      configure("jwks");
      await server.grpc.loadConfiguration({});
    }
  });
});
