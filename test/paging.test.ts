import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { SigningKeyService } from "../gen/keymanager/v1/signing_key_service_pb.js";
import { SubscriptionService } from "../gen/keymanager/v1/subscription_service_pb.js";
import { SystemClientService } from "../gen/keymanager/v1/system_client_service_pb.js";
import { SubscriptionState } from "../gen/keymanager/v1/types_pb.js";
import { UserService } from "../gen/keymanager/v1/user_service_pb.js";
import { ConfigError, loadConfig } from "../src/config/load.js";
import { rejectsWith } from "./support/assert-rpc.js";
import { describeOnEachDatabase } from "./support/each-database.js";
import { createRequest, sampleResources } from "./support/fixtures.js";
import { startServer, type TestServer } from "./support/server.js";

/** Small bounds, so a handful of items spans several pages. */
const DEFAULT_PAGE_SIZE = 3;
const MAX_PAGE_SIZE = 5;

interface PageAnswer<T> {
  items: T[];
  nextPageToken: string;
}
type Lister<T> = (pageSize: number, pageToken: string) => Promise<PageAnswer<T>>;

/** Every item of a list, `pageSize` at a time, with the size of each page. */
async function readAll<T>(list: Lister<T>, pageSize: number): Promise<{ items: T[]; pages: number[] }> {
  const items: T[] = [];
  const pages: number[] = [];
  let token = "";
  do {
    const page = await list(pageSize, token);
    items.push(...page.items);
    pages.push(page.items.length);
    token = page.nextPageToken;
    assert.ok(pages.length < 100, "paging ends");
  } while (token !== "");
  return { items, pages };
}

/** Alters one character in the middle of a token (its cursor or its MAC). */
function tampered(token: string, at: number): string {
  const i = Math.floor(token.length * at);
  return token.slice(0, i) + (token[i] === "A" ? "B" : "A") + token.slice(i + 1);
}

describeOnEachDatabase("paging and update masks", (database) => {
  let server: TestServer;
  // Kept across the restart below: it holds the encryption key.
  const dataDir = mkdtempSync(join(tmpdir(), "km-paging-"));
  const start = () =>
    startServer({ databaseUrl: database.url(), dataDir, overrides: { paging: { default_page_size: DEFAULT_PAGE_SIZE, max_page_size: MAX_PAGE_SIZE } } });
  before(async () => {
    server = await start();
  });
  after(async () => {
    await server?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  for (const protocol of ["grpc", "connect"] as const) {
    describe(`over ${protocol}`, () => {
      const users = () => server.client(UserService, { protocol });
      const subs = () => server.client(SubscriptionService, { protocol });
      const listUsers: Lister<string> = async (pageSize, pageToken) => {
        const r = await users().listUsers({ pageSize, pageToken });
        return { items: r.users.map((u) => u.username), nextPageToken: r.nextPageToken };
      };
      const prefix = `${protocol}-`;
      const ours = (names: string[]) => names.filter((n) => n.startsWith(prefix));

      test("ListUsers: every user once, in order, a page at a time; default and maximum page sizes", async () => {
        const names = Array.from({ length: 7 }, (_, i) => `${prefix}user-${i}`);
        for (const username of names) await users().createUser({ user: { username }, password: "correct horse battery" });
        const all = await readAll(listUsers, 2);
        assert.deepEqual(ours(all.items), names);
        assert.equal(new Set(all.items).size, all.items.length, "no user twice");
        assert.ok(all.pages.slice(0, -1).every((n) => n === 2));

        assert.equal((await listUsers(0, "")).items.length, DEFAULT_PAGE_SIZE, "page_size 0: the default");
        assert.equal((await listUsers(1000, "")).items.length, MAX_PAGE_SIZE, "a page_size above the maximum: the maximum");
        await rejectsWith(listUsers(-1, ""), Code.InvalidArgument, /page_size: must not be negative/);
      });

      test("a page token is a cursor: items removed or added before it shift nothing", async () => {
        const names = ["a", "b", "c", "d", "e"].map((x) => `${prefix}cursor-${x}`);
        for (const username of names) await users().createUser({ user: { username }, password: "correct horse battery" });
        // Walk one user a page up to names[1]; then change the list behind and ahead of the cursor.
        let page = await listUsers(1, "");
        while (page.items[0] !== names[1]) page = await listUsers(1, page.nextPageToken);
        await users().deleteUser({ username: names[0] as string });
        await users().deleteUser({ username: names[1] as string });
        await users().createUser({ user: { username: `${prefix}cursor-0` }, password: "correct horse battery" });
        await users().createUser({ user: { username: `${prefix}cursor-f` }, password: "correct horse battery" });
        const rest: string[] = [];
        for (let token = page.nextPageToken; token !== ""; ) {
          const next = await listUsers(2, token);
          rest.push(...next.items);
          token = next.nextPageToken;
        }
        // An offset would now skip two users; the cursor goes on right after names[1].
        assert.deepEqual(
          rest.filter((n) => n.startsWith(`${prefix}cursor-`)),
          [names[2], names[3], names[4], `${prefix}cursor-f`],
        );
      });

      test("a tampered, made-up or foreign page token is INVALID_ARGUMENT", async () => {
        for (const username of ["t1", "t2", "t3"]) await users().createUser({ user: { username: `${prefix}${username}` }, password: "correct horse battery" });
        const token = (await listUsers(1, "")).nextPageToken;
        assert.ok(token);
        for (const bad of [tampered(token, 0.25), tampered(token, 0.9), `${token}x`, "abc", "e30.AAAA", "x".repeat(5000)]) {
          await rejectsWith(listUsers(1, bad), Code.InvalidArgument, /page_token/);
        }
        // Another list's token, and a token of the same list with other filters.
        await rejectsWith(subs().listApis({ pageSize: 1, pageToken: token }), Code.InvalidArgument, /page_token/);
        const applicationId = randomUUID();
        for (const n of [1, 2]) {
          const apiId = `${prefix}filter-api-${n}`;
          await subs().createApi({ api: { apiId, name: apiId, context: `/${apiId}`, version: "1.0.0" } });
          await subs().createSubscription({ subscription: { applicationId, apiId } });
        }
        const subsToken = (await subs().listSubscriptions({ applicationId, pageSize: 1 })).nextPageToken;
        assert.ok(subsToken);
        assert.equal((await subs().listSubscriptions({ applicationId, pageSize: 1, pageToken: subsToken })).subscriptions.length, 1);
        await rejectsWith(subs().listSubscriptions({ applicationId: randomUUID(), pageSize: 1, pageToken: subsToken }), Code.InvalidArgument, /page_token/);
        await rejectsWith(subs().listSubscriptions({ apiId: `${prefix}filter-api-1`, pageSize: 1, pageToken: subsToken }), Code.InvalidArgument, /page_token/);
      });

      test("ListApis and ListSubscriptions page through every item", async () => {
        const apiIds = Array.from({ length: 6 }, (_, i) => `${prefix}paged-api-${i}`);
        const applicationId = randomUUID();
        for (const apiId of apiIds) {
          await subs().createApi({ api: { apiId, name: apiId, context: `/${apiId}`, version: "1.0.0" } });
          await subs().createSubscription({ subscription: { applicationId, apiId } });
        }
        const apis = await readAll(async (pageSize, pageToken) => {
          const r = await subs().listApis({ pageSize, pageToken });
          return { items: r.apis.map((a) => a.apiId), nextPageToken: r.nextPageToken };
        }, 4);
        assert.deepEqual(
          apis.items.filter((id) => id.startsWith(`${prefix}paged-api-`)),
          apiIds,
        );
        const subscriptions = await readAll(async (pageSize, pageToken) => {
          const r = await subs().listSubscriptions({ applicationId, pageSize, pageToken });
          return { items: r.subscriptions.map((s) => s.apiId), nextPageToken: r.nextPageToken };
        }, 4);
        assert.deepEqual(subscriptions.items, apiIds, "oldest first");
        assert.deepEqual(subscriptions.pages, [4, 2]);
      });

      test("ListSystemClients, ListSigningKeys and GetActiveTokensByConsumerKey page through every item", async () => {
        const created: string[] = [];
        for (let i = 0; i < 4; i++) created.push((await server.caller(["km:gateway"])).clientId);
        const clients = await readAll(async (pageSize, pageToken) => {
          const r = await server.client(SystemClientService, { protocol }).listSystemClients({ pageSize, pageToken });
          return { items: r.systemClients.map((c) => c.clientId), nextPageToken: r.nextPageToken };
        }, 2);
        assert.equal(new Set(clients.items).size, clients.items.length);
        assert.deepEqual(
          clients.items.filter((id) => created.includes(id)),
          created,
          "oldest first",
        );

        const keys = server.client(SigningKeyService, { protocol });
        for (let i = 0; i < 2; i++) await keys.rotateSigningKey({});
        const everyKey = (await keys.listSigningKeys({ pageSize: MAX_PAGE_SIZE })).signingKeys;
        const paged = await readAll(async (pageSize, pageToken) => {
          const r = await keys.listSigningKeys({ pageSize, pageToken });
          return { items: r.signingKeys.map((k) => k.kid), nextPageToken: r.nextPageToken };
        }, 1);
        assert.ok(paged.items.length >= 3);
        assert.deepEqual(paged.items, everyKey.map((k) => k.kid).slice(0, paged.items.length), "newest first, as one page");
        assert.equal(everyKey[0]?.active, true);

        const app = (await server[protocol].createApplication(createRequest())).application;
        assert.ok(app);
        const issued: string[] = [];
        for (let i = 0; i < 5; i++) {
          const { token } = await server[protocol].getNewApplicationAccessToken({
            request: { clientId: app.consumerKey, clientSecret: app.consumerSecret, grantType: "client_credentials" },
          });
          issued.push(token?.tokenId ?? "");
        }
        const tokens = await readAll(async (pageSize, pageToken) => {
          const r = await server[protocol].getActiveTokensByConsumerKey({ consumerKey: app.consumerKey, pageSize, pageToken });
          return { items: r.tokens.map((t) => t.tokenId), nextPageToken: r.nextPageToken };
        }, 2);
        assert.deepEqual(new Set(tokens.items), new Set(issued));
        assert.equal(tokens.items.length, issued.length);
        assert.deepEqual(tokens.pages, [2, 2, 1]);
        // The token names its consumer key: another's is refused.
        const other = (await server[protocol].createApplication(createRequest())).application;
        const first = await server[protocol].getActiveTokensByConsumerKey({ consumerKey: app.consumerKey, pageSize: 1 });
        await rejectsWith(
          server[protocol].getActiveTokensByConsumerKey({ consumerKey: other?.consumerKey ?? "", pageSize: 1, pageToken: first.nextPageToken }),
          Code.InvalidArgument,
          /page_token/,
        );
      });

      test("update_mask: an unknown or output-only path is INVALID_ARGUMENT and changes nothing, on every Update", async () => {
        const km = server[protocol];
        const app = (await km.createApplication(createRequest({ clientName: "masked" }))).application;
        assert.ok(app);
        for (const path of ["no_such_field", "consumer_secret", "create_time", "key_state", "application_id"]) {
          await rejectsWith(
            km.updateApplication({ application: { consumerKey: app.consumerKey, clientName: "changed" }, updateMask: { paths: ["client_name", path] } }),
            Code.InvalidArgument,
            new RegExp(`update_mask: cannot update "${path}"`),
          );
        }
        assert.equal((await km.retrieveApplication({ selector: { case: "consumerKey", value: app.consumerKey } })).application?.clientName, "masked");

        const apiId = `${prefix}masked-api`;
        await subs().createApi({ api: { apiId, name: "Masked", context: `/${apiId}`, version: "1.0.0" } });
        for (const path of ["api_id", "create_time", "nope"]) {
          await rejectsWith(subs().updateApi({ api: { apiId, name: "Changed" }, updateMask: { paths: [path] } }), Code.InvalidArgument, /update_mask/);
        }
        assert.equal((await subs().getApi({ apiId })).api?.name, "Masked");

        const sub = (await subs().createSubscription({ subscription: { applicationId: randomUUID(), apiId, tier: "Gold" } })).subscription;
        assert.ok(sub);
        for (const path of ["subscription_id", "application_id", "api_id", "update_time", "tiers"]) {
          await rejectsWith(
            subs().updateSubscription({ subscription: { subscriptionId: sub.subscriptionId, tier: "Bronze" }, updateMask: { paths: ["tier", path] } }),
            Code.InvalidArgument,
            /update_mask: cannot update/,
          );
        }
        await rejectsWith(
          subs().updateSubscription({ subscription: { subscriptionId: sub.subscriptionId }, updateMask: { paths: ["state"] } }),
          Code.InvalidArgument,
          /subscription.state: is required/,
        );
        assert.equal((await subs().getSubscription({ subscriptionId: sub.subscriptionId })).subscription?.tier, "Gold");
        // A mask changes only what it names; without one, what is set.
        const masked = await subs().updateSubscription({
          subscription: { subscriptionId: sub.subscriptionId, tier: "Bronze", state: SubscriptionState.BLOCKED },
          updateMask: { paths: ["state"] },
        });
        assert.equal(masked.subscription?.tier, "Gold");
        assert.equal(masked.subscription?.state, SubscriptionState.BLOCKED);
        const unmasked = await subs().updateSubscription({ subscription: { subscriptionId: sub.subscriptionId, tier: "Bronze" } });
        assert.equal(unmasked.subscription?.tier, "Bronze");
        assert.equal(unmasked.subscription?.state, SubscriptionState.BLOCKED);

        const resourceApi = `${prefix}masked-resources`;
        await km.registerNewResource({ resource: { apiId: resourceApi, resources: sampleResources(), properties: { context: "/masked" } } });
        for (const path of ["api_id", "create_time", "resource"]) {
          await rejectsWith(
            km.updateRegisteredResource({ resource: { apiId: resourceApi, resources: [] }, updateMask: { paths: [path] } }),
            Code.InvalidArgument,
            /update_mask: cannot update/,
          );
        }
        await rejectsWith(
          km.updateRegisteredResource({ resource: { apiId: resourceApi } }),
          Code.InvalidArgument,
          /update_mask: give resources, properties or both/,
        );
        assert.equal((await km.getResourceByApiId({ apiId: resourceApi })).resource?.resources.length, 2);
        const onlyProperties = await km.updateRegisteredResource({ resource: { apiId: resourceApi, properties: { context: "/moved" } } });
        assert.equal(onlyProperties.resource?.resources.length, 2, "resources kept");
        assert.deepEqual(onlyProperties.resource?.properties, { context: "/moved" });
        const cleared = await km.updateRegisteredResource({ resource: { apiId: resourceApi, resources: [] }, updateMask: { paths: ["resources"] } });
        assert.equal(cleared.resource?.resources.length, 0, "a named empty list clears");
        assert.deepEqual(cleared.resource?.properties, { context: "/moved" }, "properties kept");
      });
    });
  }

  test("a page token stays good after a restart: its key comes from the encryption key", async () => {
    for (const username of ["restart-1", "restart-2"]) await server.client(UserService).createUser({ user: { username }, password: "correct horse battery" });
    const first = await server.client(UserService).listUsers({ pageSize: 1 });
    assert.ok(first.nextPageToken);
    await server.close();
    server = await start();
    const next = await server.client(UserService).listUsers({ pageSize: 1, pageToken: first.nextPageToken });
    assert.equal(next.users.length, 1);
    assert.ok((next.users[0]?.username ?? "") > (first.users[0]?.username ?? ""));
  });
});

test("paging bounds are configuration: a default above the maximum is refused", () => {
  assert.throws(
    () => loadConfig({ file: undefined, env: { KM_PAGING_DEFAULT_PAGE_SIZE: "50", KM_PAGING_MAX_PAGE_SIZE: "10" } }),
    (err: unknown) => err instanceof ConfigError && /default_page_size cannot exceed max_page_size/.test(err.message),
  );
  const config = loadConfig({ file: undefined, env: { KM_PAGING_DEFAULT_PAGE_SIZE: "20", KM_PAGING_MAX_PAGE_SIZE: "200" } });
  assert.deepEqual(config.paging, { defaultPageSize: 20, maxPageSize: 200 });
});
