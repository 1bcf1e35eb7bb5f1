import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { AuthLevel, KeyType, SubscriptionService, SubscriptionState, TokenType, UserService } from "@keymanager/client";
import fc from "fast-check";
import type { Knex } from "knex";
import { createKnex } from "../../../src/storage/database.js";
import { ChangeLogRepository } from "../../../src/storage/change-log-repository.js";
import { describeOnEachDatabase } from "../../../test/support/each-database.js";
import { createRequest } from "../../../test/support/fixtures.js";
import { startServer, type TestServer } from "../../../test/support/server.js";
import { SCOPES } from "../../../src/auth/scopes.js";
import { createGatewayValidator, type GatewayValidator, type ValidateInput } from "../src/index.js";
import { serverAnswer } from "./fixture.js";

/**
 * EQUIVALENCE, randomized: fast-check draws sequences of changes (APIs added, changed, deleted;
 * resources; subscriptions in every state; applications deleted and created; tokens issued,
 * revoked one by one, by consumer key through a regenerated secret, by user through a password
 * change or deletion; users created) over one server per database. After each change, once the
 * change log's head has reached the library's copy (its version, not a sleep), the library's
 * answer equals unary ValidateToken's field by field for every token held (opaque, JWT,
 * application, user, expired, revoked, garbage) and every request (every context and version the
 * APIs may take, by template and by path, every verb of the resources).
 *
 * Reproduce a failure with the seed it prints: KM_EQUIVALENCE_SEED=<seed>. The runs share one
 * server, so a run is reproduced by replaying the whole property with that seed. Budget: about
 * 60 s per database (KM_EQUIVALENCE_RUNS sequences of at most KM_EQUIVALENCE_STEPS changes).
 */

const SEED = process.env.KM_EQUIVALENCE_SEED ? Number(process.env.KM_EQUIVALENCE_SEED) : Math.floor(Math.random() * 2 ** 31);
const RUNS = Number(process.env.KM_EQUIVALENCE_RUNS ?? 10);
const STEPS = Number(process.env.KM_EQUIVALENCE_STEPS ?? 8);
/** Tokens held at most (the oldest issued during the runs make room for new ones). */
const MAX_TOKENS = 26;
const CONCURRENCY = 32;

const CONTEXTS = ["/shop", "/maps"] as const;
const VERSIONS = ["1.0.0", "2.0.0"] as const;
const API_SLOTS = 3;
const APP_SLOTS = 4;
const USERS = ["alice", "bob"] as const;
const APP_SCOPES = ["read", "write"];
const LEVELS = [AuthLevel.ANY, AuthLevel.APPLICATION, AuthLevel.APPLICATION_USER, AuthLevel.NONE] as const;
const STATES = [
  SubscriptionState.UNBLOCKED,
  SubscriptionState.BLOCKED,
  SubscriptionState.PROD_ONLY_BLOCKED,
  SubscriptionState.ON_HOLD,
  SubscriptionState.REJECTED,
  SubscriptionState.TIER_UPDATE_PENDING,
] as const;

/** The resources an API may register (each with a drawn auth level and scopes). */
const TEMPLATES = [
  { uriTemplate: "/items", httpVerb: "GET" },
  { uriTemplate: "/items/{id}", httpVerb: "DELETE" },
  { uriTemplate: "/items", httpVerb: "POST" },
  { uriTemplate: "/health", httpVerb: "GET" },
  { uriTemplate: "/files/*", httpVerb: "GET" },
  { uriTemplate: "/items/{id}", httpVerb: "GET" },
] as const;

/** Every request asked after each change: each context and version, by template and by path. */
const REQUESTS: Omit<ValidateInput, "token">[] = CONTEXTS.flatMap((context) =>
  VERSIONS.flatMap((version) => [
    { context, version, resource: "/items", verb: "GET" },
    { context, version, resource: "/items/{id}", verb: "DELETE" },
    { context, version, resource: "/items", verb: "GET", requiredAuthLevel: "APPLICATION_USER" as const },
    { context, version, path: `${context}/${version}/items/7?q=1`, verb: "get" },
    { context, version, path: `${context}/${version}/items`, verb: "POST" },
    { context, version, path: `${context}/${version}/health`, verb: "GET" },
    { context, version, path: `${context}/${version}/files/a/b.txt`, verb: "GET" },
  ]),
);

type Change =
  | { op: "createApi"; api: number; context: number; version: number }
  | { op: "updateApi"; api: number; field: "name" | "apiTier" | "context" | "version" | "publisher"; value: number }
  | { op: "deleteApi"; api: number }
  | { op: "resources"; api: number; resources: { template: number; level: number; scopes: string[] }[] }
  | { op: "deleteResources"; api: number }
  | { op: "subscribe"; app: number; api: number; state: number }
  | { op: "unsubscribe"; app: number; api: number }
  | { op: "createApplication"; app: number; jwt: boolean; sandbox: boolean }
  | { op: "deleteApplication"; app: number }
  | { op: "regenerateSecret"; app: number }
  | { op: "issueToken"; app: number; user: number; scopes: string[] }
  | { op: "revokeToken"; token: number }
  | { op: "setPassword"; user: number }
  | { op: "deleteUser"; user: number }
  | { op: "createUser"; user: number };

const slot = (n: number) => fc.nat({ max: n - 1 });
const CHANGE: fc.Arbitrary<Change> = fc.oneof(
  fc.record({ op: fc.constant("createApi" as const), api: slot(API_SLOTS), context: slot(CONTEXTS.length), version: slot(VERSIONS.length) }),
  fc.record({
    op: fc.constant("updateApi" as const),
    api: slot(API_SLOTS),
    field: fc.constantFrom("name" as const, "apiTier" as const, "context" as const, "version" as const, "publisher" as const),
    value: fc.nat({ max: 5 }),
  }),
  fc.record({ op: fc.constant("deleteApi" as const), api: slot(API_SLOTS) }),
  fc.record({
    op: fc.constant("resources" as const),
    api: slot(API_SLOTS),
    resources: fc.uniqueArray(fc.record({ template: slot(TEMPLATES.length), level: slot(LEVELS.length), scopes: fc.subarray(APP_SCOPES) }), {
      selector: (r) => r.template,
      maxLength: TEMPLATES.length,
    }),
  }),
  fc.record({ op: fc.constant("deleteResources" as const), api: slot(API_SLOTS) }),
  { arbitrary: fc.record({ op: fc.constant("subscribe" as const), app: slot(APP_SLOTS), api: slot(API_SLOTS), state: slot(STATES.length) }), weight: 4 },
  fc.record({ op: fc.constant("unsubscribe" as const), app: slot(APP_SLOTS), api: slot(API_SLOTS) }),
  fc.record({ op: fc.constant("createApplication" as const), app: slot(APP_SLOTS), jwt: fc.boolean(), sandbox: fc.boolean() }),
  fc.record({ op: fc.constant("deleteApplication" as const), app: slot(APP_SLOTS) }),
  fc.record({ op: fc.constant("regenerateSecret" as const), app: slot(APP_SLOTS) }),
  {
    arbitrary: fc.record({
      op: fc.constant("issueToken" as const),
      app: slot(APP_SLOTS),
      user: fc.nat({ max: USERS.length }),
      scopes: fc.subarray(APP_SCOPES),
    }),
    weight: 3,
  },
  { arbitrary: fc.record({ op: fc.constant("revokeToken" as const), token: fc.nat() }), weight: 2 },
  fc.record({ op: fc.constant("setPassword" as const), user: slot(USERS.length) }),
  fc.record({ op: fc.constant("deleteUser" as const), user: slot(USERS.length) }),
  fc.record({ op: fc.constant("createUser" as const), user: slot(USERS.length) }),
);

interface ApiSlot {
  apiId: string;
  exists: boolean;
  context: string;
  version: string;
}

interface AppSlot {
  applicationId: string;
  consumerKey: string;
  consumerSecret: string;
  jwt: boolean;
  exists: boolean;
}

interface HeldToken {
  name: string;
  token: string;
  /** Kept whatever is issued later (garbage, expired...). */
  pinned: boolean;
}

describeOnEachDatabase("the library decides as ValidateToken over random sequences of changes", (database) => {
  let server: TestServer;
  let v: GatewayValidator;
  let db: Knex;
  const apis: ApiSlot[] = [];
  const apps: AppSlot[] = [];
  const passwords = new Map<string, string | undefined>();
  const tokens: HeldToken[] = [];
  let issued = 0;
  const counts = { cases: 0, checks: 0, changes: 0, refused: 0, sequences: 0 };
  const refusedBy = new Map<string, number>();

  before(async () => {
    server = await startServer({ databaseUrl: database.url(), overrides: { gateway_sync: { heartbeat_interval_ms: 100 } } });
    db = createKnex({ url: database.url(), poolMax: 2 });
    const gateway = await server.caller([SCOPES.gateway]);
    for (let i = 0; i < API_SLOTS; i++) apis.push({ apiId: `eq-api-${i}`, exists: false, context: CONTEXTS[0], version: VERSIONS[0] });
    await createApi(0, 0, 0);
    await createApi(1, 1, 0);
    await setResources(
      0,
      TEMPLATES.map((_, template) => ({ template, level: template % LEVELS.length, scopes: template % 2 ? ["write"] : [] })),
    );
    await setResources(1, [
      { template: 0, level: 0, scopes: [] },
      { template: 1, level: 1, scopes: ["read"] },
    ]);
    for (const user of USERS) await createUser(USERS.indexOf(user));
    for (let i = 0; i < APP_SLOTS; i++) {
      apps.push({ applicationId: "", consumerKey: "", consumerSecret: "", jwt: false, exists: false });
      await createApplication(i, i % 2 === 1, i >= 2);
      await subscribe(i, 0, i === 3 ? SubscriptionState.PROD_ONLY_BLOCKED : SubscriptionState.UNBLOCKED);
    }
    for (let i = 0; i < APP_SLOTS; i++) {
      await issue(i, -1, APP_SCOPES, { pinned: true });
      await issue(i, 0, ["read"], { pinned: true });
    }
    // Expired (opaque and JWT, application and user) and revoked tokens, kept for every run.
    await issue(0, -1, APP_SCOPES, { pinned: true, validitySeconds: 1, name: "expired" });
    await issue(1, -1, APP_SCOPES, { pinned: true, validitySeconds: 1, name: "expired" });
    await issue(1, 1, APP_SCOPES, { pinned: true, validitySeconds: 1, name: "expired" });
    const revoked = await issue(0, -1, APP_SCOPES, { pinned: true, name: "revoked" });
    const revokedJwt = await issue(1, -1, APP_SCOPES, { pinned: true, name: "revoked" });
    for (const t of [revoked, revokedJwt]) if (t) await server.grpc.revokeToken({ token: t });
    const jwt = tokens.find((t) => t.token.startsWith("eyJ"))?.token ?? assert.fail("a JWT");
    tokens.push(
      { name: "no token", token: "", pinned: true },
      { name: "garbage", token: "not-a-token", pinned: true },
      { name: "forged JWT", token: `${jwt.slice(0, -6)}AAAAAA`, pinned: true },
      { name: "JWT-shaped garbage", token: "eyJhbGciOiJub25lIn0.eyJpc3MiOiJ4In0.c2ln", pinned: true },
    );
    await sleep(1100);
    v = createGatewayValidator({ target: `127.0.0.1:${server.grpcPort}`, token: gateway.token });
    await v.ready();
  });
  after(async () => {
    await v?.close();
    await db?.destroy();
    await server?.close();
  });

  const subs = () => server.client(SubscriptionService);

  async function createApi(i: number, context: number, version: number): Promise<void> {
    const a = apis[i]!;
    await subs().createApi({
      api: { apiId: a.apiId, name: `API ${i}`, context: CONTEXTS[context], version: VERSIONS[version], publisher: "admin", apiTier: "Gold" },
    });
    Object.assign(a, { exists: true, context: CONTEXTS[context], version: VERSIONS[version] });
  }

  async function setResources(i: number, resources: { template: number; level: number; scopes: string[] }[]): Promise<void> {
    const list = resources.map((r) => ({ ...TEMPLATES[r.template]!, authLevel: LEVELS[r.level]!, scopes: r.scopes, throttlingTier: `T${r.template}` }));
    const apiId = apis[i]!.apiId;
    try {
      await server.grpc.updateRegisteredResource({ resource: { apiId, resources: list }, updateMask: { paths: ["resources"] } });
    } catch {
      await server.grpc.registerNewResource({ resource: { apiId, resources: list } });
    }
  }

  async function createUser(u: number): Promise<void> {
    const password = `pw-${randomUUID()}`;
    await server.client(UserService).createUser({ user: { username: USERS[u] }, password });
    passwords.set(USERS[u]!, password);
  }

  async function createApplication(i: number, jwt: boolean, sandbox: boolean): Promise<void> {
    const applicationId = randomUUID();
    const res = await server.grpc.createApplication(
      createRequest({
        applicationId,
        keyType: sandbox ? KeyType.SANDBOX : KeyType.PRODUCTION,
        scopes: APP_SCOPES,
        tokenType: jwt ? TokenType.JWT : TokenType.OPAQUE,
        applicationName: `App ${i}`,
        applicationTier: `Tier${i}`,
      }),
    );
    const app = res.application ?? assert.fail("an application");
    apps[i] = { applicationId, consumerKey: app.consumerKey, consumerSecret: app.consumerSecret, jwt, exists: true };
  }

  async function subscribe(app: number, api: number, state: SubscriptionState): Promise<void> {
    const a = apps[app]!;
    const apiId = apis[api]!.apiId;
    const found = await findSubscription(app, api);
    if (found) await subs().updateSubscription({ subscription: { subscriptionId: found.subscriptionId, state }, updateMask: { paths: ["state"] } });
    else await subs().createSubscription({ subscription: { applicationId: a.applicationId, apiId, tier: `Sub${app}`, state } });
  }

  async function findSubscription(app: number, api: number) {
    const listed = await subs().listSubscriptions({ applicationId: apps[app]!.applicationId, apiId: apis[api]!.apiId });
    return listed.subscriptions[0];
  }

  async function issue(
    app: number,
    user: number,
    scopes: string[],
    o: { pinned?: boolean; validitySeconds?: number; name?: string } = {},
  ): Promise<string | undefined> {
    const a = apps[app]!;
    const username = USERS[user];
    const request = {
      clientId: a.consumerKey,
      clientSecret: a.consumerSecret,
      scopes,
      validityPeriodSeconds: BigInt(o.validitySeconds ?? 3600),
      ...(username
        ? { grantType: "password", resourceOwnerUsername: username, resourceOwnerPassword: passwords.get(username) ?? "gone" }
        : { grantType: "client_credentials" }),
    };
    const token = (await server.grpc.getNewApplicationAccessToken({ request })).token?.accessToken;
    if (!token) return undefined;
    const name = `${o.name ?? "token"} #${++issued} of app ${app} (${a.jwt ? "JWT" : "opaque"}, ${username ?? "application"}, scopes ${scopes.join(" ") || "none"})`;
    tokens.push({ name, token, pinned: o.pinned ?? false });
    const unpinned = tokens.filter((t) => !t.pinned);
    if (tokens.length > MAX_TOKENS && unpinned.length > 0) tokens.splice(tokens.indexOf(unpinned[0]!), 1);
    return token;
  }

  /** The slot drawn when it holds an API (an application), else the first one that does: fewer changes refused. */
  const liveApi = (i: number) =>
    apis[i]?.exists
      ? i
      : Math.max(
          0,
          apis.findIndex((a) => a.exists),
        );
  const liveApp = (i: number) =>
    apps[i]?.exists
      ? i
      : Math.max(
          0,
          apps.findIndex((a) => a.exists),
        );

  async function apply(drawn: Change): Promise<void> {
    const c = { ...drawn };
    if ("api" in c && c.op !== "createApi") c.api = liveApi(c.api);
    if ("app" in c && c.op !== "createApplication") c.app = liveApp(c.app);
    switch (c.op) {
      case "createApi":
        // Over an API in the slot: deleted first (its subscriptions with it), then made again with the same id.
        if (apis[c.api]!.exists) await apply({ op: "deleteApi", api: c.api });
        return createApi(c.api, c.context, c.version);
      case "updateApi": {
        const a = apis[c.api]!;
        const value =
          c.field === "context" ? CONTEXTS[c.value % CONTEXTS.length]! : c.field === "version" ? VERSIONS[c.value % VERSIONS.length]! : `${c.field}-${c.value}`;
        await subs().updateApi({ api: { apiId: a.apiId, [c.field]: value }, updateMask: { paths: [c.field === "apiTier" ? "api_tier" : c.field] } });
        if (c.field === "context") a.context = value;
        if (c.field === "version") a.version = value;
        return;
      }
      case "deleteApi":
        await subs().deleteApi({ apiId: apis[c.api]!.apiId });
        apis[c.api]!.exists = false;
        return;
      case "resources":
        return setResources(c.api, c.resources);
      case "deleteResources":
        await server.grpc.deleteRegisteredResourceByApiId({ apiId: apis[c.api]!.apiId });
        return;
      case "subscribe":
        return subscribe(c.app, c.api, STATES[c.state]!);
      case "unsubscribe": {
        const found = await findSubscription(c.app, c.api);
        await subs().deleteSubscription({ subscriptionId: found?.subscriptionId ?? "" });
        return;
      }
      case "createApplication":
        if (apps[c.app]!.exists) await apply({ op: "deleteApplication", app: c.app });
        return createApplication(c.app, c.jwt, c.sandbox);
      case "deleteApplication":
        await server.grpc.deleteApplication({ consumerKey: apps[c.app]!.consumerKey });
        apps[c.app]!.exists = false;
        return;
      case "regenerateSecret": {
        const res = await server.grpc.regenerateConsumerSecret({ consumerKey: apps[c.app]!.consumerKey });
        apps[c.app]!.consumerSecret = res.consumerSecret;
        return;
      }
      case "issueToken":
        await issue(c.app, c.user - 1, c.scopes);
        return;
      case "revokeToken": {
        const held = tokens.filter((t) => t.token !== "");
        await server.grpc.revokeToken({ token: held[c.token % held.length]!.token });
        return;
      }
      case "setPassword": {
        const password = `pw-${randomUUID()}`;
        await server.client(UserService).setUserPassword({ username: USERS[c.user], password });
        passwords.set(USERS[c.user]!, password);
        return;
      }
      case "deleteUser":
        await server.client(UserService).deleteUser({ username: USERS[c.user] });
        passwords.delete(USERS[c.user]!);
        return;
      case "createUser":
        if (passwords.has(USERS[c.user]!)) await apply({ op: "deleteUser", user: c.user });
        return createUser(c.user);
    }
  }

  /** Waits until the copy shows the change log's head: every change made so far has reached it. */
  async function delivered(): Promise<void> {
    const head = BigInt(await new ChangeLogRepository(db).head());
    const deadline = Date.now() + 20_000;
    while (BigInt(v.stats().copy?.version || "0") < head) {
      assert.ok(Date.now() < deadline, `the copy did not reach version ${head} within 20 s`);
      await sleep(2);
    }
  }

  async function assertEquivalent(when: string): Promise<void> {
    const cases = tokens.flatMap(({ name, token }) => REQUESTS.map((r) => ({ name, input: { ...r, token } as ValidateInput })));
    for (let i = 0; i < cases.length; i += CONCURRENCY) {
      await Promise.all(
        cases.slice(i, i + CONCURRENCY).map(async (c) => {
          const [local, remote] = await Promise.all([v.validate(c.input), serverAnswer(server, c.input)]);
          assert.deepEqual(local, remote, `${when}: ${c.name}, ${JSON.stringify({ ...c.input, token: undefined })}`);
        }),
      );
    }
    counts.cases += cases.length;
    counts.checks++;
  }

  test(`random sequences (seed ${SEED}): every token and request decided as ValidateToken after each change`, async () => {
    await delivered();
    await assertEquivalent("at start");
    const started = Date.now();
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(CHANGE, { minLength: 1, maxLength: STEPS }), async (changes) => {
          counts.sequences++;
          const done: string[] = [];
          for (const c of changes) {
            try {
              await apply(c);
              counts.changes++;
            } catch {
              // A change the server refuses (a slot already taken or empty, a user gone): nothing changed.
              counts.refused++;
              refusedBy.set(c.op, (refusedBy.get(c.op) ?? 0) + 1);
            }
            done.push(JSON.stringify(c));
            await delivered();
            try {
              await assertEquivalent(`sequence ${counts.sequences}, after ${done.join(" -> ")}`);
            } catch (err) {
              console.log(`# ${database.name}: ${err instanceof Error ? err.message : String(err)}`);
              throw err;
            }
          }
        }),
        { seed: SEED, numRuns: RUNS, endOnFailure: true },
      );
    } catch (err) {
      console.log(`# ${database.name}: FAILED, reproduce with KM_EQUIVALENCE_SEED=${SEED}`);
      throw err;
    }
    const stats = v.stats();
    console.log(
      `# ${database.name} (seed ${SEED}): ${counts.sequences} random sequences, ${counts.changes} changes applied (${counts.refused} refused by the server: ${[...refusedBy].map(([op, n]) => `${op} ${n}`).join(", ") || "none"}), ` +
        `${counts.checks} checks, ${counts.cases} cases equal to ValidateToken in ${((Date.now() - started) / 1000).toFixed(1)} s; ` +
        `${stats.local} decided in process, ${stats.remote} asked of the server`,
    );
    assert.ok(counts.changes > counts.sequences, "most changes were applied");
  });
});
