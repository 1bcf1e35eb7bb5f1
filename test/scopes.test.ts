import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { after, before, test } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { type Client, Code } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import {
  GetScopeByNameRequestSchema,
  GetScopeByNameResponseSchema,
  RegisterScopeRequestSchema,
  RegisterScopeResponseSchema,
  ScopeService,
} from "../gen/keymanager/v1/scope_service_pb.js";
import { GatewaySyncService } from "../gen/keymanager/v1/gateway_sync_service_pb.js";
import { SubscriptionService } from "../gen/keymanager/v1/subscription_service_pb.js";
import { TokenValidationService } from "../gen/keymanager/v1/token_validation_service_pb.js";
import { AuthLevel } from "../gen/keymanager/v1/types_pb.js";
import { rejectsWith } from "./support/assert-rpc.js";
import { describeOnEachDatabase } from "./support/each-database.js";
import { createRequest } from "./support/fixtures.js";
import { startServer, type TestServer } from "./support/server.js";
import { entitiesOf, upserted, Watcher } from "./support/watcher.js";
import { environmentWithoutKm, markedScript, README_BLOCK_MARK, readmeShellBlocks } from "./support/readme.js";

const RESOURCES = [
  { uriTemplate: "/menu", httpVerb: "GET", authLevel: AuthLevel.ANY, scopes: [], throttlingTier: "Unlimited" },
  { uriTemplate: "/order/{id}", httpVerb: "POST", authLevel: AuthLevel.ANY, scopes: [], throttlingTier: "Unlimited" },
];

describeOnEachDatabase("ScopeService", (database) => {
  let server: TestServer;
  let scopes: Client<typeof ScopeService>;
  before(async () => {
    server = await startServer({
      databaseUrl: database.url(),
      overrides: { paging: { default_page_size: 2, max_page_size: 2 }, scopes: { max_names_per_call: 4, max_description_chars: 500 } },
    });
    scopes = server.client(ScopeService);
  });
  after(() => server?.close());

  /** An API with two resources without scopes. */
  async function api(apiId: string) {
    await server.client(SubscriptionService).createApi({ api: { apiId, name: apiId, context: `/${apiId}`, version: "1.0.0" } });
    await server.grpc.registerNewResource({ resource: { apiId, resources: RESOURCES } });
  }

  for (const protocol of ["grpc", "connect"] as const) {
    test(`register, get, exists, update by mask, list in pages, validate, delete (${protocol})`, async () => {
      const api = server.client(ScopeService, { protocol });
      const name = `menu:read-${protocol}`;
      const registered = (await api.registerScope({ scope: { name, displayName: "Read the menu", description: "d", roles: ["chef", "waiter"] } })).scope;
      assert.ok(registered?.createTime && registered.updateTime);
      assert.deepEqual((await api.getScopeByName({ name })).scope, registered);
      assert.equal((await api.isScopeExists({ name })).exists, true);
      assert.equal((await api.isScopeExists({ name: `${name}-not` })).exists, false);

      const updated = (await api.updateScope({ scope: { name, roles: ["chef"], description: "not in mask" }, updateMask: { paths: ["roles"] } })).scope;
      assert.deepEqual(updated?.roles, ["chef"]);
      assert.equal(updated?.description, "d");
      assert.equal(updated?.displayName, "Read the menu");
      // Without a mask: every updatable field that is set; a mask may clear a field.
      assert.equal((await api.updateScope({ scope: { name, description: "new" } })).scope?.description, "new");
      assert.deepEqual((await api.updateScope({ scope: { name }, updateMask: { paths: ["roles"] } })).scope?.roles, []);

      await api.registerScope({ scope: { name: `${name}-b` } });
      await api.registerScope({ scope: { name: `${name}-c` } });
      const seen: string[] = [];
      let pageToken = "";
      do {
        const page = await api.getAllScopes({ pageToken });
        assert.ok(page.scopes.length <= 2);
        seen.push(...page.scopes.map((s) => s.name));
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
      assert.deepEqual(
        seen.filter((s) => s.startsWith(name)),
        [name, `${name}-b`, `${name}-c`],
      );
      assert.deepEqual(seen, [...seen].sort());

      assert.deepEqual(await api.validateScopes({ names: [name, "nope:x", `${name}-b`, "nope:y"] }).then((r) => [r.valid, r.unknownNames]), [
        false,
        ["nope:x", "nope:y"],
      ]);
      assert.equal((await api.validateScopes({ names: [name, `${name}-c`] })).valid, true);

      await api.deleteScope({ name });
      await rejectsWith(api.getScopeByName({ name }), Code.NotFound, /no such scope/);
      await rejectsWith(api.deleteScope({ name }), Code.NotFound);
      assert.equal((await api.isScopeExists({ name })).exists, false);
    });
  }

  test("bad input for every RPC: INVALID_ARGUMENT (or the right code) naming the field, nothing written", async () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ name: "" }, /scope\.name: is required/],
      [{ name: "has space" }, /scope\.name: must be 1 to 100 printable/],
      [{ name: "x".repeat(101) }, /scope\.name: must be 1 to 100/],
      [{ name: "km:admin" }, /scope\.name: is reserved for system clients/],
      [{ name: "bad:1", displayName: "x".repeat(256) }, /scope\.display_name: must be at most 255/],
      [{ name: "bad:1", description: "x".repeat(501) }, /scope\.description: must be at most 500/],
      [{ name: "bad:1", roles: ["a,b"] }, /scope\.roles\[0\]: must be 1 to 100 printable characters without commas/],
      [{ name: "bad:1", roles: ["a", "a"] }, /scope\.roles: must not repeat a role/],
      [{ name: "bad:1", roles: Array.from({ length: 51 }, (_, i) => `r${i}`) }, /scope\.roles: at most 50 roles/],
    ];
    for (const [scope, message] of bad) await rejectsWith(scopes.registerScope({ scope }), Code.InvalidArgument, message);
    await rejectsWith(scopes.registerScope({}), Code.InvalidArgument, /scope\.name: is required/);
    assert.equal((await scopes.validateScopes({ names: ["bad:1"] })).valid, false, "nothing registered");

    await scopes.registerScope({ scope: { name: "dup:1", displayName: "first" } });
    await rejectsWith(scopes.registerScope({ scope: { name: "dup:1", displayName: "second" } }), Code.AlreadyExists);
    assert.equal((await scopes.getScopeByName({ name: "dup:1" })).scope?.displayName, "first");

    await rejectsWith(scopes.getScopeByName({ name: "" }), Code.InvalidArgument, /name: is required/);
    await rejectsWith(scopes.getScopeByName({ name: "a b" }), Code.InvalidArgument, /name/);
    await rejectsWith(scopes.isScopeExists({ name: "" }), Code.InvalidArgument, /name: is required/);
    await rejectsWith(scopes.deleteScope({ name: "" }), Code.InvalidArgument, /name: is required/);
    await rejectsWith(scopes.getAllScopes({ pageSize: -1 }), Code.InvalidArgument, /page_size/);
    await rejectsWith(scopes.getAllScopes({ pageToken: "made-up" }), Code.InvalidArgument, /page_token/);
    await rejectsWith(scopes.updateScope({ scope: { name: "dup:1" } }), Code.InvalidArgument, /update_mask/);
    await rejectsWith(scopes.updateScope({ scope: { name: "dup:1" }, updateMask: { paths: ["name"] } }), Code.InvalidArgument, /update_mask/);
    await rejectsWith(scopes.updateScope({ scope: { name: "dup:1", roles: ["x,y"] } }), Code.InvalidArgument, /scope\.roles\[0\]/);
    await rejectsWith(scopes.updateScope({ scope: { name: "dup:missing", description: "x" } }), Code.NotFound);
    assert.deepEqual((await scopes.getScopeByName({ name: "dup:1" })).scope?.roles, []);
    await rejectsWith(scopes.validateScopes({ names: [] }), Code.InvalidArgument, /names: name at least one scope/);
    await rejectsWith(scopes.validateScopes({ names: ["ok", "bad name"] }), Code.InvalidArgument, /names\[1\]/);
    await rejectsWith(scopes.getScopesForAPIs({ apiIds: [] }), Code.InvalidArgument, /api_ids: name at least one API/);
    await rejectsWith(scopes.getScopesForAPIs({ apiIds: ["ok", "not ok"] }), Code.InvalidArgument, /api_ids\[1\]/);
    // scopes.max_names_per_call (4 here): one more is refused.
    await rejectsWith(scopes.validateScopes({ names: ["a", "b", "c", "d", "e"] }), Code.InvalidArgument, /names: at most 4/);
    await rejectsWith(scopes.getScopesForAPIs({ apiIds: ["a", "b", "c", "d", "e"] }), Code.InvalidArgument, /api_ids: at most 4/);
    assert.equal((await scopes.validateScopes({ names: ["a", "b", "c", "d"] })).valid, false);
  });

  test("resource scopes: attach, update, detach; bad input changes nothing; a required scope is not deleted", async () => {
    const apiId = `api-${randomUUID()}`;
    await api(apiId);
    for (const name of ["order:write", "order:read", "menu:edit"]) await scopes.registerScope({ scope: { name } }).catch(() => undefined);
    const order = { uriTemplate: "/order/{id}", httpVerb: "POST" };
    const menu = { uriTemplate: "/menu", httpVerb: "GET" };

    const attached = (await scopes.attachResourceScopes({ apiId, resources: [{ ...order, scopes: ["order:write"] }] })).resource;
    assert.deepEqual(
      attached?.resources.map((r) => r.scopes),
      [[], ["order:write"]],
    );
    // Attaching adds to what a resource has.
    await scopes.attachResourceScopes({
      apiId,
      resources: [
        { ...order, scopes: ["order:read", "order:write"] },
        { ...menu, scopes: ["menu:edit"] },
      ],
    });
    assert.deepEqual(
      (await server.grpc.getResourceByApiId({ apiId })).resource?.resources.map((r) => r.scopes),
      [["menu:edit"], ["order:write", "order:read"]],
    );
    const forApis = (await scopes.getScopesForAPIs({ apiIds: [apiId, "no-such-api"] })).apis;
    assert.deepEqual(
      forApis.map((a) => [a.apiId, a.scopes.map((s) => s.name)]),
      [
        [apiId, ["menu:edit", "order:read", "order:write"]],
        ["no-such-api", []],
      ],
    );

    await rejectsWith(scopes.deleteScope({ name: "order:write" }), Code.FailedPrecondition, /require this scope/);
    assert.equal((await scopes.isScopeExists({ name: "order:write" })).exists, true);

    // Update replaces; detach removes the named ones, or all without names.
    await scopes.updateResourceScopes({ apiId, resources: [{ ...order, scopes: ["order:read"] }] });
    await scopes.detachResourceScopes({ apiId, resources: [{ ...menu, scopes: ["menu:edit"] }] });
    assert.deepEqual(
      (await server.grpc.getResourceByApiId({ apiId })).resource?.resources.map((r) => r.scopes),
      [[], ["order:read"]],
    );
    await scopes.detachResourceScopes({ apiId, resources: [{ ...order, scopes: [] }] });
    assert.deepEqual(
      (await server.grpc.getResourceByApiId({ apiId })).resource?.resources.map((r) => r.scopes),
      [[], []],
    );

    // Bad input, each RPC: nothing changes.
    await scopes.attachResourceScopes({ apiId, resources: [{ ...order, scopes: ["order:write"] }] });
    for (const call of [scopes.attachResourceScopes, scopes.updateResourceScopes, scopes.detachResourceScopes]) {
      const rpc = call.bind(scopes);
      await rejectsWith(rpc({ apiId: "", resources: [{ ...order, scopes: ["order:write"] }] }), Code.InvalidArgument, /api_id: is required/);
      await rejectsWith(rpc({ apiId, resources: [] }), Code.InvalidArgument, /resources: name at least one resource/);
      await rejectsWith(
        rpc({ apiId, resources: [{ uriTemplate: "", httpVerb: "", scopes: [] }] }),
        Code.InvalidArgument,
        /resources\[0\]\.uri_template: is required/,
      );
      await rejectsWith(rpc({ apiId, resources: [{ ...order, scopes: ["bad scope"] }] }), Code.InvalidArgument, /resources\[0\]\.scopes\[0\]/);
      await rejectsWith(
        rpc({
          apiId,
          resources: [
            { ...menu, scopes: ["menu:edit"] },
            { uriTemplate: "/nope", httpVerb: "GET", scopes: ["menu:edit"] },
          ],
        }),
        Code.InvalidArgument,
        /resources\[1\]: the API has no resource GET \/nope/,
      );
      await rejectsWith(rpc({ apiId: "no-such-api", resources: [{ ...order, scopes: ["order:write"] }] }), Code.NotFound);
    }
    for (const call of [scopes.attachResourceScopes, scopes.updateResourceScopes]) {
      await rejectsWith(
        call.bind(scopes)({ apiId, resources: [{ ...menu, scopes: ["menu:edit", "unregistered:scope"] }] }),
        Code.InvalidArgument,
        /resources\[0\]\.scopes\[1\]: is not a registered scope/,
      );
    }
    await rejectsWith(scopes.attachResourceScopes({ apiId, resources: [{ ...menu, scopes: [] }] }), Code.InvalidArgument, /name at least one scope to attach/);
    assert.deepEqual(
      (await server.grpc.getResourceByApiId({ apiId })).resource?.resources.map((r) => r.scopes),
      [[], ["order:write"]],
    );
  });

  test("ValidateToken's 900910 follows Attach and Detach", async () => {
    const apiId = `api-${randomUUID()}`;
    await api(apiId);
    await scopes.registerScope({ scope: { name: "kitchen:cook" } });
    const applicationId = randomUUID();
    const app = (await server.grpc.createApplication(createRequest({ applicationId, scopes: ["kitchen:cook"] }))).application;
    assert.ok(app);
    await server.client(SubscriptionService).createSubscription({ subscription: { applicationId, apiId, tier: "Gold" } });
    const token = async (scope: string[]) =>
      (
        await server.grpc.getNewApplicationAccessToken({
          request: { clientId: app.consumerKey, clientSecret: app.consumerSecret, grantType: "client_credentials", scopes: scope },
        })
      ).token?.accessToken ?? "";
    const without = await token([]);
    const withScope = await token(["kitchen:cook"]);
    const gateway = server.client(TokenValidationService);
    const validate = async (accessToken: string) =>
      (await gateway.validateToken({ context: `/${apiId}`, version: "1.0.0", accessToken, matchingResource: "/order/{id}", httpVerb: "POST" })).statusCode;
    assert.equal(await validate(without), 0);
    await scopes.attachResourceScopes({ apiId, resources: [{ uriTemplate: "/order/{id}", httpVerb: "POST", scopes: ["kitchen:cook"] }] });
    assert.equal(await validate(without), 900910);
    assert.equal(await validate(withScope), 0);
    await scopes.detachResourceScopes({ apiId, resources: [{ uriTemplate: "/order/{id}", httpVerb: "POST", scopes: ["kitchen:cook"] }] });
    assert.equal(await validate(without), 0);
  });

  test("Watch: scopes in the snapshot; registered, updated and deleted scopes and resources' scope changes as events", async () => {
    const apiId = `api-${randomUUID()}`;
    await api(apiId);
    await scopes.registerScope({ scope: { name: "watch:before", roles: ["chef"] } });
    const w = new Watcher(server.client(GatewaySyncService));
    try {
      await w.until("snapshot", (x) => x.snapshot() !== undefined);
      const inSnapshot = entitiesOf(w.snapshot()?.entities ?? [], "scope").find((s) => s.name === "watch:before");
      assert.deepEqual(inSnapshot?.roles, ["chef"]);

      await scopes.registerScope({ scope: { name: "watch:after", displayName: "After" } });
      await scopes.updateScope({ scope: { name: "watch:after", roles: ["waiter"] } });
      await scopes.attachResourceScopes({ apiId, resources: [{ uriTemplate: "/menu", httpVerb: "GET", scopes: ["watch:after"] }] });
      await scopes.detachResourceScopes({ apiId, resources: [{ uriTemplate: "/menu", httpVerb: "GET", scopes: [] }] });
      await scopes.deleteScope({ name: "watch:after" });
      const scopeEvents = () =>
        w.events().filter((e) => upserted(e, "scope")?.name === "watch:after" || (e.change.case === "delete" && e.change.value.key.case === "scopeName"));
      await w.until("scope events", () => scopeEvents().length >= 3);
      const [registered, updated, deleted] = scopeEvents();
      assert.equal(upserted(registered as never, "scope")?.displayName, "After");
      assert.deepEqual(upserted(updated as never, "scope")?.roles, ["waiter"]);
      assert.deepEqual(deleted?.change.value, { $typeName: "keymanager.v1.GatewayEntityKey", key: { case: "scopeName", value: "watch:after" } });
      const apiEvents = () => w.events().flatMap((e) => (upserted(e, "api")?.apiId === apiId ? [upserted(e, "api")] : []));
      await w.until("resource events", () => apiEvents().length >= 2);
      assert.deepEqual(
        apiEvents().map((a) => a?.resources.find((r) => r.uriTemplate === "/menu")?.scopes),
        [["watch:after"], []],
      );
    } finally {
      await w.close();
    }
  });

  test("plain grpc-js with the generated binary codecs", async () => {
    const client = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${server.token}`);
    const unary = <Req, Res>(name: string, req: Req, encode: (r: Req) => Uint8Array, decode: (b: Buffer) => Res) =>
      new Promise<Res>((resolve, reject) => {
        client.makeUnaryRequest(
          `/${ScopeService.typeName}/${name}`,
          (r: Req) => Buffer.from(encode(r)),
          decode,
          req,
          metadata,
          (err, res) => (err ? reject(err) : resolve(res as Res)),
        );
      });
    const register = (scope: Record<string, unknown>) =>
      unary(
        "RegisterScope",
        create(RegisterScopeRequestSchema, { scope }),
        (r) => toBinary(RegisterScopeRequestSchema, r),
        (b) => fromBinary(RegisterScopeResponseSchema, b),
      );
    const get = (name: string) =>
      unary(
        "GetScopeByName",
        create(GetScopeByNameRequestSchema, { name }),
        (r) => toBinary(GetScopeByNameRequestSchema, r),
        (b) => fromBinary(GetScopeByNameResponseSchema, b),
      );
    try {
      assert.equal((await register({ name: "grpc-js:scope", roles: ["r"] })).scope?.name, "grpc-js:scope");
      assert.deepEqual((await get("grpc-js:scope")).scope?.roles, ["r"]);
      await assert.rejects(
        register({ name: "grpc-js bad" }),
        (err: grpc.ServiceError) => err.code === grpc.status.INVALID_ARGUMENT && /scope\.name/.test(err.details),
      );
      await assert.rejects(register({ name: "grpc-js:scope" }), (err: grpc.ServiceError) => err.code === grpc.status.ALREADY_EXISTS);
      await assert.rejects(get("grpc-js:none"), (err: grpc.ServiceError) => err.code === grpc.status.NOT_FOUND);
    } finally {
      client.close();
    }
  });
});

// The README's section, as written: its sh blocks in one bash session against a server of this
// test's own, given through the variables the README names.
test("the README's scope commands, as written", { timeout: 240_000 }, async () => {
  const server = await startServer();
  try {
    const blocks = readmeShellBlocks("Scopes and role-based scopes");
    assert.equal(blocks.length, 4, "the blocks this test knows how to check");
    const { stdout, stderr } = await promisify(execFile)("bash", ["-c", markedScript(blocks)], {
      cwd: fileURLToPath(new URL("..", import.meta.url)),
      env: { ...environmentWithoutKm(), KM_HTTP: `http://127.0.0.1:${server.httpPort}`, KM_GRPC: `http://127.0.0.1:${server.grpcPort}`, TOKEN: server.token },
      timeout: 230_000,
    });
    const [registered, users, scopes, deleted] = stdout.split(`${README_BLOCK_MARK}\n`).map((o) => o.trim());
    assert.deepEqual(JSON.parse(registered ?? "").scope.roles, ["chef"]);
    assert.equal(users, "", "variables only");
    assert.deepEqual(scopes?.split("\n"), ["kitchen:cook", "default"]);
    assert.equal(deleted, "refused: exit code 1");
    assert.match(stderr, /FailedPrecondition/);
    assert.deepEqual(
      (await server.grpc.getResourceByApiId({ apiId: "kitchen" })).resource?.resources.map((r) => r.scopes),
      [[], ["kitchen:cook"]],
    );
  } finally {
    await server.close();
  }
});
