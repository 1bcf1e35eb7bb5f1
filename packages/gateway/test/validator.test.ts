import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { SCOPES } from "../../../src/auth/scopes.js";
import { startServer, type TestServer } from "../../../test/support/server.js";
import { createGatewayValidator, type GatewayValidator, type ValidateInput } from "../src/index.js";
import { CutProxy } from "./cut-proxy.js";
import { createFixture, type Fixture, FixedCopy, REQUESTS, serverAnswer } from "./fixture.js";

let server: TestServer;
let fixture: Fixture;
const validators: GatewayValidator[] = [];

before(async () => {
  server = await startServer();
  fixture = await createFixture(server);
});
after(async () => {
  await Promise.all(validators.map((v) => v.close()));
  await server?.close();
});

function validator(options: Partial<Parameters<typeof createGatewayValidator>[0]> = {}, deps: Parameters<typeof createGatewayValidator>[1] = {}) {
  const v = createGatewayValidator({ target: `127.0.0.1:${server.grpcPort}`, token: fixture.gatewayToken, watch: false, ...options }, deps);
  validators.push(v);
  return v;
}

/** Every request of the table with every token of the fixture. */
function cases(): { name: string; input: ValidateInput }[] {
  return fixture.tokens.flatMap(({ name, token }) => REQUESTS.map((r, i) => ({ name: `${name}, request ${i}`, input: { ...r, token } })));
}

describe("the server's answers (no live copy): equal to ValidateToken's, field by field", () => {
  test("the table reaches every status code 900901..900910 and authorized, with JWT, opaque, app and user tokens", async () => {
    const codes = new Set<number>();
    for (const c of cases()) codes.add((await serverAnswer(server, c.input)).statusCode);
    for (const code of [0, 900901, 900902, 900905, 900906, 900907, 900908, 900909, 900910]) assert.ok(codes.has(code), `${code} among ${[...codes]}`);
  });

  for (const [transport, options] of [
    ["gRPC port", () => ({})],
    ["HTTP port (Connect over HTTP/2)", () => ({ target: undefined, baseUrl: `http://127.0.0.1:${server.httpPort}` })],
    [
      "gRPC port, with client credentials",
      () => ({ token: undefined, credentials: fixture.gatewayCredentials, tokenUrl: `http://127.0.0.1:${server.httpPort}/oauth2/token` }),
    ],
  ] as const) {
    test(`${transport}: every case, all at once over one stream`, async () => {
      const v = validator(options());
      const all = cases();
      const expected = await Promise.all(all.map((c) => serverAnswer(server, c.input)));
      const answers = await Promise.all(all.map((c) => v.validate(c.input)));
      for (const [i, c] of all.entries()) assert.deepEqual(answers[i], expected[i], c.name);
      assert.equal(v.stats().remote, all.length);
      assert.equal(v.stats().local, 0);
    });
  }

  test("requiredAuthLevel is passed on", async () => {
    const v = validator();
    const input: ValidateInput = { ...REQUESTS[0]!, token: fixture.good, requiredAuthLevel: "APPLICATION_USER" };
    const answer = await v.validate(input);
    assert.equal(answer.statusCode, 900905);
    assert.deepEqual(answer, await serverAnswer(server, input));
  });
});

describe("bad input and failures", () => {
  test("a request missing fields: TypeError naming them, nothing sent", async () => {
    const v = validator();
    await assert.rejects(v.validate({ context: "", version: "", token: "t", verb: "" }), /validate: context, version, verb, resource or path required/);
    assert.equal(v.stats().remote, 0);
  });

  test("an auth level that is not one: TypeError, nothing sent", async () => {
    const v = validator();
    const input = { ...REQUESTS[0]!, token: fixture.good, requiredAuthLevel: "BOGUS" as never };
    await assert.rejects(v.validate(input), /validate: requiredAuthLevel must be one of APPLICATION, APPLICATION_USER, ANY, NONE/);
    assert.equal(v.stats().remote, 0);
  });

  test("options: missing or conflicting ones named, no value echoed", () => {
    assert.throws(
      () => createGatewayValidator({ token: "secret-value" }),
      (err: unknown) => {
        assert.ok(err instanceof TypeError);
        assert.match(err.message, /either target .* or baseUrl/);
        assert.doesNotMatch(err.message, /secret-value/);
        return true;
      },
    );
    assert.throws(
      () => createGatewayValidator({ target: "127.0.0.1:1", token: "t", credentials: { clientId: "a", clientSecret: "hush" } }),
      /either token or credentials/,
    );
    assert.throws(() => createGatewayValidator({ target: "127.0.0.1:1", token: "t", callTimeoutMs: 0 }), /callTimeoutMs/);
    assert.throws(() => createGatewayValidator({ target: "127.0.0.1:1", token: "t", jwksTimeoutMs: 0 }), /jwksTimeoutMs/);
    assert.throws(() => createGatewayValidator({ baseUrl: "http://127.0.0.1:1", token: "t", watchTarget: "127.0.0.1:2" }), /watchTarget goes with target/);
  });

  test("a gateway token without scope km:gateway: refused by the server, answered 900912 naming PERMISSION_DENIED", async () => {
    const store = await server.caller([SCOPES.store], { subscriber: "admin" });
    const v = validator({ token: store.token });
    const answer = await v.validate({ ...REQUESTS[0]!, token: fixture.good });
    assert.equal(answer.statusCode, 900912);
    assert.equal(answer.authorized, false);
    assert.match(answer.statusDescription, /PermissionDenied/);
    assert.doesNotMatch(answer.statusDescription, new RegExp(store.token));
  });

  test("no key manager listening: 900912 within callTimeoutMs", async () => {
    const v = validator({ target: "127.0.0.1:1", callTimeoutMs: 1500, reconnectInitialDelayMs: 50 });
    const started = Date.now();
    const answer = await v.validate({ ...REQUESTS[0]!, token: fixture.good });
    assert.equal(answer.statusCode, 900912);
    assert.equal(answer.statusName, "KEY_MANAGER_NOT_AVAILABLE");
    assert.ok(Date.now() - started < 30_000);
  });

  test("more checks waiting than maxPending: the extra ones answered 900912 at once", async () => {
    const v = validator({ target: "127.0.0.1:1", maxPending: 2, callTimeoutMs: 2000 });
    const answers = await Promise.all([1, 2, 3].map(() => v.validate({ ...REQUESTS[0]!, token: fixture.good })));
    assert.deepEqual(
      answers.map((a) => a.statusCode),
      [900912, 900912, 900912],
    );
    assert.match(answers[2]!.statusDescription, /maxPending/);
  });
});

describe("the stream reconnects", () => {
  test("checks sent while the network to the server is cut are answered once it is back", async () => {
    const proxy = new CutProxy(server.grpcPort);
    await proxy.start();
    const errors: string[] = [];
    const v = validator(
      { target: `127.0.0.1:${proxy.port}`, callTimeoutMs: 60_000, reconnectInitialDelayMs: 50, reconnectMaxDelayMs: 500 },
      { onStreamError: (err) => errors.push(err.rawMessage) },
    );
    try {
      const input = { ...REQUESTS[0]!, token: fixture.good };
      const expected = await serverAnswer(server, input);
      assert.deepEqual(await v.validate(input), expected);
      await proxy.cut();
      const waiting = Promise.all([1, 2, 3].map(() => v.validate(input)));
      // Let the stream fail and a reconnection or two be refused.
      await sleep(700);
      await proxy.restore();
      for (const answer of await waiting) assert.deepEqual(answer, expected);
      assert.ok(errors.length >= 1, "the failed stream was reported");
      for (const message of errors) assert.doesNotMatch(message, new RegExp(fixture.gatewayToken));
    } finally {
      await proxy.close();
    }
  });

  test("the network cut for longer than callTimeoutMs: 900912, then answers again once it is back", async () => {
    const proxy = new CutProxy(server.grpcPort);
    await proxy.start();
    const v = validator({ target: `127.0.0.1:${proxy.port}`, callTimeoutMs: 1000, reconnectInitialDelayMs: 50, reconnectMaxDelayMs: 200 });
    try {
      const input = { ...REQUESTS[0]!, token: fixture.good };
      assert.equal((await v.validate(input)).statusCode, 0);
      await proxy.cut();
      const answer = await v.validate(input);
      assert.equal(answer.statusCode, 900912);
      assert.match(answer.statusDescription, /within 1000 ms/);
      await proxy.restore();
      assert.equal((await v.validate(input)).statusCode, 0);
    } finally {
      await proxy.close();
    }
  });
});

describe("with a live copy", () => {
  test("opaque tokens: a miss asks the server, the answer's token facts are kept and later calls decided in process, equal to the server's", async () => {
    const copy = new FixedCopy(fixture);
    const v = validator({}, { copy });
    const all = cases();
    const expected = await Promise.all(all.map((c) => serverAnswer(server, c.input)));
    for (const round of [1, 2]) {
      for (const [i, c] of all.entries()) assert.deepEqual(await v.validate(c.input), expected[i], `round ${round}: ${c.name}`);
    }
    const { local, remote, tokensKept } = v.stats();
    assert.equal(local + remote, all.length * 2);
    // Tokens vouched for by the server are asked once per token, not once per call.
    assert.ok(tokensKept >= 5, `kept ${tokensKept}`);
    assert.ok(remote < all.length, `remote ${remote} of ${all.length * 2}`);
    assert.ok(local > all.length, `local ${local}`);
  });

  test("a kept token whose consumer key's tokens were revoked in the copy is refused at once, as revoked", async () => {
    const copy = new FixedCopy(fixture);
    const v = validator({}, { copy });
    const input = { ...REQUESTS[0]!, token: fixture.good };
    assert.equal((await v.validate(input)).statusCode, 0);
    const answer = await v.validate(input);
    assert.equal(answer.statusCode, 0);
    assert.equal(v.stats().local, 1);
    copy.revokedConsumers.add(answer.consumerKey);
    copy.version = 2n;
    const refused = await v.validate(input);
    assert.equal(refused.statusCode, 900901);
    assert.equal(refused.statusDescription, "the access token was revoked");
    assert.deepEqual(v.stats().local, 2);
  });

  test("an opaque token of the same consumer key revoked by itself: the kept answer is asked again", async () => {
    const copy = new FixedCopy(fixture);
    const v = validator({}, { copy });
    const input = { ...REQUESTS[0]!, token: fixture.good };
    const first = await v.validate(input);
    copy.recheckConsumers.add(first.consumerKey);
    copy.version = 3n;
    assert.deepEqual(await v.validate(input), first);
    assert.equal(v.stats().remote, 2, "asked again");
    // Kept again at version 2, after the revocation: decided in process.
    assert.deepEqual(await v.validate(input), first);
    assert.equal(v.stats().local, 1);
  });

  test("the copy not usable (stream down past the bound): every call asked of the server", async () => {
    const copy = new FixedCopy(fixture);
    const v = validator({}, { copy });
    const input = { ...REQUESTS[0]!, token: fixture.good };
    await v.validate(input);
    copy.fresh = false;
    for (let i = 0; i < 3; i++) assert.deepEqual(await v.validate(input), await serverAnswer(server, input));
    assert.deepEqual(v.stats(), { local: 0, remote: 4, tokensKept: 1, copy: undefined });
  });

  test("a kept token's answer ends with the token: after its expiry the server is asked again", async () => {
    let now = Date.now();
    const copy = new FixedCopy(fixture);
    const v = validator({}, { copy, now: () => now });
    const input = { ...REQUESTS[0]!, token: fixture.good };
    await v.validate(input);
    await v.validate(input);
    assert.deepEqual(v.stats(), { local: 1, remote: 1, tokensKept: 1, copy: undefined });
    now += 3_601_000;
    await v.validate(input);
    assert.equal(v.stats().remote, 2);
  });
});
