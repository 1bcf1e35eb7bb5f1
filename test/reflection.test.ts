import assert from "node:assert/strict";
import { KeyManagerService } from "../gen/keymanager/v1/key_manager_service_pb.js";
import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { startServer, type TestServer } from "./support/server.js";

const run = promisify(execFile);
const require = createRequire(import.meta.url);
// The buf CLI binary shipped in the npm package (the grpcurl stand-in).
const BUF = require.resolve("@bufbuild/buf/bin/buf");

let server: TestServer;
before(async () => {
  server = await startServer();
});
after(() => server.close());

/** buf curl with the test's admin token (reflection itself needs none). */
function bufCurl(...args: string[]) {
  return run(BUF, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "-H", `authorization: Bearer ${server.token}`, ...args], { timeout: 30_000 });
}

for (const protocol of ["grpc-v1", "grpc-v1alpha"]) {
  test(`buf curl lists every method through reflection (${protocol})`, async () => {
    // No credentials: reflection is open, as health is.
    const { stdout } = await run(
      BUF,
      ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "--reflect-protocol", protocol, "--list-methods", `http://127.0.0.1:${server.grpcPort}`],
      { timeout: 30_000 },
    );
    const methods = stdout.trim().split("\n");
    for (const name of ["CreateApplication", "RetrieveApplication", "MapOAuthApplication", "GetKeyManagerConfiguration", "RegisterNewResource"]) {
      assert.ok(methods.includes(`keymanager.v1.KeyManagerService/${name}`), `${name} listed`);
    }
    // Every method of the contract, however many it has.
    assert.deepEqual(
      methods.filter((m) => m.startsWith("keymanager.v1.KeyManagerService/")).sort(),
      KeyManagerService.methods.map((m) => `keymanager.v1.KeyManagerService/${m.name}`).sort(),
    );
    assert.ok(methods.includes("grpc.health.v1.Health/Check"));
  });
}

test("buf curl calls CreateApplication with JSON and reads it back", async () => {
  const body = JSON.stringify({
    application: {
      applicationId: "896658a0-b4ee-4535-bbfa-806c894a4015",
      keyType: "KEY_TYPE_PRODUCTION",
      clientName: "PizzaShack",
      grantTypes: ["client_credentials", "password"],
    },
  });
  const base = `http://127.0.0.1:${server.grpcPort}/keymanager.v1.KeyManagerService`;
  const created = JSON.parse((await bufCurl("-d", body, `${base}/CreateApplication`)).stdout);
  assert.equal(created.application.keyState, "KEY_STATE_COMPLETED");
  const read = JSON.parse((await bufCurl("-d", JSON.stringify({ consumerKey: created.application.consumerKey }), `${base}/RetrieveApplication`)).stdout);
  assert.equal(read.application.clientName, "PizzaShack");
});

test("buf curl shows the error code of a bad call", async () => {
  const base = `http://127.0.0.1:${server.grpcPort}/keymanager.v1.KeyManagerService`;
  await assert.rejects(bufCurl("-d", "{}", `${base}/RetrieveApplication`), (err: { stdout: string; stderr: string }) => {
    assert.match(err.stdout + err.stderr, /invalid_argument/);
    return true;
  });
});
