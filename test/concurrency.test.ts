import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { type Client, Code, ConnectError } from "@connectrpc/connect";
import type { Knex } from "knex";
import { SubscriptionService } from "../gen/keymanager/v1/subscription_service_pb.js";
import { TokenValidationService } from "../gen/keymanager/v1/token_validation_service_pb.js";
import { AuthLevel, KeyType, SubscriptionState } from "../gen/keymanager/v1/types_pb.js";
import { UserService } from "../gen/keymanager/v1/user_service_pb.js";
import { hashToken } from "../src/oauth/token-hash.js";
import { createKnex } from "../src/storage/database.js";
import { createRequest } from "./support/fixtures.js";
import { describeOnEachDatabase } from "./support/each-database.js";
import { startServer, type TestServer } from "./support/server.js";

/**
 * Concurrent calls on every database: parallel token requests, creates of one application key,
 * revocations and updates end in a state some serial order of the same calls would give (no
 * duplicate, no lost update), and each call gets a clean answer (never INTERNAL).
 */

const API = { apiId: "race-api", name: "RaceAPI", context: "/race", version: "1.0.0", publisher: "admin", apiTier: "Gold" };
const RESOURCES = [{ uriTemplate: "/menu", httpVerb: "GET", authLevel: AuthLevel.ANY, scopes: [], throttlingTier: "Unlimited" }];
const PASSWORD = "race-password";

/** How the calls ended: "OK", a gRPC code name, or an OAuth2 error code of the HTTP endpoints. */
type Outcome = string;

async function outcome(call: Promise<unknown>): Promise<Outcome> {
  try {
    await call;
    return "OK";
  } catch (err) {
    if (err instanceof OAuthError) return err.error;
    if (!(err instanceof ConnectError)) return `unexpected: ${String(err)}`;
    // The message tells an INTERNAL or an unexpected code apart in a failed comparison.
    return err.code === Code.Internal || err.code === Code.Unknown ? `${Code[err.code]}: ${err.rawMessage}` : Code[err.code];
  }
}

/** Counts of each outcome, to compare with deepEqual: { OK: 1, AlreadyExists: 19 }. */
function tally(outcomes: Outcome[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of outcomes) counts[o] = (counts[o] ?? 0) + 1;
  return counts;
}

async function count(query: Knex.QueryBuilder): Promise<number> {
  const [row] = await query.count({ n: "*" });
  return Number(row?.n);
}

function times<T>(n: number, make: (i: number) => T): T[] {
  return Array.from({ length: n }, (_, i) => make(i));
}

describeOnEachDatabase("concurrency", (database) => {
  let server: TestServer;
  let db: Knex;
  let gateway: Client<typeof TokenValidationService>;
  let subs: Client<typeof SubscriptionService>;
  let users: Client<typeof UserService>;

  before(async () => {
    server = await startServer({ databaseUrl: database.url() });
    db = createKnex({ url: database.url(), poolMax: 2 });
    gateway = server.client(TokenValidationService);
    subs = server.client(SubscriptionService);
    users = server.client(UserService);
    await subs.createApi({ api: API });
    await server.grpc.registerNewResource({ resource: { apiId: API.apiId, resources: RESOURCES } });
  });
  after(async () => {
    await db?.destroy();
    await server?.close();
  });

  async function newApp(overrides: Parameters<typeof createRequest>[0] = {}) {
    const applicationId = overrides.applicationId ?? randomUUID();
    const app = (await server.grpc.createApplication(createRequest({ applicationId, ...overrides }))).application;
    assert.ok(app);
    await subs.createSubscription({ subscription: { applicationId, apiId: API.apiId, tier: "Gold" } });
    return app;
  }

  type Credentials = { consumerKey: string; consumerSecret: string };

  function grpcToken(app: Credentials, extra: Record<string, unknown> = {}) {
    return server.grpc.getNewApplicationAccessToken({
      request: { clientId: app.consumerKey, clientSecret: app.consumerSecret, grantType: "client_credentials", ...extra },
    });
  }

  /** POST to an OAuth2 endpoint with client_secret_post; a non-2xx answer rejects with its `error`. */
  async function oauthPost(path: string, app: Credentials, form: Record<string, string>): Promise<Record<string, unknown>> {
    const res = await fetch(`http://127.0.0.1:${server.httpPort}${path}`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ client_id: app.consumerKey, client_secret: app.consumerSecret, ...form }),
    });
    const text = await res.text();
    const body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    if (res.status >= 500) throw new ConnectError(`HTTP ${res.status} ${text}`, Code.Internal);
    if (res.status !== 200) throw new OAuthError(String(body.error));
    return body;
  }

  async function userToken(app: Credentials, username: string) {
    const token = (await grpcToken(app, { grantType: "password", resourceOwnerUsername: username, resourceOwnerPassword: PASSWORD })).token;
    assert.ok(token?.refreshToken);
    return token;
  }

  async function validate(accessToken: string) {
    return (await gateway.validateToken({ context: API.context, version: API.version, accessToken, matchingResource: "/menu", httpVerb: "GET" })).statusCode;
  }

  async function familyOf(accessToken: string) {
    const row = await db("access_tokens")
      .where({ token_hash: hashToken(accessToken) })
      .first();
    assert.ok(row, "the token is stored");
    return db("access_tokens").where({ family_id: row.family_id });
  }

  describe("token requests for one client", () => {
    test("50 parallel client_credentials requests over gRPC, Connect and /oauth2/token: 50 distinct active tokens, all listed", async () => {
      const app = await newApp();
      const before = [(await grpcToken(app)).token?.accessToken, (await grpcToken(app)).token?.accessToken];
      const issued: string[] = [];
      const calls = times(50, async (i) => {
        if (i % 3 === 0) issued.push((await grpcToken(app)).token?.accessToken ?? "");
        else if (i % 3 === 1) {
          const res = await server.connect.getNewApplicationAccessToken({
            request: { clientId: app.consumerKey, clientSecret: app.consumerSecret, grantType: "client_credentials" },
          });
          issued.push(res.token?.accessToken ?? "");
        } else issued.push(String((await oauthPost("/oauth2/token", app, { grant_type: "client_credentials" })).access_token));
      });
      assert.deepEqual(tally(await Promise.all(calls.map(outcome))), { OK: 50 });
      assert.equal(new Set([...issued, ...before]).size, 52, "every token is distinct");

      const { tokens: listed } = await server.grpc.getActiveTokensByConsumerKey({ consumerKey: app.consumerKey });
      assert.equal(listed.length, 52);
      assert.equal(new Set(listed.map((t) => t.tokenId)).size, 52);
      assert.equal(await count(db("access_tokens").where({ consumer_key: app.consumerKey })), 52, "one row per token");
      const valid = await Promise.all(issued.map(async (t) => (await server.grpc.getTokenMetadata({ accessToken: t })).token?.tokenValid));
      assert.ok(
        valid.every((v) => v === true),
        "every token is active",
      );
      assert.equal(await validate(issued[0] ?? ""), 0);
    });

    test("one refresh token in 20 parallel requests: one new token, the others invalid_grant, and the family ends revoked", async () => {
      const app = await newApp();
      await users.createUser({ user: { username: "refresh-racer" }, password: PASSWORD });
      const first = await userToken(app, "refresh-racer");
      const winners: Array<{ accessToken: string; refreshToken: string }> = [];
      const calls = times(20, async (i) => {
        if (i % 2 === 0) {
          const res = await grpcToken(app, { grantType: "refresh_token", refreshToken: first.refreshToken });
          winners.push({ accessToken: res.token?.accessToken ?? "", refreshToken: res.token?.refreshToken ?? "" });
        } else {
          const body = await oauthPost("/oauth2/token", app, { grant_type: "refresh_token", refresh_token: first.refreshToken });
          winners.push({ accessToken: String(body.access_token), refreshToken: String(body.refresh_token) });
        }
      });
      const outcomes = tally(await Promise.all(calls.map(outcome)));
      assert.equal(outcomes.OK, 1, `exactly one rotation: ${JSON.stringify(outcomes)}`);
      assert.equal((outcomes.InvalidArgument ?? 0) + (outcomes.invalid_grant ?? 0), 19, `the others are refused cleanly: ${JSON.stringify(outcomes)}`);
      const [winner] = winners;
      assert.ok(winner);

      // The losers presented a spent refresh token: the family is revoked, whichever order they ran in.
      const family = await familyOf(first.accessToken);
      assert.equal(family.length, 2, "the original and the one rotation, nothing more");
      assert.ok(
        family.every((row) => row.revoked_at !== null),
        "every token of the family is revoked",
      );
      assert.equal((await server.grpc.getTokenMetadata({ accessToken: winner.accessToken })).token?.tokenValid, false);
      assert.equal(await validate(winner.accessToken), 900901);
      assert.equal(await outcome(grpcToken(app, { grantType: "refresh_token", refreshToken: winner.refreshToken })), "InvalidArgument");
    });

    test("one refresh token used and revoked at once: at most one rotation, and the family ends revoked", async () => {
      const app = await newApp();
      await users.createUser({ user: { username: "refresh-revoker" }, password: PASSWORD });
      const first = await userToken(app, "refresh-revoker");
      const rotated: string[] = [];
      const refreshes = times(10, async () =>
        rotated.push((await grpcToken(app, { grantType: "refresh_token", refreshToken: first.refreshToken })).token?.accessToken ?? ""),
      );
      const revocations = times(10, (i) =>
        i % 2 === 0
          ? server.grpc.revokeToken({ token: first.refreshToken, tokenTypeHint: "refresh_token" })
          : oauthPost("/oauth2/revoke", app, { token: first.refreshToken, token_type_hint: "refresh_token" }),
      );
      const [refreshed, revoked] = await Promise.all([Promise.all(refreshes.map(outcome)), Promise.all(revocations.map(outcome))]);
      assert.deepEqual(tally(revoked), { OK: 10 });
      assert.ok(
        refreshed.every((o) => o === "OK" || o === "InvalidArgument"),
        JSON.stringify(tally(refreshed)),
      );
      assert.ok(rotated.length <= 1, "at most one rotation");
      const family = await familyOf(first.accessToken);
      assert.equal(family.length, 1 + rotated.length);
      assert.ok(
        family.every((row) => row.revoked_at !== null),
        "a revoked refresh token ends its grant, a rotation racing it included",
      );
      for (const token of rotated) assert.equal(await validate(token), 900901);
    });

    test("password grants with the old password while it changes: none of their tokens stays active", async () => {
      const app = await newApp();
      await users.createUser({ user: { username: "grant-racer" }, password: PASSWORD });
      const granted: string[] = [];
      const grants = times(20, async () => granted.push((await userToken(app, "grant-racer")).accessToken));
      const change = users.setUserPassword({ username: "grant-racer", password: `${PASSWORD}-new` });
      const outcomes = await Promise.all([...grants, change].map(outcome));
      assert.equal(outcomes.at(-1), "OK", "the password change");
      assert.ok(
        outcomes.every((o) => o === "OK" || o === "InvalidArgument"),
        JSON.stringify(tally(outcomes)),
      );
      assert.equal(
        await count(db("access_tokens").where({ end_user: "grant-racer" }).whereNull("revoked_at")),
        0,
        "no token of the old password outlives its change",
      );
      for (const token of granted) assert.equal(await validate(token), 900901);
      await assert.rejects(userToken(app, "grant-racer"), "the old password no longer grants");
    });

    test("refresh rotations while the user's password changes: every token of the user ends revoked", async () => {
      const app = await newApp();
      await users.createUser({ user: { username: "password-racer" }, password: PASSWORD });
      const tokens = await Promise.all(times(5, () => userToken(app, "password-racer")));
      const rotated: string[] = [];
      const calls = [
        ...tokens.map(async (t) => rotated.push((await grpcToken(app, { grantType: "refresh_token", refreshToken: t.refreshToken })).token?.accessToken ?? "")),
        users.setUserPassword({ username: "password-racer", password: `${PASSWORD}-new` }),
      ];
      const outcomes = await Promise.all(calls.map(outcome));
      assert.equal(outcomes.at(-1), "OK", "the password change");
      assert.ok(
        outcomes.every((o) => o === "OK" || o === "InvalidArgument"),
        JSON.stringify(tally(outcomes)),
      );
      assert.equal(await count(db("access_tokens").where({ end_user: "password-racer" }).whereNull("revoked_at")), 0, "no token outlives the password change");
      for (const token of rotated) assert.equal(await validate(token), 900901);
    });
  });

  describe("one application key created in parallel", () => {
    test("20 parallel CreateApplication of one application id and key type: one OK, the rest ALREADY_EXISTS, one row", async () => {
      const applicationId = randomUUID();
      const clientName = `race-${applicationId}`;
      const created: string[] = [];
      const calls = times(20, async (i) => {
        const client = i % 2 === 0 ? server.grpc : server.connect;
        created.push((await client.createApplication(createRequest({ applicationId, clientName }))).application?.consumerKey ?? "");
      });
      assert.deepEqual(tally(await Promise.all(calls.map(outcome))), { OK: 1, AlreadyExists: 19 });

      const keys = await db("application_keys").where({ application_id: applicationId });
      assert.equal(keys.length, 1);
      assert.equal(keys[0].consumer_key, created[0]);
      const clients = await db("oauth_clients").where({ client_name: clientName }).pluck("consumer_key");
      assert.deepEqual(clients, created, "the refused creates left no OAuth client behind");
      const sandbox = await server.grpc.createApplication(createRequest({ applicationId, clientName, keyType: KeyType.SANDBOX }));
      assert.equal(sandbox.application?.keyType, KeyType.SANDBOX, "the other key type is still free");
    });

    test("one new consumer key mapped to 20 applications in parallel: one mapping, one client", async () => {
      const consumerKey = `ext-${randomUUID()}`;
      const mappedTo: string[] = [];
      const calls = times(20, async () => {
        const applicationId = randomUUID();
        await server.grpc.mapOAuthApplication({
          application: {
            applicationId,
            keyType: KeyType.PRODUCTION,
            consumerKey,
            consumerSecret: "external-secret",
            grantTypes: ["client_credentials"],
          },
        });
        mappedTo.push(applicationId);
      });
      assert.deepEqual(tally(await Promise.all(calls.map(outcome))), { OK: 1, AlreadyExists: 19 });
      assert.deepEqual(await db("application_keys").where({ consumer_key: consumerKey }).pluck("application_id"), mappedTo);
      assert.equal((await db("oauth_clients").where({ consumer_key: consumerKey })).length, 1);
    });

    test("20 new consumer keys mapped to one application key in parallel: one mapping, no orphan client", async () => {
      const applicationId = randomUUID();
      const consumerKeys = times(20, () => `ext-${randomUUID()}`);
      const calls = consumerKeys.map((consumerKey) =>
        server.grpc.mapOAuthApplication({
          application: {
            applicationId,
            keyType: KeyType.SANDBOX,
            consumerKey,
            consumerSecret: "external-secret",
            grantTypes: ["client_credentials"],
          },
        }),
      );
      assert.deepEqual(tally(await Promise.all(calls.map(outcome))), { OK: 1, AlreadyExists: 19 });
      const mapped = await db("application_keys").where({ application_id: applicationId }).pluck("consumer_key");
      assert.equal(mapped.length, 1);
      assert.deepEqual(await db("oauth_clients").whereIn("consumer_key", consumerKeys).pluck("consumer_key"), mapped, "the refused imports were rolled back");
    });

    test("one application deleted by 10 parallel calls: one OK, the rest NOT_FOUND", async () => {
      const app = await newApp();
      await grpcToken(app);
      const calls = times(10, () => server.grpc.deleteApplication({ consumerKey: app.consumerKey }));
      assert.deepEqual(tally(await Promise.all(calls.map(outcome))), { OK: 1, NotFound: 9 });
      assert.equal((await db("oauth_clients").where({ consumer_key: app.consumerKey })).length, 0);
      assert.equal((await db("access_tokens").where({ consumer_key: app.consumerKey })).length, 0);
    });

    test("20 parallel subscriptions of one application to one API: one OK, the rest ALREADY_EXISTS", async () => {
      const applicationId = randomUUID();
      const calls = times(20, () => subs.createSubscription({ subscription: { applicationId, apiId: API.apiId } }));
      assert.deepEqual(tally(await Promise.all(calls.map(outcome))), { OK: 1, AlreadyExists: 19 });
      assert.equal((await db("subscriptions").where({ application_id: applicationId })).length, 1);
    });
  });

  describe("revocation", () => {
    test("one token revoked by 21 parallel calls over gRPC, Connect and /oauth2/revoke: all OK, ValidateToken refuses it", async () => {
      const app = await newApp();
      const token = (await grpcToken(app)).token?.accessToken ?? "";
      assert.equal(await validate(token), 0, "cached as valid first");
      const calls = times(21, (i) =>
        i % 3 === 0 ? server.grpc.revokeToken({ token }) : i % 3 === 1 ? server.connect.revokeToken({ token }) : oauthPost("/oauth2/revoke", app, { token }),
      );
      assert.deepEqual(tally(await Promise.all(calls.map(outcome))), { OK: 21 });
      const row = await db("access_tokens")
        .where({ token_hash: hashToken(token) })
        .first();
      assert.notEqual(row.revoked_at, null);
      assert.equal(await validate(token), 900901);
      assert.equal((await server.grpc.getTokenMetadata({ accessToken: token })).token?.tokenValid, false);
    });

    test("30 tokens of one client revoked in parallel while it gets 10 new ones: each revoked one refused, the new ones valid", async () => {
      const app = await newApp();
      const old = await Promise.all(times(30, async () => (await grpcToken(app)).token?.accessToken ?? ""));
      assert.deepEqual(new Set(await Promise.all(old.map(validate))), new Set([0]), "all cached as valid first");
      const fresh: string[] = [];
      const calls = [
        ...old.map((token, i) => (i % 2 === 0 ? server.grpc.revokeToken({ token }) : oauthPost("/oauth2/revoke", app, { token }))),
        ...times(10, async () => fresh.push((await grpcToken(app)).token?.accessToken ?? "")),
      ];
      assert.deepEqual(tally(await Promise.all(calls.map(outcome))), { OK: 40 });
      assert.deepEqual(new Set(await Promise.all(old.map(validate))), new Set([900901]));
      assert.deepEqual(new Set(await Promise.all(fresh.map(validate))), new Set([0]));
      const { tokens: active } = await server.grpc.getActiveTokensByConsumerKey({ consumerKey: app.consumerKey });
      assert.equal(active.length, 10, "only the new tokens are active");
      assert.equal(await count(db("access_tokens").where({ consumer_key: app.consumerKey }).whereNull("revoked_at")), 10);
    });

    test("a user's refresh and access tokens revoked while the password changes: no deadlock, every token revoked", async () => {
      const app = await newApp();
      await users.createUser({ user: { username: "revoke-racer" }, password: PASSWORD });
      const tokens = await Promise.all(times(6, () => userToken(app, "revoke-racer")));
      assert.deepEqual(new Set(await Promise.all(tokens.map((t) => validate(t.accessToken)))), new Set([0]));
      const calls = [
        ...tokens.map((t) => server.grpc.revokeToken({ token: t.refreshToken, tokenTypeHint: "refresh_token" })),
        ...tokens.map((t) => oauthPost("/oauth2/revoke", app, { token: t.accessToken })),
        ...times(2, (i) => users.setUserPassword({ username: "revoke-racer", password: `${PASSWORD}-${i}` })),
      ];
      assert.deepEqual(tally(await Promise.all(calls.map(outcome))), { OK: 14 });
      assert.deepEqual(new Set(await Promise.all(tokens.map((t) => validate(t.accessToken)))), new Set([900901]));
      assert.equal(await count(db("access_tokens").where({ end_user: "revoke-racer" }).whereNull("revoked_at")), 0);
    });
  });

  describe("no lost updates", () => {
    test("UpdateApplication of different fields in parallel (update_mask): every change is kept", async () => {
      const app = await newApp();
      for (let round = 0; round < 5; round++) {
        const changes = [
          { application: { consumerKey: app.consumerKey, clientName: `name-${round}` }, updateMask: { paths: ["client_name"] } },
          { application: { consumerKey: app.consumerKey, scopes: [`scope-${round}`] }, updateMask: { paths: ["scopes"] } },
          { application: { consumerKey: app.consumerKey, callbackUrls: [`https://app.example.com/${round}`] }, updateMask: { paths: ["callback_urls"] } },
          { application: { consumerKey: app.consumerKey, additionalProperties: { round: String(round) } }, updateMask: { paths: ["additional_properties"] } },
          {
            application: { consumerKey: app.consumerKey, userTokenValiditySeconds: BigInt(600 + round) },
            updateMask: { paths: ["user_token_validity_seconds"] },
          },
          {
            application: { consumerKey: app.consumerKey, applicationTokenValiditySeconds: BigInt(1200 + round) },
            updateMask: { paths: ["application_token_validity_seconds"] },
          },
        ];
        const calls = changes.map((c, i) => (i % 2 === 0 ? server.grpc : server.connect).updateApplication(c));
        assert.deepEqual(tally(await Promise.all(calls.map(outcome))), { OK: changes.length });
        const got = (await server.grpc.retrieveApplication({ selector: { case: "consumerKey", value: app.consumerKey } })).application;
        assert.equal(got?.clientName, `name-${round}`);
        assert.deepEqual(got?.scopes, [`scope-${round}`]);
        assert.deepEqual(got?.callbackUrls, [`https://app.example.com/${round}`]);
        assert.deepEqual(got?.additionalProperties, { round: String(round) });
        assert.equal(got?.userTokenValiditySeconds, BigInt(600 + round));
        assert.equal(got?.applicationTokenValiditySeconds, BigInt(1200 + round));
      }
    });

    test("whole settings written in parallel: the result is exactly one of them, not a mix", async () => {
      const app = await newApp();
      const settings = times(10, (i) => ({
        clientName: `client-${i}`,
        grantTypes: i % 2 === 0 ? ["client_credentials"] : ["authorization_code", "refresh_token"],
        callbackUrls: [`https://app.example.com/cb-${i}`],
        scopes: [`scope-${i}`],
      }));
      const calls = settings.map((s) =>
        server.grpc.updateApplication({
          application: { consumerKey: app.consumerKey, ...s },
          updateMask: { paths: ["client_name", "grant_types", "callback_urls", "scopes"] },
        }),
      );
      assert.deepEqual(tally(await Promise.all(calls.map(outcome))), { OK: 10 });
      const got = (await server.grpc.retrieveApplication({ selector: { case: "consumerKey", value: app.consumerKey } })).application;
      const written = settings.find((s) => s.clientName === got?.clientName);
      assert.ok(written, `${got?.clientName} is one of the written names`);
      assert.deepEqual(
        { grantTypes: got?.grantTypes, callbackUrls: got?.callbackUrls, scopes: got?.scopes },
        { grantTypes: written.grantTypes, callbackUrls: written.callbackUrls, scopes: written.scopes },
      );
    });

    test("UpdateSubscription of the tier and of the state in parallel: both kept, and the gateway sees them", async () => {
      const app = await newApp();
      const token = (await grpcToken(app)).token?.accessToken ?? "";
      const { subscriptions } = await subs.listSubscriptions({ applicationId: app.applicationId });
      const subscriptionId = subscriptions[0]?.subscriptionId ?? "";
      assert.equal(await validate(token), 0);
      const states = [SubscriptionState.BLOCKED, SubscriptionState.UNBLOCKED, SubscriptionState.ON_HOLD, SubscriptionState.UNBLOCKED];
      for (const [round, state] of states.entries()) {
        const calls = [
          subs.updateSubscription({ subscription: { subscriptionId, tier: `Tier${round}` } }),
          subs.updateSubscription({ subscription: { subscriptionId, state } }),
        ];
        assert.deepEqual(tally(await Promise.all(calls.map(outcome))), { OK: 2 });
        const got = (await subs.getSubscription({ subscriptionId })).subscription;
        assert.equal(got?.tier, `Tier${round}`);
        assert.equal(got?.state, state);
      }
      const res = await gateway.validateToken({ context: API.context, version: API.version, accessToken: token, matchingResource: "/menu", httpVerb: "GET" });
      assert.equal(res.statusCode, 0);
      assert.equal(res.subscriptionTier, "Tier3");
    });

    test("UpdateApi of different fields in parallel: every change is kept", async () => {
      const apiId = `api-${randomUUID()}`;
      await subs.createApi({ api: { apiId, name: "Racy", context: `/${apiId}`, version: "v1", publisher: "", apiTier: "" } });
      for (let round = 0; round < 5; round++) {
        const calls = [
          subs.updateApi({ api: { apiId, name: `name-${round}` }, updateMask: { paths: ["name"] } }),
          subs.updateApi({ api: { apiId, publisher: `publisher-${round}` }, updateMask: { paths: ["publisher"] } }),
          subs.updateApi({ api: { apiId, apiTier: `tier-${round}` }, updateMask: { paths: ["api_tier"] } }),
        ];
        assert.deepEqual(tally(await Promise.all(calls.map(outcome))), { OK: 3 });
        const got = (await subs.getApi({ apiId })).api;
        assert.deepEqual([got?.name, got?.publisher, got?.apiTier], [`name-${round}`, `publisher-${round}`, `tier-${round}`]);
      }
    });

    test("RegenerateConsumerSecret in parallel: the stored secret is one of those answered, and it is the one that works", async () => {
      const app = await newApp();
      const secrets = await Promise.all(times(10, async () => (await server.grpc.regenerateConsumerSecret({ consumerKey: app.consumerKey })).consumerSecret));
      assert.equal(new Set(secrets).size, 10);
      const stored = (await server.grpc.retrieveApplication({ selector: { case: "consumerKey", value: app.consumerKey } })).application?.consumerSecret ?? "";
      assert.ok(secrets.includes(stored), "the stored secret was answered to one caller");
      assert.equal(await outcome(grpcToken({ consumerKey: app.consumerKey, consumerSecret: stored })), "OK");
      const other = secrets.find((s) => s !== stored) ?? "";
      assert.equal(await outcome(grpcToken({ consumerKey: app.consumerKey, consumerSecret: other })), "Unauthenticated");
    });
  });
});

/** An OAuth2 error answer (RFC 6749 5.2) of the HTTP endpoints, named by its `error`. */
class OAuthError extends Error {
  constructor(readonly error: string) {
    super(error);
  }
}
