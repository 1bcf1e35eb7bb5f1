import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { type Client, Code } from "@connectrpc/connect";
import { SubscriptionService } from "../gen/keymanager/v1/subscription_service_pb.js";
import { TokenValidationService } from "../gen/keymanager/v1/token_validation_service_pb.js";
import { AuthLevel, KeyType, type OAuthApplication } from "../gen/keymanager/v1/types_pb.js";
import { loadConfig } from "../src/config/load.js";
import { rejectsWith } from "./support/assert-rpc.js";
import { TestClock } from "./support/clock.js";
import { describeOnEachDatabase } from "./support/each-database.js";
import { EXTERNAL_TOKEN_PATTERN, type ExternalServer, startOidcServer } from "./support/oidc-server.js";
import { startServer, type TestServer } from "./support/server.js";

const KM = "corp-idp";
const SLOW_KM = "slow-idp";
const JWT_KM = "jwt-idp";
const API = { apiId: "weather", name: "WeatherAPI", context: "/weather", version: "2.0.0", publisher: "admin", apiTier: "Gold" };
const RESOURCES = [
  { uriTemplate: "/forecast", httpVerb: "GET", authLevel: AuthLevel.APPLICATION, scopes: [], throttlingTier: "Unlimited" },
  { uriTemplate: "/alerts", httpVerb: "GET", authLevel: AuthLevel.APPLICATION, scopes: ["write"], throttlingTier: "Gold" },
];

/** Accepts connections and never answers: a key manager that is up but too slow. */
async function startSilentServer(): Promise<{ url: string; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  const server = http.createServer((req) => {
    requests.push(`${req.method} ${req.url}`);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    requests,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describeOnEachDatabase("external OAuth2 key managers beside the resident one", (database) => {
  let idp: ExternalServer;
  let jwtIdp: ExternalServer;
  let silent: Awaited<ReturnType<typeof startSilentServer>>;
  let server: TestServer;
  const clock = new TestClock(Date.now());
  let gateway: Client<typeof TokenValidationService>;
  let external: OAuthApplication;
  let externalAppId: string;
  let externalToken: string;
  const registered: string[] = [];
  const deleted: string[] = [];

  before(async () => {
    idp = await startOidcServer();
    idp.provider.on("registration_create.success", (_ctx, client) => registered.push((client as { clientId: string }).clientId));
    idp.provider.on("registration_delete.success", (_ctx, client) => deleted.push((client as { clientId: string }).clientId));
    jwtIdp = await startOidcServer({ jwtAccessTokens: true });
    silent = await startSilentServer();
    server = await startServer({
      clock,
      databaseUrl: database.url(),
      overrides: {
        external: [
          {
            name: KM,
            issuer: idp.issuer,
            client_id: idp.serviceClient.clientId,
            client_secret: idp.serviceClient.clientSecret,
            initial_access_token: idp.initialAccessToken,
            token_pattern: EXTERNAL_TOKEN_PATTERN,
            timeout_ms: 1000,
            validation_cache_seconds: 30,
          },
          {
            name: SLOW_KM,
            issuer: silent.url,
            discovery: false,
            endpoints: { registration: `${silent.url}/reg`, token: `${silent.url}/token`, introspection: `${silent.url}/introspect` },
            token_pattern: "slow-[a-z]+",
            timeout_ms: 150,
          },
          {
            // JWTs only: found by their issuer, verified with its JWKS; no token pattern.
            name: JWT_KM,
            issuer: jwtIdp.issuer,
            initial_access_token: jwtIdp.initialAccessToken,
            jwt_validation: "jwks",
            timeout_ms: 1000,
          },
        ],
      },
    });
    gateway = server.client(TokenValidationService);
    await server.client(SubscriptionService).createApi({ api: API });
    await server.grpc.registerNewResource({ resource: { apiId: API.apiId, resources: RESOURCES } });
  });
  after(async () => {
    await server?.close();
    await idp?.stop().catch(() => {});
    await jwtIdp?.stop().catch(() => {});
    await silent?.close();
  });

  function validate(accessToken: string, resource = "/forecast") {
    return gateway.validateToken({ context: API.context, version: API.version, accessToken, matchingResource: resource, httpVerb: "GET" });
  }

  async function subscribe(applicationId: string) {
    await server.client(SubscriptionService).createSubscription({ subscription: { applicationId, apiId: API.apiId, tier: "Gold" } });
  }

  async function clientCredentialsToken(app: OAuthApplication, secret = app.consumerSecret) {
    const res = await server.grpc.getNewApplicationAccessToken({
      request: { clientId: app.consumerKey, clientSecret: secret, grantType: "client_credentials", scopes: ["read"] },
    });
    return res.token;
  }

  test("CreateApplication with key_manager registers the client at the server (RFC 7591)", async () => {
    externalAppId = randomUUID();
    const res = await server.grpc.createApplication({
      application: {
        applicationId: externalAppId,
        keyType: KeyType.PRODUCTION,
        clientName: "weather-app",
        grantTypes: ["client_credentials"],
        scopes: ["read", "write"],
        appOwner: "admin",
        keyManager: KM,
      },
    });
    assert.ok(res.application);
    external = res.application;
    assert.equal(external.keyManager, KM);
    assert.ok(external.consumerSecret.length > 0);
    const atServer = await idp.provider.Client.find(external.consumerKey);
    assert.ok(atServer, "the client exists at the external server");
    assert.equal(atServer.metadata().client_name, "weather-app");
    assert.deepEqual(atServer.metadata().grant_types, ["client_credentials"]);
  });

  test("RetrieveApplication by consumer key and by application key reads the server's record (RFC 7592)", async () => {
    const byKey = (await server.grpc.retrieveApplication({ selector: { case: "consumerKey", value: external.consumerKey } })).application;
    assert.equal(byKey?.clientName, "weather-app");
    assert.equal(byKey?.consumerSecret, external.consumerSecret);
    assert.equal(byKey?.keyManager, KM);
    const byRef = (
      await server.grpc.retrieveApplication({ selector: { case: "applicationKey", value: { applicationId: externalAppId, keyType: KeyType.PRODUCTION } } })
    ).application;
    assert.equal(byRef?.consumerKey, external.consumerKey);
  });

  test("UpdateApplication changes the client at the server", async () => {
    const res = await server.grpc.updateApplication({
      application: { consumerKey: external.consumerKey, clientName: "weather-app-v2" },
      updateMask: { paths: ["client_name"] },
    });
    assert.equal(res.application?.clientName, "weather-app-v2");
    const atServer = await idp.provider.Client.find(external.consumerKey);
    assert.equal(atServer?.metadata().client_name, "weather-app-v2");
    // This server issues a new secret on every update (RFC 7592 section 2.2): it is kept.
    external = (await server.grpc.retrieveApplication({ selector: { case: "consumerKey", value: external.consumerKey } })).application ?? external;
    assert.equal(external.consumerSecret, atServer?.clientSecret);
  });

  test("GetNewApplicationAccessToken gets a client_credentials token from the server; GetTokenMetadata introspects it", async () => {
    const token = await clientCredentialsToken(external);
    assert.ok(token);
    externalToken = token.accessToken;
    assert.match(externalToken, new RegExp(`^${EXTERNAL_TOKEN_PATTERN}$`));
    assert.equal(token.keyManager, KM);
    assert.ok(token.validityPeriodMs > 0n);
    const info = (await server.grpc.getTokenMetadata({ accessToken: externalToken })).token;
    assert.equal(info?.tokenValid, true);
    assert.equal(info?.consumerKey, external.consumerKey);
    assert.equal(info?.keyManager, KM);
    assert.deepEqual(info?.scopes, ["read"]);
    assert.equal(info?.isApplicationToken, true);
  });

  test("ValidateToken: the external token is introspected and checked against the API, resource and subscription", async () => {
    assert.equal((await validate(externalToken)).statusCode, 900908, "no subscription yet");
    await subscribe(externalAppId);
    const res = await validate(externalToken);
    assert.equal(res.statusCode, 0, res.statusName);
    assert.equal(res.authorized, true);
    assert.equal(res.consumerKey, external.consumerKey);
    assert.equal(res.applicationId, externalAppId);
    assert.equal(res.keyManager, KM);
    assert.equal(res.subscriptionTier, "Gold");
    assert.equal((await validate(externalToken, "/alerts")).statusCode, 900910, "the token has scope read only");
  });

  test("validation answers are cached for validation_cache_seconds, then asked again", async () => {
    const introspections = () => idp.requests("/introspection");
    const before = introspections();
    assert.equal((await validate(externalToken)).statusCode, 0);
    assert.equal((await validate(externalToken, "/alerts")).statusCode, 900910);
    assert.equal(introspections(), before, "both answered from the cache");
    clock.advance(31);
    assert.equal((await validate(externalToken)).statusCode, 0);
    assert.equal((await validate(externalToken, "/alerts")).statusCode, 900910);
    assert.equal(introspections(), before + 1, "asked once more after 30 s");
  });

  test("a resident application beside it: each token is validated by its own key manager", async () => {
    const applicationId = randomUUID();
    const resident = (
      await server.grpc.createApplication({
        application: {
          applicationId,
          keyType: KeyType.SANDBOX,
          clientName: "resident-app",
          grantTypes: ["client_credentials"],
          scopes: ["read"],
        },
      })
    ).application;
    assert.ok(resident);
    assert.equal(resident.keyManager, "Resident Key Manager");
    assert.equal(await idp.provider.Client.find(resident.consumerKey), undefined, "not registered at the external server");
    await subscribe(applicationId);
    const token = (await clientCredentialsToken(resident))?.accessToken ?? "";
    assert.equal(token.length, 43);
    const res = await validate(token);
    assert.equal(res.statusCode, 0, res.statusName);
    assert.equal(res.keyManager, "Resident Key Manager");
    assert.equal((await validate(externalToken)).keyManager, KM);
  });

  test("opaque tokens: a pattern must match the whole token; a token matching none is the resident key manager's", async () => {
    assert.equal((await validate("no-such-token")).statusCode, 900901);
    // Matches the external pattern but the server does not know it.
    assert.equal((await validate("A".repeat(64))).statusCode, 900901);
    // Contains a valid external token: the pattern does not match the whole, so the resident one answers.
    assert.equal((await validate(`x${externalToken}`)).statusCode, 900901);
    assert.equal((await validate(`${externalToken}.`)).statusCode, 900901);
  });

  test("a JWT is routed by its iss to the key manager with that issuer and verified with its JWKS", async () => {
    const applicationId = randomUUID();
    const app = (
      await server.grpc.createApplication({
        application: {
          applicationId,
          keyType: KeyType.PRODUCTION,
          clientName: "jwt-app",
          grantTypes: ["client_credentials"],
          scopes: ["read"],
          keyManager: JWT_KM,
        },
      })
    ).application;
    assert.ok(app);
    assert.ok(await jwtIdp.provider.Client.find(app.consumerKey));
    await subscribe(applicationId);
    const jwt = (await clientCredentialsToken(app))?.accessToken ?? "";
    assert.equal(jwt.split(".").length, 3, "a JWT");
    const res = await validate(jwt);
    assert.equal(res.statusCode, 0, res.statusName);
    assert.equal(res.keyManager, JWT_KM);
    assert.equal(res.consumerKey, app.consumerKey);
    assert.equal(res.applicationId, applicationId);
    // A forged signature is refused.
    assert.equal((await validate(`${jwt.slice(0, -6)}AAAAAA`)).statusCode, 900901);
    // This server cannot take back its JWTs (RFC 7009 unsupported_token_type): said, not hidden.
    await rejectsWith(server.grpc.revokeToken({ token: jwt }), Code.FailedPrecondition, /jwt-idp does not revoke|"jwt-idp" does not revoke/);
    assert.equal((await validate(jwt)).statusCode, 0);
    // Regeneration goes on regardless: token_to_revoke that cannot be revoked is not an error.
    const next = await server.grpc.getNewApplicationAccessToken({
      request: { clientId: app.consumerKey, clientSecret: app.consumerSecret, grantType: "client_credentials", tokenToRevoke: jwt },
    });
    assert.ok(next.token?.accessToken);
  });

  test("an external client's credentials get no token from this service's own token endpoint", async () => {
    const res = await fetch(`http://127.0.0.1:${server.httpPort}/oauth2/token`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        authorization: `Basic ${Buffer.from(`${external.consumerKey}:${external.consumerSecret}`).toString("base64")}`,
      },
      body: "grant_type=client_credentials",
    });
    assert.equal(res.status, 401);
    assert.equal(((await res.json()) as { error: string }).error, "invalid_client");
  });

  test("MapOAuthApplication with key_manager: a client registered at the server by other means (semi-manual mode)", async () => {
    const registered = await fetch(`${idp.issuer}/reg`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${idp.initialAccessToken}` },
      body: JSON.stringify({ client_name: "made-elsewhere", grant_types: ["client_credentials"], response_types: [], redirect_uris: [], scope: "read" }),
    });
    assert.equal(registered.status, 201);
    const { client_id, client_secret } = (await registered.json()) as { client_id: string; client_secret: string };
    const applicationId = randomUUID();
    const app = (
      await server.grpc.mapOAuthApplication({
        application: {
          applicationId,
          keyType: KeyType.SANDBOX,
          consumerKey: client_id,
          consumerSecret: client_secret,
          grantTypes: ["client_credentials"],
          keyManager: KM,
        },
      })
    ).application;
    assert.equal(app?.keyManager, KM);
    assert.ok(app);
    await subscribe(applicationId);
    const token = (await clientCredentialsToken(app, client_secret))?.accessToken ?? "";
    const res = await validate(token);
    assert.equal(res.statusCode, 0, res.statusName);
    assert.equal(res.keyType, KeyType.SANDBOX);
    assert.equal(res.keyManager, KM);
    // Without its registration access token, this service cannot change it at the server.
    await rejectsWith(
      server.grpc.updateApplication({ application: { consumerKey: client_id, clientName: "renamed" }, updateMask: { paths: ["client_name"] } }),
      Code.FailedPrecondition,
      /mapped/,
    );
    await server.grpc.deleteMappedApplication({ consumerKey: client_id });
    await rejectsWith(
      server.grpc.retrieveApplication({ selector: { case: "applicationKey", value: { applicationId, keyType: KeyType.SANDBOX } } }),
      Code.NotFound,
    );
    assert.ok(await idp.provider.Client.find(client_id), "still at the server");
  });

  test("an external token whose client_id names a client another key manager holds here is refused", async () => {
    // A resident application whose consumer key happens to be a client id at the external server.
    const applicationId = randomUUID();
    const resident = (
      await server.grpc.mapOAuthApplication({
        application: {
          applicationId,
          keyType: KeyType.PRODUCTION,
          consumerKey: idp.serviceClient.clientId,
          consumerSecret: "resident-secret-0123456789",
          grantTypes: ["client_credentials"],
        },
      })
    ).application;
    assert.equal(resident?.keyManager, "Resident Key Manager");
    await subscribe(applicationId);
    const issued = await fetch(`${idp.issuer}/token`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        authorization: `Basic ${Buffer.from(`${idp.serviceClient.clientId}:${idp.serviceClient.clientSecret}`).toString("base64")}`,
      },
      body: "grant_type=client_credentials",
    });
    const { access_token } = (await issued.json()) as { access_token: string };
    const res = await validate(access_token);
    assert.equal(res.statusCode, 900901, res.statusName);
    assert.equal(res.applicationId, "");
  });

  test("RegenerateConsumerSecret: the server's new secret works, the old one no longer does", async () => {
    const old = external.consumerSecret;
    const res = await server.grpc.regenerateConsumerSecret({ consumerKey: external.consumerKey });
    assert.notEqual(res.consumerSecret, old);
    assert.equal((await idp.provider.Client.find(external.consumerKey))?.clientSecret, res.consumerSecret);
    await rejectsWith(clientCredentialsToken(external, old), Code.Unauthenticated);
    external = { ...external, consumerSecret: res.consumerSecret } as OAuthApplication;
    assert.ok((await clientCredentialsToken(external))?.accessToken);
  });

  test("RevokeToken through this service revokes at the server (RFC 7009) and drops the cached validation", async () => {
    assert.equal((await validate(externalToken)).statusCode, 0);
    await server.grpc.revokeToken({ token: externalToken });
    assert.equal((await validate(externalToken)).statusCode, 900901);
    assert.equal((await server.grpc.getTokenMetadata({ accessToken: externalToken })).token?.tokenValid, false);
  });

  test("GetNewApplicationAccessToken with token_to_revoke revokes the old token at the server", async () => {
    const old = (await clientCredentialsToken(external))?.accessToken ?? "";
    assert.equal((await validate(old)).statusCode, 0);
    const next = await server.grpc.getNewApplicationAccessToken({
      request: { clientId: external.consumerKey, clientSecret: external.consumerSecret, grantType: "client_credentials", scopes: ["read"], tokenToRevoke: old },
    });
    assert.equal((await validate(old)).statusCode, 900901);
    assert.equal((await validate(next.token?.accessToken ?? "")).statusCode, 0);
  });

  test("a CreateApplication whose local write fails deletes the client it registered (no half-written keys)", async () => {
    const applicationId = randomUUID();
    const request = {
      application: { applicationId, keyType: KeyType.PRODUCTION, clientName: "racing-app", grantTypes: ["client_credentials"], keyManager: KM },
    };
    const before = registered.length;
    const results = await Promise.allSettled([server.grpc.createApplication(request), server.grpc.createApplication(request)]);
    const won = results.filter((r) => r.status === "fulfilled");
    assert.equal(won.length, 1);
    const lost = results.find((r) => r.status === "rejected");
    if (lost) await rejectsWith(Promise.reject(lost.reason), Code.AlreadyExists);
    const created = registered.slice(before);
    // Both may have reached the server (the check before registering raced); the loser's is gone.
    for (const clientId of created) {
      const kept = won[0]?.status === "fulfilled" && won[0].value.application?.consumerKey === clientId;
      assert.equal((await idp.provider.Client.find(clientId)) !== undefined, kept, `client ${clientId} ${kept ? "kept" : "deleted"}`);
    }
  });

  test("DeleteApplication deletes the client at the server and here", async () => {
    const applicationId = randomUUID();
    const app = (
      await server.grpc.createApplication({
        application: {
          applicationId,
          keyType: KeyType.PRODUCTION,
          clientName: "short-lived",
          grantTypes: ["client_credentials"],
          keyManager: KM,
        },
      })
    ).application;
    assert.ok(app);
    await server.grpc.deleteApplication({ consumerKey: app.consumerKey });
    assert.ok(deleted.includes(app.consumerKey));
    assert.equal(await idp.provider.Client.find(app.consumerKey), undefined);
    await rejectsWith(server.grpc.retrieveApplication({ selector: { case: "consumerKey", value: app.consumerKey } }), Code.NotFound);
  });

  test("a key manager that does not answer in time: 900912 for its tokens, UNAVAILABLE naming it, nothing written", async () => {
    const started = Date.now();
    const res = await validate("slow-token");
    assert.equal(res.statusCode, 900912);
    assert.equal(res.statusName, "KEY_MANAGER_NOT_AVAILABLE");
    assert.equal(res.statusDescription, `key manager "${SLOW_KM}" cannot be reached to check the access token`);
    assert.ok(Date.now() - started < 2000, "timed out, not hung");
    // Introspection is idempotent: tried twice. Registration is not: tried once.
    assert.equal(silent.requests.filter((r) => r === "POST /introspect").length, 2);
    const applicationId = randomUUID();
    await rejectsWith(
      server.grpc.createApplication({
        application: {
          applicationId,
          keyType: KeyType.PRODUCTION,
          clientName: "slow",
          grantTypes: ["client_credentials"],
          keyManager: SLOW_KM,
        },
      }),
      Code.Unavailable,
      /slow-idp/,
    );
    assert.equal(silent.requests.filter((r) => r === "POST /reg").length, 1);
    await rejectsWith(
      server.grpc.retrieveApplication({ selector: { case: "applicationKey", value: { applicationId, keyType: KeyType.PRODUCTION } } }),
      Code.NotFound,
    );
  });

  test("GetKeyManagerConfiguration lists the external key managers in order, secrets as ***", async () => {
    const { configuration } = await server.grpc.getKeyManagerConfiguration({});
    const listed = configuration?.externalKeyManagers ?? [];
    assert.deepEqual(
      listed.map((km) => km.name),
      [KM, SLOW_KM, JWT_KM],
    );
    const [corp] = listed;
    assert.equal(corp?.issuer, idp.issuer);
    assert.equal(corp?.clientId, idp.serviceClient.clientId);
    assert.equal(corp?.clientSecret, "***");
    assert.equal(corp?.initialAccessToken, "***");
    assert.equal(corp?.tokenPattern, `^(?:${EXTERNAL_TOKEN_PATTERN})$`);
    assert.ok(!JSON.stringify(configuration, (_k, v: unknown) => (typeof v === "bigint" ? String(v) : v)).includes(idp.serviceClient.clientSecret));
  });

  test("an unknown key manager name is refused", async () => {
    await rejectsWith(
      server.grpc.createApplication({
        application: {
          applicationId: randomUUID(),
          keyType: KeyType.PRODUCTION,
          clientName: "x",
          grantTypes: ["client_credentials"],
          keyManager: "nope",
        },
      }),
      Code.InvalidArgument,
      /key_manager/,
    );
  });

  test("the external server stopped mid-test: 900912 and UNAVAILABLE with its name; the resident key manager carries on", async () => {
    const fresh = (await clientCredentialsToken(external))?.accessToken ?? "";
    const resident = (
      await server.grpc.createApplication({
        application: {
          applicationId: randomUUID(),
          keyType: KeyType.PRODUCTION,
          clientName: "resident-2",
          grantTypes: ["client_credentials"],
        },
      })
    ).application;
    assert.ok(resident);
    await idp.stop();

    const res = await validate(fresh);
    assert.equal(res.statusCode, 900912);
    assert.equal(res.authorized, false);
    // Not kept: the same question asks the server again.
    assert.equal((await validate(fresh)).statusCode, 900912);

    const applicationId = randomUUID();
    await rejectsWith(
      server.grpc.createApplication({
        application: { applicationId, keyType: KeyType.PRODUCTION, clientName: "down", grantTypes: ["client_credentials"], keyManager: KM },
      }),
      Code.Unavailable,
      /corp-idp/,
    );
    await rejectsWith(
      server.grpc.retrieveApplication({ selector: { case: "applicationKey", value: { applicationId, keyType: KeyType.PRODUCTION } } }),
      Code.NotFound,
    );
    await rejectsWith(server.grpc.retrieveApplication({ selector: { case: "consumerKey", value: external.consumerKey } }), Code.Unavailable, /corp-idp/);
    await rejectsWith(server.grpc.deleteApplication({ consumerKey: external.consumerKey }), Code.Unavailable, /corp-idp/);
    await rejectsWith(server.grpc.getTokenMetadata({ accessToken: fresh }), Code.Unavailable, /corp-idp/);
    // The failed delete left the keys in place.
    const kept = await server.grpc
      .retrieveApplication({ selector: { case: "applicationKey", value: { applicationId: externalAppId, keyType: KeyType.PRODUCTION } } })
      .catch((e: unknown) => e);
    assert.ok(kept instanceof Error && /corp-idp/.test(kept.message), "still mapped, its server unreachable");

    // The resident key manager does not depend on it.
    const token = (await clientCredentialsToken(resident))?.accessToken ?? "";
    assert.ok(token);
  });
});

describe("configuration of external key managers", () => {
  const load = (external: unknown[]) => loadConfig({ file: undefined, env: {}, overrides: { external } });

  test("defaults, and a token pattern that matches whole tokens only", () => {
    const [km] = load([{ name: "idp", issuer: "https://idp.example.com/", token_pattern: "idp_[a-z]+" }]).externalKeyManagers;
    assert.ok(km);
    assert.equal(km.issuer, "https://idp.example.com");
    assert.equal(km.timeoutMs, 3000);
    assert.equal(km.validationCacheSeconds, 60);
    assert.equal(km.jwtValidation, "introspection");
    assert.equal(km.tokenPattern?.test("idp_abc"), true);
    assert.equal(km.tokenPattern?.test("xidp_abc"), false);
    assert.equal(km.tokenPattern?.test("idp_abc1"), false);
  });

  test("refused: a bad pattern, repeated names, the resident name, no endpoints without discovery, a lone client_id", () => {
    assert.throws(() => load([{ name: "a", issuer: "https://a.example.com", token_pattern: "(" }]), /token_pattern: is not a valid regular expression/);
    assert.throws(
      () =>
        load([
          { name: "a", issuer: "https://a.example.com" },
          { name: "a", issuer: "https://b.example.com" },
        ]),
      /names must be unique/,
    );
    assert.throws(() => load([{ name: "Resident Key Manager", issuer: "https://a.example.com" }]), /resident key manager's name/);
    assert.throws(
      () => load([{ name: "a", issuer: "https://a.example.com", discovery: false }]),
      /endpoints.registration, token and introspection are required/,
    );
    assert.throws(() => load([{ name: "a", issuer: "https://a.example.com", client_id: "x" }]), /client_id and client_secret must be given together/);
  });
});
