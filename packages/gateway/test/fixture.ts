import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import type { Client } from "@connectrpc/connect";
import { setTimeout as sleep } from "node:timers/promises";
import { type Api, type ApiResource, type KeyMapping, ResourceTable, type Subscription, type TokenFacts } from "@keymanager/core";
import { AuthLevel, KeyType, SubscriptionService, SubscriptionState, TokenType, TokenValidationService, UserService } from "@keymanager/client";
import { SCOPES } from "../../../src/auth/scopes.js";
import { createRequest } from "../../../test/support/fixtures.js";
import type { TestServer } from "../../../test/support/server.js";
import { answerFromResponse, type GatewayAnswer, type LocalCopy, type Revocation, type ValidateInput } from "../src/index.js";

export const API: Api = { apiId: "gw-pizza", name: "PizzaShackAPI", context: "/pizzashack", version: "1.0.0", publisher: "admin", apiTier: "Gold" };
export const RESOURCES: ApiResource[] = [
  { uriTemplate: "/menu", httpVerb: "GET", authLevel: "ANY", scopes: [], throttlingTier: "Unlimited" },
  { uriTemplate: "/order/{id}", httpVerb: "DELETE", authLevel: "APPLICATION", scopes: ["order:admin"], throttlingTier: "Silver" },
  { uriTemplate: "/order", httpVerb: "POST", authLevel: "APPLICATION_USER", scopes: [], throttlingTier: "Gold" },
  { uriTemplate: "/health", httpVerb: "GET", authLevel: "NONE", scopes: [], throttlingTier: "Unlimited" },
  { uriTemplate: "/files/*", httpVerb: "GET", authLevel: "ANY", scopes: [], throttlingTier: "Bronze" },
];

const PB_LEVEL = { APPLICATION: AuthLevel.APPLICATION, APPLICATION_USER: AuthLevel.APPLICATION_USER, ANY: AuthLevel.ANY, NONE: AuthLevel.NONE };
const PB_STATE: Record<Subscription["state"], SubscriptionState> = {
  UNBLOCKED: SubscriptionState.UNBLOCKED,
  BLOCKED: SubscriptionState.BLOCKED,
  PROD_ONLY_BLOCKED: SubscriptionState.PROD_ONLY_BLOCKED,
  ON_HOLD: SubscriptionState.ON_HOLD,
  REJECTED: SubscriptionState.REJECTED,
  TIER_UPDATE_PENDING: SubscriptionState.TIER_UPDATE_PENDING,
};

/** A token of the fixture and what it stands for. */
export interface NamedToken {
  name: string;
  token: string;
}

export interface Fixture {
  /** A km:gateway caller's token. */
  gatewayToken: string;
  gatewayCredentials: { clientId: string; clientSecret: string };
  tokens: NamedToken[];
  keyMappings: KeyMapping[];
  subscriptions: Subscription[];
  /** One application's opaque token, subscribed, with every scope. */
  good: string;
  /** Its JWT sibling. */
  jwt: string;
  /** Each application's client, by application name ("App subscribed"), to issue more tokens. */
  clients: Map<string, { clientId: string; clientSecret: string }>;
}

interface AppSpec {
  name: string;
  keyType?: "PRODUCTION" | "SANDBOX";
  state?: Subscription["state"];
  jwt?: boolean;
  /** Tokens to issue: application (client credentials) or user (password), with or without the scope. */
  tokens: { name: string; user?: boolean; scopes?: string[]; validitySeconds?: number; revoke?: boolean }[];
}

const APPS: AppSpec[] = [
  {
    name: "subscribed",
    state: "UNBLOCKED",
    tokens: [
      { name: "app token" },
      { name: "user token", user: true },
      { name: "app token without scope", scopes: [] },
      { name: "revoked app token", revoke: true },
      { name: "expired app token", validitySeconds: 1 },
    ],
  },
  { name: "subscribed, JWT", state: "UNBLOCKED", jwt: true, tokens: [{ name: "JWT app token" }, { name: "JWT user token", user: true }] },
  { name: "blocked", state: "BLOCKED", tokens: [{ name: "blocked app token" }] },
  { name: "prod-only blocked, production keys", state: "PROD_ONLY_BLOCKED", tokens: [{ name: "prod-only blocked production token" }] },
  { name: "prod-only blocked, sandbox keys", state: "PROD_ONLY_BLOCKED", keyType: "SANDBOX", tokens: [{ name: "prod-only blocked sandbox token" }] },
  { name: "on hold", state: "ON_HOLD", tokens: [{ name: "on-hold token" }] },
  { name: "rejected", state: "REJECTED", tokens: [{ name: "rejected token" }] },
  { name: "not subscribed", tokens: [{ name: "unsubscribed token" }] },
];

/** The API, its resources, an application per subscription state, and their tokens, on a real server. */
export async function createFixture(server: TestServer): Promise<Fixture> {
  const subs = server.client(SubscriptionService);
  await subs.createApi({ api: API });
  await server.grpc.registerNewResource({
    resource: { apiId: API.apiId, resources: RESOURCES.map((r) => ({ ...r, authLevel: PB_LEVEL[r.authLevel] })) },
  });
  await server.client(UserService).createUser({ user: { username: "alice" }, password: "alice-password" });
  const gateway = await server.caller([SCOPES.gateway]);
  const tokens: NamedToken[] = [];
  const keyMappings: KeyMapping[] = [];
  const subscriptions: Subscription[] = [];
  const toRevoke: string[] = [];
  const clients = new Map<string, { clientId: string; clientSecret: string }>();
  for (const spec of APPS) {
    const applicationId = randomUUID();
    const keyType = spec.keyType ?? "PRODUCTION";
    const app = (
      await server.grpc.createApplication(
        createRequest({
          applicationId,
          keyType: keyType === "PRODUCTION" ? KeyType.PRODUCTION : KeyType.SANDBOX,
          scopes: ["order:admin", "order:read"],
          tokenType: spec.jwt ? TokenType.JWT : TokenType.OPAQUE,
          applicationName: `App ${spec.name}`,
          applicationTier: "50PerMin",
        }),
      )
    ).application;
    assert.ok(app);
    clients.set(`App ${spec.name}`, { clientId: app.consumerKey, clientSecret: app.consumerSecret });
    keyMappings.push({
      consumerKey: app.consumerKey,
      applicationId,
      applicationName: `App ${spec.name}`,
      applicationTier: "50PerMin",
      keyType,
      subscriber: "admin",
      keyManager: "Resident Key Manager",
    });
    if (spec.state) {
      const created = (await subs.createSubscription({ subscription: { applicationId, apiId: API.apiId, tier: "Gold", state: PB_STATE[spec.state] } }))
        .subscription;
      assert.ok(created);
      subscriptions.push({ id: created.subscriptionId, applicationId, apiId: API.apiId, tier: "Gold", state: spec.state });
    }
    for (const t of spec.tokens) {
      const request = {
        clientId: app.consumerKey,
        clientSecret: app.consumerSecret,
        scopes: t.scopes ?? ["order:admin", "order:read"],
        validityPeriodSeconds: BigInt(t.validitySeconds ?? 3600),
        ...(t.user ? { grantType: "password", resourceOwnerUsername: "alice", resourceOwnerPassword: "alice-password" } : { grantType: "client_credentials" }),
      };
      const token = (await server.grpc.getNewApplicationAccessToken({ request })).token?.accessToken;
      assert.ok(token, t.name);
      tokens.push({ name: t.name, token });
      if (t.revoke) toRevoke.push(token);
    }
  }
  for (const token of toRevoke) await server.grpc.revokeToken({ token });
  const byName = (name: string) => tokens.find((t) => t.name === name)?.token ?? assert.fail(name);
  const jwt = byName("JWT app token");
  tokens.push({ name: "no token", token: "" }, { name: "garbage", token: "no-such-token" }, { name: "forged JWT", token: `${jwt.slice(0, -6)}AAAAAA` });
  // The 1-second token has expired.
  await sleep(1500);
  return {
    gatewayToken: gateway.token,
    gatewayCredentials: { clientId: gateway.clientId, clientSecret: gateway.clientSecret },
    tokens,
    keyMappings,
    subscriptions,
    good: byName("app token"),
    jwt,
    clients,
  };
}

/** Requests reaching every check: by template and by path, every auth level, no resource, no API. */
export const REQUESTS: Omit<ValidateInput, "token">[] = [
  { context: API.context, version: API.version, resource: "/menu", verb: "GET" },
  { context: API.context, version: API.version, resource: "/order/{id}", verb: "DELETE" },
  { context: API.context, version: API.version, resource: "/order", verb: "POST" },
  { context: API.context, version: API.version, path: "/pizzashack/1.0.0/order/7?x=1", verb: "DELETE" },
  { context: API.context, version: API.version, path: "/pizzashack/1.0.0/health", verb: "GET" },
  { context: API.context, version: API.version, path: "/pizzashack/1.0.0/files/a/b.txt", verb: "get" },
  { context: API.context, version: API.version, resource: "/nowhere", verb: "GET" },
  { context: API.context, version: API.version, path: "/pizzashack/1.0.0/order", verb: "PATCH" },
  { context: API.context, version: "9.9.9", resource: "/menu", verb: "GET" },
  { context: "/elsewhere", version: API.version, resource: "/menu", verb: "GET" },
];

const validationClients = new WeakMap<TestServer, Client<typeof TokenValidationService>>();

/** The server's unary ValidateToken answer, in the library's shape (one client, one connection, per server). */
export async function serverAnswer(server: TestServer, input: ValidateInput): Promise<GatewayAnswer> {
  const pbLevel = input.requiredAuthLevel ? PB_LEVEL[input.requiredAuthLevel] : AuthLevel.UNSPECIFIED;
  let client = validationClients.get(server);
  if (!client) {
    client = server.client(TokenValidationService);
    validationClients.set(server, client);
  }
  const res = await client.validateToken({
    context: input.context,
    version: input.version,
    accessToken: input.token,
    matchingResource: input.resource ?? "",
    requestPath: input.path ?? "",
    httpVerb: input.verb,
    requiredAuthLevel: pbLevel,
  });
  return answerFromResponse(res);
}

/**
 * A copy holding the fixture's state as the server holds it, for the local path without the
 * Watch stream: usable while `fresh` says so; JWTs left to the server; revocations set by hand
 * (with a new `version`, as a live copy's changes come).
 */
export class FixedCopy implements LocalCopy {
  fresh = true;
  version: bigint | undefined = 1n;
  /** Consumer keys whose tokens were all revoked. */
  readonly revokedConsumers = new Set<string>();
  /** Consumer keys one of whose opaque tokens was revoked (at version 3). */
  readonly recheckConsumers = new Set<string>();
  private readonly table = new ResourceTable(RESOURCES);

  constructor(private readonly fixture: Pick<Fixture, "keyMappings" | "subscriptions">) {}

  usable(): boolean {
    return this.fresh;
  }
  api(context: string, version: string) {
    return context === API.context && version === API.version ? API : undefined;
  }
  resources() {
    return this.table;
  }
  keyMapping(consumerKey: string) {
    return this.fixture.keyMappings.find((m) => m.consumerKey === consumerKey);
  }
  subscription(applicationId: string, apiId: string) {
    return this.fixture.subscriptions.find((s) => s.applicationId === applicationId && s.apiId === apiId);
  }
  verifyToken() {
    return undefined;
  }
  revocation(facts: TokenFacts, keptAtVersion: bigint | undefined): Revocation {
    if (this.revokedConsumers.has(facts.consumerKey)) return "revoked";
    if (this.recheckConsumers.has(facts.consumerKey) && (keptAtVersion ?? 0n) < 3n) return "recheck";
    return undefined;
  }
}
