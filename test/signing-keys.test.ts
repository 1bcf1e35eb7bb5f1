import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from "jose";
import { SigningKeyService } from "../gen/keymanager/v1/signing_key_service_pb.js";
import { TokenType } from "../gen/keymanager/v1/types_pb.js";
import { TestClock } from "./support/clock.js";
import { createRequest } from "./support/fixtures.js";
import { startServer, type TestServer } from "./support/server.js";

const clock = new TestClock();
let server: TestServer;
before(async () => {
  server = await startServer({ clock, overrides: { validity: { max_token: 7200 } } });
});
after(() => server.close());

async function jwt(): Promise<string> {
  const app = (await server.grpc.createApplication(createRequest({ tokenType: TokenType.JWT }))).application;
  assert.ok(app);
  const res = await server.grpc.getNewApplicationAccessToken({
    request: { clientId: app.consumerKey, clientSecret: app.consumerSecret, grantType: "client_credentials" },
  });
  return res.token?.accessToken ?? "";
}

async function jwks() {
  return createLocalJWKSet((await (await fetch(`http://127.0.0.1:${server.httpPort}/oauth2/jwks`)).json()) as never);
}

test("rotation: new tokens get the new kid; old tokens verify until their signing key's tokens have expired", async () => {
  const keys = server.client(SigningKeyService);
  const before = await jwt();
  const oldKid = decodeProtectedHeader(before).kid;
  const { signingKey: key } = await keys.rotateSigningKey({});
  assert.ok(key?.active);
  assert.notEqual(key.kid, oldKid);

  const after = await jwt();
  assert.equal(decodeProtectedHeader(after).kid, key.kid);
  await jwtVerify(before, await jwks(), { currentDate: clock.now() });
  await jwtVerify(after, await jwks(), { currentDate: clock.now() });
  assert.equal((await server.grpc.getTokenMetadata({ accessToken: before })).token?.tokenValid, true, "old tokens stay valid");

  const listed = await keys.listSigningKeys({});
  assert.deepEqual(
    listed.signingKeys.map((k) => k.active),
    [true, false],
  );
  assert.ok(listed.signingKeys[1]?.retireTime);

  // Past the longest token life the retired key is no longer published.
  clock.advance(7201);
  // The test's own token expired too (max_token caps every token): a fresh admin token.
  const { token } = await server.caller(["km:admin"]);
  await server.client(SigningKeyService, { token }).rotateSigningKey({});
  const kids = ((await (await fetch(`http://127.0.0.1:${server.httpPort}/oauth2/jwks`)).json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid);
  assert.ok(!kids.includes(oldKid as string));
  assert.ok(kids.includes(key.kid), "the key retired just now is still published");
});

test("RS256 is selectable", async () => {
  const rs = await startServer({ overrides: { jwt: { algorithm: "RS256" } } });
  try {
    const app = (await rs.grpc.createApplication(createRequest({ tokenType: TokenType.JWT }))).application;
    assert.ok(app);
    const token =
      (
        await rs.grpc.getNewApplicationAccessToken({
          request: { clientId: app.consumerKey, clientSecret: app.consumerSecret, grantType: "client_credentials" },
        })
      ).token?.accessToken ?? "";
    assert.equal(decodeProtectedHeader(token).alg, "RS256");
    assert.equal((await rs.grpc.getTokenMetadata({ accessToken: token })).token?.tokenValid, true);
  } finally {
    await rs.close();
  }
});
