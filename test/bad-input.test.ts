import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Knex } from "knex";
import { KeyType } from "../gen/keymanager/v1/types_pb.js";
import { createKnex } from "../src/storage/database.js";
import { rejectsWith } from "./support/assert-rpc.js";
import { createRequest, sampleResources } from "./support/fixtures.js";
import { startServer, type TestServer } from "./support/server.js";

let server: TestServer;
let db: Knex;
let existing: { consumerKey: string; consumerSecret: string; applicationId: string };
const apiId = "existing-api";

before(async () => {
  server = await startServer();
  db = createKnex({ url: `sqlite:${join(server.dataDir, "keymanager.db")}`, poolMax: 1 });
  const app = (await server.grpc.createApplication(createRequest())).application;
  assert.ok(app);
  existing = app;
  await server.grpc.registerNewResource({ resource: { apiId, resources: sampleResources() } });
});
after(async () => {
  await db.destroy();
  await server.close();
});

/** Every table's contents, to prove a rejected call wrote nothing. */
async function snapshot(): Promise<unknown> {
  const tables = ["oauth_clients", "application_keys", "api_resources"];
  return Object.fromEntries(await Promise.all(tables.map(async (t) => [t, await db(t).select().orderBy(1)])));
}

const c = () => server.grpc;
const ci = (pattern: RegExp) => ({ code: Code.InvalidArgument, pattern });

/** Each case: a call that must fail with this code and a message matching the pattern. */
const cases: Array<[string, () => Promise<unknown>, { code: Code; pattern: RegExp }]> = [
  ["create: key type unspecified", () => c().createApplication(createRequest({ keyType: KeyType.UNSPECIFIED })), ci(/key_type/)],
  ["create: unknown key type number", () => c().createApplication(createRequest({ keyType: 99 as KeyType })), ci(/key_type/)],
  ["create: unknown token type number", () => c().createApplication(createRequest({ tokenType: 7 as never })), ci(/token_type/)],
  ["create: empty client name", () => c().createApplication(createRequest({ clientName: "  " })), ci(/client_name: is required/)],
  ["create: oversized client name", () => c().createApplication(createRequest({ clientName: "x".repeat(256) })), ci(/client_name: must be at most 255/)],
  ["create: control character in name", () => c().createApplication(createRequest({ clientName: "a\u0000b" })), ci(/client_name/)],
  ["create: missing application id", () => c().createApplication(createRequest({ applicationId: "" })), ci(/application_id: is required/)],
  ["create: application id with a slash", () => c().createApplication(createRequest({ applicationId: "../etc" })), ci(/application_id/)],
  [
    "create: unknown grant type",
    () => c().createApplication(createRequest({ grantTypes: ["client_credentials", "magic"] })),
    ci(/grant_types\[1\]: unknown grant type/),
  ],
  ["create: repeated grant type", () => c().createApplication(createRequest({ grantTypes: ["password", "password"] })), ci(/grant_types: must not repeat/)],
  [
    "create: authorization_code without callback",
    () => c().createApplication(createRequest({ grantTypes: ["authorization_code"] })),
    ci(/callback_urls: a callback URL is required for authorization_code/),
  ],
  ["create: implicit without callback", () => c().createApplication(createRequest({ grantTypes: ["implicit"] })), ci(/callback_urls: .*implicit/)],
  ["create: relative callback URL", () => c().createApplication(createRequest({ callbackUrls: ["/cb"] })), ci(/callback_urls\[0\]: must be an absolute URL/)],
  [
    "create: callback URL with fragment",
    () => c().createApplication(createRequest({ callbackUrls: ["https://a.example/cb#x"] })),
    ci(/callback_urls\[0\]: must not contain a fragment/),
  ],
  ["create: scope with a space", () => c().createApplication(createRequest({ scopes: ["read orders"] })), ci(/scopes\[0\]/)],
  ["create: negative validity", () => c().createApplication(createRequest({ applicationTokenValiditySeconds: -5n })), ci(/application_token_validity_seconds/)],
  [
    "create: validity above the configured maximum",
    () => c().createApplication(createRequest({ refreshTokenValiditySeconds: 10n ** 12n })),
    ci(/refresh_token_validity_seconds/),
  ],
  [
    "create: too many properties",
    () => c().createApplication(createRequest({ additionalProperties: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, "v"])) })),
    ci(/additional_properties: at most 50/),
  ],
  [
    "create: second PRODUCTION client for an application",
    () => c().createApplication(createRequest({ applicationId: existing.applicationId })),
    { code: Code.AlreadyExists, pattern: /PRODUCTION keys/ },
  ],
  ["update: no application", () => c().updateApplication({}), ci(/application: is required/)],
  ["update: no consumer key", () => c().updateApplication({ application: { clientName: "x" } }), ci(/application.consumer_key: is required/)],
  [
    "update: unknown consumer key",
    () => c().updateApplication({ application: { consumerKey: "nope", clientName: "x" } }),
    { code: Code.NotFound, pattern: /consumer key/ },
  ],
  [
    "update: unknown mask path",
    () => c().updateApplication({ application: { consumerKey: existing.consumerKey }, updateMask: { paths: ["consumer_secret"] } }),
    ci(/update_mask: cannot update "consumer_secret"/),
  ],
  [
    "update: grant needing a callback",
    () => c().updateApplication({ application: { consumerKey: existing.consumerKey, grantTypes: ["authorization_code"] } }),
    ci(/callback_urls/),
  ],
  [
    "update: empty client name through the mask",
    () => c().updateApplication({ application: { consumerKey: existing.consumerKey }, updateMask: { paths: ["client_name"] } }),
    ci(/client_name: is required/),
  ],
  ["retrieve: no selector", () => c().retrieveApplication({}), ci(/selector/)],
  ["retrieve: empty consumer key", () => c().retrieveApplication({ selector: { case: "consumerKey", value: "" } }), ci(/consumer_key: is required/)],
  [
    "retrieve: unknown consumer key",
    () => c().retrieveApplication({ selector: { case: "consumerKey", value: "unknown" } }),
    { code: Code.NotFound, pattern: /consumer key/ },
  ],
  [
    "retrieve: key type unspecified",
    () => c().retrieveApplication({ selector: { case: "applicationKey", value: { applicationId: existing.applicationId } } }),
    ci(/application_key.key_type/),
  ],
  [
    "retrieve: application without SANDBOX keys",
    () => c().retrieveApplication({ selector: { case: "applicationKey", value: { applicationId: existing.applicationId, keyType: KeyType.SANDBOX } } }),
    { code: Code.NotFound, pattern: /no keys of this type/ },
  ],
  ["delete: empty consumer key", () => c().deleteApplication({ consumerKey: "" }), ci(/consumer_key: is required/)],
  ["delete: unknown consumer key", () => c().deleteApplication({ consumerKey: "unknown" }), { code: Code.NotFound, pattern: /consumer key/ }],
  [
    "map: missing secret",
    () => c().mapOAuthApplication({ application: { applicationId: randomUUID(), keyType: KeyType.PRODUCTION, consumerKey: "abc" } }),
    ci(/consumer_secret: is required/),
  ],
  [
    "map: missing consumer key",
    () => c().mapOAuthApplication({ application: { applicationId: randomUUID(), keyType: KeyType.PRODUCTION, consumerSecret: "s" } }),
    ci(/consumer_key: is required/),
  ],
  [
    "map: consumer key with spaces",
    () => c().mapOAuthApplication({ application: { applicationId: randomUUID(), keyType: KeyType.PRODUCTION, consumerKey: "a b", consumerSecret: "s" } }),
    ci(/consumer_key: must be printable ASCII/),
  ],
  [
    "map: key type unspecified",
    () => c().mapOAuthApplication({ application: { applicationId: randomUUID(), consumerKey: "abc", consumerSecret: "s" } }),
    ci(/key_type/),
  ],
  [
    "map: wrong secret of a known client",
    () =>
      c().mapOAuthApplication({
        application: { applicationId: randomUUID(), keyType: KeyType.SANDBOX, consumerKey: existing.consumerKey, consumerSecret: "wrong" },
      }),
    ci(/consumer_secret: does not match/),
  ],
  [
    "map: right secret, client already mapped",
    () =>
      c().mapOAuthApplication({
        application: {
          applicationId: randomUUID(),
          keyType: KeyType.SANDBOX,
          consumerKey: existing.consumerKey,
          consumerSecret: existing.consumerSecret,
        },
      }),
    { code: Code.AlreadyExists, pattern: /already mapped/ },
  ],
  [
    "map: application already has keys of the type",
    () =>
      c().mapOAuthApplication({
        application: { applicationId: existing.applicationId, keyType: KeyType.PRODUCTION, consumerKey: "fresh", consumerSecret: "s" },
      }),
    { code: Code.AlreadyExists, pattern: /PRODUCTION keys/ },
  ],
  ["delete mapping: empty consumer key", () => c().deleteMappedApplication({ consumerKey: "" }), ci(/consumer_key: is required/)],
  ["delete mapping: unknown consumer key", () => c().deleteMappedApplication({ consumerKey: "unknown" }), { code: Code.NotFound, pattern: /not mapped/ }],
  ["regenerate: empty consumer key", () => c().regenerateConsumerSecret({ consumerKey: "" }), ci(/consumer_key: is required/)],
  ["regenerate: unknown consumer key", () => c().regenerateConsumerSecret({ consumerKey: "unknown" }), { code: Code.NotFound, pattern: /consumer key/ }],
  ["register: empty api id", () => c().registerNewResource({ resource: { apiId: "", resources: sampleResources() } }), ci(/api_id: is required/)],
  [
    "register: relative URI template",
    () => c().registerNewResource({ resource: { apiId: "a1", resources: [{ ...sampleResources()[0], uriTemplate: "orders" }] } }),
    ci(/resources\[0\].uri_template: must start with/),
  ],
  [
    "register: unknown verb",
    () => c().registerNewResource({ resource: { apiId: "a1", resources: [{ ...sampleResources()[0], httpVerb: "BREW" }] } }),
    ci(/resources\[0\].http_verb/),
  ],
  [
    "register: auth level unspecified",
    () => c().registerNewResource({ resource: { apiId: "a1", resources: [{ ...sampleResources()[0], authLevel: 0 }] } }),
    ci(/resources\[0\].auth_level/),
  ],
  [
    "register: duplicate resource",
    () => c().registerNewResource({ resource: { apiId: "a1", resources: [sampleResources()[0], sampleResources()[0]] as never } }),
    ci(/resources\[1\]: duplicates GET \/orders/),
  ],
  [
    "register: already registered",
    () => c().registerNewResource({ resource: { apiId, resources: sampleResources() } }),
    { code: Code.AlreadyExists, pattern: /already registered/ },
  ],
  ["get resource: empty api id", () => c().getResourceByApiId({ apiId: "" }), ci(/api_id: is required/)],
  ["get resource: unknown api", () => c().getResourceByApiId({ apiId: "unknown" }), { code: Code.NotFound, pattern: /no resources/ }],
  [
    "update resource: unknown api",
    () => c().updateRegisteredResource({ resource: { apiId: "unknown", resources: sampleResources() } }),
    { code: Code.NotFound, pattern: /no resources/ },
  ],
  [
    "update resource: invalid scope",
    () => c().updateRegisteredResource({ resource: { apiId, resources: [{ ...sampleResources()[0], scopes: ['a"b'] }] } }),
    ci(/resources\[0\].scopes\[0\]/),
  ],
  ["delete resource: empty api id", () => c().deleteRegisteredResourceByApiId({ apiId: "" }), ci(/api_id: is required/)],
  ["delete resource: unknown api", () => c().deleteRegisteredResourceByApiId({ apiId: "unknown" }), { code: Code.NotFound, pattern: /no resources/ }],
];

describe("bad input gets the right code, names the field and changes nothing", () => {
  for (const [name, call, expected] of cases) {
    test(name, async () => {
      const before = await snapshot();
      await rejectsWith(call(), expected.code, expected.pattern);
      assert.deepEqual(await snapshot(), before, "a rejected call wrote nothing");
    });
  }
});

test("the same violations reach Connect clients on the HTTP port", async () => {
  await rejectsWith(server.connect.createApplication(createRequest({ keyType: KeyType.UNSPECIFIED })), Code.InvalidArgument, /key_type/);
  const res = await fetch(`http://127.0.0.1:${server.httpPort}/keymanager.v1.KeyManagerService/CreateApplication`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${server.token}` },
    body: "{not json",
  });
  assert.equal(res.status, 400);
  const body = (await res.json()) as { code: string };
  assert.equal(body.code, "invalid_argument");
});

test("the violated fields are named in x-invalid-fields on both ports", async () => {
  const request = createRequest({ keyType: KeyType.UNSPECIFIED });
  for (const client of [server.grpc, server.connect]) {
    const err = await client.createApplication(request).then(
      () => assert.fail("accepted"),
      (e: unknown) => ConnectError.from(e),
    );
    assert.equal(err.code, Code.InvalidArgument);
    assert.equal(err.metadata.get("x-invalid-fields"), "key_type");
  }
});
