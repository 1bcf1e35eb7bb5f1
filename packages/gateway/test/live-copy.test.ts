import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { GatewaySyncService, SubscriptionService, SubscriptionState } from "@keymanager/client";
import { bearer, startServer, type TestServer } from "../../../test/support/server.js";
import { createGatewayValidator, type GatewayValidator, type ValidateInput } from "../src/index.js";
import { CutProxy } from "./cut-proxy.js";
import { createFixture, type Fixture, REQUESTS, serverAnswer } from "./fixture.js";

let server: TestServer;
let fixture: Fixture;
const validators: GatewayValidator[] = [];
const HEARTBEAT_MS = 200;

before(async () => {
  server = await startServer({ overrides: { gateway_sync: { heartbeat_interval_ms: HEARTBEAT_MS } } });
  fixture = await createFixture(server);
});
after(async () => {
  await Promise.all(validators.map((v) => v.close()));
  await server?.close();
});

async function liveValidator(options: Partial<Parameters<typeof createGatewayValidator>[0]> = {}, deps: Parameters<typeof createGatewayValidator>[1] = {}) {
  const v = createGatewayValidator({ target: `127.0.0.1:${server.grpcPort}`, token: fixture.gatewayToken, ...options }, deps);
  validators.push(v);
  await v.ready();
  return v;
}

function cases(): { name: string; input: ValidateInput }[] {
  return fixture.tokens.flatMap(({ name, token }) => REQUESTS.map((r, i) => ({ name: `${name}, request ${i}`, input: { ...r, token } })));
}

/** Polls `check` until it holds (generous deadline: a loaded machine); the time it took. */
async function within(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<number> {
  const started = performance.now();
  while (!(await check())) {
    if (performance.now() - started > timeoutMs) assert.fail(`${what}: not within ${timeoutMs} ms`);
    await sleep(5);
  }
  return performance.now() - started;
}

describe("the live copy from the Watch stream", () => {
  test("holds the fixture: the API, every key mapping, every subscription", async () => {
    const v = await liveValidator();
    const copy = v.stats().copy;
    assert.ok(copy?.usable);
    assert.equal(copy.apis, 1);
    assert.ok(copy.keyMappings >= fixture.keyMappings.length);
    assert.equal(copy.subscriptions, fixture.subscriptions.length);
    assert.equal(copy.snapshots, 1);
  });

  test("EQUIVALENCE: every case of the table, twice, equals the server's ValidateToken; JWTs and kept opaque tokens decided in process", async () => {
    const v = await liveValidator();
    const all = cases();
    const expected = await Promise.all(all.map((c) => serverAnswer(server, c.input)));
    for (const round of [1, 2]) {
      for (const [i, c] of all.entries()) assert.deepEqual(await v.validate(c.input), expected[i], `round ${round}: ${c.name}`);
    }
    const { local, remote } = v.stats();
    // Opaque tokens the server vouched for are asked once; JWTs, no-token and unknown-API cases never.
    const opaque = fixture.tokens.filter((t) => t.token !== "" && !t.token.startsWith("eyJ")).length;
    assert.ok(remote <= opaque * REQUESTS.length, `remote ${remote}`);
    assert.ok(local >= all.length, `local ${local} of ${all.length * 2}`);
    console.log(
      `# equivalence: ${all.length * 2} cases (${fixture.tokens.length} tokens x ${REQUESTS.length} requests x 2 rounds), ${local} decided in process, ${remote} asked of the server`,
    );
  });

  test("a JWT is verified in process: no call to the server", async () => {
    const v = await liveValidator();
    const input = { ...REQUESTS[0]!, token: fixture.jwt };
    const answer = await v.validate(input);
    assert.equal(answer.statusCode, 0);
    assert.equal(answer.tokenType, "JWT");
    assert.deepEqual(answer, await serverAnswer(server, input));
    assert.deepEqual([v.stats().local, v.stats().remote], [1, 0]);
  });
});

describe("changes pushed", () => {
  test("revocations: a JWT and a kept opaque token are refused within the stream's latency", async () => {
    const v = await liveValidator();
    // Fresh tokens of the subscribed applications, so other tests keep theirs.
    const { good, jwt } = await freshTokens();
    for (const [kind, token] of [
      ["JWT", jwt],
      ["opaque", good],
    ] as const) {
      const input = { ...REQUESTS[0]!, token };
      assert.equal((await v.validate(input)).statusCode, 0);
      assert.equal((await v.validate(input)).statusCode, 0);
      const remoteBefore = v.stats().remote;
      const revokedAt = performance.now();
      await server.grpc.revokeToken({ token });
      const revokeCall = performance.now() - revokedAt;
      const ms = await within(`${kind} refused`, async () => (await v.validate(input)).statusCode === 900901);
      const answer = await v.validate(input);
      assert.deepEqual(answer, await serverAnswer(server, input));
      console.log(
        `# ${kind} revoked: refused ${ms.toFixed(1)} ms after RevokeToken answered (the call took ${revokeCall.toFixed(1)} ms); server asked ${v.stats().remote - remoteBefore} times`,
      );
      if (kind === "JWT") assert.equal(v.stats().remote, remoteBefore, "a JWT's revocation is applied in process");
    }
  });

  test("a subscription blocked, then unblocked: decided from the copy once the event arrives", async () => {
    const v = await liveValidator();
    const input = { ...REQUESTS[0]!, token: fixture.jwt };
    const mapping = fixture.keyMappings.find((m) => m.applicationName === "App subscribed, JWT")!;
    const subscription = fixture.subscriptions.find((s) => s.applicationId === mapping.applicationId)!;
    const subs = server.client(SubscriptionService);
    const set = (state: SubscriptionState) =>
      subs.updateSubscription({ subscription: { subscriptionId: subscription.id, state }, updateMask: { paths: ["state"] } });
    await set(SubscriptionState.BLOCKED);
    try {
      await within("900907", async () => (await v.validate(input)).statusCode === 900907);
      assert.deepEqual(await v.validate(input), await serverAnswer(server, input));
    } finally {
      await set(SubscriptionState.UNBLOCKED);
    }
    await within("allowed again", async () => (await v.validate(input)).statusCode === 0);
    assert.equal(v.stats().remote, 0);
  });
});

describe("staleness bound", () => {
  test("the Watch stream down longer than the bound: every call asked of the server, answers still right; back: in process again", async () => {
    const proxy = new CutProxy(server.grpcPort);
    await proxy.start();
    const watchClient = createClient(
      GatewaySyncService,
      createGrpcTransport({ baseUrl: `http://127.0.0.1:${proxy.port}`, interceptors: [bearer(fixture.gatewayToken)] }),
    );
    const BOUND = 1500;
    try {
      const v = await liveValidator({ stalenessBoundMs: BOUND, reconnectInitialDelayMs: 50, reconnectMaxDelayMs: 200 }, { watchClient });
      const input = { ...REQUESTS[0]!, token: fixture.jwt };
      const expected = await serverAnswer(server, input);
      assert.deepEqual(await v.validate(input), expected);
      assert.equal(v.stats().local, 1);
      await proxy.cut();
      // Within the bound the copy is still used; past it, never.
      await within("copy no longer usable", async () => v.stats().copy?.usable === false, BOUND * 10);
      assert.ok((v.stats().copy?.ageMs ?? 0) > BOUND);
      const localBefore = v.stats().local;
      for (let i = 0; i < 5; i++) assert.deepEqual(await v.validate(input), expected);
      assert.equal(v.stats().local, localBefore, "nothing decided from a stale copy");
      assert.equal(v.stats().remote, 5);
      // A change made while the copy is stale is answered right (by the server).
      const { good } = await freshTokens();
      await server.grpc.revokeToken({ token: good });
      assert.equal((await v.validate({ ...REQUESTS[0]!, token: good })).statusCode, 900901);
      await proxy.restore();
      await within("copy usable again", async () => v.stats().copy?.usable === true, 20_000);
      assert.deepEqual(await v.validate(input), expected);
      assert.equal(v.stats().local, localBefore + 1);
      // Resumed from its version: no second snapshot.
      assert.equal(v.stats().copy?.snapshots, 1);
    } finally {
      await proxy.close();
    }
  });
});

/** A new app token and JWT of the fixture's subscribed applications. */
async function freshTokens(): Promise<{ good: string; jwt: string }> {
  const issue = async (applicationName: string) => {
    const client = fixture.clients.get(applicationName)!;
    const request = { ...client, grantType: "client_credentials", scopes: ["order:admin"] };
    return (await server.grpc.getNewApplicationAccessToken({ request })).token!.accessToken;
  };
  return { good: await issue("App subscribed"), jwt: await issue("App subscribed, JWT") };
}
