import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { Code } from "@connectrpc/connect";
import { TokenType } from "../gen/keymanager/v1/types_pb.js";
import { ConfigError, loadConfig } from "../src/config/load.js";
import { redactUrl } from "../src/services/configuration-mapping.js";
import { rejectsWith } from "./support/assert-rpc.js";
import { createRequest } from "./support/fixtures.js";
import { startServer } from "./support/server.js";

const dir = mkdtempSync(join(tmpdir(), "km-config-"));
after(() => rmSync(dir, { recursive: true, force: true }));
const encryptionKey = randomBytes(32).toString("base64");

function deploymentFile(body: string): string {
  const file = join(dir, "keymanager.toml");
  writeFileSync(file, body);
  return file;
}

describe("LoadConfiguration and GetKeyManagerConfiguration", () => {
  test("reloads the file, applies it, reports restart-only changes, keeps the old one when invalid", async () => {
    const file = deploymentFile(`
[key_manager]
name = "Edge KM"
token_type = "jwt"
[key_manager.validity]
application_token = 1200
[key_manager.database]
pool_max = 5
[key_manager.encryption]
key = "${encryptionKey}"
`);
    const server = await startServer({ configFile: file });
    try {
      const { configuration } = await server.grpc.getKeyManagerConfiguration({});
      assert.equal(configuration?.name, "Edge KM");
      assert.equal(configuration?.tokenType, TokenType.JWT);
      assert.equal(configuration?.applicationTokenValiditySeconds, 1200n);
      assert.equal(configuration?.encryptionKey, "***", "the key is never shown");
      assert.ok(!JSON.stringify(configuration, (_, v) => (typeof v === "bigint" ? String(v) : v)).includes(encryptionKey));
      assert.equal(configuration?.sourceFile, file);
      assert.equal(configuration?.tokenEndpoint, `${configuration?.issuer}/oauth2/token`);

      const before = (await server.grpc.createApplication(createRequest())).application;
      assert.equal(before?.applicationTokenValiditySeconds, 1200n);
      assert.equal(before?.tokenType, TokenType.JWT);

      deploymentFile(`
[key_manager]
name = "Edge KM 2"
[key_manager.validity]
application_token = 900
[key_manager.database]
pool_max = 7
[key_manager.encryption]
key = "${encryptionKey}"
`);
      const reloaded = await server.grpc.loadConfiguration({});
      assert.equal(reloaded.configuration?.name, "Edge KM 2");
      assert.equal(reloaded.configuration?.tokenType, TokenType.OPAQUE);
      assert.deepEqual(reloaded.restartRequired, ["database"]);
      const afterReload = (await server.grpc.createApplication(createRequest())).application;
      assert.equal(afterReload?.applicationTokenValiditySeconds, 900n, "new defaults apply to the next call");
      assert.equal(afterReload?.keyManager, "Edge KM 2");

      deploymentFile(`[key_manager]\nname = "Broken"\n[key_manager.validity]\napplication_token = -3\n`);
      await rejectsWith(server.grpc.loadConfiguration({}), Code.FailedPrecondition, /previous one stays in force: key_manager.validity.application_token/);
      deploymentFile(`[key_manager\nname = `);
      await rejectsWith(server.grpc.loadConfiguration({}), Code.FailedPrecondition, /not valid TOML/);
      deploymentFile(`[key_manager]\nnmae = "typo"\n`);
      await rejectsWith(server.grpc.loadConfiguration({}), Code.FailedPrecondition, /nmae/);
      const still = await server.grpc.getKeyManagerConfiguration({});
      assert.equal(still.configuration?.name, "Edge KM 2", "an invalid file changes nothing");
    } finally {
      await server.close();
    }
  });
});

describe("loading the deployment file", () => {
  test("environment variables override the file", () => {
    const file = deploymentFile(`[key_manager]\nname = "From file"\n[key_manager.grpc]\nport = 6000\n`);
    const config = loadConfig({ file, env: { KM_GRPC_PORT: "6001", KM_NAME: "From env", KM_TOKEN_TYPE: "jwt" } });
    assert.equal(config.grpc.port, 6001);
    assert.equal(config.name, "From env");
    assert.equal(config.tokenType, "JWT");
  });

  test("defaults without a file: ports 50051 and 8080, SQLite in the data directory", () => {
    const config = loadConfig({ file: undefined, env: {} });
    assert.equal(config.grpc.port, 50051);
    assert.equal(config.http.port, 8080);
    assert.equal(config.database.url, "sqlite:./data/keymanager.db");
    assert.equal(config.tokenType, "OPAQUE");
  });

  test("every problem is named", () => {
    const file = deploymentFile(`[key_manager]\ntoken_type = "paper"\n[key_manager.http]\nport = -1\n[key_manager.tls]\ncert_file = "a.pem"\n`);
    assert.throws(
      () => loadConfig({ file, env: {} }),
      (err: ConfigError) => {
        assert.ok(err instanceof ConfigError);
        const text = err.problems.join("\n");
        assert.match(text, /key_manager.token_type/);
        assert.match(text, /key_manager.http.port/);
        assert.match(text, /key_manager.tls: cert_file and key_file must be given together/);
        return true;
      },
    );
    assert.throws(() => loadConfig({ file: join(dir, "missing.toml"), env: {} }), /cannot read file: ENOENT/);
  });

  test("the resident key manager's enable_self_validation_jwt: true by default, false accepted from the file, anything else named", () => {
    assert.equal(loadConfig({ file: deploymentFile("[key_manager]\n"), env: {} }).features.enableSelfValidationJwt, true);
    const off = deploymentFile("[key_manager.features]\nenable_self_validation_jwt = false\n");
    assert.equal(loadConfig({ file: off, env: {} }).features.enableSelfValidationJwt, false);
    const wrong = deploymentFile('[key_manager.features]\nenable_self_validation_jwt = "no"\n');
    assert.throws(
      () => loadConfig({ file: wrong, env: {} }),
      (err: ConfigError) => err.problems.some((p) => /key_manager.features.enable_self_validation_jwt/.test(p)),
    );
  });

  test("trusted proxies: a list in the file, comma-separated in KM_TRUSTED_PROXIES, each an address or CIDR range", () => {
    assert.deepEqual(loadConfig({ file: undefined, env: { KM_TRUSTED_PROXIES: "10.0.0.0/8, fd00::/8,192.0.2.1" } }).authentication.trustedProxies, [
      "10.0.0.0/8",
      "fd00::/8",
      "192.0.2.1",
    ]);
    const file = deploymentFile(`[key_manager.authentication]\ntrusted_proxies = ["10.0.0.0/33", "proxy.local", "::1"]\n`);
    assert.throws(
      () => loadConfig({ file, env: {} }),
      (err: ConfigError) => err.problems.filter((p) => /trusted_proxies\.\d: must be an IP address or CIDR range/.test(p)).length === 2,
    );
  });

  test("database passwords are redacted", () => {
    assert.equal(redactUrl("postgres://km:s3cret@db:5432/km"), "postgres://km:***@db:5432/km");
    assert.equal(redactUrl("mysql://root@db/km?password=x"), "mysql://root@db/km?password=***");
    assert.equal(redactUrl("sqlite:./data/km.db"), "sqlite:./data/km.db");
  });
});
