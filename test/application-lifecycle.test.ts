import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { ApplicationMode, KeyState, KeyType, TokenType } from "../gen/keymanager/v1/types_pb.js";
import { rejectsWith } from "./support/assert-rpc.js";
import { createRequest } from "./support/fixtures.js";
import { describeOnEachDatabase } from "./support/each-database.js";
import { startServer, type TestServer } from "./support/server.js";

describeOnEachDatabase("application lifecycle", (database) => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ databaseUrl: database.url() });
  });
  after(() => server?.close());

  for (const transport of ["grpc", "connect"] as const) {
    describe(`application keys over ${transport === "grpc" ? "gRPC (grpc-js port)" : "Connect (HTTP port)"}`, () => {
      const client = () => server[transport];

      test("create, retrieve both ways, update, regenerate secret, delete", async () => {
        const req = createRequest({ callbackUrls: ["https://app.example.com/cb"], additionalProperties: { env: "test" } });
        const { application: created } = await client().createApplication(req);
        assert.ok(created);
        assert.match(created.consumerKey, /^[A-Za-z0-9_-]{27}$/);
        assert.match(created.consumerSecret, /^[A-Za-z0-9_-]{43}$/);
        assert.equal(created.applicationId, req.application.applicationId);
        assert.equal(created.keyType, KeyType.PRODUCTION);
        assert.equal(created.keyState, KeyState.COMPLETED);
        assert.equal(created.mode, ApplicationMode.CREATED);
        assert.equal(created.tokenType, TokenType.OPAQUE);
        assert.equal(created.applicationTokenValiditySeconds, 3600n, "zero validity takes the configured default");
        assert.deepEqual(created.additionalProperties, { env: "test" });
        assert.equal(created.keyManager, "Resident Key Manager");

        const byKey = await client().retrieveApplication({ selector: { case: "consumerKey", value: created.consumerKey } });
        assert.deepEqual(byKey.application, created);
        const byRef = await client().retrieveApplication({
          selector: { case: "applicationKey", value: { applicationId: req.application.applicationId, keyType: KeyType.PRODUCTION } },
        });
        assert.deepEqual(byRef.application?.consumerKey, created.consumerKey);

        const { application: updated } = await client().updateApplication({
          application: {
            consumerKey: created.consumerKey,
            consumerSecret: "ignored-secret",
            clientName: "renamed",
            grantTypes: ["client_credentials", "authorization_code"],
            callbackUrls: ["https://app.example.com/callback"],
            userTokenValiditySeconds: 600n,
          },
        });
        assert.equal(updated?.clientName, "renamed");
        assert.deepEqual(updated?.grantTypes, ["client_credentials", "authorization_code"]);
        assert.equal(updated?.userTokenValiditySeconds, 600n);
        assert.equal(updated?.applicationTokenValiditySeconds, 3600n, "unnamed validity keeps its value");
        assert.equal(updated?.consumerSecret, created.consumerSecret, "the secret in an update is ignored");
        assert.deepEqual(updated?.scopes, created.scopes, "unset fields keep their value");

        const masked = await client().updateApplication({
          application: { consumerKey: created.consumerKey, scopes: [] },
          updateMask: { paths: ["scopes"] },
        });
        assert.deepEqual(masked.application?.scopes, [], "a masked field may be cleared");
        assert.equal(masked.application?.clientName, "renamed");

        const regenerated = await client().regenerateConsumerSecret({ consumerKey: created.consumerKey });
        assert.equal(regenerated.consumerKey, created.consumerKey);
        assert.notEqual(regenerated.consumerSecret, created.consumerSecret);
        const afterRegen = await client().retrieveApplication({ selector: { case: "consumerKey", value: created.consumerKey } });
        assert.equal(afterRegen.application?.consumerSecret, regenerated.consumerSecret);

        await client().deleteApplication({ consumerKey: created.consumerKey });
        await rejectsWith(client().retrieveApplication({ selector: { case: "consumerKey", value: created.consumerKey } }), Code.NotFound);
        await rejectsWith(
          client().retrieveApplication({
            selector: { case: "applicationKey", value: { applicationId: req.application.applicationId, keyType: KeyType.PRODUCTION } },
          }),
          Code.NotFound,
        );
        await rejectsWith(client().deleteApplication({ consumerKey: created.consumerKey }), Code.NotFound);
      });

      test("one client per application and key type; the other key type is free", async () => {
        const req = createRequest();
        await client().createApplication(req);
        await rejectsWith(client().createApplication(req), Code.AlreadyExists, /already has PRODUCTION keys/);
        const sandbox = await client().createApplication({ application: { ...req.application, keyType: KeyType.SANDBOX, clientName: "sandbox" } });
        assert.equal(sandbox.application?.keyType, KeyType.SANDBOX);
      });

      test("map existing keys (semi-manual mode), reject a wrong secret, delete the mapping only", async () => {
        const source = (await client().createApplication(createRequest())).application;
        assert.ok(source);
        // Free the client from its first application, then map it to another one.
        await client().deleteMappedApplication({ consumerKey: source.consumerKey });
        const unmapped = await client().retrieveApplication({ selector: { case: "consumerKey", value: source.consumerKey } });
        assert.equal(unmapped.application?.applicationId, "", "the client stays, unmapped");

        const target = randomUUID();
        await rejectsWith(
          client().mapOAuthApplication({
            application: {
              applicationId: target,
              keyType: KeyType.SANDBOX,
              consumerKey: source.consumerKey,
              consumerSecret: "not-the-secret",
            },
          }),
          Code.InvalidArgument,
          /consumer_secret/,
        );
        const mapped = await client().mapOAuthApplication({
          application: {
            applicationId: target,
            keyType: KeyType.SANDBOX,
            consumerKey: source.consumerKey,
            consumerSecret: source.consumerSecret,
          },
        });
        assert.equal(mapped.application?.mode, ApplicationMode.MAPPED);
        assert.equal(mapped.application?.applicationId, target);
        assert.equal(mapped.application?.keyState, KeyState.COMPLETED);

        await rejectsWith(
          client().mapOAuthApplication({
            application: {
              applicationId: randomUUID(),
              keyType: KeyType.SANDBOX,
              consumerKey: source.consumerKey,
              consumerSecret: source.consumerSecret,
            },
          }),
          Code.AlreadyExists,
        );

        // A consumer key from another authorization server is recorded with its secret.
        const external = await client().mapOAuthApplication({
          application: {
            applicationId: target,
            keyType: KeyType.PRODUCTION,
            consumerKey: "QwEtRHd4NJkcFuRUfAT5af8XEEoa",
            consumerSecret: "7Fairfeu321ENjOR9w2xgJl3i70a",
            grantTypes: ["client_credentials"],
          },
        });
        assert.equal(external.application?.consumerSecret, "7Fairfeu321ENjOR9w2xgJl3i70a");
        assert.equal(external.application?.mode, ApplicationMode.MAPPED);

        await client().deleteMappedApplication({ consumerKey: "QwEtRHd4NJkcFuRUfAT5af8XEEoa" });
        await rejectsWith(client().deleteMappedApplication({ consumerKey: "QwEtRHd4NJkcFuRUfAT5af8XEEoa" }), Code.NotFound);
        const kept = await client().retrieveApplication({ selector: { case: "consumerKey", value: "QwEtRHd4NJkcFuRUfAT5af8XEEoa" } });
        assert.equal(kept.application?.applicationId, "", "the OAuth client outlives its mapping");
        assert.equal(kept.application?.consumerSecret, "7Fairfeu321ENjOR9w2xgJl3i70a");
      });

      test("resources: register, read, replace, delete", async () => {
        const apiId = `pizzashack-${transport}-${randomUUID()}`;
        const resources = [
          { uriTemplate: "/menu", httpVerb: "get", authLevel: 3, scopes: [], throttlingTier: "" },
          { uriTemplate: "/order", httpVerb: "POST", authLevel: 2, scopes: ["order:write"], throttlingTier: "Gold" },
        ];
        const registered = await client().registerNewResource({ resource: { apiId, resources, properties: { context: "/pizzashack/1.0.0" } } });
        assert.equal(registered.resource?.resources[0]?.httpVerb, "GET");
        assert.equal(registered.resource?.resources[0]?.throttlingTier, "Unlimited");
        await rejectsWith(client().registerNewResource({ resource: { apiId, resources } }), Code.AlreadyExists);

        const read = await client().getResourceByApiId({ apiId });
        assert.deepEqual(read.resource?.resources, registered.resource?.resources);
        assert.deepEqual(read.resource?.properties, { context: "/pizzashack/1.0.0" });

        const replaced = await client().updateRegisteredResource({ resource: { apiId, resources: [resources[1] as never] } });
        assert.equal(replaced.resource?.resources.length, 1);
        assert.equal(replaced.resource?.resources[0]?.uriTemplate, "/order");

        await client().deleteRegisteredResourceByApiId({ apiId });
        await rejectsWith(client().getResourceByApiId({ apiId }), Code.NotFound);
        await rejectsWith(client().updateRegisteredResource({ resource: { apiId, resources } }), Code.NotFound);
        await rejectsWith(client().deleteRegisteredResourceByApiId({ apiId }), Code.NotFound);
      });
    });
  }
});
