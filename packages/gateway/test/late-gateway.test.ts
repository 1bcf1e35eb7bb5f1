import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { UserService } from "@keymanager/client";
import { describeOnEachDatabase } from "../../../test/support/each-database.js";
import { startServer, type TestServer } from "../../../test/support/server.js";
import { createGatewayValidator, type GatewayValidator } from "../src/index.js";
import { createFixture, type Fixture, REQUESTS, serverAnswer } from "./fixture.js";

/**
 * A gateway that starts after a revocation by consumer key or by end user learns it from the
 * Watch snapshot (the revocation is kept in the database while a token it refuses may live), and
 * refuses in process, as ValidateToken does, the JWTs issued before it, even once the revoked
 * tokens themselves have been purged.
 */
describeOnEachDatabase("a gateway started after a bulk revocation", (database) => {
  let server: TestServer;
  let fixture: Fixture;
  const validators: GatewayValidator[] = [];

  before(async () => {
    // Revoked tokens are purged at once when asked (retain_seconds 0): then only the kept
    // revocation by consumer key or end user can refuse them.
    server = await startServer({ databaseUrl: database.url(), overrides: { housekeeping: { retain_seconds: 0, purge_interval_seconds: 0 } } });
    fixture = await createFixture(server);
  });
  after(async () => {
    await Promise.all(validators.map((v) => v.close()));
    await server?.close();
  });

  async function lateGateway(): Promise<GatewayValidator> {
    const v = createGatewayValidator({ target: `127.0.0.1:${server.grpcPort}`, token: fixture.gatewayToken });
    validators.push(v);
    await v.ready();
    return v;
  }

  /** The request and the JWT decided in process by `v`, equal to ValidateToken's answer. */
  async function decidedLocally(v: GatewayValidator, token: string, expectedCode: number, what: string): Promise<void> {
    const input = { ...(REQUESTS[0] as (typeof REQUESTS)[number]), token };
    const remoteBefore = v.stats().remote;
    const answer = await v.validate(input);
    assert.equal(v.stats().remote, remoteBefore, `${what}: decided in process`);
    assert.equal(answer.statusCode, expectedCode, what);
    // Field by field; a purged token the server no longer knows (its description says so), the
    // copy knows as revoked (its description says that).
    const { statusDescription: _mine, ...decided } = answer;
    const { statusDescription: _its, ...expected } = await serverAnswer(server, input);
    assert.deepEqual(decided, expected, `${what}: as ValidateToken answers`);
  }

  test("a consumer key's secret regenerated, then an end user's password changed: a gateway started after each refuses the JWTs issued before, accepts those after", async () => {
    const jwtApp = fixture.clients.get("App subscribed, JWT") ?? assert.fail("JWT app");
    const before = fixture.tokens.find((t) => t.name === "JWT app token")?.token ?? assert.fail("JWT app token");
    const early = await lateGateway();
    await decidedLocally(early, before, 0, "before any revocation");

    const { consumerSecret } = await server.grpc.regenerateConsumerSecret({ consumerKey: jwtApp.clientId });
    assert.ok(((await server.app.housekeeping?.purge())?.tokens ?? 0) >= 2, "the revoked tokens purged");
    // Tokens carry whole-second issue times: the next one is issued in a later second.
    await sleep(1100);
    const issue = async (user: boolean) =>
      (
        await server.grpc.getNewApplicationAccessToken({
          request: {
            clientId: jwtApp.clientId,
            clientSecret: consumerSecret,
            scopes: ["order:admin", "order:read"],
            validityPeriodSeconds: 3600n,
            ...(user
              ? { grantType: "password", resourceOwnerUsername: "alice", resourceOwnerPassword: "alice-password" }
              : { grantType: "client_credentials" }),
          },
        })
      ).token?.accessToken ?? assert.fail("a token");
    const after = await issue(false);
    const userJwt = await issue(true);

    const late = await lateGateway();
    assert.equal(late.stats().copy?.snapshots, 1);
    await decidedLocally(late, before, 900901, "a JWT issued before its consumer key's revocation");
    await decidedLocally(late, after, 0, "a JWT of the new secret");
    await decidedLocally(late, userJwt, 0, "a user's JWT before the user's revocation");

    // A JWT of the same whole second as a revocation is asked of the server (same-second.test.ts):
    // the revocation comes a later second, so the copy decides it.
    await sleep(1100);
    await server.client(UserService).setUserPassword({ username: "alice", password: "another-password" });
    assert.ok(((await server.app.housekeeping?.purge())?.tokens ?? 0) >= 1, "the user's revoked tokens purged");
    const later = await lateGateway();
    await decidedLocally(later, userJwt, 900901, "a user's JWT issued before the password changed");
    await decidedLocally(later, after, 0, "an application JWT of the same key: not the user's");
    await decidedLocally(later, before, 900901, "the consumer key's revocation still kept");
  });
});
