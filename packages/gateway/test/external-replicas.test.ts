import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { AuthLevel, GatewaySyncService, KeyType, SubscriptionService } from "@keymanager/client";
import { SCOPES } from "../../../src/auth/scopes.js";
import { type TestDatabase, testDatabases } from "../../../test/support/databases.js";
import { type ExternalServer, startOidcServer } from "../../../test/support/oidc-server.js";
import { startServer, type TestServer } from "../../../test/support/server.js";
import { upserted, Watcher } from "../../../test/support/watcher.js";
import { createGatewayValidator, type GatewayValidator, type ValidateInput } from "../src/index.js";
import { serverAnswer } from "./fixture.js";

const API = { apiId: "ext-replicas", name: "ReplicasAPI", context: "/replicas", version: "1.0.0", publisher: "admin", apiTier: "Gold" };
const REQUEST: Omit<ValidateInput, "token"> = { context: API.context, version: API.version, resource: "/items", verb: "GET" };

/**
 * Two replicas sharing one database, each with its own deployment file; a gateway watches B.
 * Each replica serves its gateways the external key managers of its own file: A's reload reaches
 * B's streams as an event (the change log is shared) carrying B's list, not A's. A rolling change
 * (A, then B) ends with the gateway deciding the new issuer's JWTs in process as ValidateToken on
 * B does; removing it from both files makes both refuse them.
 */
for (const database of testDatabases().filter((d) => d.name !== "sqlite")) {
  describe(`external key managers across replicas, in @keymanager/gateway, on ${database.name}`, { skip: database.skip }, () => {
    let handle: TestDatabase;
    let idp: ExternalServer;
    let dir: string;
    const files = { a: "", b: "" };
    const replicas: { a?: TestServer; b?: TestServer } = {};
    let v: GatewayValidator;
    let onB: Watcher;

    const configure = (which: "a" | "b", withIdp: boolean) =>
      writeFileSync(
        files[which],
        withIdp
          ? `[[key_manager.external]]\nname = "idp"\nissuer = "${idp.issuer}"\ninitial_access_token = "${idp.initialAccessToken}"\njwt_validation = "jwks"\ntimeout_ms = 2000\n`
          : "",
      );
    const replica = (which: "a" | "b"): TestServer => {
      const r = replicas[which];
      assert.ok(r, `replica ${which} started`);
      return r;
    };

    before(async () => {
      handle = await (database.create as () => Promise<TestDatabase>)();
      idp = await startOidcServer({ jwtAccessTokens: true });
      dir = mkdtempSync(join(tmpdir(), "km-extreplicas-"));
      files.a = join(dir, "a.toml");
      files.b = join(dir, "b.toml");
      configure("a", false);
      configure("b", false);
      // One data directory: the encryption key the replicas share (with the database).
      const start = (file: string) =>
        startServer({
          dataDir: dir,
          databaseUrl: handle.url,
          configFile: file,
          overrides: { gateway_sync: { heartbeat_interval_ms: 200 }, cluster: { poll_interval_ms: 50 }, log_level: "error" },
        });
      replicas.a = await start(files.a);
      replicas.b = await start(files.b);
      await replica("a").client(SubscriptionService).createApi({ api: API });
      await replica("a").grpc.registerNewResource({
        resource: {
          apiId: API.apiId,
          resources: [{ uriTemplate: "/items", httpVerb: "GET", authLevel: AuthLevel.APPLICATION, scopes: [], throttlingTier: "Gold" }],
        },
      });
      const gateway = await replica("b").caller([SCOPES.gateway]);
      v = createGatewayValidator({ target: `127.0.0.1:${replica("b").grpcPort}`, token: gateway.token });
      await v.ready();
      onB = new Watcher(replica("b").client(GatewaySyncService, { token: gateway.token }));
      await onB.until("a snapshot", (x) => x.snapshot() !== undefined);
    });
    after(async () => {
      await v?.close();
      await onB?.close();
      await replicas.a?.close();
      await replicas.b?.close();
      await idp?.stop().catch(() => {});
      if (dir) rmSync(dir, { recursive: true, force: true });
      await handle?.drop();
    });

    /** The external key managers events B's stream got: the names each listed. */
    const announcedOnB = () =>
      onB
        .events()
        .flatMap((e) => upserted(e, "externalKeyManagers") ?? [])
        .map((e) => e.keyManagers.map((km) => km.name));

    /** Reloads one replica's file; waits until the gateway's copy (on B) has an event past the version it had. */
    async function reload(which: "a" | "b", withIdp: boolean): Promise<void> {
      const version = BigInt(v.stats().copy?.version || "0");
      configure(which, withIdp);
      assert.deepEqual((await replica(which).grpc.loadConfiguration({})).restartRequired, [], "applied at once");
      const deadline = Date.now() + 10_000;
      while (BigInt(v.stats().copy?.version || "0") <= version) {
        assert.ok(Date.now() < deadline, `replica ${which}'s external key managers entry reached the gateway on B`);
        await sleep(5);
      }
    }

    /** The library's answer (watching B), equal in full to ValidateToken's on B, and whether B was asked. */
    async function validated(what: string, token: string): Promise<{ statusCode: number; asked: boolean }> {
      const input = { ...REQUEST, token };
      const remote = v.stats().remote;
      const answer = await v.validate(input);
      assert.deepEqual(answer, await serverAnswer(replica("b"), input), `${what}: as ValidateToken on B answers`);
      return { statusCode: answer.statusCode, asked: v.stats().remote > remote };
    }

    test("A's reload reaches B's gateway with B's own list; a rolling change decides the new issuer's JWTs in process as B does; removed from both, refused as B refuses", async () => {
      const eventsBefore = announcedOnB().length;
      await reload("a", true);
      const afterA = announcedOnB();
      assert.equal(afterA.length, eventsBefore + 1, "A's entry reached B's stream as one event");
      assert.deepEqual(afterA.at(-1), [], "B's stream sends B's own list (none), not A's");

      // A token of the new issuer, for an application A registered with it (B does not know it yet).
      const applicationId = randomUUID();
      const app = (
        await replica("a").grpc.createApplication({
          application: { applicationId, keyType: KeyType.PRODUCTION, clientName: "replicas-app", grantTypes: ["client_credentials"], keyManager: "idp" },
        })
      ).application;
      assert.ok(app);
      await replica("a")
        .client(SubscriptionService)
        .createSubscription({ subscription: { applicationId, apiId: API.apiId, tier: "Gold" } });
      const jwt =
        (
          await replica("a").grpc.getNewApplicationAccessToken({
            request: { clientId: app.consumerKey, clientSecret: app.consumerSecret, grantType: "client_credentials" },
          })
        ).token?.accessToken ?? "";
      assert.equal(jwt.split(".").length, 3, "a JWT");
      assert.equal((await serverAnswer(replica("a"), { ...REQUEST, token: jwt })).statusCode, 0, "A, configured, authorizes it");
      assert.equal((await validated("only A configured", jwt)).statusCode, 900901, "B's file has no such key manager: refused, on B and by its gateway");

      await reload("b", true);
      assert.deepEqual(announcedOnB().at(-1), ["idp"], "B's reload: B's list");
      // The application may reach B's copy after the key manager event: wait until decided in process.
      const deadline = Date.now() + 10_000;
      let answer = await validated("both configured", jwt);
      while (answer.asked || answer.statusCode !== 0) {
        assert.ok(Date.now() < deadline, "the gateway on B decides the new issuer's JWT in process");
        await sleep(20);
        answer = await validated("both configured", jwt);
      }
      assert.deepEqual(answer, { statusCode: 0, asked: false }, "authorized in process, as ValidateToken on B");

      await reload("a", false);
      assert.deepEqual(announcedOnB().at(-1), ["idp"], "A's removal: B's stream still sends B's list");
      assert.deepEqual(await validated("removed from A only", jwt), { statusCode: 0, asked: false }, "B's file still has it");

      await reload("b", false);
      assert.deepEqual(announcedOnB().at(-1), [], "removed from B too");
      assert.equal((await validated("removed from both", jwt)).statusCode, 900901, "refused as ValidateToken on B refuses it");
      assert.equal((await serverAnswer(replica("a"), { ...REQUEST, token: jwt })).statusCode, 900901, "and as A refuses it");
      assert.equal(v.stats().copy?.snapshots, 1, "one snapshot: the changes came as events");
    });
  });
}
