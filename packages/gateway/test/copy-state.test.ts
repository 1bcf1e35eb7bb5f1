import assert from "node:assert/strict";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { GatewayEntityKeySchema, GatewayEntitySchema, TokenType } from "@keymanager/client";
import { CopyState } from "../src/copy-state.js";

function revocation(at: number, until: number | undefined, who: { consumerKey?: string; endUser?: string }) {
  return create(GatewayEntitySchema, {
    entity: {
      case: "tokenRevocation",
      value: { revokeTime: timestampFromMs(at), ...(until !== undefined && { expireTime: timestampFromMs(until) }), ...who },
    },
  });
}

test("revocations by consumer key and end user: the latest time and the furthest expiry hold, whatever the order; forgotten once expired, kept without an expiry", () => {
  const state = new CopyState();
  // A snapshot's entity, then an older event of the same key (the order a resume may bring).
  state.upsert(revocation(2_000, 10_000, { consumerKey: "ck" }), 5n);
  state.upsert(revocation(1_000, 20_000, { consumerKey: "ck" }), 6n);
  state.upsert(revocation(3_000, 5_000, { endUser: "alice" }), 7n);
  state.upsert(revocation(4_000, undefined, { endUser: "bob" }), 8n);
  assert.equal(state.revokedByConsumer.get("ck"), 2_000);
  assert.equal(state.revokedByUser.get("alice"), 3_000);

  state.forgetExpired(5_000);
  assert.equal(state.revokedByUser.has("alice"), false, "no token it refuses is alive after its expire_time");
  assert.equal(state.revokedByConsumer.get("ck"), 2_000, "kept to the furthest expiry (20,000)");
  state.forgetExpired(19_999);
  assert.equal(state.revokedByConsumer.has("ck"), true);
  state.forgetExpired(20_000);
  assert.equal(state.revokedByConsumer.has("ck"), false);
  state.forgetExpired(Number.MAX_SAFE_INTEGER - 1);
  assert.equal(state.revokedByUser.get("bob"), 4_000, "without an expire_time: kept");
});

test("a token revoked by itself, opaque or JWT, has what was kept of its consumer key's tokens asked again; the keys' validate_remotely is held", () => {
  const state = new CopyState();
  const revoked = (jti: string, consumerKey: string, tokenType: TokenType) =>
    create(GatewayEntitySchema, { entity: { case: "revokedToken", value: { jti, consumerKey, tokenType, expireTime: timestampFromMs(9_000) } } });
  state.upsert(revoked("j1", "ck-jwt", TokenType.JWT), 3n);
  state.upsert(revoked("o1", "ck-opaque", TokenType.OPAQUE), 4n);
  assert.equal(state.keptRecheckAt.get("ck-jwt"), 3n);
  assert.equal(state.keptRecheckAt.get("ck-opaque"), 4n);
  state.upsert(create(GatewayEntitySchema, { entity: { case: "signingKeys", value: { keys: [], issuer: "https://km", validateRemotely: true } } }), 5n);
  assert.equal(state.signing?.validateRemotely, true);
  state.upsert(create(GatewayEntitySchema, { entity: { case: "signingKeys", value: { keys: [], issuer: "https://km" } } }), 6n);
  assert.equal(state.signing?.validateRemotely, false);
});

test("scopes: an upsert keeps a scope with its role bindings, a later one replaces it, a delete by name removes it", () => {
  const state = new CopyState();
  const scope = (roles: string[]) =>
    create(GatewayEntitySchema, { entity: { case: "scope", value: { name: "kitchen:cook", displayName: "Cook", description: "d", roles } } });
  state.upsert(scope(["chef"]), 1n);
  assert.deepEqual(state.scopes.get("kitchen:cook"), { name: "kitchen:cook", displayName: "Cook", description: "d", roles: ["chef"] });
  state.upsert(scope(["chef", "sous-chef"]), 2n);
  assert.deepEqual(state.scopes.get("kitchen:cook")?.roles, ["chef", "sous-chef"]);
  state.delete(create(GatewayEntityKeySchema, { key: { case: "scopeName", value: "kitchen:cook" } }));
  assert.equal(state.scopes.has("kitchen:cook"), false);
});

test("external key managers: an event or a new snapshot listing others has kept answers asked again from its version; the same list (a restarted server's announcement) changes nothing", () => {
  const km = (name: string, tokenPattern = "") => ({
    name,
    issuer: `https://${name}.example.com`,
    jwksUri: "",
    jwtValidation: "introspection",
    tokenPattern,
    validationCacheSeconds: 60,
  });
  const snapshot = (version: bigint, ...kms: ReturnType<typeof km>[]) => {
    const state = new CopyState();
    for (const value of kms) state.upsert(create(GatewayEntitySchema, { entity: { case: "externalKeyManager", value } }), version);
    return state;
  };
  const event = (...keyManagers: ReturnType<typeof km>[]) => create(GatewayEntitySchema, { entity: { case: "externalKeyManagers", value: { keyManagers } } });

  const state = snapshot(1n, km("a"), km("b"));
  state.upsert(event(km("b"), km("a")), 2n);
  assert.equal(state.externalsChangedAt, undefined, "the same, in another order");
  state.upsert(event(km("a"), km("b", "^b-")), 3n);
  assert.equal(state.externalsChangedAt, 3n, "b's token pattern changed");
  state.upsert(event(km("a"), km("b", "^b-")), 4n);
  assert.equal(state.externalsChangedAt, 3n);

  const same = snapshot(5n, km("a"), km("b", "^b-"));
  same.replacing(state, 5n);
  assert.equal(same.externalsChangedAt, 3n, "a new snapshot with the same list: what was to be asked again still is");
  const other = snapshot(6n, km("a"));
  other.replacing(same, 6n);
  assert.equal(other.externalsChangedAt, 6n, "b gone");
  assert.deepEqual([...other.externals.keys()], ["https://a.example.com"]);
  const first = snapshot(7n, km("a"));
  first.replacing(undefined, 7n);
  assert.equal(first.externalsChangedAt, undefined, "the first snapshot: nothing kept before it");
});
