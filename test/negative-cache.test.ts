import assert from "node:assert/strict";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { describe, test } from "node:test";
import { SubscriptionService } from "../gen/keymanager/v1/subscription_service_pb.js";
import { TokenValidationService } from "../gen/keymanager/v1/token_validation_service_pb.js";
import { AuthLevel } from "../gen/keymanager/v1/types_pb.js";
import { ChangeEvents } from "../src/domain/change-events.js";
import type { TokenRecord } from "../src/domain/model/index.js";
import { DEFAULT_CACHE_LIMITS, ValidationCache } from "../src/validation/validation-cache.js";
import { createRequest } from "./support/fixtures.js";
import { scrape, total } from "./support/prometheus.js";
import { startServer } from "./support/server.js";

/**
 * Unknown tokens (issue #11, point 7): anyone can make up any number of them, and each "not
 * found" was kept beside real entries (343k of them took RSS from 154 MB to 1.07 GB). They are
 * now kept apart, bounded by bytes (validation.negative_cache_bytes).
 */

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");
const MiB = 1024 * 1024;

test("100k distinct unknown tokens keep the unknown entries within their byte budget, and known tokens stay cached", async () => {
  const budget = 1 * MiB;
  const cache = new ValidationCache(new ChangeEvents(), { ...DEFAULT_CACHE_LIMITS, negativeBytes: budget });
  const known = { tokenHash: sha256("known"), consumerKey: "ck", scopes: ["read"] } as unknown as TokenRecord;
  assert.equal(await cache.through(cache.tokens, known.tokenHash, async () => known), known);
  let reads = 0;
  const unknown = async () => {
    reads++;
    return undefined;
  };
  const N = 120_000;
  const hashes = Array.from({ length: N }, (_, i) => sha256(`made-up ${i}`));
  for (const hash of hashes) assert.equal(await cache.through(cache.tokens, hash, unknown), undefined);
  console.log(
    `${N} unknown tokens, budget ${budget} bytes: calculatedSize ${cache.unknown.calculatedSize}, ${cache.unknown.size} entries kept, ` +
      `${cache.unknownStats.evictions} evicted`,
  );
  assert.equal(reads, N, "each was looked up once");
  assert.ok(cache.unknown.calculatedSize <= budget, `within the budget (${cache.unknown.calculatedSize})`);
  assert.ok(cache.unknown.calculatedSize > budget * 0.9, "the budget was used, not left empty");
  assert.ok(cache.unknownStats.evictions >= N - cache.unknown.size, "the least recently used were pushed out");
  assert.equal(cache.tokens.size, 1, "no unknown token went among the known ones");
  // The known token is still answered from memory; the latest unknown ones too; the oldest are read again.
  const never = async (): Promise<TokenRecord | undefined> => assert.fail("read from the database");
  assert.equal(cache.read(cache.tokens, known.tokenHash, never), known);
  assert.equal(cache.read(cache.tokens, hashes[N - 1] as string, never), undefined);
  assert.equal(await cache.through(cache.tokens, hashes[0] as string, unknown), undefined);
  assert.equal(reads, N + 1, "the oldest unknown token was evicted and read again");
  // A token issued after it was looked up as unknown is known at once (its change drops the "not found").
  const late = hashes[N - 2] as string;
  cache.invalidate({ kind: "token", tokenHash: late });
  const record = { ...known, tokenHash: late } as TokenRecord;
  assert.equal(await cache.through(cache.tokens, late, async () => record), record);
  cache.close();
});

test("validation.negative_cache_bytes bounds a real server's unknown tokens (keymanager_cache_bytes), their answers are not kept as decisions, and a known token still validates", async () => {
  const budget = 256 * 1024;
  const server = await startServer({ overrides: { validation: { negative_cache_bytes: budget } } });
  try {
    const API = { apiId: "guarded", name: "Guarded", context: "/guarded", version: "1.0.0", publisher: "admin", apiTier: "Gold" };
    const subs = server.client(SubscriptionService);
    await subs.createApi({ api: API });
    await server.grpc.registerNewResource({
      resource: {
        apiId: API.apiId,
        resources: [{ uriTemplate: "/items", httpVerb: "GET", authLevel: AuthLevel.ANY, scopes: [], throttlingTier: "Unlimited" }],
      },
    });
    const applicationId = randomUUID();
    const app = (await server.grpc.createApplication(createRequest({ applicationId, grantTypes: ["client_credentials"], scopes: [] }))).application;
    assert.ok(app);
    await subs.createSubscription({ subscription: { applicationId, apiId: API.apiId, tier: "Gold" } });
    const issued = await fetch(`http://127.0.0.1:${server.httpPort}/oauth2/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "client_credentials", client_id: app.consumerKey, client_secret: app.consumerSecret }).toString(),
    });
    const token = ((await issued.json()) as { access_token: string }).access_token;
    const gateway = server.client(TokenValidationService);
    const ask = (accessToken: string) =>
      gateway.validateToken({ context: API.context, version: API.version, accessToken, matchingResource: "/items", httpVerb: "GET" });
    assert.equal((await ask(token)).statusCode, 0);

    // 2000 unknown tokens need ~500 KiB: twice the budget.
    const N = 2000;
    for (let i = 0; i < N; i += 250) {
      const batch = Array.from({ length: 250 }, () => ask(randomBytes(32).toString("base64url")));
      for (const answer of await Promise.all(batch)) assert.equal(answer.statusCode, 900901);
    }
    const { samples } = await scrape(`http://127.0.0.1:${server.httpPort}/metrics`);
    const bytes = total(samples, "keymanager_cache_bytes", { cache: "validation_unknown" });
    const entries = total(samples, "keymanager_cache_entries", { cache: "validation_unknown" });
    const decisions = total(samples, "keymanager_cache_entries", { cache: "decisions" });
    console.log(`${N} unknown tokens on a server, negative_cache_bytes ${budget}: ${bytes} bytes, ${entries} entries kept; ${decisions} decisions kept`);
    assert.ok(bytes > 0 && bytes <= budget, `within the budget (${bytes})`);
    assert.ok(entries < N, "older ones were evicted");
    assert.ok(decisions < 10, `refusals of unknown tokens are not kept as decisions (${decisions})`);
    assert.equal((await ask(token)).statusCode, 0, "the known token still validates");

    // A known token's refusal (revoked here; expired likewise) is kept as a decision: there are
    // only as many as were issued, and a gateway retrying one should not redo the whole check.
    const revoked = await fetch(`http://127.0.0.1:${server.httpPort}/oauth2/revoke`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token, client_id: app.consumerKey, client_secret: app.consumerSecret }).toString(),
    });
    assert.equal(revoked.status, 200);
    for (let i = 0; i < 3; i++) assert.equal((await ask(token)).statusCode, 900901);
    const after = total((await scrape(`http://127.0.0.1:${server.httpPort}/metrics`)).samples, "keymanager_cache_entries", { cache: "decisions" });
    assert.ok(after >= 1, `the revoked token's refusal is kept (${after} decisions)`);
  } finally {
    await server.close();
  }
});

describe("configuration", () => {
  test("negative_cache_bytes has a default of 16 MiB and a floor", async () => {
    const { loadConfig } = await import("../src/config/load.js");
    assert.equal(loadConfig({ file: undefined, env: {} }).validation.negativeCacheBytes, 16 * MiB);
    assert.throws(() => loadConfig({ file: undefined, env: {}, overrides: { validation: { negative_cache_bytes: 10 } } }), /negative_cache_bytes/);
  });
});

test("an unknown token's refusal is worked out again on every call: after its API changes it names the API as it now is", async () => {
  const server = await startServer();
  try {
    const API = { apiId: "renamed", name: "Before", context: "/renamed", version: "1.0.0", publisher: "admin", apiTier: "Gold" };
    const subs = server.client(SubscriptionService);
    await subs.createApi({ api: API });
    await server.grpc.registerNewResource({
      resource: {
        apiId: API.apiId,
        resources: [{ uriTemplate: "/items", httpVerb: "GET", authLevel: AuthLevel.ANY, scopes: [], throttlingTier: "Unlimited" }],
      },
    });
    const gateway = server.client(TokenValidationService);
    const unknown = randomBytes(32).toString("base64url");
    const ask = () => gateway.validateToken({ context: API.context, version: API.version, accessToken: unknown, matchingResource: "/items", httpVerb: "GET" });
    const first = await ask();
    const second = await ask();
    assert.equal(first.statusCode, 900901);
    assert.deepEqual(second, first, "the same refusal, field by field");
    assert.equal(first.apiName, "Before");
    assert.equal(first.apiTier, "Gold");
    await subs.updateApi({ api: { apiId: API.apiId, name: "After", apiTier: "Silver" }, updateMask: { paths: ["name", "api_tier"] } });
    const after = await ask();
    assert.equal(after.statusCode, 900901);
    assert.equal(after.apiName, "After");
    assert.equal(after.apiTier, "Silver");
    // Its resource updated with another tier: named as it now is too.
    await server.grpc.updateRegisteredResource({
      resource: {
        apiId: API.apiId,
        resources: [{ uriTemplate: "/items", httpVerb: "GET", authLevel: AuthLevel.ANY, scopes: [], throttlingTier: "10PerMin" }],
      },
    });
    assert.equal((await ask()).resourceTier, "10PerMin");
  } finally {
    await server.close();
  }
});
