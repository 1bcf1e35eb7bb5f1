import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { describeOnEachDatabase } from "../../../test/support/each-database.js";
import { startServer, type TestServer } from "../../../test/support/server.js";
import { createGatewayValidator, type GatewayValidator, type ValidateInput } from "../src/index.js";
import { createFixture, type Fixture, REQUESTS, serverAnswer } from "./fixture.js";

/**
 * `[key_manager.features] enable_self_validation_jwt = false`: gateways must not verify the
 * resident key manager's JWTs with its keys but ask the server. The Watch stream's Jwks says so
 * (validate_remotely); the library then asks ValidateToken for each JWT and keeps its answer like
 * an opaque token's. A reload of the server's configuration switching it reaches connected
 * gateways as a signing keys event, without reconnecting.
 */
describeOnEachDatabase("enable_self_validation_jwt = false", (database) => {
  let server: TestServer;
  let fixture: Fixture;
  let dir: string;
  let file: string;
  const validators: GatewayValidator[] = [];
  const streamErrors: unknown[] = [];

  /** The deployment file with the resident key manager's switch. */
  const configure = (selfValidation: boolean) => writeFileSync(file, `[key_manager.features]\nenable_self_validation_jwt = ${selfValidation}\n`);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "km-selfval-"));
    file = join(dir, "keymanager.toml");
    configure(false);
    server = await startServer({ databaseUrl: database.url(), configFile: file, overrides: { gateway_sync: { heartbeat_interval_ms: 200 } } });
    fixture = await createFixture(server);
  });
  after(async () => {
    await Promise.all(validators.map((v) => v.close()));
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function liveValidator(): Promise<GatewayValidator> {
    const v = createGatewayValidator(
      { target: `127.0.0.1:${server.grpcPort}`, token: fixture.gatewayToken },
      { onStreamError: (err) => streamErrors.push(err) },
    );
    validators.push(v);
    await v.ready();
    return v;
  }

  /** A new JWT of the fixture's subscribed JWT application. */
  async function freshJwt(): Promise<string> {
    const client = fixture.clients.get("App subscribed, JWT") ?? assert.fail("the JWT application");
    const request = { ...client, grantType: "client_credentials", scopes: ["order:admin"] };
    return (await server.grpc.getNewApplicationAccessToken({ request })).token?.accessToken ?? assert.fail("a JWT");
  }

  /** Reloads the server's file with the switch, and waits until the copy has the change (a new version). */
  async function reload(v: GatewayValidator, selfValidation: boolean): Promise<void> {
    const before = BigInt(v.stats().copy?.version || "0");
    configure(selfValidation);
    const reloaded = await server.grpc.loadConfiguration({});
    assert.equal(reloaded.configuration?.features?.enableSelfValidationJwt, selfValidation);
    await within("the signing keys event reached the copy", async () => BigInt(v.stats().copy?.version || "0") > before);
  }

  /** The answer to `input` from `v`, equal to ValidateToken's, and whether the server was asked for it. */
  async function validated(v: GatewayValidator, input: ValidateInput, what: string): Promise<{ statusCode: number; asked: boolean }> {
    const remote = v.stats().remote;
    const answer = await v.validate(input);
    assert.deepEqual(answer, await serverAnswer(server, input), `${what}: as ValidateToken answers`);
    return { statusCode: answer.statusCode, asked: v.stats().remote > remote };
  }

  test("GetKeyManagerConfiguration shows the switch off, and the library asks the server for this key manager's JWTs, answering as ValidateToken", async () => {
    const features = (await server.grpc.getKeyManagerConfiguration({})).configuration?.features;
    assert.equal(features?.enableSelfValidationJwt, false);
    const v = await liveValidator();
    const input = { ...(REQUESTS[0] as (typeof REQUESTS)[number]), token: fixture.jwt };
    assert.deepEqual(await validated(v, input, "the JWT"), { statusCode: 0, asked: true }, "a JWT is asked of the server");
    // Every case of the table, twice: the same answers as the server's.
    const jwts = fixture.tokens.filter((t) => t.token.startsWith("eyJ"));
    assert.ok(jwts.length >= 3, "the JWTs of the fixture: application, user, forged");
    const remoteBefore = v.stats().remote;
    for (const round of [1, 2]) {
      for (const { name, token } of fixture.tokens) {
        for (const [i, r] of REQUESTS.entries()) await validated(v, { ...r, token }, `round ${round}: ${name}, request ${i}`);
      }
    }
    const asked = v.stats().remote - remoteBefore;
    // The user's JWT was never asked before, and the forged one is asked each time (the server knows no such token).
    assert.ok(asked >= 2, `the server asked for JWTs (${asked} times)`);
    console.log(
      `# ${database.name}: ${fixture.tokens.length * REQUESTS.length * 2} cases, ${asked} asked of the server, ${v.stats().local} decided in process`,
    );
  });

  test("switched on by a configuration reload: JWTs verified in process again, without reconnecting; off again: asked again", async () => {
    const v = await liveValidator();
    const errorsBefore = streamErrors.length;
    const first = { ...(REQUESTS[0] as (typeof REQUESTS)[number]), token: await freshJwt() };
    assert.deepEqual(await validated(v, first, "switch off"), { statusCode: 0, asked: true });
    try {
      await reload(v, true);
      const on = { ...first, token: await freshJwt() };
      assert.deepEqual(await validated(v, on, "switch on, a new JWT"), { statusCode: 0, asked: false }, "verified in process");
      assert.deepEqual(await validated(v, first, "switch on, the JWT asked before"), { statusCode: 0, asked: false }, "verified in process");
      assert.equal((await server.grpc.getKeyManagerConfiguration({})).configuration?.features?.enableSelfValidationJwt, true);

      await reload(v, false);
      assert.deepEqual(await validated(v, on, "off again, the JWT verified before"), { statusCode: 0, asked: true }, "asked of the server");
    } finally {
      configure(false);
      await server.grpc.loadConfiguration({});
    }
    assert.equal(v.stats().copy?.snapshots, 1, "one snapshot: the switch came as events");
    assert.equal(streamErrors.length, errorsBefore, "the Watch stream was not broken");
  });

  test("a JWT kept by the library is refused once revoked by itself, and once its consumer key is revoked", async () => {
    const v = await liveValidator();
    const jwt = await freshJwt();
    const input = { ...(REQUESTS[0] as (typeof REQUESTS)[number]), token: jwt };
    assert.deepEqual(await validated(v, input, "first"), { statusCode: 0, asked: true });
    assert.deepEqual(await validated(v, input, "kept"), { statusCode: 0, asked: false }, "the server's answer kept");
    await server.grpc.revokeToken({ token: jwt });
    await within("the revoked JWT refused", async () => (await v.validate(input)).statusCode === 900901);
    await validated(v, input, "revoked");

    // A revocation of every token of the client (its secret regenerated): refused from the copy.
    const other = { ...input, token: await freshJwt() };
    assert.deepEqual(await validated(v, other, "another JWT"), { statusCode: 0, asked: true });
    const client = fixture.clients.get("App subscribed, JWT") ?? assert.fail("the JWT application");
    const { consumerSecret } = await server.grpc.regenerateConsumerSecret({ consumerKey: client.clientId });
    fixture.clients.set("App subscribed, JWT", { ...client, clientSecret: consumerSecret });
    await within("the JWT of a revoked consumer key refused", async () => (await v.validate(other)).statusCode === 900901);
    await validated(v, other, "its consumer key revoked");
  });
});

/** Polls `check` until it holds (generous deadline: a loaded machine). */
async function within(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const started = performance.now();
  while (!(await check())) {
    if (performance.now() - started > timeoutMs) assert.fail(`${what}: not within ${timeoutMs} ms`);
    await sleep(5);
  }
}
