import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { KeyType } from "../gen/keymanager/v1/types_pb.js";
import { startServer, type TestServer } from "./support/server.js";
import { environmentWithoutKm, markedScript, README_BLOCK_MARK, readmeShellBlocks } from "./support/readme.js";

// The README's quick start, as written: the `sh` blocks under the headings below are run in one
// bash session (set -euo pipefail) against a real server on port 0, whose addresses and data
// directory are given through the variables the README itself reads (KM_HTTP, KM_GRPC,
// KM_DATA_DIR). What each block prints is checked, and what the server holds afterwards.

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const run = promisify(execFile);
const TESTED_SECTIONS = ["Gateway quick start", "Store REST API", "Gateways that keep a copy: Watch"];

let server: TestServer;
before(async () => {
  server = await startServer();
});
after(() => server.close());

test("the README's gateway quick start and Store REST API commands, as written", { timeout: 180_000 }, async () => {
  const blocks = TESTED_SECTIONS.flatMap((heading) => readmeShellBlocks(heading));
  assert.equal(blocks.length, 9, "the blocks this test knows how to check");
  const { stdout } = await run("bash", ["-c", markedScript(blocks)], {
    cwd: ROOT,
    env: {
      ...environmentWithoutKm(),
      KM_HTTP: `http://127.0.0.1:${server.httpPort}`,
      KM_GRPC: `http://127.0.0.1:${server.grpcPort}`,
      KM_DATA_DIR: server.dataDir,
      KM_LOG_LEVEL: "silent",
    },
    timeout: 170_000,
    maxBuffer: 16 * 1024 * 1024,
  });
  const outputs = stdout.split(`${README_BLOCK_MARK}\n`).map((o) => o.trim());
  const [admin, api, keys, subscription, validated, refused, storeGet, storePut, watched] = outputs;
  assert.equal(admin, "", "variables only");
  const [createdApi, registered] = (api ?? "").split(/\n(?=\{)/).map((o) => JSON.parse(o));
  assert.equal(createdApi.api.context, "/pizzashack");
  assert.equal(registered.resource.resources.length, 2);
  assert.equal(keys, "", "variables only");
  assert.equal(JSON.parse(subscription ?? "").subscription.state, "SUBSCRIPTION_STATE_UNBLOCKED");

  const appId = "896658a0-b4ee-4535-bbfa-806c894a4015";
  const ok = JSON.parse(validated ?? "");
  assert.equal(ok.authorized, true, validated);
  assert.equal(ok.applicationId, appId);
  assert.equal(ok.subscriptionTier, "Unlimited");
  assert.equal(ok.keyType, "KEY_TYPE_PRODUCTION");
  const no = JSON.parse(refused ?? "");
  assert.equal(no.authorized ?? false, false, refused);
  assert.match(String(no.statusCode), /^9009\d\d$/);
  assert.ok(no.statusDescription, "says which check failed");

  const held = (await server.grpc.retrieveApplication({ selector: { case: "applicationKey", value: { applicationId: appId, keyType: KeyType.PRODUCTION } } }))
    .application;
  assert.ok(held);
  const read = JSON.parse(storeGet ?? "");
  assert.equal(read.consumerKey, held.consumerKey);
  assert.equal(read.keyType, "PRODUCTION");
  const written = JSON.parse(storePut ?? "");
  assert.equal(written.callbackUrl, "http://sample/com/callback", storePut);
  const after = (await server.grpc.retrieveApplication({ selector: { case: "consumerKey", value: held.consumerKey } })).application;
  assert.deepEqual(after?.grantTypes, ["refresh_token", "password", "client_credentials"]);
  assert.deepEqual(after?.callbackUrls, ["http://sample/com/callback"]);

  // buf curl prints each message of the stream as a JSON object.
  const messages = (watched ?? "").split(/\n(?=\{)/).map((o) => JSON.parse(o));
  const chunks = messages.filter((m) => m.snapshotChunk).map((m) => m.snapshotChunk);
  assert.ok(chunks.at(-1)?.lastChunk, watched);
  const entities = chunks.flatMap((c) => c.entities ?? []);
  assert.deepEqual(
    entities.filter((e) => e.api).map((e) => [e.api.context, e.api.resources.length]),
    [["/pizzashack", 2]],
  );
  assert.ok(entities.some((e) => e.subscription?.applicationId === appId));
  assert.ok(entities.some((e) => e.keyMapping?.consumerKey === held.consumerKey));
});
