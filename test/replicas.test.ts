import assert from "node:assert/strict";
import { randomBytes, randomUUID } from "node:crypto";
import { after, before, describe, test, type TestContext } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { DescService } from "@bufbuild/protobuf";
import { type Client, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { decodeProtectedHeader } from "jose";
import type { Knex } from "knex";
import { KeyManagerService } from "../gen/keymanager/v1/key_manager_service_pb.js";
import { SubscriptionService } from "../gen/keymanager/v1/subscription_service_pb.js";
import { TokenValidationService } from "../gen/keymanager/v1/token_validation_service_pb.js";
import { SigningKeyService } from "../gen/keymanager/v1/signing_key_service_pb.js";
import { AuthLevel, SubscriptionState, TokenType } from "../gen/keymanager/v1/types_pb.js";
import { SYSTEM_SCOPES } from "../src/auth/scopes.js";
import { SystemClients } from "../src/auth/system-clients.js";
import { LISTENER_APPLICATION_NAME } from "../src/cluster/postgres-waker.js";
import { systemClock } from "../src/domain/clock.js";
import { hashToken } from "../src/oauth/token-hash.js";
import { createKnex, migrate } from "../src/storage/database.js";
import { SecretBox } from "../src/storage/secret-box.js";
import { Store } from "../src/storage/store.js";
import { type TestDatabase, testDatabases } from "./support/databases.js";
import { createRequest } from "./support/fixtures.js";
import { clientToken, type ReplicaProcess, startReplica } from "./support/replica-process.js";
import { bearer } from "./support/server.js";

// Replicas as separate processes on one fresh database. A change made through replica A must be
// refused by replica B, whose caches have already answered, within 1 s (PostgreSQL,
// LISTEN/NOTIFY) or the polling interval plus a margin (MariaDB), while B's caches keep serving
// everything else.

const LIMIT_MS = 1000;
const POLL_INTERVAL_MS = 500;
const MARGIN_MS = 500;
const API = { apiId: "pizzashack", name: "PizzaShackAPI", context: "/pizzashack", version: "1.0.0", publisher: "admin", apiTier: "Gold" };
const INVALID_CREDENTIALS = 900901;
const BLOCKED = 900907;

interface Node {
  replica: ReplicaProcess;
  client<S extends DescService>(service: S): Client<S>;
  keys: Client<typeof KeyManagerService>;
  subs: Client<typeof SubscriptionService>;
  gateway: Client<typeof TokenValidationService>;
}

function node(replica: ReplicaProcess, token: string): Node {
  const transport = createGrpcTransport({ baseUrl: `http://127.0.0.1:${replica.grpcPort}`, interceptors: [bearer(token)], defaultTimeoutMs: 10_000 });
  return {
    replica,
    client: (service) => createClient(service, transport),
    keys: createClient(KeyManagerService, transport),
    subs: createClient(SubscriptionService, transport),
    gateway: createClient(TokenValidationService, transport),
  };
}

/** Migrates the database and creates an admin system client, as `npm run km -- bootstrap` does. */
async function bootstrap(db: Knex, key: Buffer): Promise<{ clientId: string; clientSecret: string }> {
  await migrate(db);
  const clients = new SystemClients(new Store(db, new SecretBox(key)), systemClock, () => "Resident Key Manager");
  const { client, clientSecret } = await clients.create({ name: "replicas test admin", scopes: [...SYSTEM_SCOPES], subscriber: "", groupIds: [] });
  return { clientId: client.clientId, clientSecret };
}

/** Through `via`: an application subscribed to the API, and `count` tokens of it. */
async function subscribedApp(via: Node, count: number) {
  const applicationId = randomUUID();
  const app = (await via.keys.createApplication(createRequest({ applicationId }))).application;
  assert.ok(app);
  const subscription = (await via.subs.createSubscription({ subscription: { applicationId, apiId: API.apiId, tier: "Gold" } })).subscription;
  assert.ok(subscription);
  const tokens: string[] = [];
  for (let i = 0; i < count; i++) {
    const issued = await via.keys.getNewApplicationAccessToken({
      request: { clientId: app.consumerKey, clientSecret: app.consumerSecret, grantType: "client_credentials" },
    });
    tokens.push(issued.token?.accessToken ?? "");
  }
  return { subscriptionId: subscription.subscriptionId, consumerKey: app.consumerKey, tokens };
}

async function status(on: Node, accessToken: string): Promise<number> {
  const res = await on.gateway.validateToken({ context: API.context, version: API.version, accessToken, matchingResource: "/menu", httpVerb: "GET" });
  return res.statusCode;
}

/**
 * Runs `change` (through A), then asks B until it answers `expected`; the delay from the start of
 * the change to B's first such answer.
 */
async function delayUntil(
  t: TestContext,
  what: string,
  b: Node,
  accessToken: string,
  expected: number,
  change: () => Promise<unknown>,
  limitMs: number,
): Promise<number> {
  const start = performance.now();
  await change();
  for (;;) {
    const now = performance.now();
    if ((await status(b, accessToken)) === expected) {
      const delay = now - start;
      t.diagnostic(`${what}: refused by the other replica ${delay.toFixed(0)} ms after the call on the first began`);
      assert.ok(delay < limitMs, `${what}: ${delay.toFixed(0)} ms, limit ${limitMs} ms`);
      return delay;
    }
    assert.ok(now - start < 10_000, `${what}: the other replica still accepts after 10 s`);
    await sleep(2);
  }
}

for (const database of testDatabases().filter((d) => d.name !== "sqlite")) {
  describe(`replicas as separate processes on ${database.name}`, { skip: database.skip }, () => {
    const limitMs = database.name === "postgres" ? LIMIT_MS : POLL_INTERVAL_MS + MARGIN_MS;
    let handle: TestDatabase;
    let db: Knex;
    let a: Node;
    let b: Node;
    let env: Record<string, string>;
    let admin: { clientId: string; clientSecret: string };
    /**
     * Waits until A's earlier changes have reached B: a value B loads while a change arrives is not
     * cached (it may predate the change), and the tests below need B's caches full.
     */
    const settle = () => sleep(database.name === "postgres" ? 200 : POLL_INTERVAL_MS + MARGIN_MS);

    before(async () => {
      handle = await (database.create as () => Promise<TestDatabase>)();
      db = createKnex({ url: handle.url, poolMax: 2 });
      const key = randomBytes(32);
      admin = await bootstrap(db, key);
      env = {
        KM_DATABASE_URL: handle.url,
        KM_ENCRYPTION_KEY: key.toString("base64"),
        KM_ISSUER: "http://km.test",
        KM_CLUSTER_POLL_INTERVAL_MS: String(POLL_INTERVAL_MS),
      };
      const [ra, rb] = await Promise.all([startReplica(env), startReplica(env)]);
      const token = await clientToken(ra, admin);
      [a, b] = [node(ra, token), node(rb, token)];
      await a.subs.createApi({ api: API });
      await a.keys.registerNewResource({
        resource: {
          apiId: API.apiId,
          resources: [{ uriTemplate: "/menu", httpVerb: "GET", authLevel: AuthLevel.ANY, scopes: [], throttlingTier: "Unlimited" }],
        },
      });
    });
    after(async () => {
      await Promise.all([a?.replica.stop(), b?.replica.stop()]);
      await db?.destroy();
      await handle?.drop();
    });

    test("a token revoked and a subscription blocked through A are refused by B in time; B's cache keeps the rest", async (t) => {
      const [revoked, untouched, changedBehindItsBack] = (await subscribedApp(a, 3)).tokens as [string, string, string];
      const blocked = await subscribedApp(a, 1);
      const all = [revoked, untouched, changedBehindItsBack, ...blocked.tokens];
      await settle();
      for (const token of all) assert.equal(await status(b, token), 0, "B accepts every token (its caches now hold them)");

      // A change B is never told of: only a cached answer still accepts this token.
      await db("access_tokens")
        .where({ token_hash: hashToken(changedBehindItsBack) })
        .update({ revoked_at: Date.now() });

      await delayUntil(t, "revoked token", b, revoked, INVALID_CREDENTIALS, () => a.keys.revokeToken({ token: revoked }), limitMs);
      await delayUntil(
        t,
        "blocked subscription",
        b,
        blocked.tokens[0] as string,
        BLOCKED,
        () => a.subs.updateSubscription({ subscription: { subscriptionId: blocked.subscriptionId, state: SubscriptionState.BLOCKED } }),
        limitMs,
      );

      assert.equal(await status(b, untouched), 0, "another token of the same application stays valid on B");
      assert.equal(await status(b, changedBehindItsBack), 0, "B still answers from its cache: the changes dropped only what they named, no flush");
    });

    test("a consumer secret regenerated through A: B refuses every token of the client in time", async (t) => {
      const regenerated = await subscribedApp(a, 2);
      const other = await subscribedApp(a, 1);
      await settle();
      for (const token of [...regenerated.tokens, ...other.tokens]) assert.equal(await status(b, token), 0, "B accepts (and caches) every token");
      await delayUntil(
        t,
        "regenerated consumer secret",
        b,
        regenerated.tokens[0] as string,
        INVALID_CREDENTIALS,
        () => a.keys.regenerateConsumerSecret({ consumerKey: regenerated.consumerKey }),
        limitMs,
      );
      assert.equal(await status(b, regenerated.tokens[1] as string), INVALID_CREDENTIALS, "the client's other token too");
      assert.equal(await status(b, other.tokens[0] as string), 0, "another client's token stays valid on B");
    });

    test("a signing key rotated through A: B verifies A's new JWTs at once and publishes the key", async (t) => {
      const applicationId = randomUUID();
      const app = (await a.keys.createApplication(createRequest({ applicationId, tokenType: TokenType.JWT }))).application;
      assert.ok(app);
      await a.subs.createSubscription({ subscription: { applicationId, apiId: API.apiId, tier: "Gold" } });
      const issue = async () =>
        (
          await a.keys.getNewApplicationAccessToken({
            request: { clientId: app.consumerKey, clientSecret: app.consumerSecret, grantType: "client_credentials" },
          })
        ).token?.accessToken ?? "";
      await settle();
      assert.equal(await status(b, await issue()), 0, "B accepts A's JWT signed by the first key");

      const start = performance.now();
      const kid = (await a.client(SigningKeyService).rotateSigningKey({})).signingKey?.kid;
      const jwt = await issue();
      assert.equal(decodeProtectedHeader(jwt).kid, kid, "A signs with its new key");
      assert.equal(await status(b, jwt), 0, "B verifies the new key's JWT (it reads the keys again for a kid it does not hold)");
      for (;;) {
        const jwks = (await (await fetch(`http://127.0.0.1:${b.replica.httpPort}/oauth2/jwks`)).json()) as { keys: Array<{ kid: string }> };
        if (jwks.keys[0]?.kid === kid) break;
        assert.ok(performance.now() - start < limitMs, `B's JWKS still lacks the new key after ${limitMs} ms`);
        await sleep(5);
      }
      t.diagnostic(`B publishes the new key ${(performance.now() - start).toFixed(0)} ms after the rotation began`);
      const jwks = (await (await fetch(`http://127.0.0.1:${b.replica.httpPort}/oauth2/jwks`)).json()) as { keys: Array<{ kid: string }> };
      assert.ok(jwks.keys.length >= 2, "the retired key stays published");
    });

    test("a replica killed (SIGKILL) right after a commit: its change still reaches the others (it is in the change log)", async (t) => {
      const c = node(await startReplica(env), await clientToken(a.replica, admin));
      const { tokens } = await subscribedApp(a, 2);
      const [revoked, untouched] = tokens as [string, string];
      await settle();
      assert.equal(await status(b, revoked), 0, "cached on B");
      const start = performance.now();
      await c.keys.revokeToken({ token: revoked });
      c.replica.process.kill("SIGKILL");
      await delayUntil(t, "revoked through a replica killed right after", b, revoked, INVALID_CREDENTIALS, async () => undefined, limitMs);
      t.diagnostic(`B refused it ${(performance.now() - start).toFixed(0)} ms after the revocation began`);
      assert.equal(await status(b, untouched), 0, "no flush needed: B's other entries stay cached");
      await c.replica.stop();
    });

    if (database.name === "postgres") {
      test("after the listener's connection is killed, B loses nothing: a change made meanwhile reaches it, and it listens again", async (t) => {
        const [duringGap, afterReconnect] = (await subscribedApp(a, 2)).tokens as [string, string];
        await settle();
        for (const token of [duringGap, afterReconnect]) assert.equal(await status(b, token), 0);

        const reconnected = b.replica.logged("change listener reconnected");
        const killed = (await db.raw("select pg_terminate_backend(pid) from pg_stat_activity where application_name = ? and datname = current_database()", [
          LISTENER_APPLICATION_NAME,
        ])) as { rows: unknown[] };
        assert.equal(killed.rows.length, 2, "one listener per replica");
        await delayUntil(
          t,
          "revoked while the listener reconnects",
          b,
          duringGap,
          INVALID_CREDENTIALS,
          () => a.keys.revokeToken({ token: duringGap }),
          LIMIT_MS,
        );
        await reconnected;
        assert.ok(b.replica.log.some((l) => String(l.msg).startsWith("change listener lost its connection")));
        await delayUntil(
          t,
          "revoked after the reconnection",
          b,
          afterReconnect,
          INVALID_CREDENTIALS,
          () => a.keys.revokeToken({ token: afterReconnect }),
          LIMIT_MS,
        );
      });
    }
  });
}
