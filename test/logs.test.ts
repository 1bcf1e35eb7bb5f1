import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { SubscriptionService } from "../gen/keymanager/v1/subscription_service_pb.js";
import { TokenValidationService } from "../gen/keymanager/v1/token_validation_service_pb.js";
import { KeyType, SubscriptionState } from "../gen/keymanager/v1/types_pb.js";
import { capturedLog } from "./support/captured-log.js";
import { createRequest } from "./support/fixtures.js";
import { bearer, startServer, type TestServer } from "./support/server.js";

type Line = Record<string, unknown>;

describe("logs: access lines and audit lines from a real server", () => {
  const { lines, raw, logger } = capturedLog("info");
  let server: TestServer;

  before(async () => {
    server = await startServer({ logger, overrides: { log_level: "info" } });
  });
  after(() => server?.close());

  const access = () => lines.filter((l) => l.log === "access");
  const audit = () => lines.filter((l) => l.log === "audit");
  const form = (fields: Record<string, string>) => ({
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", "x-request-id": "req-oauth-1" },
    body: new URLSearchParams(fields).toString(),
  });

  test("one access line per call: RPC or route, code, duration, caller and request id (the caller's, or a new one sent back)", async () => {
    const gateway = server.client(TokenValidationService);
    const before = access().length;
    let sentBack: string | undefined;
    await gateway.validateToken(
      { context: "/none", version: "1", accessToken: "", matchingResource: "/x", httpVerb: "GET" },
      {
        headers: { "x-request-id": "gateway-call-42" },
        onHeader: (h) => {
          sentBack = h.get("x-request-id") ?? undefined;
        },
      },
    );
    assert.equal(sentBack, "gateway-call-42", "the caller's request id comes back");
    const [line] = access().slice(before);
    assert.ok(line);
    assert.equal(line.port, "grpc");
    assert.equal(line.call, "keymanager.v1.TokenValidationService/ValidateToken");
    assert.equal(line.code, "OK");
    assert.equal(line.requestId, "gateway-call-42");
    assert.equal(typeof line.ms, "number");
    assert.ok((line.ms as number) >= 0);
    assert.match(String(line.caller), /\S/, "the authenticated caller's client id");
    assert.equal(access().length, before + 1, "exactly one line for the call");

    // Unauthenticated, with a request id not worth keeping (too long): a new one is made and returned.
    const anonymous = createClient(TokenValidationService, createGrpcTransport({ baseUrl: `http://127.0.0.1:${server.grpcPort}`, interceptors: [bearer("")] }));
    const error = await anonymous.validateToken({ context: "/none", version: "1" }, { headers: { "x-request-id": "x".repeat(500) } }).then(
      () => assert.fail("answered without credentials"),
      (err: unknown) => ConnectError.from(err),
    );
    const generated = error.metadata.get("x-request-id");
    const refused = access().at(-1);
    assert.equal(refused?.code, "UNAUTHENTICATED");
    assert.equal(refused?.caller, undefined);
    assert.match(String(refused?.requestId), /^[0-9a-f-]{36}$/);
    assert.equal(generated, refused?.requestId);

    // The HTTP port: a Connect RPC and a route.
    const res = await fetch(`http://127.0.0.1:${server.httpPort}/keymanager.v1.TokenValidationService/ValidateToken`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${server.token}`, "x-request-id": "connect-7" },
      body: JSON.stringify({ context: "/none", version: "1", matchingResource: "/x", httpVerb: "GET" }),
    });
    assert.equal(res.headers.get("x-request-id"), "connect-7");
    await res.text();
    const missing = await fetch(`http://127.0.0.1:${server.httpPort}/no/such/${randomUUID()}`);
    assert.equal(missing.status, 404);
    assert.match(missing.headers.get("x-request-id") ?? "", /^[0-9a-f-]{36}$/);
    await missing.text();
    await waitFor(() => access().some((l) => l.requestId === missing.headers.get("x-request-id")));
    const connectLine = access().find((l) => l.requestId === "connect-7");
    assert.deepEqual(
      { port: connectLine?.port, call: connectLine?.call, code: connectLine?.code, caller: typeof connectLine?.caller },
      { port: "http", call: "keymanager.v1.TokenValidationService/ValidateToken", code: "OK", caller: "string" },
    );
    const routeLine = access().find((l) => l.requestId === missing.headers.get("x-request-id"));
    assert.equal(routeLine?.call, "GET other", "an unknown path is not logged as sent");
    assert.equal(routeLine?.code, "404");
  });

  test("audit lines name enum values, and token issuing and /oauth2/revoke are audited with the client id, never the token", async () => {
    const applicationId = randomUUID();
    const app = (
      await server.grpc.createApplication(createRequest({ applicationId, keyType: KeyType.SANDBOX, grantTypes: ["client_credentials"], scopes: [] }))
    ).application;
    assert.ok(app);
    const subs = server.client(SubscriptionService);
    await subs.createApi({ api: { apiId: "audited", name: "Audited", context: "/audited", version: "1", publisher: "admin" } });
    await subs.createSubscription({ subscription: { applicationId, apiId: "audited", state: SubscriptionState.BLOCKED } });
    const created = audit().find((l) => l.what === "keymanager.v1.KeyManagerService/CreateApplication" && (l.target as Line).applicationId === applicationId);
    assert.equal((created?.target as Line | undefined)?.keyType, "SANDBOX");
    const subscribed = audit().find(
      (l) => l.what === "keymanager.v1.SubscriptionService/CreateSubscription" && (l.target as Line).applicationId === applicationId,
    );
    assert.equal((subscribed?.target as Line | undefined)?.state, "BLOCKED");

    const base = `http://127.0.0.1:${server.httpPort}`;
    const issued = await fetch(
      `${base}/oauth2/token`,
      form({ grant_type: "client_credentials", client_id: app.consumerKey, client_secret: app.consumerSecret }),
    );
    assert.equal(issued.status, 200);
    const token = ((await issued.json()) as { access_token: string }).access_token;
    const revoked = await fetch(`${base}/oauth2/revoke`, form({ token, client_id: app.consumerKey, client_secret: app.consumerSecret }));
    assert.equal(revoked.status, 200);
    await waitFor(() => access().filter((l) => l.requestId === "req-oauth-1").length === 2);

    const issue = audit().find((l) => l.what === "POST /oauth2/token" && l.who === app.consumerKey);
    assert.equal((issue?.target as Line | undefined)?.grantType, "client_credentials");
    const revoke = audit().find((l) => l.what === "POST /oauth2/revoke" && l.who === app.consumerKey);
    assert.ok(revoke, "the revocation is audited");
    assert.match(String((revoke.target as Line).tokenRef), /^[0-9a-f]{12}$/);
    assert.equal((revoke.target as Line).tokenRef, (issue?.target as Line | undefined)?.tokenRef, "the same token, by reference");
    const oauthAccess = access().filter((l) => l.requestId === "req-oauth-1");
    assert.deepEqual(
      oauthAccess.map((l) => [l.call, l.code, l.caller]),
      [
        ["POST /oauth2/token", "200", app.consumerKey],
        ["POST /oauth2/revoke", "200", app.consumerKey],
      ],
    );
    const all = raw.join("\n");
    for (const secret of [token, app.consumerSecret, server.token]) assert.ok(!all.includes(secret), "no token or secret in the log");
  });

  test("request_id_max_chars: a caller's longer request id is replaced", async () => {
    const short = await startServer({ logger: capturedLog("info").logger, overrides: { log_level: "info", request_id_max_chars: 8 } });
    const sizes: Array<[string, boolean]> = [
      ["12345678", true],
      ["123456789", false],
    ];
    try {
      for (const [id, kept] of sizes) {
        const res = await fetch(`http://127.0.0.1:${short.httpPort}/healthz`, { headers: { "x-request-id": id } });
        await res.text();
        assert.equal(res.headers.get("x-request-id") === id, kept, `${id} kept: ${kept}`);
      }
    } finally {
      await short.close();
    }
  });

  test("access_log_level below log_level: no access lines, the rest of the log stays", async () => {
    const { lines: captured, logger: quietLogger } = capturedLog("info");
    const quiet = await startServer({ logger: quietLogger, overrides: { log_level: "info", access_log_level: "debug" } });
    try {
      await quiet.client(TokenValidationService).validateToken({ context: "/none", version: "1", matchingResource: "/x", httpVerb: "GET" });
      await quiet.grpc.createApplication(createRequest());
      assert.equal(captured.filter((l) => l.log === "access").length, 0);
      assert.ok(
        captured.some((l) => l.log === "audit"),
        "audit lines are still written",
      );
    } finally {
      await quiet.close();
    }
  });
});

async function waitFor(condition: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !condition(); i++) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.ok(condition(), "timed out waiting for log lines");
}
