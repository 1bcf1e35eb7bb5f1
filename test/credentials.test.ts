import assert from "node:assert/strict";
import { test } from "node:test";
import { newConsumerKey, newConsumerSecret } from "../src/keymanager/credentials.js";

test("consumer keys and secrets never start with '-' (a command line would read them as an option)", () => {
  // One in 64 base64url texts starts with "-": 20,000 draws of each would show ~300 if unchecked.
  for (let i = 0; i < 20_000; i++) {
    const key = newConsumerKey();
    const secret = newConsumerSecret();
    assert.ok(!key.startsWith("-") && !secret.startsWith("-"), `${key} / ${secret}`);
    assert.match(key, /^[A-Za-z0-9_][A-Za-z0-9_-]{26}$/);
    assert.match(secret, /^[A-Za-z0-9_][A-Za-z0-9_-]{42}$/);
  }
});
