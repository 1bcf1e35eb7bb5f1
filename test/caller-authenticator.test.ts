import assert from "node:assert/strict";
import { test } from "node:test";
import { CallerAuthenticator } from "../src/auth/caller-authenticator.js";
import { ChangeEvents } from "../src/domain/change-events.js";
import type { OAuthClient, TokenRecord } from "../src/domain/model/index.js";
import { hashToken } from "../src/oauth/token-hash.js";
import { TestClock } from "./support/clock.js";

const clock = new TestClock();
const TOKEN = "caller-token-0123456789";

function record(): TokenRecord {
  const now = clock.now();
  return {
    id: "t1",
    tokenHash: hashToken(TOKEN),
    consumerKey: "gw",
    endUser: "",
    scopes: ["km:gateway"],
    tokenType: "OPAQUE",
    grantType: "client_credentials",
    issuedAt: now,
    expiresAt: new Date(now.getTime() + 3_600_000),
    revokedAt: undefined,
    refreshHash: undefined,
    refreshExpiresAt: undefined,
    refreshUsedAt: undefined,
    familyId: "f",
  };
}

const client = { consumerKey: "gw", appOwner: "", groupId: "", system: true } as OAuthClient;

/** A token look-up the test answers by hand, counting how often the database was asked. */
function gatedLookup() {
  let reads = 0;
  const gates: Array<() => void> = [];
  return {
    lookup: {
      token: async () => {
        reads++;
        await new Promise<void>((r) => gates.push(r));
        return record();
      },
      client: async () => client,
    },
    releaseAll: () => {
      for (const r of gates.splice(0)) r();
    },
    reads: () => reads,
  };
}

test("concurrent calls with one unknown-to-the-cache token share one look-up, then answer from memory", async () => {
  const db = gatedLookup();
  const auth = new CallerAuthenticator(db.lookup, clock, new ChangeEvents());
  const calls = Array.from({ length: 50 }, () => auth.authenticate(`Bearer ${TOKEN}`));
  await Promise.resolve();
  db.releaseAll();
  const principals = await Promise.all(calls);
  assert.equal(db.reads(), 1);
  assert.ok(principals.every((p) => p.clientId === "gw"));
  const cached = auth.authenticate(`Bearer ${TOKEN}`);
  assert.ok(!(cached instanceof Promise), "answered synchronously from memory");
});

test("a revocation that arrives during the look-up: the answer is not kept", async () => {
  const db = gatedLookup();
  const events = new ChangeEvents();
  const auth = new CallerAuthenticator(db.lookup, clock, events);
  const first = auth.authenticate(`Bearer ${TOKEN}`);
  await Promise.resolve();
  events.publish({ kind: "token", tokenHash: hashToken(TOKEN) });
  db.releaseAll();
  await first;
  const again = auth.authenticate(`Bearer ${TOKEN}`);
  assert.ok(again instanceof Promise, "looked up again");
  await Promise.resolve();
  db.releaseAll();
  await again;
  assert.equal(db.reads(), 2);
});
