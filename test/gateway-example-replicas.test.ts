import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type * as http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { type Client, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { Knex } from "knex";
import { backend } from "../examples/gateway/backend.js";
import { KeyManagerService } from "../gen/keymanager/v1/key_manager_service_pb.js";
import { SubscriptionService } from "../gen/keymanager/v1/subscription_service_pb.js";
import { AuthLevel, SubscriptionState, TokenType } from "../gen/keymanager/v1/types_pb.js";
import { CutProxy } from "../packages/gateway/test/cut-proxy.js";
import { SYSTEM_SCOPES } from "../src/auth/scopes.js";
import { SystemClients } from "../src/auth/system-clients.js";
import { systemClock } from "../src/domain/clock.js";
import { createKnex, migrate } from "../src/storage/database.js";
import { SecretBox } from "../src/storage/secret-box.js";
import { Store } from "../src/storage/store.js";
import { type TestDatabase, testDatabases } from "./support/databases.js";
import { type ExampleGateway, startExampleGateway } from "./support/example-gateway.js";
import { createRequest } from "./support/fixtures.js";
import { clientToken, type ReplicaProcess, startReplica } from "./support/replica-process.js";
import { bearer } from "./support/server.js";

// The example gateway (examples/gateway, a process of its own) in front of replica B of two
// server processes on PostgreSQL; changes are made through replica A. A token revoked through A
// is refused through the gateway within 100 ms of RevokeToken's answer (9 samples in 10; every
// one within 250 ms) (the change crosses the
// change log to B, B's Watch stream to the gateway's copy). With the Watch stream cut past the
// staleness bound, the gateway's answers still follow every change: they come from the server.

const API = { apiId: "pizzashack", name: "PizzaShackAPI", context: "/pizzashack", version: "1.0.0", publisher: "admin", apiTier: "Gold" };
const LIMIT_MS = 100;
const SAMPLES = 10;
const BOUND_MS = 1000;

for (const database of testDatabases().filter((d) => d.name === "postgres")) {
  describe(`the example gateway in front of another replica on ${database.name}`, { skip: database.skip }, () => {
    let handle: TestDatabase;
    let db: Knex;
    let a: ReplicaProcess;
    let b: ReplicaProcess;
    let keys: Client<typeof KeyManagerService>;
    let subs: Client<typeof SubscriptionService>;
    let proxy: CutProxy;
    let upstream: http.Server;
    let gateway: ExampleGateway;
    let base: string;
    let configDir: string;
    const apps: Record<"jwt" | "opaque", { consumerKey: string; consumerSecret: string; subscriptionId: string }> = {} as never;

    before(async () => {
      handle = await (database.create as () => Promise<TestDatabase>)();
      db = createKnex({ url: handle.url, poolMax: 2 });
      await migrate(db);
      const key = randomBytes(32);
      const { client, clientSecret } = await new SystemClients(new Store(db, new SecretBox(key)), systemClock, () => "Resident Key Manager").create({
        name: "gateway example admin",
        scopes: [...SYSTEM_SCOPES],
        subscriber: "",
        groupIds: [],
      });
      configDir = mkdtempSync(join(tmpdir(), "km-gw-replicas-"));
      const configFile = join(configDir, "keymanager.toml");
      // Heartbeats well within the gateway's staleness bound.
      writeFileSync(configFile, "[key_manager.gateway_sync]\nheartbeat_interval_ms = 200\n");
      const env = {
        KM_DATABASE_URL: handle.url,
        KM_ENCRYPTION_KEY: key.toString("base64"),
        KM_ISSUER: "http://km.test",
        KM_CONFIG_FILE: configFile,
      };
      [a, b] = await Promise.all([startReplica(env), startReplica(env)]);
      const token = await clientToken(a, { clientId: client.clientId, clientSecret });
      const transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${a.grpcPort}`, interceptors: [bearer(token)], defaultTimeoutMs: 10_000 });
      keys = createClient(KeyManagerService, transport);
      subs = createClient(SubscriptionService, transport);
      await subs.createApi({ api: API });
      await keys.registerNewResource({
        resource: {
          apiId: API.apiId,
          resources: [{ uriTemplate: "/menu", httpVerb: "GET", authLevel: AuthLevel.ANY, scopes: [], throttlingTier: "Unlimited" }],
        },
      });
      for (const kind of ["jwt", "opaque"] as const) {
        const applicationId = randomUUID();
        const app = (await keys.createApplication(createRequest({ applicationId, tokenType: kind === "jwt" ? TokenType.JWT : TokenType.OPAQUE }))).application;
        assert.ok(app);
        const sub = (await subs.createSubscription({ subscription: { applicationId, apiId: API.apiId, tier: "Gold" } })).subscription;
        apps[kind] = { consumerKey: app.consumerKey, consumerSecret: app.consumerSecret, subscriptionId: sub?.subscriptionId ?? "" };
      }
      // The gateway asks B directly; its Watch stream goes through a proxy the test can cut.
      proxy = new CutProxy(b.grpcPort);
      await proxy.start();
      upstream = backend();
      await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
      gateway = await startExampleGateway({
        KM_GRPC: `127.0.0.1:${b.grpcPort}`,
        KM_WATCH_GRPC: `127.0.0.1:${proxy.port}`,
        KM_GATEWAY_TOKEN: token,
        UPSTREAM: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
        API_CONTEXT: API.context,
        API_VERSION: API.version,
        STALENESS_BOUND_MS: String(BOUND_MS),
      });
      assert.equal(gateway.started.copy.usable, true);
      base = gateway.base;
    });
    after(async () => {
      await gateway?.stop();
      upstream?.close();
      await proxy?.close();
      await Promise.all([a?.stop(), b?.stop()]);
      await db?.destroy();
      await handle?.drop();
      if (configDir) rmSync(configDir, { recursive: true, force: true });
    });

    async function call(token: string): Promise<{ status: number; code?: number }> {
      const res = await fetch(`${base}/pizzashack/1.0.0/menu`, { headers: { authorization: `Bearer ${token}` } });
      const body = (await res.json()) as { code?: number };
      return { status: res.status, code: body.code };
    }

    async function issue(kind: "jwt" | "opaque"): Promise<string> {
      const { consumerKey, consumerSecret } = apps[kind];
      const res = await keys.getNewApplicationAccessToken({
        request: { clientId: consumerKey, clientSecret: consumerSecret, grantType: "client_credentials" },
      });
      return res.token?.accessToken ?? assert.fail("a token");
    }

    /** Revokes through A; the time from RevokeToken's answer to the gateway's first 401. */
    async function revokeToRefusal(token: string): Promise<number> {
      await keys.revokeToken({ token });
      const answered = performance.now();
      for (;;) {
        const { status } = await call(token);
        if (status === 401) return performance.now() - answered;
        assert.equal(status, 200);
        assert.ok(performance.now() - answered < 10_000, "refused within 10 s");
      }
    }

    test(`a token revoked through replica A is refused through the gateway (in front of B) within ${LIMIT_MS} ms (p90 of ${SAMPLES} samples each, JWT and opaque)`, async () => {
      const delays: Record<string, number[]> = { jwt: [], opaque: [] };
      for (let i = 0; i < SAMPLES; i++) {
        for (const kind of ["jwt", "opaque"] as const) {
          const token = await issue(kind);
          assert.equal((await call(token)).status, 200, `${kind}: allowed before`);
          assert.equal((await call(token)).status, 200, `${kind}: allowed again (decided from the copy)`);
          delays[kind]!.push(await revokeToRefusal(token));
        }
      }
      for (const [kind, list] of Object.entries(delays)) {
        const sorted = [...list].sort((x, y) => x - y);
        console.log(
          `# ${kind}: revoked through A, refused through the gateway in front of B after ${sorted.map((d) => d.toFixed(1)).join(", ")} ms (max ${sorted.at(-1)?.toFixed(1)})`,
        );
        // 9 samples of 10 within the limit, every one within 2.5 times it: on a shared, loaded
        // machine one sample in ten may be late by a scheduling delay (bench: p99 of many samples).
        const p90 = sorted[Math.ceil(sorted.length * 0.9) - 1]!;
        assert.ok(p90 <= LIMIT_MS, `${kind}: p90 ${p90.toFixed(1)} ms, limit ${LIMIT_MS} ms`);
        assert.ok(sorted.at(-1)! <= LIMIT_MS * 2.5, `${kind}: max ${sorted.at(-1)?.toFixed(1)} ms, limit ${LIMIT_MS * 2.5} ms`);
      }
    });

    test("the Watch stream down past the staleness bound: answers still right, from the server", async () => {
      const jwt = await issue("jwt");
      const opaque = await issue("opaque");
      for (const t of [jwt, opaque]) assert.equal((await call(t)).status, 200);
      await proxy.cut();
      await sleep(BOUND_MS + 500);
      try {
        // Changes the copy cannot see (its stream is down): the answers follow them all the same.
        for (const t of [jwt, opaque]) assert.equal((await call(t)).status, 200, "still allowed");
        const fresh = await issue("opaque");
        assert.equal((await call(fresh)).status, 200, "a token issued during the cut");
        const revoked = await issue("jwt");
        assert.equal((await call(revoked)).status, 200);
        const ms = await revokeToRefusal(revoked);
        console.log(`# stream down: a JWT revoked through A refused through the gateway after ${ms.toFixed(1)} ms (asked of B)`);
        await subs.updateSubscription({
          subscription: { subscriptionId: apps.opaque.subscriptionId, state: SubscriptionState.BLOCKED },
          updateMask: { paths: ["state"] },
        });
        let blocked = await call(opaque);
        const deadline = Date.now() + 5000;
        while (blocked.status === 200 && Date.now() < deadline) blocked = await call(opaque);
        assert.deepEqual(blocked, { status: 403, code: 900907 }, "a subscription blocked through A");
        assert.deepEqual(await call(jwt), { status: 200, code: undefined }, "the other application's token");
        assert.deepEqual(await call("not-a-token"), { status: 401, code: 900901 });
      } finally {
        await proxy.restore();
        await subs.updateSubscription({
          subscription: { subscriptionId: apps.opaque.subscriptionId, state: SubscriptionState.UNBLOCKED },
          updateMask: { paths: ["state"] },
        });
      }
      // Back: the copy resumes, and a revocation reaches it again.
      const after = await issue("jwt");
      const deadline = Date.now() + 20_000;
      while ((await call(after)).status !== 200) assert.ok(Date.now() < deadline);
      await sleep(BOUND_MS);
      const ms = await revokeToRefusal(after);
      console.log(`# stream back: a JWT revoked through A refused after ${ms.toFixed(1)} ms`);
    });
  });
}
