import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type AsyncFacts, type Decision, decide, decideAsync, decideEager, MAX_DESCRIPTION, Status, type SubscriptionState } from "@keymanager/core";
import fc from "fast-check";
import { KeyManagerUnavailable, MemoryFacts, mapping, NOW, pizzaApi, request, resource, subscription, token } from "./support.js";

function codeOf(d: Decision): number {
  return d.status.code;
}

describe("decide: ValidateToken's checks in order", () => {
  test("authorized: every fact read once, in order, and returned", () => {
    const facts = new MemoryFacts();
    const d = decide(facts, request());
    assert.equal(d.authorized, true);
    assert.equal(d.status, Status.OK);
    assert.equal(d.description, "");
    assert.deepEqual(facts.asked, ["api", "resources", "token", "keyMapping", "subscription"]);
    assert.equal(d.api, pizzaApi);
    assert.equal(d.keyMapping, mapping);
    assert.equal(d.subscription?.tier, "Gold");
    assert.equal(d.token?.consumerKey, "ck-1");
  });

  test("900908 no API: nothing else is read; the context's trailing '/' is ignored", () => {
    const facts = new MemoryFacts();
    const d = decide(facts, request({ context: "/nope", version: "2.0" }));
    assert.equal(codeOf(d), 900908);
    assert.equal(d.description, 'no API with context "/nope" and version "2.0"');
    assert.deepEqual(facts.asked, ["api"]);
    assert.equal(decide(new MemoryFacts(), request({ context: "/pizzashack/" })).authorized, true);
  });

  test("900906 no resource: by template text, verb in any case; the token is not read", () => {
    const facts = new MemoryFacts();
    const d = decide(facts, request({ matchingResource: "/order/{id}" }));
    assert.equal(codeOf(d), 900906);
    assert.match(d.description, /API "PizzaShack" \(context "\/pizzashack", version "1.0.0"\) has no resource "GET" "\/order\/\{id\}"/);
    assert.deepEqual(facts.asked, ["api", "resources"]);
    assert.equal(d.api, pizzaApi);
    assert.equal(codeOf(decide(new MemoryFacts(), request({ httpVerb: "POST" }))), 900906);
    assert.equal(decide(new MemoryFacts(), request({ httpVerb: "get" })).authorized, true);
    const none = decide(new MemoryFacts({ resourceList: undefined }), request());
    assert.equal(codeOf(none), 900906);
    assert.match(none.description, /has no resources registered/);
  });

  test("request path: matched against the API's templates after context and version; query ignored", () => {
    const facts = () =>
      new MemoryFacts({
        resourceList: [resource(), resource({ uriTemplate: "/order/{id}", scopes: ["order"] }), resource({ uriTemplate: "/*", authLevel: "NONE" })],
      });
    const path = (requestPath: string, over = {}) => decide(facts(), request({ matchingResource: "", requestPath, ...over }));
    assert.equal(path("/pizzashack/1.0.0/menu?x=1").resource?.uriTemplate, "/menu");
    assert.equal(path("/pizzashack/menu").resource?.uriTemplate, "/menu");
    assert.equal(path("/pizzashack/1.0.0/order/7").resource?.uriTemplate, "/order/{id}");
    assert.equal(codeOf(path("/pizzashack/1.0.0/order/7")), 900910);
    const open = path("/pizzashack/1.0.0/anything/else", { hasToken: false });
    assert.deepEqual([open.authorized, open.resource?.uriTemplate], [true, "/*"]);
    const outside = path("/burgers/1.0.0/menu?secret=1");
    assert.equal(codeOf(outside), 900906);
    assert.equal(
      outside.description,
      'request path "/burgers/1.0.0/menu" is not under the context of API "PizzaShack" (context "/pizzashack", version "1.0.0")',
    );
    const dots = path("/pizzashack/1.0.0/../admin");
    assert.equal(codeOf(dots), 900906);
    assert.match(dots.description, /cannot be matched/);
    const nothing = decide(new MemoryFacts(), request({ matchingResource: "", requestPath: "/pizzashack/1.0.0/order/1?token=abc" }));
    assert.equal(nothing.description, 'no resource of API "PizzaShack" (context "/pizzashack", version "1.0.0") matches "GET" "/pizzashack/1.0.0/order/1"');
  });

  test("auth level NONE: authorized without a token, which is never read", () => {
    const facts = new MemoryFacts({ resourceList: [resource({ authLevel: "NONE" })] });
    const d = decide(facts, request({ hasToken: false }));
    assert.equal(d.authorized, true);
    assert.deepEqual(facts.asked, ["api", "resources"]);
    // The gateway's required level wins over the registered one.
    assert.equal(decide(new MemoryFacts(), request({ hasToken: false, requiredAuthLevel: "NONE" })).authorized, true);
    assert.equal(
      codeOf(decide(new MemoryFacts({ resourceList: [resource({ authLevel: "NONE" })] }), request({ hasToken: false, requiredAuthLevel: "ANY" }))),
      900902,
    );
  });

  test("900902 no token; 900901 unknown, revoked, expired (at exactly its expiry); 900912 key manager unavailable", () => {
    const missing = new MemoryFacts();
    assert.equal(codeOf(decide(missing, request({ hasToken: false }))), 900902);
    assert.deepEqual(missing.asked, ["api", "resources"]);
    const cases: [MemoryFacts, RegExp][] = [
      [new MemoryFacts({ tokenFacts: undefined }), /not known here/],
      [new MemoryFacts({ tokenFacts: token({ revokedAt: new Date(NOW - 1) }) }), /was revoked/],
      [new MemoryFacts({ tokenFacts: token({ expiresAt: new Date(NOW) }) }), /expired at 2026-01-01T00:00:00.000Z/],
      // Expired and revoked: expired (a gateway no longer knows of the revocation once the token expired).
      [new MemoryFacts({ tokenFacts: token({ expiresAt: new Date(NOW), revokedAt: new Date(NOW - 1) }) }), /expired at 2026-01-01T00:00:00.000Z/],
    ];
    for (const [facts, description] of cases) {
      const d = decide(facts, request());
      assert.equal(codeOf(d), 900901);
      assert.match(d.description, description);
      assert.equal(d.token, undefined, "an invalid token's facts are not reported");
      assert.deepEqual(facts.asked, ["api", "resources", "token"]);
    }
    assert.equal(decide(new MemoryFacts({ tokenFacts: token({ expiresAt: new Date(NOW + 1) }) }), request()).authorized, true);
    const down = decide(new MemoryFacts({ tokenFacts: new KeyManagerUnavailable("corp-idp") }), request());
    assert.equal(codeOf(down), 900912);
    assert.equal(down.description, 'key manager "corp-idp" cannot be reached to check the access token');
  });

  test("900905 token type against the auth level", () => {
    const user = token({ endUser: "bob" });
    assert.equal(codeOf(decide(new MemoryFacts({ tokenFacts: user }), request({ requiredAuthLevel: "APPLICATION" }))), 900905);
    assert.equal(codeOf(decide(new MemoryFacts(), request({ requiredAuthLevel: "APPLICATION_USER" }))), 900905);
    assert.equal(decide(new MemoryFacts({ tokenFacts: user }), request({ requiredAuthLevel: "APPLICATION_USER" })).authorized, true);
    assert.equal(decide(new MemoryFacts({ tokenFacts: user }), request({ requiredAuthLevel: "ANY" })).authorized, true);
    const d = decide(new MemoryFacts({ tokenFacts: user, resourceList: [resource({ authLevel: "APPLICATION" })] }), request());
    assert.match(d.description, /needs an application token \(auth level APPLICATION\); this is a user token/);
    assert.equal(d.token?.endUser, "bob");
  });

  test("900908 no key mapping, no subscription", () => {
    const unmapped = new MemoryFacts({ mappings: [] });
    assert.equal(codeOf(decide(unmapped, request())), 900908);
    assert.deepEqual(unmapped.asked, ["api", "resources", "token", "keyMapping"]);
    const d = decide(new MemoryFacts({ subscriptions: [] }), request());
    assert.equal(codeOf(d), 900908);
    assert.equal(
      d.description,
      'application "PizzaApp" (id "896658a0-b4ee-4535-bbfa-806c894a4015") has no subscription to API "PizzaShack" (context "/pizzashack", version "1.0.0")',
    );
    assert.equal(d.keyMapping, mapping);
  });

  test("subscription states: BLOCKED 900907, PROD_ONLY_BLOCKED with PRODUCTION keys 900907, ON_HOLD and REJECTED 900909", () => {
    const state = (s: SubscriptionState, keyType: "PRODUCTION" | "SANDBOX" = "PRODUCTION") =>
      decide(new MemoryFacts({ subscriptions: [subscription({ state: s })], mappings: [{ ...mapping, keyType }] }), request());
    assert.equal(codeOf(state("BLOCKED")), 900907);
    assert.equal(codeOf(state("BLOCKED", "SANDBOX")), 900907);
    assert.equal(codeOf(state("PROD_ONLY_BLOCKED")), 900907);
    assert.match(state("PROD_ONLY_BLOCKED").description, /is PROD_ONLY_BLOCKED and the token is of its PRODUCTION keys/);
    assert.equal(state("PROD_ONLY_BLOCKED", "SANDBOX").authorized, true);
    assert.equal(codeOf(state("ON_HOLD")), 900909);
    assert.match(state("REJECTED").description, /is REJECTED$/);
    assert.equal(codeOf(state("REJECTED")), 900909);
    assert.equal(state("TIER_UPDATE_PENDING").authorized, true);
    assert.equal(state("UNBLOCKED").authorized, true);
  });

  test("900910: the token needs one of the resource's scopes, when it names any", () => {
    const scoped = (scopes: string[], tokenScopes: string[]) =>
      decide(new MemoryFacts({ resourceList: [resource({ scopes })], tokenFacts: token({ scopes: tokenScopes }) }), request());
    assert.equal(codeOf(scoped(["read", "write"], ["default"])), 900910);
    assert.equal(scoped(["read", "write"], ["write"]).authorized, true);
    assert.equal(scoped([], []).authorized, true);
    assert.equal(
      scoped(["read"], []).description,
      'resource GET "/menu" of API "PizzaShack" (context "/pizzashack", version "1.0.0") needs one of the scopes "read"; the token has none',
    );
  });

  test("descriptions are bounded, and supplied text is cut and escaped", () => {
    const long = `x${"\u0000y".repeat(5_000)}`;
    const d = decide(new MemoryFacts(), request({ context: `/${long}`, version: long }));
    assert.ok(d.description.length <= MAX_DESCRIPTION, `${d.description.length}`);
    assert.ok(d.description.length < 20_000 / 10);
    assert.ok(!d.description.includes("\u0000"));
    const many = Array.from({ length: 500 }, (_, i) => `scope-${i}-${"s".repeat(200)}`);
    const scopes = decide(
      new MemoryFacts({
        apis: [{ ...pizzaApi, name: "n".repeat(10_000) }],
        resourceList: [resource({ scopes: many })],
        tokenFacts: token({ scopes: many.map((s) => `${s}!`) }),
      }),
      request(),
    );
    assert.equal(codeOf(scopes), 900910);
    assert.ok(scopes.description.length <= MAX_DESCRIPTION);
    assert.match(scopes.description, /and 495 more/);
  });
});

describe("decideAsync answers as decide does", () => {
  const states = fc.constantFrom("UNBLOCKED", "BLOCKED", "PROD_ONLY_BLOCKED", "ON_HOLD", "REJECTED", "TIER_UPDATE_PENDING" as const);
  const world = fc.record({
    hasApi: fc.boolean(),
    authLevel: fc.constantFrom("APPLICATION", "APPLICATION_USER", "ANY", "NONE" as const),
    required: fc.constantFrom(undefined, "APPLICATION", "APPLICATION_USER", "ANY", "NONE" as const),
    template: fc.constantFrom("/menu", "/order/{id}"),
    hasToken: fc.boolean(),
    token: fc.constantFrom("active", "user", "revoked", "expired", "unknown", "unavailable"),
    mapped: fc.boolean(),
    keyType: fc.constantFrom("PRODUCTION", "SANDBOX" as const),
    subscribed: fc.boolean(),
    state: states,
    scopes: fc.subarray(["a", "b"]),
    tokenScopes: fc.subarray(["a", "b", "c"]),
    /** For decideEager: which facts are answered later (the others at once). */
    later: fc.record({ api: fc.boolean(), resources: fc.boolean(), token: fc.boolean(), keyMapping: fc.boolean(), subscription: fc.boolean() }),
  });

  test("for every combination of facts (fast-check), with every fact answered later", async () => {
    await fc.assert(
      fc.asyncProperty(world, async (w) => {
        const tokenFacts = {
          active: token({ scopes: w.tokenScopes }),
          user: token({ endUser: "bob", scopes: w.tokenScopes }),
          revoked: token({ revokedAt: new Date(NOW - 1) }),
          expired: token({ expiresAt: new Date(NOW - 1) }),
          unknown: undefined,
          unavailable: new KeyManagerUnavailable("corp"),
        }[w.token];
        const make = () =>
          new MemoryFacts({
            apis: w.hasApi ? [pizzaApi] : [],
            resourceList: [resource({ uriTemplate: w.template, authLevel: w.authLevel, scopes: w.scopes })],
            tokenFacts,
            mappings: w.mapped ? [{ ...mapping, keyType: w.keyType }] : [],
            subscriptions: w.subscribed ? [subscription({ state: w.state })] : [],
          });
        const req = request({ hasToken: w.hasToken, requiredAuthLevel: w.required });
        const sync = make();
        const later = make();
        const asyncFacts: AsyncFacts = {
          api: async (c, v) => later.api(c, v),
          resources: (a) => Promise.resolve(later.resources(a)),
          token: async () => later.token(),
          keyMapping: async (k) => later.keyMapping(k),
          subscription: (a, b) => later.subscription(a, b),
        };
        const [a, b] = [decide(sync, req), await decideAsync(asyncFacts, req)];
        assert.deepEqual({ ...b, resource: b.resource?.uriTemplate }, { ...a, resource: a.resource?.uriTemplate });
        assert.deepEqual(later.asked, sync.asked);
        // decideEager: some facts at once, some later; an answer at once exactly when no fact it asked for came later.
        const mixed = make();
        const eagerFacts: AsyncFacts = {
          api: (c, v) => (w.later.api ? Promise.resolve(mixed.api(c, v)) : mixed.api(c, v)),
          resources: (x) => (w.later.resources ? Promise.resolve(mixed.resources(x)) : mixed.resources(x)),
          token: () => (w.later.token ? Promise.resolve(mixed.token()) : mixed.token()),
          keyMapping: (k) => (w.later.keyMapping ? Promise.resolve(mixed.keyMapping(k)) : mixed.keyMapping(k)),
          subscription: (x, y) => (w.later.subscription ? Promise.resolve(mixed.subscription(x, y)) : mixed.subscription(x, y)),
        };
        const eager = decideEager(eagerFacts, req);
        const waited = mixed.asked.some((fact) => w.later[fact as keyof typeof w.later]);
        assert.equal(eager instanceof Promise, waited);
        const c = await eager;
        assert.deepEqual({ ...c, resource: c.resource?.uriTemplate }, { ...a, resource: a.resource?.uriTemplate });
        assert.deepEqual(mixed.asked, sync.asked);
        assert.equal(a.authorized, a.status.code === 0);
        assert.equal(a.description === "", a.authorized);
      }),
      { numRuns: 1000 },
    );
  });

  test("a fact that fails rejects the decision", async () => {
    const failing: AsyncFacts = { ...new MemoryFacts(), api: () => Promise.reject(new Error("database down")) } as unknown as AsyncFacts;
    await assert.rejects(decideAsync(failing, request()), /database down/);
  });
});
