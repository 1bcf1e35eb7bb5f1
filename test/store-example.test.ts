import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { SCOPES } from "../src/auth/scopes.js";
import { startServer, type TestServer } from "./support/server.js";

const run = promisify(execFile);
let server: TestServer;
before(async () => {
  server = await startServer();
});
after(() => server?.close());

function example(env: Record<string, string>, ...args: string[]) {
  return run(process.execPath, ["--conditions=keymanager-source", "--import", "tsx", "examples/store/create-keys.ts", ...args], {
    env: { ...process.env, KM_URL: `http://127.0.0.1:${server.httpPort}`, ...env },
    timeout: 60_000,
  });
}

test("examples/store creates an application's keys and gets a working token, as a store client", async () => {
  const store = await server.caller([SCOPES.store], { subscriber: "admin" });
  const { stdout } = await example({ KM_CLIENT_ID: store.clientId, KM_CLIENT_SECRET: store.clientSecret }, "ExampleApp");
  const out = JSON.parse(stdout) as { applicationId: string; consumerKey: string; accessToken: string; expiresInSeconds: number };
  const retrieved = await server.grpc.retrieveApplication({ selector: { case: "consumerKey", value: out.consumerKey } });
  assert.equal(retrieved.application?.applicationId, out.applicationId);
  assert.equal(retrieved.application?.applicationName, "ExampleApp");
  const meta = await server.grpc.getTokenMetadata({ accessToken: out.accessToken });
  assert.equal(meta.token?.tokenValid, true);
  assert.equal(meta.token?.consumerKey, out.consumerKey);
  assert.ok(out.expiresInSeconds > 0);
});

test("examples/store with wrong credentials fails, naming the token endpoint's answer, never the secret", async () => {
  const store = await server.caller([SCOPES.store], { subscriber: "admin" });
  await assert.rejects(example({ KM_CLIENT_ID: store.clientId, KM_CLIENT_SECRET: "wrong-secret-value" }), (err: { code: number; stderr: string }) => {
    assert.notEqual(err.code, 0);
    assert.match(err.stderr, /HTTP 401/);
    assert.doesNotMatch(err.stderr, /wrong-secret-value/);
    return true;
  });
});
