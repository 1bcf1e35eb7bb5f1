import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { promisify } from "node:util";
import { Code } from "@connectrpc/connect";
import { SubscriptionService } from "../gen/keymanager/v1/subscription_service_pb.js";
import { SystemClientService } from "../gen/keymanager/v1/system_client_service_pb.js";
import { rejectsWith } from "./support/assert-rpc.js";
import { startServer } from "./support/server.js";
import { RUN_TS } from "./support/run-ts.js";

const run = promisify(execFile);
const dataDir = mkdtempSync(join(tmpdir(), "km-bootstrap-"));
after(() => rmSync(dataDir, { recursive: true, force: true }));

/** The bootstrap command as `npm run km -- bootstrap` runs it (from source here). */
function bootstrap(...args: string[]) {
  return run(process.execPath, [...RUN_TS, "src/cli.ts", "bootstrap", ...args], {
    env: { ...process.env, KM_DATA_DIR: dataDir, KM_LOG_LEVEL: "silent", KM_CONFIG_FILE: "" },
    timeout: 60_000,
  });
}

test("bootstrap creates the first admin once; its token reaches admin RPCs over gRPC", async () => {
  const { stdout } = await bootstrap();
  const created = JSON.parse(stdout) as { client_id: string; client_secret: string; scopes: string[] };
  assert.deepEqual([...created.scopes].sort(), ["apim:subscribe", "km:admin", "km:gateway"]);

  await assert.rejects(bootstrap(), (err: { code: number; stderr: string }) => {
    assert.equal(err.code, 1);
    assert.match(err.stderr, /exists already/);
    assert.doesNotMatch(err.stderr, new RegExp(created.client_secret));
    return true;
  });

  const server = await startServer({ dataDir });
  try {
    const res = await fetch(`http://127.0.0.1:${server.httpPort}/oauth2/token`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        authorization: `Basic ${Buffer.from(`${created.client_id}:${created.client_secret}`).toString("base64")}`,
      },
      body: "grant_type=client_credentials",
    });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { access_token: string; scope: string };
    assert.deepEqual(body.scope.split(" ").sort(), ["apim:subscribe", "km:admin", "km:gateway"]);
    const clients = await server.client(SystemClientService, { token: body.access_token }).listSystemClients({});
    assert.ok(clients.systemClients.some((c) => c.clientId === created.client_id));
    // A store-only client made with the admin token cannot do admin work.
    const store = await server
      .client(SystemClientService, { token: body.access_token })
      .createSystemClient({ systemClient: { name: "store", scopes: ["apim:subscribe"], subscriber: "alice" } });
    assert.ok(store.clientSecret);
    await rejectsWith(server.client(SubscriptionService, { token: "" }).listApis({}), Code.Unauthenticated, /Bearer/);
  } finally {
    await server.close();
  }

  const { stdout: second } = await bootstrap("--another", "--name", "gateway", "--scope", "km:gateway");
  assert.deepEqual(JSON.parse(second).scopes, ["km:gateway"]);
});

test("bootstrap refuses a scope that is not a system scope", async () => {
  await assert.rejects(bootstrap("--another", "--scope", "read:orders"), (err: { code: number; stderr: string }) => {
    assert.equal(err.code, 2);
    assert.match(err.stderr, /scopes\[0\]/);
    return true;
  });
});

test("bootstrap refuses a store client without a subscriber, naming --subscriber's field", async () => {
  await assert.rejects(bootstrap("--another", "--name", "store", "--scope", "apim:subscribe"), (err: { code: number; stderr: string }) => {
    assert.equal(err.code, 2);
    assert.match(err.stderr, /subscriber: is required with scope apim:subscribe/);
    return true;
  });
  const { stdout } = await bootstrap("--another", "--name", "store", "--scope", "apim:subscribe", "--subscriber", "alice");
  assert.deepEqual(JSON.parse(stdout).scopes, ["apim:subscribe"]);
});
