import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import * as http from "node:http";
import { after, before, describe, test } from "node:test";
import type { Knex } from "knex";
import { KeyType } from "../gen/keymanager/v1/types_pb.js";
import { createKnex } from "../src/storage/database.js";
import { acceptsJson } from "../src/transport/store-rest-routes.js";
import { capturedLog } from "./support/captured-log.js";
import { createRequest } from "./support/fixtures.js";
import { describeOnEachDatabase } from "./support/each-database.js";
import { startServer, type TestServer } from "./support/server.js";

// The seed's sample application and bodies, verbatim.
const SEED_APP = "896658a0-b4ee-4535-bbfa-806c894a4015";
const SEED_GRANTS = ["refresh_token", "urn:ietf:params:oauth:grant-type:saml2-bearer", "password", "client_credentials", "iwa:ntlm"];
const SEED_PUT_BODY =
  '{ "supportedGrantTypes": [ "refresh_token", "urn:ietf:params:oauth:grant-type:saml2-bearer", "password", "client_credentials", "iwa:ntlm" ], "callbackUrl": "http://sample/com/callback" }';

interface ApplicationKey {
  consumerKey: string;
  consumerSecret: string;
  supportedGrantTypes: string[];
  callbackUrl: string;
  keyState: string;
  keyType: string;
  groupId: string;
  token?: unknown;
}

interface ErrorBody {
  code: number;
  message: string;
  description: string;
  moreInfo: string;
  error: { code: string; message: string }[];
}

let server: TestServer;
let db: Knex;
let base: string;
const { lines: logLines, logger } = capturedLog("info");
/** Callers: alice's and bob's store clients, a gateway, a group member. */
let alice: string;
let bob: string;
let gateway: string;
let dave: string;
let seedProduction: { consumerKey: string; consumerSecret: string };
let seedSandbox: { consumerKey: string; consumerSecret: string };

const keysPath = (applicationId: string, keyType: string, query = "") => `/api/am/store/v0.13/applications/${applicationId}/keys/${keyType}${query}`;

function call(path: string, init: { method?: string; token?: string; headers?: Record<string, string>; body?: BodyInit; duplex?: "half" } = {}) {
  const { token, headers = {}, ...rest } = init;
  return fetch(`${base}${path}`, { ...rest, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers } } as RequestInit);
}

function put(path: string, token: string, body: unknown, headers: Record<string, string> = {}) {
  return call(path, {
    method: "PUT",
    token,
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

async function ok(res: Response): Promise<ApplicationKey> {
  const text = await res.text();
  assert.equal(res.status, 200, text);
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
  assert.equal(res.headers.get("cache-control"), "no-store");
  assert.match(res.headers.get("etag") ?? "", /^"[A-Za-z0-9_-]{10,}"$/);
  return JSON.parse(text) as ApplicationKey;
}

/** The status and the reference's Error schema. */
async function failure(res: Response, status: number): Promise<ErrorBody> {
  const text = await res.text();
  assert.equal(res.status, status, text);
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
  const body = JSON.parse(text) as ErrorBody;
  assert.deepEqual(Object.keys(body).sort(), ["code", "description", "error", "message", "moreInfo"]);
  assert.equal(body.code, status);
  assert.ok(Number.isInteger(body.code));
  assert.equal(typeof body.message, "string");
  assert.ok(body.message.length > 0);
  assert.equal(typeof body.description, "string");
  assert.equal(body.moreInfo, "");
  assert.ok(Array.isArray(body.error));
  return body;
}

/** The stored applications and keys, to prove a refused call changed nothing. */
async function snapshot(): Promise<unknown> {
  return { clients: await db("oauth_clients").select().orderBy("consumer_key"), keys: await db("application_keys").select().orderBy("consumer_key") };
}

async function create(overrides: Parameters<typeof createRequest>[0]) {
  const app = (await server.grpc.createApplication(createRequest(overrides))).application;
  assert.ok(app);
  return app;
}

describeOnEachDatabase("Store REST API", (database) => {
  before(async () => {
    server = await startServer({ logger, databaseUrl: database.url() });
    base = `http://127.0.0.1:${server.httpPort}`;
    db = createKnex({ url: database.url(), poolMax: 2 });
    alice = (await server.caller(["apim:subscribe"], { subscriber: "alice" })).token;
    bob = (await server.caller(["apim:subscribe"], { subscriber: "bob" })).token;
    gateway = (await server.caller(["km:gateway"])).token;
    dave = (await server.caller(["apim:subscribe"], { subscriber: "dave", groupIds: ["team-a"] })).token;
    seedProduction = await create({
      applicationId: SEED_APP,
      keyType: KeyType.PRODUCTION,
      clientName: "alice_seed_PRODUCTION",
      grantTypes: SEED_GRANTS,
      callbackUrls: ["http://sample/com/callback"],
      appOwner: "alice",
    });
    seedSandbox = await create({
      applicationId: SEED_APP,
      keyType: KeyType.SANDBOX,
      clientName: "alice_seed_SANDBOX",
      grantTypes: ["client_credentials"],
      callbackUrls: [],
      appOwner: "alice",
    });
  });
  after(async () => {
    await db?.destroy();
    await server?.close();
  });

  describe("GET keys", () => {
    test("the seed's sample request answers the seed's ApplicationKey", async () => {
      const res = await call(keysPath(SEED_APP, "PRODUCTION"), { token: alice });
      const key = await ok(res);
      assert.deepEqual(key, {
        consumerKey: seedProduction.consumerKey,
        consumerSecret: seedProduction.consumerSecret,
        supportedGrantTypes: SEED_GRANTS,
        callbackUrl: "http://sample/com/callback",
        keyState: "COMPLETED",
        keyType: "PRODUCTION",
        groupId: "",
      });
      // Tokens are stored only as hashes: no token object without its token.
      assert.equal("token" in key, false);
      assert.ok(res.headers.get("last-modified"));
    });

    test("an admin sees any subscriber's keys; the ETag is stable while nothing changes", async () => {
      const first = await call(keysPath(SEED_APP, "PRODUCTION"), { token: server.token });
      const second = await call(keysPath(SEED_APP, "PRODUCTION"), { token: alice });
      assert.equal((await ok(first)).consumerKey, seedProduction.consumerKey);
      await ok(second);
      assert.equal(first.headers.get("etag"), second.headers.get("etag"));
      const sandbox = await call(keysPath(SEED_APP, "SANDBOX"), { token: alice });
      const sandboxKey = await ok(sandbox);
      assert.equal(sandboxKey.keyType, "SANDBOX");
      assert.notEqual(sandbox.headers.get("etag"), first.headers.get("etag"));
    });

    test("401 without a token or with one that is not valid, with a Bearer challenge", async () => {
      const none = await call(keysPath(SEED_APP, "PRODUCTION"));
      await failure(none, 401);
      assert.match(none.headers.get("www-authenticate") ?? "", /^Bearer\b/);
      const bad = await call(keysPath(SEED_APP, "PRODUCTION"), { token: "ae4eae22-3f65-387b-a171-d37eaa366fa8" });
      await failure(bad, 401);
      assert.match(bad.headers.get("www-authenticate") ?? "", /^Bearer\b.*error="invalid_token"/);
      const basic = await call(keysPath(SEED_APP, "PRODUCTION"), { headers: { authorization: "Basic YWxpY2U6c2VjcmV0" } });
      await failure(basic, 401);
      assert.match(basic.headers.get("www-authenticate") ?? "", /^Bearer\b/);
      // An application's own token (not a system client's) is no caller of this service.
      const appToken = await server.grpc.getNewApplicationAccessToken({
        request: { clientId: seedProduction.consumerKey, clientSecret: seedProduction.consumerSecret, grantType: "client_credentials" },
      });
      assert.ok(appToken.token?.accessToken);
      await failure(await call(keysPath(SEED_APP, "PRODUCTION"), { token: appToken.token.accessToken }), 401);
    });

    test("403 for a token without apim:subscribe", async () => {
      const res = await call(keysPath(SEED_APP, "PRODUCTION"), { token: gateway });
      const body = await failure(res, 403);
      assert.match(body.description, /apim:subscribe/);
      assert.match(res.headers.get("www-authenticate") ?? "", /insufficient_scope/);
    });

    test("400 for a key type other than PRODUCTION or SANDBOX", async () => {
      for (const keyType of ["production", "FOO", "PRODUCTION%20"]) {
        const body = await failure(await call(keysPath(SEED_APP, keyType), { token: alice }), 400);
        assert.deepEqual(
          body.error.map((e) => e.code),
          ["keyType"],
          keyType,
        );
      }
    });

    test("406 for an Accept that excludes JSON; JSON, wildcards and q-values are honoured", async () => {
      for (const accept of ["application/xml", "text/html", "application/json;q=0, */*", "application/json; q=0", "*/*;q=0"]) {
        await failure(await call(keysPath(SEED_APP, "PRODUCTION"), { token: alice, headers: { accept } }), 406);
      }
      for (const accept of [
        "application/json",
        "application/*",
        "*/*",
        "text/html, */*;q=0.1",
        "application/json; charset=utf-8",
        "APPLICATION/JSON",
        "application/xml;q=1, application/json;q=0.5",
      ]) {
        await ok(await call(keysPath(SEED_APP, "PRODUCTION"), { token: alice, headers: { accept } }));
      }
    });

    test("acceptsJson: the most specific range decides", () => {
      const cases: [string | undefined, boolean][] = [
        [undefined, true],
        ["", true],
        ["application/json", true],
        ["application/xml", false],
        ["application/*;q=0, application/json", true],
        ["application/json;q=0, application/*", false],
        ["*/*;q=0.001", true],
        ["*/*;q=0.000", false],
        ["application/*;q=0, */*", false],
        ["text/plain, application/problem+json", false],
        ["application/json;q=bogus", true],
      ];
      for (const [accept, expected] of cases) assert.equal(acceptsJson(accept), expected, String(accept));
    });

    test("404 for an unknown application, missing keys of a type, and another subscriber's application, all alike", async () => {
      const unknown = await failure(await call(keysPath(randomUUID(), "PRODUCTION"), { token: alice }), 404);
      const onlyProduction = await create({ applicationId: randomUUID(), appOwner: "alice" });
      assert.ok(onlyProduction.applicationId);
      await ok(await call(keysPath(onlyProduction.applicationId, "PRODUCTION"), { token: alice }));
      const noSandbox = await failure(await call(keysPath(onlyProduction.applicationId, "SANDBOX"), { token: alice }), 404);
      const others = await failure(await call(keysPath(SEED_APP, "PRODUCTION"), { token: bob }), 404);
      assert.deepEqual(others, unknown);
      assert.deepEqual(noSandbox, unknown);
    });

    test("groupId: the application must be in the group, and a restricted caller too", async () => {
      const shared = await create({ applicationId: randomUUID(), appOwner: "carol", groupId: "team-a,team-b" });
      const path = (query = "") => keysPath(shared.applicationId, "PRODUCTION", query);
      // dave is in team-a: he sees carol's team application, with or without naming team-a.
      assert.equal((await ok(await call(path(), { token: dave }))).groupId, "team-a,team-b");
      await ok(await call(path("?groupId=team-a"), { token: dave }));
      // ...but not through team-b, which he is not in, nor an application of no group of his.
      const notMember = await failure(await call(path("?groupId=team-b"), { token: dave }), 404);
      await failure(await call(keysPath(SEED_APP, "PRODUCTION"), { token: dave }), 404);
      // The owner's groupId must be one of the application's.
      await failure(await call(keysPath(SEED_APP, "PRODUCTION", "?groupId=team-a"), { token: alice }), 404);
      await ok(await call(keysPath(SEED_APP, "PRODUCTION", "?groupId="), { token: alice }));
      // An admin is in every group, but the application still must be in the named one.
      await ok(await call(path("?groupId=team-b"), { token: server.token }));
      const wrongGroup = await failure(await call(path("?groupId=team-c"), { token: server.token }), 404);
      const unknown = await failure(await call(keysPath(randomUUID(), "PRODUCTION"), { token: server.token }), 404);
      assert.deepEqual(notMember, unknown);
      assert.deepEqual(wrongGroup, unknown);
      const twice = await failure(await call(path("?groupId=team-a&groupId=team-b"), { token: dave }), 400);
      assert.deepEqual(
        twice.error.map((e) => e.code),
        ["groupId"],
      );
      // dave may also update the team's keys.
      await ok(await put(path("?groupId=team-a"), dave, { callbackUrl: "https://team-a.example/cb" }));
    });

    test("405 with Allow: GET, PUT for other methods; other paths are not this route's", async () => {
      for (const method of ["POST", "DELETE", "PATCH", "HEAD", "OPTIONS"]) {
        const res = await call(keysPath(SEED_APP, "PRODUCTION"), { method, token: alice });
        assert.equal(res.status, 405, method);
        assert.equal(res.headers.get("allow"), "GET, PUT");
        if (method !== "HEAD") await failure(res, 405);
      }
      const extra = await call(`${keysPath(SEED_APP, "PRODUCTION")}/extra`, { token: alice });
      assert.equal(extra.status, 404);
      await extra.body?.cancel();
    });
  });

  describe("PUT keys", () => {
    test("the seed's sample request updates grant types and callback URL, keys unchanged", async () => {
      const before = await ok(await call(keysPath(SEED_APP, "SANDBOX"), { token: alice }));
      assert.deepEqual(before.supportedGrantTypes, ["client_credentials"]);
      assert.equal(before.callbackUrl, "");
      const res = await put(keysPath(SEED_APP, "SANDBOX"), alice, SEED_PUT_BODY);
      const updated = await ok(res);
      assert.deepEqual(updated, {
        consumerKey: seedSandbox.consumerKey,
        consumerSecret: seedSandbox.consumerSecret,
        supportedGrantTypes: SEED_GRANTS,
        callbackUrl: "http://sample/com/callback",
        keyState: "COMPLETED",
        keyType: "SANDBOX",
        groupId: "",
      });
      const read = await call(keysPath(SEED_APP, "SANDBOX"), { token: alice });
      assert.deepEqual(await ok(read), updated);
      assert.equal(read.headers.get("etag"), res.headers.get("etag"));
      // Production keys of the same application are untouched.
      assert.equal((await ok(await call(keysPath(SEED_APP, "PRODUCTION"), { token: alice }))).consumerKey, seedProduction.consumerKey);
      // The change is audited, without the secret.
      const audit = logLines.filter((l) => l.log === "audit" && String(l.what).startsWith("PUT /api/am/store"));
      assert.equal(audit.length >= 1, true);
      const line = JSON.stringify(audit.at(-1));
      assert.match(line, new RegExp(seedSandbox.consumerKey));
      assert.doesNotMatch(line, new RegExp(seedSandbox.consumerSecret));
    });

    test("consumer key, secret, key state and key type in the body are ignored", async () => {
      const app = await create({ applicationId: randomUUID(), appOwner: "alice" });
      const body = {
        consumerKey: "QwEtRHd4NJkcFuRUfAT5af8XEEoa",
        consumerSecret: "7Fairfeu321ENjOR9w2xgJl3i70a",
        supportedGrantTypes: ["password", "authorization_code"],
        callbackUrl: "https://app.example/callback",
        keyState: "REJECTED",
        keyType: "SANDBOX",
        groupId: "team-a",
        token: { accessToken: "x", tokenScopes: ["a"], validityTime: 1 },
      };
      const updated = await ok(await put(keysPath(app.applicationId, "PRODUCTION"), alice, body));
      assert.deepEqual(updated, {
        consumerKey: app.consumerKey,
        consumerSecret: app.consumerSecret,
        supportedGrantTypes: ["password", "authorization_code"],
        callbackUrl: "https://app.example/callback",
        keyState: "COMPLETED",
        keyType: "PRODUCTION",
        groupId: "",
      });
      // Still readable by the grpc API with the same client, and the old credentials still work.
      const stored = (await server.grpc.retrieveApplication({ selector: { case: "consumerKey", value: app.consumerKey } })).application;
      assert.deepEqual(stored?.grantTypes, ["password", "authorization_code"]);
      assert.deepEqual(stored?.callbackUrls, ["https://app.example/callback"]);
      assert.equal(stored?.consumerSecret, app.consumerSecret);
      // One field at a time: the other stays.
      const onlyGrants = await ok(
        await put(keysPath(app.applicationId, "PRODUCTION"), alice, {
          supportedGrantTypes: ["password", "authorization_code", "refresh_token"],
          callbackUrl: null,
        }),
      );
      assert.equal(onlyGrants.callbackUrl, "https://app.example/callback");
      const onlyCallback = await ok(await put(keysPath(app.applicationId, "PRODUCTION"), alice, { callbackUrl: "https://app.example/other" }));
      assert.deepEqual(onlyCallback.supportedGrantTypes, ["password", "authorization_code", "refresh_token"]);
      assert.equal(onlyCallback.callbackUrl, "https://app.example/other");
    });

    test("401, 403 and 404 (another subscriber's) change nothing", async () => {
      const state = await snapshot();
      const body = { supportedGrantTypes: ["client_credentials"], callbackUrl: "" };
      await failure(await put(keysPath(SEED_APP, "PRODUCTION"), "", body), 401);
      await failure(await put(keysPath(SEED_APP, "PRODUCTION"), gateway, body), 403);
      await failure(await put(keysPath(SEED_APP, "PRODUCTION"), bob, body), 404);
      await failure(await put(keysPath(randomUUID(), "PRODUCTION"), alice, body), 404);
      await failure(await put(keysPath(SEED_APP, "PRODUCTION", "?groupId=team-a"), alice, body), 404);
      assert.deepEqual(await snapshot(), state);
    });

    test("400 with the Error schema for bodies that are not JSON, wrong types or values the domain refuses; nothing changes", async () => {
      const path = keysPath(SEED_APP, "PRODUCTION");
      const state = await snapshot();
      const cases: [string, unknown, string[]][] = [
        ["not JSON", "{ supportedGrantTypes: ", ["body"]],
        ["an array", "[]", ["body"]],
        ["null", "null", ["body"]],
        ["no field to change", {}, ["body"]],
        ["grant types not a list", { supportedGrantTypes: "password" }, ["supportedGrantTypes"]],
        ["a grant type not a string", { supportedGrantTypes: ["password", 7] }, ["supportedGrantTypes"]],
        ["callback not a string", { supportedGrantTypes: ["password"], callbackUrl: ["http://a.example"] }, ["callbackUrl"]],
        ["unknown grant type", { supportedGrantTypes: ["password", "magic"], callbackUrl: "http://sample/com/callback" }, ["supportedGrantTypes[1]"]],
        ["no grant type", { supportedGrantTypes: [] }, ["supportedGrantTypes"]],
        ["repeated grant type", { supportedGrantTypes: ["password", "password"] }, ["supportedGrantTypes"]],
        ["authorization_code without a callback", { supportedGrantTypes: ["authorization_code"], callbackUrl: "" }, ["callbackUrl"]],
        ["relative callback", { callbackUrl: "/callback" }, ["callbackUrl"]],
        ["callback with a fragment", { callbackUrl: "https://a.example/cb#x" }, ["callbackUrl"]],
      ];
      for (const [name, body, fields] of cases) {
        const error = await failure(await put(path, alice, body), 400);
        assert.deepEqual(
          error.error.map((e) => e.code),
          fields,
          name,
        );
        for (const item of error.error) assert.ok(typeof item.message === "string" && item.message.length > 0, name);
        assert.ok(error.description.includes(fields[0] ?? "?"), name);
      }
      const invalidUtf8 = await call(path, {
        method: "PUT",
        token: alice,
        headers: { "content-type": "application/json" },
        body: Buffer.from([0x7b, 0xff, 0x7d]),
      });
      await failure(invalidUtf8, 400);
      assert.deepEqual(await snapshot(), state);
    });

    test("415 unless the body is JSON; 413 past 64 KiB, declared or streamed; nothing changes", async () => {
      const path = keysPath(SEED_APP, "PRODUCTION");
      const state = await snapshot();
      const body = JSON.stringify({ supportedGrantTypes: ["client_credentials"] });
      for (const type of ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=iso-8859-1"]) {
        await failure(await call(path, { method: "PUT", token: alice, headers: { "content-type": type }, body }), 415);
      }
      await failure(await call(path, { method: "PUT", token: alice, body: new Blob([body]) }), 415);

      const big = JSON.stringify({ supportedGrantTypes: ["client_credentials"], callbackUrl: `https://a.example/${"x".repeat(65 * 1024)}` });
      await failure(await put(path, alice, big), 413);
      const encoder = new TextEncoder();
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let i = 0; i < 80; i++) controller.enqueue(encoder.encode(i === 0 ? '{"callbackUrl":"https://a.example/' : "x".repeat(1024)));
          controller.enqueue(encoder.encode('"}'));
          controller.close();
        },
      });
      await failure(await call(path, { method: "PUT", token: alice, headers: { "content-type": "application/json" }, body: stream, duplex: "half" }), 413);
      // A declared size past the limit is refused at once, before the body arrives.
      const declared = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = http.request(`${base}${path}`, {
          method: "PUT",
          headers: { authorization: `Bearer ${alice}`, "content-type": "application/json", "content-length": String(100 * 1024 * 1024) },
        });
        const timer = setTimeout(() => reject(new Error("no answer before the body was sent")), 5000);
        req.on("response", (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => (text += c));
          res.on("end", () => {
            clearTimeout(timer);
            req.destroy();
            resolve({ status: res.statusCode ?? 0, body: text });
          });
        });
        req.on("error", (err) => {
          clearTimeout(timer);
          reject(err);
        });
        req.write('{"callbackUrl":"');
      });
      assert.equal(declared.status, 413);
      assert.equal((JSON.parse(declared.body) as ErrorBody).code, 413);
      // The connection is still usable and a body just under the limit is fine.
      const under = JSON.stringify({ callbackUrl: "http://sample/com/callback", padding: "x".repeat(60 * 1024) });
      const snapshotBefore = await snapshot();
      assert.deepEqual(snapshotBefore, state);
      await ok(await put(path, alice, under));
    });

    test("412: a stale or weak If-Match, an old If-Unmodified-Since, or keys not COMPLETED; nothing changes", async () => {
      const app = await create({ applicationId: randomUUID(), appOwner: "alice", grantTypes: ["client_credentials"] });
      const path = keysPath(app.applicationId, "PRODUCTION");
      const first = await call(path, { token: alice });
      await ok(first);
      const etag = first.headers.get("etag") ?? "";
      const change = { supportedGrantTypes: ["client_credentials", "password"] };

      const state = await snapshot();
      await failure(await put(path, alice, change, { "if-match": '"stale"' }), 412);
      await failure(await put(path, alice, change, { "if-match": `W/${etag}` }), 412);
      await failure(await put(path, alice, change, { "if-unmodified-since": "Sat, 01 Jan 2000 00:00:00 GMT" }), 412);
      assert.deepEqual(await snapshot(), state);
      assert.deepEqual((await ok(await call(path, { token: alice }))).supportedGrantTypes, ["client_credentials"]);

      // The current ETag (alone or in a list) matches; the answer carries the new one.
      const updated = await put(path, alice, change, { "if-match": `"other", ${etag}` });
      assert.deepEqual((await ok(updated)).supportedGrantTypes, ["client_credentials", "password"]);
      const newEtag = updated.headers.get("etag") ?? "";
      assert.notEqual(newEtag, etag);
      // The old one is now stale.
      const state2 = await snapshot();
      await failure(await put(path, alice, { supportedGrantTypes: ["client_credentials"] }, { "if-match": etag }), 412);
      assert.deepEqual(await snapshot(), state2);
      await ok(await put(path, alice, { supportedGrantTypes: ["client_credentials", "password", "refresh_token"] }, { "if-match": newEtag }));
      await ok(await put(path, alice, { supportedGrantTypes: ["client_credentials"] }, { "if-match": "*" }));
      await ok(
        await put(
          path,
          alice,
          { supportedGrantTypes: ["client_credentials", "password"] },
          { "if-unmodified-since": new Date(Date.now() + 60_000).toUTCString() },
        ),
      );

      // Keys whose registration is not COMPLETED can be read but not updated.
      await db("application_keys").where({ consumer_key: app.consumerKey }).update({ key_state: "APPROVED" });
      const approved = await call(path, { token: alice });
      assert.equal((await ok(approved)).keyState, "APPROVED");
      const state3 = await snapshot();
      const refused = await failure(await put(path, alice, { supportedGrantTypes: ["client_credentials"] }), 412);
      assert.match(refused.description, /APPROVED/);
      await failure(await put(path, alice, { supportedGrantTypes: ["client_credentials"] }, { "if-match": approved.headers.get("etag") ?? "" }), 412);
      assert.deepEqual(await snapshot(), state3);
      await db("application_keys").where({ consumer_key: app.consumerKey }).update({ key_state: "COMPLETED" });
      await ok(await put(path, alice, { supportedGrantTypes: ["client_credentials"] }));
    });

    test("412 for all but one of concurrent PUTs with the same If-Match (compare-and-set)", async () => {
      const app = await create({ applicationId: randomUUID(), appOwner: "alice", grantTypes: ["client_credentials"] });
      const path = keysPath(app.applicationId, "PRODUCTION");
      const etag = (await call(path, { token: alice })).headers.get("etag") ?? "";
      const urls = Array.from({ length: 10 }, (_, i) => `https://client${i}.example.com/cb`);
      const answers = await Promise.all(urls.map((callbackUrl) => put(path, alice, { callbackUrl }, { "if-match": etag })));
      const won = answers.flatMap((res, i) => (res.status === 200 ? [urls[i]] : []));
      assert.equal(won.length, 1, `one PUT wins: ${answers.map((r) => r.status).join(" ")}`);
      for (const res of answers) if (res.status !== 200) await failure(res, 412);
      assert.equal((await ok(await call(path, { token: alice }))).callbackUrl, won[0], "the stored keys are the winner's");
    });
  });
});
