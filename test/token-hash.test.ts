import assert from "node:assert/strict";
import { test } from "node:test";
import { hashToken, newOpaqueToken } from "../src/oauth/token-hash.js";

test("opaque tokens: 43 URL-safe characters, all distinct, none starting with '-' (a command line would take it for an option)", () => {
  // Base64url starts with "-" once in 64: 5,000 draws without the redraw hold one almost surely.
  const tokens = Array.from({ length: 5000 }, newOpaqueToken);
  for (const token of tokens) {
    assert.match(token, /^[A-Za-z0-9_][A-Za-z0-9_-]{42}$/);
  }
  assert.equal(new Set(tokens).size, tokens.length);
});

test("a token is looked up by its SHA-256, hex", () => {
  assert.equal(hashToken("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
});
