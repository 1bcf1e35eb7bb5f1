import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { type Client, Code } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { CanHandleTokenRequestSchema, CanHandleTokenResponseSchema, KeyManagerService, TokenRouting } from "../gen/keymanager/v1/key_manager_service_pb.js";
import { TokenType } from "../gen/keymanager/v1/types_pb.js";
import { SCOPES } from "../src/auth/scopes.js";
import { capturedLog } from "./support/captured-log.js";
import { rejectsWith } from "./support/assert-rpc.js";
import { describeOnEachDatabase } from "./support/each-database.js";
import { createRequest } from "./support/fixtures.js";
import { startServer, type TestServer } from "./support/server.js";

// CanHandleToken: the key managers' routing rules over a token, never validating it. The external
// key managers are configured only (routing asks none of them anything, so none need run).

const CORP = "https://idp.example.com";
const OTHER = "https://other.example.com";

/** An unsigned JWT-shaped token with these claims: routing reads the unverified `iss` only. */
function jwt(claims: Record<string, unknown>): string {
  const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${part({ alg: "ES256", typ: "JWT" })}.${part(claims)}.${Buffer.from("not-a-signature").toString("base64url")}`;
}

describeOnEachDatabase("CanHandleToken", (database) => {
  let server: TestServer;
  let gateway: Client<typeof KeyManagerService>;
  let gatewayToken: string;
  const { raw: logLines, logger } = capturedLog("trace");
  before(async () => {
    server = await startServer({
      databaseUrl: database.url(),
      logger,
      overrides: {
        log_level: "trace",
        external: [
          { name: "corp-idp", issuer: CORP, token_pattern: "corp_[A-Za-z0-9]{20}" },
          { name: "other-idp", issuer: OTHER, token_pattern: "[A-Za-z0-9_]{25}" },
        ],
      },
    });
    gatewayToken = (await server.caller([SCOPES.gateway])).token;
    gateway = server.client(KeyManagerService, { token: gatewayToken });
  });
  after(() => server?.close());

  for (const protocol of ["grpc", "connect"] as const) {
    test(`each rule in its order: issuer, whole-token pattern, else the resident key manager (${protocol})`, async () => {
      const km = server.client(KeyManagerService, { protocol, token: gatewayToken });
      const route = async (token: string) => {
        const r = await km.canHandleToken({ token });
        return [r.keyManager, r.type, TokenRouting[r.routing], r.canHandle];
      };
      assert.deepEqual(await route(jwt({ iss: CORP, sub: "x" })), ["corp-idp", "oauth2", "ISSUER", true]);
      assert.deepEqual(await route(jwt({ iss: `${OTHER}/` })), ["other-idp", "oauth2", "ISSUER", true], "a trailing slash of iss does not count");
      // A JWT matching a token pattern still goes by its issuer (JWTs never go by pattern).
      assert.deepEqual(await route(jwt({ iss: "https://unknown.example.com" })), ["Resident Key Manager", "resident", "DEFAULT", true]);
      // Both patterns match this one: the first in the file's order wins.
      assert.deepEqual(await route(`corp_${"a".repeat(20)}`), ["corp-idp", "oauth2", "TOKEN_PATTERN", true]);
      assert.deepEqual(await route("z".repeat(25)), ["other-idp", "oauth2", "TOKEN_PATTERN", true]);
      assert.deepEqual(await route(`xcorp_${"a".repeat(20)}`), ["Resident Key Manager", "resident", "DEFAULT", true], "a substring match is no match");
      assert.deepEqual(await route("short-opaque-token"), ["Resident Key Manager", "resident", "DEFAULT", true]);
    });
  }

  test("the resident key manager's own tokens: its JWTs by issuer, its opaque tokens by default; nothing validated", async () => {
    const jwtApp = (await server.grpc.createApplication(createRequest({ tokenType: TokenType.JWT, grantTypes: ["client_credentials"], scopes: [] })))
      .application;
    assert.ok(jwtApp);
    const token =
      (
        await server.grpc.getNewApplicationAccessToken({
          request: { clientId: jwtApp.consumerKey, clientSecret: jwtApp.consumerSecret, grantType: "client_credentials" },
        })
      ).token?.accessToken ?? "";
    const own = await gateway.canHandleToken({ token });
    assert.equal(own.keyManager, "Resident Key Manager");
    assert.equal(own.routing, TokenRouting.ISSUER);
    await server.grpc.revokeToken({ token });
    assert.equal((await gateway.canHandleToken({ token })).routing, TokenRouting.ISSUER, "a revoked token routes the same: routing is not validation");
    const iss = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString()).iss as string;
    const forged = jwt({ iss });
    assert.equal((await gateway.canHandleToken({ token: forged })).routing, TokenRouting.ISSUER, "an unsigned JWT routes by its claims alike");
  });

  test("a named key manager: whether that one handles the token (WSO2's canHandleToken)", async () => {
    const opaque = `corp_${"b".repeat(20)}`;
    assert.equal((await gateway.canHandleToken({ token: opaque, keyManager: "corp-idp" })).canHandle, true);
    const no = await gateway.canHandleToken({ token: opaque, keyManager: "other-idp" });
    assert.equal(no.canHandle, false);
    assert.equal(no.keyManager, "corp-idp", "and which one does");
    assert.equal((await gateway.canHandleToken({ token: opaque, keyManager: "Resident Key Manager" })).canHandle, false);
    assert.equal((await gateway.canHandleToken({ token: "plain", keyManager: "Resident Key Manager" })).canHandle, true);
  });

  test("bad input: INVALID_ARGUMENT naming the field; the token is never repeated or logged", async () => {
    await rejectsWith(gateway.canHandleToken({}), Code.InvalidArgument, /^token: is required$/);
    const secretish = `corp_${"s".repeat(20)}`;
    const unknown = await rejectsWith(
      gateway.canHandleToken({ token: secretish, keyManager: "no-such-km" }),
      Code.InvalidArgument,
      /^key_manager: no key manager of this name is configured$/,
    );
    assert.ok(!unknown.rawMessage.includes(secretish));
    const answer = await gateway.canHandleToken({ token: secretish });
    assert.ok(!JSON.stringify(answer).includes(secretish), "the answer holds the route, not the token");
    assert.ok(!logLines.join("").includes(secretish), "the token is in no log line");
  });

  test("gateways call it (km:gateway); store and admin callers are refused", async () => {
    for (const scopes of [["apim:subscribe"], ["km:admin"]]) {
      const caller = await server.caller(scopes, { subscriber: "alice" });
      await rejectsWith(server.client(KeyManagerService, { token: caller.token }).canHandleToken({ token: "t" }), Code.PermissionDenied, /km:gateway/);
    }
  });

  test("plain grpc-js", async () => {
    const client = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
    try {
      const metadata = new grpc.Metadata();
      metadata.set("authorization", `Bearer ${gatewayToken}`);
      const call = (token: string) =>
        new Promise<ReturnType<typeof fromBinary<typeof CanHandleTokenResponseSchema>>>((resolve, reject) =>
          client.makeUnaryRequest(
            `/${KeyManagerService.typeName}/CanHandleToken`,
            (r: ReturnType<typeof create<typeof CanHandleTokenRequestSchema>>) => Buffer.from(toBinary(CanHandleTokenRequestSchema, r)),
            (b: Buffer) => fromBinary(CanHandleTokenResponseSchema, b),
            create(CanHandleTokenRequestSchema, { token }),
            metadata,
            (err, res) => (err || !res ? reject(err) : resolve(res)),
          ),
        );
      const routed = await call(jwt({ iss: CORP }));
      assert.equal(routed.keyManager, "corp-idp");
      assert.equal(routed.routing, TokenRouting.ISSUER);
      const refused = await call("").then(
        () => assert.fail("accepted an empty token"),
        (err: grpc.ServiceError) => err,
      );
      assert.equal(refused.code, grpc.status.INVALID_ARGUMENT);
      assert.equal(refused.details, "token: is required");
    } finally {
      client.close();
    }
  });
});
