import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { SubscriptionService, SubscriptionState } from "@keymanager/client";
import { describeOnEachDatabase } from "../../../test/support/each-database.js";
import { startServer, type TestServer } from "../../../test/support/server.js";
import { createGatewayValidator, type GatewayValidator, type ValidateInput } from "../src/index.js";
import { createFixture, type Fixture, REQUESTS, serverAnswer } from "./fixture.js";

/**
 * EQUIVALENCE on every database: the library's answer (from its live copy, or the server's for
 * what the copy cannot judge) equals unary ValidateToken's, field by field, for every token and
 * request of the table, before and after each of a sequence of changes, once the change's event
 * has reached the copy.
 */
describeOnEachDatabase("the library decides as ValidateToken", (database) => {
  let server: TestServer;
  let fixture: Fixture;
  let v: GatewayValidator;

  before(async () => {
    server = await startServer({ databaseUrl: database.url(), overrides: { gateway_sync: { heartbeat_interval_ms: 200 } } });
    fixture = await createFixture(server);
    v = createGatewayValidator({ target: `127.0.0.1:${server.grpcPort}`, token: fixture.gatewayToken });
    await v.ready();
  });
  after(async () => {
    await v?.close();
    await server?.close();
  });

  const cases = (): { name: string; input: ValidateInput }[] =>
    fixture.tokens.flatMap(({ name, token }) => REQUESTS.map((r, i) => ({ name: `${name}, request ${i}`, input: { ...r, token } })));

  let checked = 0;
  async function assertEquivalent(when: string): Promise<void> {
    for (const c of cases()) {
      assert.deepEqual(await v.validate(c.input), await serverAnswer(server, c.input), `${when}: ${c.name}`);
      checked++;
    }
  }

  /** Makes a change and waits until the copy has applied an event after it. */
  async function change(what: string, make: () => Promise<unknown>): Promise<void> {
    const before = BigInt(v.stats().copy?.version || "0");
    await make();
    const deadline = Date.now() + 20_000;
    while (BigInt(v.stats().copy?.version || "0") <= before) {
      assert.ok(Date.now() < deadline, `${what}: no event reached the copy within 20 s`);
      await sleep(10);
    }
    await assertEquivalent(`after ${what}`);
  }

  test("every case, before and after a sequence of changes", async () => {
    await assertEquivalent("at start");
    await assertEquivalent("again (kept tokens decided in process)");
    const subs = server.client(SubscriptionService);
    const sub = (app: string) => {
      const m = fixture.keyMappings.find((k) => k.applicationName === app)!;
      return fixture.subscriptions.find((s) => s.applicationId === m.applicationId)!;
    };
    const setState = (app: string, state: SubscriptionState) => () =>
      subs.updateSubscription({ subscription: { subscriptionId: sub(app).id, state }, updateMask: { paths: ["state"] } });
    await change("the JWT application's subscription blocked", setState("App subscribed, JWT", SubscriptionState.BLOCKED));
    await change("the on-hold subscription unblocked", setState("App on hold", SubscriptionState.UNBLOCKED));
    await change("the subscribed application's subscription made PROD_ONLY_BLOCKED", setState("App subscribed", SubscriptionState.PROD_ONLY_BLOCKED));
    await change("the subscribed application's subscription unblocked", setState("App subscribed", SubscriptionState.UNBLOCKED));
    await change("the subscribed application's app token revoked", () => server.grpc.revokeToken({ token: fixture.good }));
    await change("the JWT app token revoked", () => server.grpc.revokeToken({ token: fixture.jwt }));
    await change("the blocked application's subscription deleted", () => subs.deleteSubscription({ subscriptionId: sub("App blocked").id }));
    const stats = v.stats();
    console.log(`# ${database.name}: ${checked} cases equal to ValidateToken; ${stats.local} decided in process, ${stats.remote} asked of the server`);
    assert.ok(stats.local > stats.remote, `local ${stats.local}, remote ${stats.remote}`);
  });
});
