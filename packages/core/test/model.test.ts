import assert from "node:assert/strict";
import { test } from "node:test";
import { isActive, isApplicationToken, type TokenFacts } from "@keymanager/core";

const token = (over: Partial<TokenFacts> = {}): TokenFacts => ({
  consumerKey: "ck",
  endUser: "",
  scopes: [],
  tokenType: "OPAQUE",
  issuedAt: new Date(1_000),
  expiresAt: new Date(2_000),
  revokedAt: undefined,
  ...over,
});

test("a token is active until it expires (exclusive) or is revoked", () => {
  assert.equal(isActive(token(), 1_999), true);
  assert.equal(isActive(token(), 2_000), false);
  assert.equal(isActive(token({ revokedAt: new Date(1_500) }), 1_600), false);
});

test("an application token has no end user", () => {
  assert.equal(isApplicationToken(token()), true);
  assert.equal(isApplicationToken(token({ endUser: "alice" })), false);
});
