import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import type { Knex } from "knex";
import {
  CreateConsumerSecretRequestSchema,
  CreateConsumerSecretResponseSchema,
  KeyManagerService,
  ListConsumerSecretsRequestSchema,
  ListConsumerSecretsResponseSchema,
  RevokeConsumerSecretRequestSchema,
  RevokeConsumerSecretResponseSchema,
} from "../gen/keymanager/v1/key_manager_service_pb.js";
import { KeyType, type OAuthApplication } from "../gen/keymanager/v1/types_pb.js";
import { createKnex } from "../src/storage/database.js";
import { rejectsWith } from "./support/assert-rpc.js";
import { TestClock } from "./support/clock.js";
import { describeOnEachDatabase } from "./support/each-database.js";
import { createRequest } from "./support/fixtures.js";
import { startServer, type TestServer } from "./support/server.js";

const MAX_PER_CLIENT = 3;
const MAX_VALIDITY = 30 * 24 * 3600;

describeOnEachDatabase("several consumer secrets per application", (database) => {
  const clock = new TestClock();
  let server: TestServer;
  let db: Knex;
  before(async () => {
    server = await startServer({
      databaseUrl: database.url(),
      clock,
      overrides: { secrets: { max_per_client: MAX_PER_CLIENT, max_validity_seconds: MAX_VALIDITY } },
    });
    db = createKnex({ url: database.url(), poolMax: 1 });
  });
  after(async () => {
    await db?.destroy();
    await server?.close();
  });

  async function newApp(overrides: Parameters<typeof createRequest>[0] = {}): Promise<OAuthApplication> {
    const { application } = await server.grpc.createApplication(createRequest({ grantTypes: ["client_credentials"], scopes: [], ...overrides }));
    assert.ok(application);
    return application;
  }

  /** POST /oauth2/token with client_credentials: the HTTP status. */
  async function tokenStatus(clientId: string, clientSecret: string): Promise<number> {
    const res = await fetch(`http://127.0.0.1:${server.httpPort}/oauth2/token`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString("base64")}`,
      },
      body: "grant_type=client_credentials",
    });
    await res.arrayBuffer();
    return res.status;
  }

  async function rpcToken(clientId: string, clientSecret: string): Promise<string> {
    const { token } = await server.grpc.getNewApplicationAccessToken({ request: { clientId, clientSecret, grantType: "client_credentials" } });
    return token?.accessToken ?? "";
  }

  for (const transport of ["grpc", "connect"] as const) {
    test(`create (value shown once), list (never the values), revoke; every secret gets tokens until revoked (${transport})`, async () => {
      const km = server[transport];
      const app = await newApp();
      const created = await km.createConsumerSecret({ secret: { consumerKey: app.consumerKey, description: "CI pipeline" }, validityPeriodSeconds: 3600n });
      const value = created.consumerSecret;
      assert.match(value, /^[A-Za-z0-9_-]{43}$/);
      assert.notEqual(value, app.consumerSecret);
      const secret = created.secret;
      assert.ok(secret);
      assert.match(secret.secretId, /^[0-9a-f-]{36}$/);
      assert.equal(secret.consumerKey, app.consumerKey);
      assert.equal(secret.description, "CI pipeline");
      assert.equal(secret.hint, value.slice(-4));
      assert.equal(timestampDate(secret.createTime ?? assert.fail()).getTime(), clock.now().getTime());
      assert.equal(timestampDate(secret.expireTime ?? assert.fail()).getTime(), clock.now().getTime() + 3600_000);
      // Listed oldest first (by creation time, then id).

      clock.advance(1);
      const forever = await km.createConsumerSecret({ secret: { consumerKey: app.consumerKey } });
      assert.equal(forever.secret?.expireTime, undefined, "no validity: until revoked");
      assert.equal(forever.secret?.description, "");

      const listed = await km.listConsumerSecrets({ consumerKey: app.consumerKey });
      assert.deepEqual(
        listed.secrets.map((s) => s.secretId),
        [secret.secretId, forever.secret?.secretId],
      );
      assert.equal(listed.nextPageToken, "");
      const shown = JSON.stringify(listed, (_k, v) => (typeof v === "bigint" ? String(v) : v));
      for (const hidden of [value, forever.consumerSecret, app.consumerSecret]) assert.ok(!shown.includes(hidden), "a listed secret shows no value");

      // The client's own secret and both added ones work at the token endpoint, by RPC and over HTTP.
      for (const s of [app.consumerSecret, value, forever.consumerSecret]) {
        assert.equal(await tokenStatus(app.consumerKey, s), 200);
        assert.notEqual(await rpcToken(app.consumerKey, s), "");
      }
      assert.equal(await tokenStatus(app.consumerKey, `${value}x`), 401);

      await km.revokeConsumerSecret({ consumerKey: app.consumerKey, secretId: secret.secretId });
      assert.equal(await tokenStatus(app.consumerKey, value), 401, "a revoked secret is refused at once (the client was cached)");
      await rejectsWith(rpcToken(app.consumerKey, value), Code.Unauthenticated);
      assert.equal(await tokenStatus(app.consumerKey, forever.consumerSecret), 200, "the other secrets stay");
      assert.equal(await tokenStatus(app.consumerKey, app.consumerSecret), 200);
      assert.deepEqual(
        (await km.listConsumerSecrets({ consumerKey: app.consumerKey })).secrets.map((s) => s.secretId),
        [forever.secret?.secretId],
      );
      await rejectsWith(km.revokeConsumerSecret({ consumerKey: app.consumerKey, secretId: secret.secretId }), Code.NotFound, /no consumer secret with this id/);
    });
  }

  test("a secret stops working when it expires; expired ones make room for new ones", async () => {
    const app = await newApp();
    const short = await server.grpc.createConsumerSecret({ secret: { consumerKey: app.consumerKey }, validityPeriodSeconds: 60n });
    assert.equal(await tokenStatus(app.consumerKey, short.consumerSecret), 200);
    clock.advance(59);
    assert.equal(await tokenStatus(app.consumerKey, short.consumerSecret), 200);
    clock.advance(1);
    assert.equal(await tokenStatus(app.consumerKey, short.consumerSecret), 401, "refused the moment it expires, cached or not");
    assert.equal(await tokenStatus(app.consumerKey, app.consumerSecret), 200);

    // Listed (expired) until the next create drops it; the bound counts unexpired secrets only.
    assert.equal((await server.grpc.listConsumerSecrets({ consumerKey: app.consumerKey })).secrets.length, 1);
    for (let i = 0; i < MAX_PER_CLIENT; i++) await server.grpc.createConsumerSecret({ secret: { consumerKey: app.consumerKey } });
    const listed = await server.grpc.listConsumerSecrets({ consumerKey: app.consumerKey });
    assert.equal(listed.secrets.length, MAX_PER_CLIENT);
    assert.ok(!listed.secrets.some((s) => s.secretId === short.secret?.secretId), "the expired secret was dropped");
  });

  test(`at most secrets.max_per_client (${MAX_PER_CLIENT}) unexpired secrets; one more is FAILED_PRECONDITION and writes nothing`, async () => {
    const app = await newApp();
    const made = [];
    for (let i = 0; i < MAX_PER_CLIENT; i++) made.push(await server.grpc.createConsumerSecret({ secret: { consumerKey: app.consumerKey } }));
    await rejectsWith(
      server.grpc.createConsumerSecret({ secret: { consumerKey: app.consumerKey } }),
      Code.FailedPrecondition,
      new RegExp(`already holds ${MAX_PER_CLIENT} consumer secrets \\(secrets.max_per_client\\)`),
    );
    assert.equal((await server.grpc.listConsumerSecrets({ consumerKey: app.consumerKey })).secrets.length, MAX_PER_CLIENT);
    await server.grpc.revokeConsumerSecret({ consumerKey: app.consumerKey, secretId: made[0]?.secret?.secretId ?? "" });
    await server.grpc.createConsumerSecret({ secret: { consumerKey: app.consumerKey } });

    // Concurrent creates take turns: the bound holds.
    const other = await newApp();
    const results = await Promise.allSettled(
      Array.from({ length: MAX_PER_CLIENT + 3 }, () => server.grpc.createConsumerSecret({ secret: { consumerKey: other.consumerKey } })),
    );
    assert.equal(results.filter((r) => r.status === "fulfilled").length, MAX_PER_CLIENT);
    assert.equal((await server.grpc.listConsumerSecrets({ consumerKey: other.consumerKey })).secrets.length, MAX_PER_CLIENT);
  });

  test("pages: page_size and a signed page_token bound to the consumer key", async () => {
    const app = await newApp();
    const ids = [];
    for (let i = 0; i < MAX_PER_CLIENT; i++) {
      ids.push((await server.grpc.createConsumerSecret({ secret: { consumerKey: app.consumerKey } })).secret?.secretId);
      clock.advance(1);
    }
    const first = await server.grpc.listConsumerSecrets({ consumerKey: app.consumerKey, pageSize: 2 });
    assert.deepEqual(
      first.secrets.map((s) => s.secretId),
      ids.slice(0, 2),
    );
    const second = await server.grpc.listConsumerSecrets({ consumerKey: app.consumerKey, pageSize: 2, pageToken: first.nextPageToken });
    assert.deepEqual(
      second.secrets.map((s) => s.secretId),
      ids.slice(2),
    );
    assert.equal(second.nextPageToken, "");
    const other = await newApp();
    await rejectsWith(server.grpc.listConsumerSecrets({ consumerKey: other.consumerKey, pageToken: first.nextPageToken }), Code.InvalidArgument, /page_token/);
    await rejectsWith(server.grpc.listConsumerSecrets({ consumerKey: app.consumerKey, pageSize: -1 }), Code.InvalidArgument, /page_size/);
  });

  test("stored as SHA-256 hashes: the value is nowhere in the database", async () => {
    const app = await newApp();
    const { consumerSecret, secret } = await server.grpc.createConsumerSecret({ secret: { consumerKey: app.consumerKey, description: "hashed" } });
    const row = await db("consumer_secrets").where({ secret_id: secret?.secretId }).first();
    assert.equal(row.secret_hash, createHash("sha256").update(consumerSecret).digest("hex"));
    assert.ok(!JSON.stringify(row).includes(consumerSecret));
  });

  test("MapOAuthApplication accepts an added secret; a revoked one is the one wrong-secret answer", async () => {
    const app = await newApp();
    const added = await server.grpc.createConsumerSecret({ secret: { consumerKey: app.consumerKey } });
    await server.grpc.deleteMappedApplication({ consumerKey: app.consumerKey });
    const applicationId = crypto.randomUUID();
    const map = (consumerSecret: string) =>
      server.grpc.mapOAuthApplication({ application: { applicationId, keyType: KeyType.SANDBOX, consumerKey: app.consumerKey, consumerSecret } });
    await server.grpc.revokeConsumerSecret({ consumerKey: app.consumerKey, secretId: added.secret?.secretId ?? "" });
    await rejectsWith(map(added.consumerSecret), Code.InvalidArgument, /^consumer_secret: does not match the consumer key's secret$/);
    const again = await server.grpc.createConsumerSecret({ secret: { consumerKey: app.consumerKey } });
    const mapped = await map(again.consumerSecret);
    assert.equal(mapped.application?.consumerKey, app.consumerKey);
    assert.equal(mapped.application?.applicationId, applicationId);
  });

  test("RegenerateConsumerSecret replaces the client's own secret and revokes its tokens; added secrets stay", async () => {
    const app = await newApp();
    const added = await server.grpc.createConsumerSecret({ secret: { consumerKey: app.consumerKey } });
    const token = await rpcToken(app.consumerKey, added.consumerSecret);
    const regenerated = await server.grpc.regenerateConsumerSecret({ consumerKey: app.consumerKey });
    assert.equal(await tokenStatus(app.consumerKey, app.consumerSecret), 401, "the old own secret is refused");
    assert.equal(await tokenStatus(app.consumerKey, regenerated.consumerSecret), 200);
    assert.equal(await tokenStatus(app.consumerKey, added.consumerSecret), 200, "an added secret is not the one regenerated");
    assert.equal((await server.grpc.getTokenMetadata({ accessToken: token })).token?.tokenValid, false, "tokens of the client are revoked");
    assert.equal((await server.grpc.listConsumerSecrets({ consumerKey: app.consumerKey })).secrets.length, 1);
  });

  test("deleting the application deletes its secrets", async () => {
    const app = await newApp();
    await server.grpc.createConsumerSecret({ secret: { consumerKey: app.consumerKey } });
    await server.grpc.deleteApplication({ consumerKey: app.consumerKey });
    assert.equal((await db("consumer_secrets").where({ consumer_key: app.consumerKey })).length, 0);
  });

  describe("bad input: a clear error, nothing written", () => {
    test("CreateConsumerSecret", async () => {
      const app = await newApp();
      const cases: Array<[Parameters<typeof server.grpc.createConsumerSecret>[0], Code, RegExp]> = [
        [{}, Code.InvalidArgument, /^secret.consumer_key: is required$/],
        [{ secret: { consumerKey: app.consumerKey }, validityPeriodSeconds: -1n }, Code.InvalidArgument, /^validity_period_seconds: must not be negative$/],
        [
          { secret: { consumerKey: app.consumerKey }, validityPeriodSeconds: BigInt(MAX_VALIDITY + 1) },
          Code.InvalidArgument,
          new RegExp(`^validity_period_seconds: must be an integer between 0 and ${MAX_VALIDITY}$`),
        ],
        [
          { secret: { consumerKey: app.consumerKey }, validityPeriodSeconds: 2n ** 62n },
          Code.InvalidArgument,
          /^validity_period_seconds: must be an integer between 0 and/,
        ],
        [
          { secret: { consumerKey: app.consumerKey, description: "x".repeat(256) } },
          Code.InvalidArgument,
          /^secret.description: must be at most 255 characters$/,
        ],
        [
          { secret: { consumerKey: app.consumerKey, description: "a\u0000b" } },
          Code.InvalidArgument,
          /^secret.description: must not contain control characters$/,
        ],
        [{ secret: { consumerKey: "no-such-key" } }, Code.NotFound, /^no OAuth application with this consumer key$/],
      ];
      for (const [request, code, message] of cases) await rejectsWith(server.grpc.createConsumerSecret(request), code, message);
      assert.equal((await server.grpc.listConsumerSecrets({ consumerKey: app.consumerKey })).secrets.length, 0);
    });

    test("ListConsumerSecrets and RevokeConsumerSecret", async () => {
      const app = await newApp();
      const made = await server.grpc.createConsumerSecret({ secret: { consumerKey: app.consumerKey } });
      await rejectsWith(server.grpc.listConsumerSecrets({}), Code.InvalidArgument, /^consumer_key: is required$/);
      await rejectsWith(server.grpc.listConsumerSecrets({ consumerKey: "no-such-key" }), Code.NotFound);
      await rejectsWith(server.grpc.revokeConsumerSecret({}), Code.InvalidArgument, /^consumer_key: is required; secret_id: is required$/);
      await rejectsWith(server.grpc.revokeConsumerSecret({ consumerKey: "no-such-key", secretId: made.secret?.secretId ?? "" }), Code.NotFound);
      const otherApp = await newApp();
      await rejectsWith(
        server.grpc.revokeConsumerSecret({ consumerKey: otherApp.consumerKey, secretId: made.secret?.secretId ?? "" }),
        Code.NotFound,
        /no consumer secret with this id/,
      );
      await rejectsWith(server.grpc.revokeConsumerSecret({ consumerKey: app.consumerKey, secretId: "x".repeat(5000) }), Code.NotFound);
      assert.equal(await tokenStatus(app.consumerKey, made.consumerSecret), 200, "still there");
    });

    test("a system client is not an application: no secrets can be added to it", async () => {
      const caller = await server.caller(["km:gateway"]);
      await rejectsWith(server.grpc.createConsumerSecret({ secret: { consumerKey: caller.clientId } }), Code.NotFound);
      await rejectsWith(server.grpc.listConsumerSecrets({ consumerKey: caller.clientId }), Code.NotFound);
    });
  });

  test("store callers: only their own applications' secrets; another's answers as a missing one", async () => {
    const alice = server.client(KeyManagerService, { token: (await server.caller(["apim:subscribe"], { subscriber: "alice" })).token });
    const bob = server.client(KeyManagerService, { token: (await server.caller(["apim:subscribe"], { subscriber: "bob" })).token });
    const app = (await alice.createApplication(createRequest({ appOwner: "", grantTypes: ["client_credentials"], scopes: [] }))).application;
    assert.ok(app);
    const made = await alice.createConsumerSecret({ secret: { consumerKey: app.consumerKey } });
    assert.equal((await alice.listConsumerSecrets({ consumerKey: app.consumerKey })).secrets.length, 1);
    const missing = await rejectsWith(bob.createConsumerSecret({ secret: { consumerKey: "no-such-key" } }), Code.NotFound);
    const hidden = await rejectsWith(bob.createConsumerSecret({ secret: { consumerKey: app.consumerKey } }), Code.NotFound);
    assert.equal(hidden.rawMessage, missing.rawMessage);
    await rejectsWith(bob.listConsumerSecrets({ consumerKey: app.consumerKey }), Code.NotFound);
    await rejectsWith(bob.revokeConsumerSecret({ consumerKey: app.consumerKey, secretId: made.secret?.secretId ?? "" }), Code.NotFound);
    assert.equal((await alice.listConsumerSecrets({ consumerKey: app.consumerKey })).secrets.length, 1, "bob changed nothing");
  });

  test("plain grpc-js: create, list and revoke with the generated schemas' codecs only", async () => {
    const app = await newApp();
    const client = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
    try {
      const metadata = new grpc.Metadata();
      metadata.set("authorization", `Bearer ${server.token}`);
      const call = <Req, Res>(name: string, request: Req, encode: (r: Req) => Uint8Array, decode: (b: Buffer) => Res) =>
        new Promise<Res>((resolve, reject) =>
          client.makeUnaryRequest(
            `/${KeyManagerService.typeName}/${name}`,
            (r: Req) => Buffer.from(encode(r)),
            decode,
            request,
            metadata,
            (err, res) => (err ? reject(err) : resolve(res as Res)),
          ),
        );
      const created = await call(
        "CreateConsumerSecret",
        create(CreateConsumerSecretRequestSchema, { secret: { consumerKey: app.consumerKey, description: "grpc-js" }, validityPeriodSeconds: 600n }),
        (r) => toBinary(CreateConsumerSecretRequestSchema, r),
        (b) => fromBinary(CreateConsumerSecretResponseSchema, b),
      );
      assert.equal(created.secret?.description, "grpc-js");
      assert.equal(await tokenStatus(app.consumerKey, created.consumerSecret), 200);
      const listed = await call(
        "ListConsumerSecrets",
        create(ListConsumerSecretsRequestSchema, { consumerKey: app.consumerKey }),
        (r) => toBinary(ListConsumerSecretsRequestSchema, r),
        (b) => fromBinary(ListConsumerSecretsResponseSchema, b),
      );
      assert.deepEqual(
        listed.secrets.map((s) => s.hint),
        [created.consumerSecret.slice(-4)],
      );
      await call(
        "RevokeConsumerSecret",
        create(RevokeConsumerSecretRequestSchema, { consumerKey: app.consumerKey, secretId: created.secret?.secretId ?? "" }),
        (r) => toBinary(RevokeConsumerSecretRequestSchema, r),
        (b) => fromBinary(RevokeConsumerSecretResponseSchema, b),
      );
      assert.equal(await tokenStatus(app.consumerKey, created.consumerSecret), 401);
      const bad = await call(
        "CreateConsumerSecret",
        create(CreateConsumerSecretRequestSchema, { secret: { consumerKey: app.consumerKey }, validityPeriodSeconds: -5n }),
        (r) => toBinary(CreateConsumerSecretRequestSchema, r),
        (b) => fromBinary(CreateConsumerSecretResponseSchema, b),
      ).then(
        () => assert.fail("accepted a negative validity"),
        (err: grpc.ServiceError) => err,
      );
      assert.equal(bad.code, grpc.status.INVALID_ARGUMENT);
      assert.match(bad.details, /validity_period_seconds/);
    } finally {
      client.close();
    }
  });
});
