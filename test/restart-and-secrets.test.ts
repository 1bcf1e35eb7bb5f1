import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { KeyType } from "../gen/keymanager/v1/types_pb.js";
import { createKnex } from "../src/storage/database.js";
import { createRequest, sampleResources } from "./support/fixtures.js";
import { startServer } from "./support/server.js";

const dataDir = mkdtempSync(join(tmpdir(), "km-restart-"));
after(() => rmSync(dataDir, { recursive: true, force: true }));

test("a restart on the same SQLite file keeps every application, mapping and resource", async () => {
  const first = await startServer({ dataDir });
  const created = [];
  for (let i = 0; i < 10; i++) {
    const req = createRequest({ keyType: i % 2 ? KeyType.SANDBOX : KeyType.PRODUCTION, clientName: `app-${i}` });
    created.push((await first.grpc.createApplication(req)).application);
  }
  const mapped = await first.grpc.mapOAuthApplication({
    application: {
      applicationId: "mapped-app",
      keyType: KeyType.PRODUCTION,
      consumerKey: "external-key",
      consumerSecret: "external-secret",
    },
  });
  await first.grpc.registerNewResource({ resource: { apiId: "api-1", resources: sampleResources() } });
  await first.close();

  const second = await startServer({ dataDir });
  try {
    for (const app of created) {
      assert.ok(app);
      const { application } = await second.grpc.retrieveApplication({ selector: { case: "consumerKey", value: app.consumerKey } });
      assert.deepEqual(application, app, "the same application, secret included, after a restart");
    }
    const again = await second.grpc.retrieveApplication({
      selector: { case: "applicationKey", value: { applicationId: "mapped-app", keyType: KeyType.PRODUCTION } },
    });
    assert.deepEqual(again.application, mapped.application);
    assert.equal((await second.grpc.getResourceByApiId({ apiId: "api-1" })).resource?.resources.length, 2);
  } finally {
    await second.close();
  }
});

test("consumer secrets are encrypted at rest and the generated key file is private", async () => {
  const server = await startServer({ dataDir });
  try {
    const app = (await server.grpc.createApplication(createRequest())).application;
    assert.ok(app);
    const db = createKnex({ url: `sqlite:${join(dataDir, "keymanager.db")}`, poolMax: 1 });
    try {
      const rows = await db("oauth_clients").select();
      const text = JSON.stringify(rows);
      assert.ok(!text.includes(app.consumerSecret), "the plaintext secret is not stored");
      const row = rows.find((r: { consumer_key: string }) => r.consumer_key === app.consumerKey);
      assert.match(row.secret_ciphertext, /^v1\./);
    } finally {
      await db.destroy();
    }
    assert.equal(statSync(join(dataDir, "encryption.key")).mode & 0o777, 0o600);
  } finally {
    await server.close();
  }
});
