/**
 * Lockout as a denial of service (issue #11, point 4): client ids are not secret, so a flood of
 * wrong secrets for a client id must slow down the flooding source, never the holder of the right
 * secret elsewhere. Linux routes all of 127/8 to loopback: the flood leaves from 127.0.0.2, the
 * real clients from 127.0.0.3.
 */
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import { KeyManagerService } from "../gen/keymanager/v1/key_manager_service_pb.js";
import { ClientAddresses } from "../src/transport/client-address.js";
import { createRequest } from "./support/fixtures.js";
import { agentFrom, grpcClientFrom, postFormFrom } from "./support/from-address.js";
import { startServer, type TestServer } from "./support/server.js";

const FLOOD = "127.0.0.2";
const REAL = "127.0.0.3";
const FLOOD_PER_SECOND = 50;
const FLOOD_SECONDS = 20;
const REAL_EVERY_MS = 250;

describe("a wrong-secret flood from one address", () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test(`${FLOOD_PER_SECOND}/s for ${FLOOD_SECONDS} s from ${FLOOD} does not deny the right secret from ${REAL}, and the flood is slowed`, async (t) => {
    const app = (await server.grpc.createApplication(createRequest({ grantTypes: ["client_credentials"] }))).application;
    assert.ok(app);
    // A system client (like the gateway's or the admin's): its client id is on every token it holds.
    const system = await server.caller(["km:gateway"]);
    const subjects = [
      { id: app.consumerKey, secret: app.consumerSecret },
      { id: system.clientId, secret: system.clientSecret },
    ];
    const floodAgent = agentFrom(FLOOD);
    const realAgent = agentFrom(REAL);
    t.after(() => {
      floodAgent.destroy();
      realAgent.destroy();
    });
    const realGrpc = grpcClientFrom(KeyManagerService, server.grpcPort, REAL, server.token);
    const floodGrpc = grpcClientFrom(KeyManagerService, server.grpcPort, FLOOD, server.token);

    const flood = { sent: 0, unauthorized: 0, throttled: 0, other: new Map<string, number>() };
    const tally = (status: string) => {
      if (status === "401" || status === "unauthenticated") flood.unauthorized++;
      else if (status === "429" || status === "resource_exhausted") flood.throttled++;
      else flood.other.set(status, (flood.other.get(status) ?? 0) + 1);
    };
    const floodOnce = async (i: number) => {
      const subject = subjects[i % subjects.length] as { id: string };
      const wrong = { id: subject.id, secret: `wrong-${i}` };
      flood.sent++;
      // Every place that checks a client secret: token, introspection, revocation, and the store's RPC.
      switch (i % 5) {
        case 0:
        case 1:
          tally(String((await postFormFrom(floodAgent, server.httpPort, "/oauth2/token", { grant_type: "client_credentials" }, { basic: wrong })).status));
          return;
        case 2:
          tally(String((await postFormFrom(floodAgent, server.httpPort, "/oauth2/introspect", { token: "x" }, { basic: wrong })).status));
          return;
        case 3:
          tally(String((await postFormFrom(floodAgent, server.httpPort, "/oauth2/revoke", { token: "x" }, { basic: wrong })).status));
          return;
        default:
          await floodGrpc.getNewApplicationAccessToken({ request: { clientId: wrong.id, clientSecret: wrong.secret, grantType: "client_credentials" } }).then(
            () => tally("ok"),
            (err: { code?: number }) => tally(err.code === 8 ? "resource_exhausted" : err.code === 16 ? "unauthenticated" : `code ${err.code}`),
          );
      }
    };

    const real = { asked: 0, got: 0, refusals: [] as string[] };
    const realOnce = async (i: number) => {
      const subject = subjects[i % subjects.length] as { id: string; secret: string };
      real.asked++;
      let outcome: string;
      if (i % 3 === 2) {
        outcome = await realGrpc
          .getNewApplicationAccessToken({ request: { clientId: app.consumerKey, clientSecret: app.consumerSecret, grantType: "client_credentials" } })
          .then(
            (r) => (r.token?.accessToken ? "ok" : "no token"),
            (err: Error) => err.message,
          );
      } else {
        const res = await postFormFrom(realAgent, server.httpPort, "/oauth2/token", { grant_type: "client_credentials" }, { basic: subject });
        outcome = res.status === 200 && (JSON.parse(res.body) as { access_token?: string }).access_token ? "ok" : `${res.status} ${res.body}`;
      }
      if (outcome === "ok") real.got++;
      else real.refusals.push(outcome);
    };

    const started = Date.now();
    const floodCalls: Promise<void>[] = [];
    const realCalls: Promise<void>[] = [];
    const floodTimer = setInterval(() => floodCalls.push(floodOnce(floodCalls.length)), 1000 / FLOOD_PER_SECOND);
    // The flood gets a head start, so the real client asks while the client ids are under attack.
    await sleep(1000);
    const realTimer = setInterval(() => realCalls.push(realOnce(realCalls.length)), REAL_EVERY_MS);
    await sleep(FLOOD_SECONDS * 1000 - (Date.now() - started));
    clearInterval(floodTimer);
    clearInterval(realTimer);
    await Promise.all([...floodCalls, ...realCalls]);

    t.diagnostic(
      `real client (${REAL}): ${real.got}/${real.asked} tokens; flood (${FLOOD}): ${flood.sent} wrong secrets, ${flood.unauthorized} answered 401/UNAUTHENTICATED, ${flood.throttled} answered 429/RESOURCE_EXHAUSTED`,
    );
    assert.deepEqual(real.refusals, [], "the holder of the right secret gets every token it asks for");
    assert.ok(real.asked >= 40, `the real client asked ${real.asked} times`);
    assert.deepEqual([...flood.other], [], "the flood only ever gets 401 or 429");
    assert.ok(flood.sent >= FLOOD_PER_SECOND * FLOOD_SECONDS * 0.5, `the flood sent ${flood.sent}`);
    assert.ok(flood.throttled > flood.sent * 0.9, `most of the flood is refused before its secret is looked at (${flood.throttled} of ${flood.sent})`);
    assert.ok(flood.unauthorized < 60, `few wrong secrets were even checked (${flood.unauthorized})`);
  });
});

describe("the caller's address", () => {
  const addresses = new ClientAddresses(["10.0.0.0/8", "fd00::/8"]);

  test("is the TCP peer unless the peer is a trusted proxy", () => {
    assert.equal(addresses.resolve("192.0.2.7", "203.0.113.9"), "192.0.2.7", "an untrusted peer's header is ignored");
    assert.equal(addresses.resolve("10.1.2.3", "203.0.113.9"), "203.0.113.9");
    assert.equal(addresses.resolve("10.1.2.3", undefined), "10.1.2.3");
    assert.equal(addresses.resolve("::ffff:10.1.2.3", "203.0.113.9, 10.9.9.9"), "203.0.113.9", "the right-most untrusted hop");
    assert.equal(addresses.resolve("10.1.2.3", "spoofed, 198.51.100.1, 10.0.0.5"), "198.51.100.1", "what the client wrote itself is left of it");
    assert.equal(addresses.resolve("10.1.2.3", "not an address"), "10.1.2.3");
    assert.equal(addresses.resolve("127.0.0.1:5000", undefined), "127.0.0.1", "grpc-js peers carry the port");
  });

  test("counts IPv6 callers by their /64", () => {
    assert.equal(addresses.resolve("2001:db8:1:2:aaaa::1", undefined), "2001:db8:1:2::/64");
    assert.equal(addresses.resolve("2001:db8:1:2:bbbb::9:5000", undefined), "2001:db8:1:2::/64");
    assert.equal(addresses.resolve("[2001:db8::1]:443", undefined), "2001:db8:0:0::/64");
    assert.equal(addresses.resolve("fd00::1", "2001:db8:5:6::7"), "2001:db8:5:6::/64");
  });
});
