import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { decodeJwt } from "jose";
import { Code } from "@connectrpc/connect";
import { TokenType } from "../gen/keymanager/v1/types_pb.js";
import { loadConfig } from "../src/config/load.js";
import { recordFromJwt } from "../src/keymanager/oauth2/external-tokens.js";
import { rejectsWith } from "./support/assert-rpc.js";
import { describeOnEachDatabase } from "./support/each-database.js";
import { createRequest } from "./support/fixtures.js";
import { startServer, type TestServer } from "./support/server.js";

// WSO2's per key manager switches: configured, shown by GetKeyManagerConfiguration, honoured.

describeOnEachDatabase("key manager switches", (database) => {
  let off: TestServer;
  before(async () => {
    off = await startServer({
      databaseUrl: database.url(),
      overrides: {
        features: {
          enable_token_generation: false,
          enable_map_oauth_consumer_apps: false,
          enable_self_validation_jwt: false,
          consumer_key_claim: "azp",
          scopes_claim: "scp",
          claim_mappings: [{ remote: "appid", local: "client_id" }],
          available_grant_types: ["client_credentials", "password"],
        },
        external: [
          {
            name: "corp-idp",
            issuer: "https://idp.example.com",
            features: { enable_oauth_app_creation: false, enable_self_validation_jwt: true, available_grant_types: ["client_credentials"] },
          },
        ],
      },
    });
  });
  after(() => off?.close());

  test("GetKeyManagerConfiguration shows each key manager's switches", async () => {
    const c = (await off.grpc.getKeyManagerConfiguration({})).configuration;
    const f = c?.features;
    assert.deepEqual(
      [f?.enableTokenGeneration, f?.enableOauthAppCreation, f?.enableMapOauthConsumerApps, f?.enableTokenHashing, f?.enableSelfValidationJwt],
      [false, true, false, true, false],
    );
    assert.equal(f?.consumerKeyClaim, "azp");
    assert.equal(f?.scopesClaim, "scp");
    assert.deepEqual(
      f?.claimMappings.map((m) => [m.remote, m.local]),
      [["appid", "client_id"]],
    );
    assert.deepEqual(f?.availableGrantTypes, ["client_credentials", "password"]);
    const ext = c?.externalKeyManagers[0];
    assert.equal(ext?.features?.enableOauthAppCreation, false);
    assert.equal(ext?.features?.enableSelfValidationJwt, true);
    assert.equal(ext?.jwtValidation, "jwks", "enable_self_validation_jwt = true is jwt_validation jwks");
    assert.equal(ext?.features?.consumerKeyClaim, "client_id");
  });

  test("available_grant_types: others refused on create, update and map, naming each; defaults follow it", async () => {
    await rejectsWith(
      off.grpc.createApplication(createRequest({ grantTypes: ["client_credentials", "refresh_token"] })),
      Code.InvalidArgument,
      /^grant_types\[1\]: is not available at key manager "Resident Key Manager" \(available_grant_types\)$/,
    );
    const app = (await off.grpc.createApplication(createRequest({ grantTypes: [] }))).application;
    assert.deepEqual(app?.grantTypes, ["client_credentials"], "the default grant types it offers");
    await rejectsWith(
      off.grpc.updateApplication({ application: { consumerKey: app?.consumerKey ?? "", grantTypes: ["implicit"], callbackUrls: ["https://a.example/cb"] } }),
      Code.InvalidArgument,
      /grant_types\[0\]: is not available/,
    );
  });

  test("enable_token_generation = false: no application token, by RPC or at /oauth2/token; system callers still get theirs", async () => {
    const app = (await off.grpc.createApplication(createRequest({ grantTypes: ["client_credentials"], scopes: [] }))).application;
    assert.ok(app);
    await rejectsWith(
      off.grpc.getNewApplicationAccessToken({ request: { clientId: app.consumerKey, clientSecret: app.consumerSecret, grantType: "client_credentials" } }),
      Code.FailedPrecondition,
      /^key manager "Resident Key Manager" does not generate tokens \(enable_token_generation = false\)$/,
    );
    const res = await fetch(`http://127.0.0.1:${off.httpPort}/oauth2/token`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        authorization: `Basic ${Buffer.from(`${app.consumerKey}:${app.consumerSecret}`).toString("base64")}`,
      },
      body: "grant_type=client_credentials",
    });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { error: string }).error, "unauthorized_client");
    assert.ok((await off.caller(["km:gateway"])).token, "system clients are this service's callers, not applications");
  });

  test("enable_map_oauth_consumer_apps = false: MapOAuthApplication refused, nothing written", async () => {
    const applicationId = crypto.randomUUID();
    await rejectsWith(
      off.grpc.mapOAuthApplication({ application: { applicationId, keyType: 1, consumerKey: "imported-key", consumerSecret: "imported-secret" } }),
      Code.FailedPrecondition,
      /enable_map_oauth_consumer_apps = false/,
    );
    await rejectsWith(off.grpc.retrieveApplication({ selector: { case: "consumerKey", value: "imported-key" } }), Code.NotFound);
  });

  test("enable_oauth_app_creation = false (an external key manager): CreateApplication refused before the server is asked", async () => {
    await rejectsWith(
      off.grpc.createApplication(createRequest({ keyManager: "corp-idp" })),
      Code.FailedPrecondition,
      /^key manager "corp-idp" does not create OAuth applications \(enable_oauth_app_creation = false\)$/,
    );
  });
});

test("consumer_key_claim, scopes_claim and claim mappings: the resident's JWTs carry them, external JWTs are read by them", async () => {
  const server = await startServer({
    overrides: { features: { consumer_key_claim: "azp", scopes_claim: "scp", claim_mappings: [{ remote: "appid", local: "client_id" }] } },
  });
  try {
    const app = (await server.grpc.createApplication(createRequest({ tokenType: TokenType.JWT, grantTypes: ["client_credentials"], scopes: ["read"] })))
      .application;
    assert.ok(app);
    const token =
      (
        await server.grpc.getNewApplicationAccessToken({
          request: { clientId: app.consumerKey, clientSecret: app.consumerSecret, grantType: "client_credentials", scopes: ["read"] },
        })
      ).token?.accessToken ?? "";
    const claims = decodeJwt(token);
    assert.equal(claims.azp, app.consumerKey);
    assert.equal(claims.appid, app.consumerKey);
    assert.equal(claims.scp, "read");
    assert.equal(claims.client_id, app.consumerKey, "the standard claims stay");
  } finally {
    await server.close();
  }
  const names = { consumerKeyClaim: "cid", scopesClaim: "roles", claimMappings: [{ remote: "appid", local: "cid" }] };
  const read = recordFromJwt({ appid: "ck-1", roles: ["a", "b"], sub: "alice", exp: 2_000_000_000 }, "h".repeat(64), "x.y.z", 0, 1000, names);
  assert.equal(read.consumerKey, "ck-1");
  assert.deepEqual(read.scopes, ["a", "b"]);
  assert.equal(read.endUser, "alice");
});

test("switches the service cannot turn off are refused with a clear message", () => {
  const problems = (overrides: Record<string, unknown>) => {
    try {
      loadConfig({ file: undefined, env: {}, overrides });
      return "";
    } catch (err) {
      return String((err as { problems?: string[] }).problems ?? err);
    }
  };
  assert.match(problems({ features: { enable_token_hashing: false } }), /enable_token_hashing cannot be false/);
  assert.match(problems({ features: { enable_self_validation_jwt: "no" } }), /enable_self_validation_jwt/);
  assert.match(
    problems({ external: [{ name: "x", issuer: "https://x.example.com", jwt_validation: "introspection", features: { enable_self_validation_jwt: true } }] }),
    /contradicts jwt_validation/,
  );
  assert.match(problems({ features: { available_grant_types: ["magic"] } }), /must be one of/);
  assert.equal(problems({ features: { enable_token_generation: false } }), "");
  // The resident key manager's JWTs are then validated by the server (gateways are told: validate_remotely).
  assert.equal(problems({ features: { enable_self_validation_jwt: false } }), "");
});
