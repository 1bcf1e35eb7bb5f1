import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { TestClock } from "./support/clock.js";
import { createRequest } from "./support/fixtures.js";
import { startServer, type TestServer } from "./support/server.js";

const clock = new TestClock();
let server: TestServer;
before(async () => {
  server = await startServer({ clock, overrides: { housekeeping: { retain_seconds: 3600 } } });
});
after(() => server.close());

test("the purge deletes tokens ended before the retention window and nothing else", async () => {
  const app = (await server.grpc.createApplication(createRequest())).application;
  assert.ok(app);
  const issue = async (validityPeriodSeconds: bigint) =>
    (
      await server.grpc.getNewApplicationAccessToken({
        request: { clientId: app.consumerKey, clientSecret: app.consumerSecret, grantType: "client_credentials", validityPeriodSeconds },
      })
    ).token?.accessToken ?? "";
  const short = await issue(60n);
  const revoked = await issue(0n);
  await server.grpc.revokeToken({ token: revoked });
  const long = await issue(100_000n);

  clock.advance(1800);
  const housekeeping = server.app.housekeeping;
  assert.ok(housekeeping);
  assert.equal((await housekeeping.purge()).tokens, 0, "ended, but still within the retention window");
  assert.equal((await server.grpc.getActiveTokensByConsumerKey({ consumerKey: app.consumerKey })).tokens.length, 1);

  clock.advance(3600);
  const purged = await housekeeping.purge();
  assert.equal(purged.tokens, 2);
  assert.deepEqual(
    Object.keys(purged),
    ["tokens", "authorization codes", "login sessions", "bulk revocations", "used assertions", "change log entries"],
    "one purge goes through every kind of ended rows",
  );
  for (const gone of [short, revoked]) {
    const info = (await server.grpc.getTokenMetadata({ accessToken: gone })).token;
    assert.equal(info?.tokenValid, false);
    assert.equal(info?.consumerKey, "", "no record left");
  }
  assert.equal((await server.grpc.getTokenMetadata({ accessToken: long })).token?.tokenValid, true);
});
