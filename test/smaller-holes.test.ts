/**
 * Issue #11 point 15, the smaller holes: a refused token request revokes nothing, hostile JSON in
 * BuildAccessTokenRequestFromJson is the caller's mistake, a Connect GET with bad base64 is 400,
 * the SQLite file and its directory are the owner's only, LoadConfiguration reads a bounded file,
 * the database drivers' messages go through the logger, and callback URLs cannot be scripts.
 */
import assert from "node:assert/strict";
import { lstatSync, mkdtempSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { Code } from "@connectrpc/connect";
import { UserService } from "../gen/keymanager/v1/user_service_pb.js";
import { KeyType } from "../gen/keymanager/v1/types_pb.js";
import { ConfigError, loadConfig } from "../src/config/load.js";
import { createKnex } from "../src/storage/database.js";
import { rejectsWith } from "./support/assert-rpc.js";
import { capturedLog } from "./support/captured-log.js";
import { testDatabases } from "./support/databases.js";
import { describeOnEachDatabase } from "./support/each-database.js";
import { createRequest } from "./support/fixtures.js";
import { startServer, type TestServer } from "./support/server.js";

describeOnEachDatabase("smaller holes", (database) => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ databaseUrl: database.url() });
    await server.client(UserService).createUser({ user: { username: "revoker" }, password: "revoker password" });
  });
  after(() => server?.close());

  test("a refused token request does not revoke its token_to_revoke; an issued one does", async () => {
    const app = (await server.grpc.createApplication(createRequest())).application;
    assert.ok(app);
    const credentials = { clientId: app.consumerKey, clientSecret: app.consumerSecret };
    const old = (await server.grpc.getNewApplicationAccessToken({ request: { ...credentials, grantType: "client_credentials" } })).token?.accessToken ?? "";
    const refusals = [
      { grantType: "password", resourceOwnerUsername: "revoker", resourceOwnerPassword: "wrong password" },
      { grantType: "refresh_token", refreshToken: "not-a-refresh-token" },
      { grantType: "authorization_code" },
      { grantType: "no-such-grant" },
    ];
    for (const refusal of refusals) {
      await assert.rejects(server.grpc.getNewApplicationAccessToken({ request: { ...credentials, ...refusal, tokenToRevoke: old } }));
      assert.equal((await server.grpc.getTokenMetadata({ accessToken: old })).token?.tokenValid, true, `${refusal.grantType} revoked nothing`);
    }
    await server.grpc.getNewApplicationAccessToken({ request: { ...credentials, grantType: "client_credentials", tokenToRevoke: old } });
    assert.equal((await server.grpc.getTokenMetadata({ accessToken: old })).token?.tokenValid, false, "an issued token's token_to_revoke is revoked");
  });

  test("callback URLs: http, https and native apps' own schemes; never javascript:, data:, vbscript:, file:", async () => {
    const grants = { grantTypes: ["authorization_code", "refresh_token"] };
    for (const url of [
      "javascript:alert(document.cookie)",
      "JavaScript://x/%0aalert(1)",
      "data:text/html,<script>x</script>",
      "vbscript:msgbox(1)",
      "file:///etc/passwd",
    ]) {
      const request = createRequest({ ...grants, callbackUrls: ["https://app.example.com/cb", url] });
      await rejectsWith(server.grpc.createApplication(request), Code.InvalidArgument, /^callback_urls\[1\]: the [a-z]+: scheme is not allowed/);
      await rejectsWith(
        server.grpc.retrieveApplication({
          selector: { case: "applicationKey", value: { applicationId: request.application.applicationId as string, keyType: KeyType.PRODUCTION } },
        }),
        Code.NotFound,
      );
    }
    const app = (
      await server.grpc.createApplication(
        createRequest({ ...grants, callbackUrls: ["https://app.example.com/cb", "http://127.0.0.1:8400/cb", "com.example.app:/oauth2redirect"] }),
      )
    ).application;
    assert.deepEqual(app?.callbackUrls, ["https://app.example.com/cb", "http://127.0.0.1:8400/cb", "com.example.app:/oauth2redirect"]);
    await rejectsWith(
      server.grpc.updateApplication({
        application: { consumerKey: app?.consumerKey, callbackUrls: ["javascript:alert(1)"] },
        updateMask: { paths: ["callback_urls"] },
      }),
      Code.InvalidArgument,
      /callback_urls\[0\]/,
    );
  });
});

describe("BuildAccessTokenRequestFromJson: hostile JSON is INVALID_ARGUMENT", () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server?.close());

  for (const protocol of ["grpc", "connect"] as const) {
    test(`__proto__ and a 200k-deep document (${protocol})`, async () => {
      const km = protocol === "grpc" ? server.grpc : server.connect;
      await rejectsWith(km.buildAccessTokenRequestFromJson({ json: '{"__proto__":1}' }), Code.InvalidArgument, /^json\.__proto__: /);
      await rejectsWith(km.buildAccessTokenRequestFromJson({ json: '{"grant_type":"password","__proto__":{"polluted":true}}' }), Code.InvalidArgument);
      const deep = `{"a":${"[".repeat(200_000)}${"]".repeat(200_000)}}`;
      await rejectsWith(km.buildAccessTokenRequestFromJson({ json: deep }), Code.InvalidArgument, /^json: must not nest deeper than 32 levels$/);
      const deepObject = `${'{"a":'.repeat(200_000)}1${"}".repeat(200_000)}`;
      await rejectsWith(km.buildAccessTokenRequestFromJson({ json: deepObject }), Code.InvalidArgument, /nest/);
      // Brackets inside strings are not nesting; ordinary nesting is kept as JSON text.
      const fine = await km.buildAccessTokenRequestFromJson({ json: `{"grant_type":"client_credentials","note":"${"[".repeat(100)}","extra":{"b":[1,2]}}` });
      assert.equal(fine.request?.grantType, "client_credentials");
      assert.equal(fine.request?.requestParameters.extra, '{"b":[1,2]}');
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
    });
  }
});

describe("a Connect GET with bad base64", () => {
  const { lines, logger } = capturedLog("info");
  let server: TestServer;
  before(async () => {
    server = await startServer({ logger });
  });
  after(() => server?.close());

  test("answers 400 invalid_argument, and is logged", async () => {
    for (const encoding of ["json", "proto"]) {
      const url = `http://127.0.0.1:${server.httpPort}/keymanager.v1.KeyManagerService/RetrieveApplication?connect=v1&encoding=${encoding}&base64=1&message=%25%25%25not*base64`;
      const res = await fetch(url, { headers: { authorization: `Bearer ${server.token}` } });
      const body = (await res.json()) as { code: string; message: string };
      assert.equal(res.status, 400, `${encoding}: ${JSON.stringify(body)}`);
      assert.equal(body.code, "invalid_argument");
      assert.match(body.message, /base64/);
    }
    const logged = lines.filter((l) => l.msg === "undecodable request refused");
    assert.equal(logged.length, 2);
    assert.equal(logged[0]?.rpc, "/keymanager.v1.KeyManagerService/RetrieveApplication");
    // Still a token check first: no credentials, 401.
    const anonymous = await fetch(
      `http://127.0.0.1:${server.httpPort}/keymanager.v1.KeyManagerService/RetrieveApplication?connect=v1&encoding=json&base64=1&message=%25`,
    );
    assert.equal(anonymous.status, 401);
  });
});

describe("the SQLite file and its directory are the owner's only", () => {
  const root = mkdtempSync(join(tmpdir(), "km-modes-"));
  after(() => rmSync(root, { recursive: true, force: true }));
  const mode = (path: string) => statSync(path).mode & 0o777;

  test("a new data directory is 0700, the database and its WAL 0600", async () => {
    const dir = join(root, "fresh", "data");
    const server = await startServer({ dataDir: dir, databaseUrl: `sqlite:${join(dir, "keymanager.db")}` });
    try {
      await server.grpc.createApplication(createRequest());
      assert.equal(mode(dir).toString(8), "700");
      assert.equal(mode(join(root, "fresh")).toString(8), "700");
      assert.equal(mode(join(dir, "keymanager.db")).toString(8), "600");
      assert.equal(mode(join(dir, "keymanager.db-wal")).toString(8), "600");
      assert.equal(mode(join(dir, "encryption.key")).toString(8), "600");
    } finally {
      await server.close();
    }
  });

  test("a database file left world-readable is brought down to 0600", async () => {
    const dir = join(root, "old");
    const server = await startServer({ dataDir: dir, databaseUrl: `sqlite:${join(dir, "keymanager.db")}` });
    await server.close();
    const { chmodSync } = await import("node:fs");
    chmodSync(join(dir, "keymanager.db"), 0o644);
    const again = await startServer({ dataDir: dir, databaseUrl: `sqlite:${join(dir, "keymanager.db")}` });
    try {
      assert.equal(mode(join(dir, "keymanager.db")).toString(8), "600");
    } finally {
      await again.close();
    }
  });
});

describe("LoadConfiguration reads a bounded file", () => {
  const dir = mkdtempSync(join(tmpdir(), "km-config-cap-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("a file that never ends (/dev/zero) is refused at once, and the configuration stays", async () => {
    const real = join(dir, "keymanager.toml");
    writeFileSync(real, '[key_manager]\nname = "Capped"\n');
    const link = join(dir, "current.toml");
    symlinkSync(real, link);
    const server = await startServer({ configFile: link });
    try {
      assert.equal((await server.grpc.getKeyManagerConfiguration({})).configuration?.name, "Capped");
      unlinkSync(link);
      symlinkSync("/dev/zero", link);
      assert.ok(lstatSync(link).isSymbolicLink());
      const start = performance.now();
      await rejectsWith(server.grpc.loadConfiguration({}), Code.FailedPrecondition, /larger than 1048576 bytes \(KM_CONFIG_MAX_BYTES\)/);
      assert.ok(performance.now() - start < 2000, "answered at once");
      assert.equal((await server.grpc.getKeyManagerConfiguration({})).configuration?.name, "Capped");
    } finally {
      await server.close();
    }
  });

  test("the cap is KM_CONFIG_MAX_BYTES", () => {
    const file = join(dir, "small.toml");
    writeFileSync(file, `[key_manager]\nname = "${"x".repeat(80)}"\n`);
    assert.throws(
      () => loadConfig({ file, env: { KM_CONFIG_MAX_BYTES: "64" } }),
      (err: ConfigError) => err instanceof ConfigError && /larger than 64 bytes/.test(err.message),
    );
    assert.equal(loadConfig({ file, env: { KM_CONFIG_MAX_BYTES: "4096" } }).name, "x".repeat(80));
    assert.throws(() => loadConfig({ file, env: { KM_CONFIG_MAX_BYTES: "lots" } }), /KM_CONFIG_MAX_BYTES: must be a positive integer/);
  });
});

for (const database of testDatabases().filter((d) => d.name !== "sqlite")) {
  describe(`the ${database.name} driver's messages go through the logger, not stdout`, { skip: database.skip }, () => {
    test("connections killed under the pool: knex's 'Connection Error' is a JSON log line", async () => {
      const handle = await (database.create as NonNullable<typeof database.create>)();
      const { lines, logger } = capturedLog("info");
      const server = await startServer({ databaseUrl: handle.url, logger });
      const admin = createKnex({ url: handle.url, poolMax: 1 });
      const written: string[] = [];
      const write = process.stdout.write.bind(process.stdout);
      try {
        for (let i = 0; i < 4; i++) await server.grpc.createApplication(createRequest());
        process.stdout.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
          written.push(String(chunk));
          return write(chunk, ...rest);
        }) as typeof process.stdout.write;
        if (database.name === "postgres") {
          await admin.raw("select pg_terminate_backend(pid) from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()");
        } else {
          const [rows] = (await admin.raw("select id from information_schema.processlist where db = database() and id <> connection_id()")) as [
            Array<{ id: number }>,
          ];
          for (const row of rows) await admin.raw(`kill ${Number(row.id)}`);
        }
        await sleep(300);
        for (let i = 0; i < 4; i++) await server.grpc.createApplication(createRequest()).catch(() => undefined);
        const logged = lines.filter((l) => /Connection Error/.test(String(l.msg)));
        assert.ok(logged.length > 0, "knex's warning reached the logger");
        assert.equal(logged[0]?.component, "database");
        assert.ok(!written.some((w) => w.includes("Connection Error")), "nothing on stdout");
      } finally {
        process.stdout.write = write;
        await admin.destroy();
        await server.close();
        await handle.drop();
      }
    });
  });
}
