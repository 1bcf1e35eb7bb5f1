import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { exportJWK, generateKeyPair } from "jose";
import { COMMANDS, runCli } from "../src/cli/main.js";
import { startServer, type TestServer } from "./support/server.js";

// km against a real server on port 0: every command with --json, its answer parsed and checked
// against what the server holds (read back through another command). Most calls run the CLI's
// runCli in this process (stdout/stderr captured); the last tests run the `km` bin as a process.

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const exec = promisify(execFile);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let server: TestServer;
let env: NodeJS.ProcessEnv;

async function km(args: string[], options: { stdin?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(args, {
    stdout: (t) => out.push(t),
    stderr: (t) => err.push(t),
    env: options.env ?? env,
    stdin: async () => options.stdin ?? "",
  });
  return { code, stdout: out.join("\n"), stderr: err.join("\n") };
}

/** The JSON answer of a command that must succeed. */
// biome-ignore lint/suspicious/noExplicitAny: answers are checked field by field
async function json(args: string[], options: { stdin?: string; env?: NodeJS.ProcessEnv } = {}): Promise<any> {
  const run = await km([...args, "--json"], options);
  assert.equal(run.code, 0, `km ${args.join(" ")}: ${run.stderr}`);
  return JSON.parse(run.stdout);
}

before(async () => {
  server = await startServer();
  env = { KM_URL: `http://127.0.0.1:${server.httpPort}`, KM_TOKEN: server.token };
});
after(() => server.close());

describe("km against a running server, --json", () => {
  const appId = randomUUID();
  let consumerKey = "";
  let consumerSecret = "";
  let subscriptionId = "";

  test("health", async () => {
    assert.deepEqual(await json(["health"]), { status: "SERVING" });
  });

  test("clients: create (then used through KM_CLIENT_ID/KM_CLIENT_SECRET), get, list, regenerate-secret, delete", async () => {
    const created = await json(["clients", "create", "--name", "ops admin", "--scope", "km:admin,apim:subscribe", "--scope", "km:gateway"]);
    assert.deepEqual(created.systemClient.scopes.sort(), ["apim:subscribe", "km:admin", "km:gateway"]);
    assert.ok(created.clientSecret);
    // From here on the CLI gets its own token with the new client's credentials.
    env = { KM_URL: env.KM_URL, KM_CLIENT_ID: created.systemClient.clientId, KM_CLIENT_SECRET: created.clientSecret };
    const got = await json(["clients", "get", "--id", created.systemClient.clientId]);
    assert.equal(got.systemClient.name, "ops admin");

    const other = await json(["clients", "create", "--name", "store", "--scope", "apim:subscribe", "--subscriber", "alice"]);
    const page = await json(["clients", "list", "--page-size", "100"]);
    assert.ok(page.systemClients.some((c: { clientId: string }) => c.clientId === other.systemClient.clientId));
    const regenerated = await json(["clients", "regenerate-secret", "--id", other.systemClient.clientId]);
    assert.equal(regenerated.clientId, other.systemClient.clientId);
    assert.notEqual(regenerated.clientSecret, other.clientSecret);
    assert.deepEqual(await json(["clients", "delete", "--id", other.systemClient.clientId]), {});
    const gone = await km(["clients", "get", "--id", other.systemClient.clientId, "--json"]);
    assert.equal(gone.code, 1);
    assert.equal(gone.stdout, "");
    assert.match(gone.stderr, /NotFound/);
  });

  test("apis: create, get, list, update", async () => {
    const created = await json(["apis", "create", "--api-id", "pizza", "--name", "PizzaShack", "--context", "/pizzashack", "--version", "1.0.0"]);
    assert.equal(created.api.context, "/pizzashack");
    assert.equal((await json(["apis", "get", "--api-id", "pizza"])).api.name, "PizzaShack");
    const listed = await json(["apis", "list"]);
    assert.deepEqual(
      listed.apis.map((a: { apiId: string }) => a.apiId),
      ["pizza"],
    );
    const updated = await json(["apis", "update", "--api-id", "pizza", "--tier", "Gold"]);
    assert.equal(updated.api.apiTier, "Gold");
    assert.equal(updated.api.name, "PizzaShack", "fields not given are kept");
  });

  test("resources: register, get, update", async () => {
    const registered = await json([
      "resources",
      "register",
      "--api-id",
      "pizza",
      "--resource",
      "GET /menu",
      "--resource",
      "POST /order/{id} order:write application",
    ]);
    assert.equal(registered.resource.resources.length, 2);
    const got = await json(["resources", "get", "--api-id", "pizza"]);
    const { uriTemplate, httpVerb, authLevel, scopes } = got.resource.resources[1];
    assert.deepEqual(
      { uriTemplate, httpVerb, authLevel, scopes },
      { uriTemplate: "/order/{id}", httpVerb: "POST", authLevel: "AUTH_LEVEL_APPLICATION", scopes: ["order:write"] },
    );
    assert.equal(got.resource.resources[0].authLevel, "AUTH_LEVEL_ANY", "application or user tokens unless told");
    const updated = await json(["resources", "update", "--api-id", "pizza", "--resource", "GET /menu", "--resource", "GET /menu/{item}"]);
    assert.deepEqual(
      updated.resource.resources.map((r: { uriTemplate: string }) => r.uriTemplate),
      ["/menu", "/menu/{item}"],
    );
  });

  test("apps: create, get (both ways), update, regenerate-secret", async () => {
    const created = await json(["apps", "create", "--app-id", appId, "--name", "PizzaApp", "--grant-type", "client_credentials,password"]);
    consumerKey = created.application.consumerKey;
    assert.equal(created.application.keyType, "KEY_TYPE_PRODUCTION");
    assert.deepEqual(created.application.grantTypes, ["client_credentials", "password"]);
    assert.equal((await json(["apps", "get", "--consumer-key", consumerKey])).application.clientName, "PizzaApp");
    assert.equal((await json(["apps", "get", "--app-id", appId, "--key-type", "production"])).application.consumerKey, consumerKey);
    const updated = await json(["apps", "update", "--consumer-key", consumerKey, "--callback-url", "https://pizza.example/cb"]);
    assert.deepEqual(updated.application.callbackUrls, ["https://pizza.example/cb"]);
    assert.equal(updated.application.clientName, "PizzaApp");
    const regenerated = await json(["apps", "regenerate-secret", "--consumer-key", consumerKey]);
    assert.notEqual(regenerated.consumerSecret, created.application.consumerSecret);
    consumerSecret = regenerated.consumerSecret;
  });

  test("apps: add-secret (printed once), secrets (no values), revoke-secret", async () => {
    const added = await json(["apps", "add-secret", "--consumer-key", consumerKey, "--description", "from km", "--validity-seconds", "600"]);
    assert.match(added.consumerSecret, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(added.secret.description, "from km");
    assert.ok(added.secret.expireTime);
    const listed = await json(["apps", "secrets", "--consumer-key", consumerKey, "--page-size", "10"]);
    assert.deepEqual(
      listed.secrets.map((s: { secretId: string }) => s.secretId),
      [added.secret.secretId],
    );
    assert.ok(!JSON.stringify(listed).includes(added.consumerSecret));
    assert.deepEqual(await json(["apps", "revoke-secret", "--consumer-key", consumerKey, "--secret-id", added.secret.secretId]), {});
    assert.equal((await json(["apps", "secrets", "--consumer-key", consumerKey])).secrets ?? undefined, undefined);
    const bad = await km(["apps", "add-secret", "--consumer-key", consumerKey, "--validity-seconds", "soon"]);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /--validity-seconds soon: not a number/);
  });

  test("apps: set-owner", async () => {
    assert.equal((await json(["apps", "set-owner", "--consumer-key", consumerKey, "--owner", "mallory"])).application.appOwner, "mallory");
    assert.equal((await json(["apps", "get", "--consumer-key", consumerKey])).application.appOwner, "mallory");
    const missing = await km(["apps", "set-owner", "--consumer-key", consumerKey]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--owner/);
  });

  test("apps: unmap, then map the same keys to another application (secret from stdin), delete", async () => {
    const source = await json(["apps", "create", "--app-id", randomUUID(), "--name", "Source", "--key-type", "sandbox"]);
    const key = source.application.consumerKey;
    assert.deepEqual(await json(["apps", "unmap", "--consumer-key", key]), {});
    assert.equal((await json(["apps", "get", "--consumer-key", key])).application.applicationId ?? "", "");
    const target = randomUUID();
    const mapped = await json(["apps", "map", "--app-id", target, "--key-type", "sandbox", "--consumer-key", key, "--consumer-secret", "-"], {
      stdin: `${source.application.consumerSecret}\n`,
    });
    assert.equal(mapped.application.mode, "APPLICATION_MODE_MAPPED");
    assert.equal(mapped.application.applicationId, target);
    assert.deepEqual(await json(["apps", "delete", "--consumer-key", key]), {});
    assert.equal((await km(["apps", "get", "--consumer-key", key])).code, 1);
  });

  test("subscriptions: create, get, list", async () => {
    const created = await json(["subscriptions", "create", "--app-id", appId, "--api-id", "pizza", "--tier", "Unlimited"]);
    subscriptionId = created.subscription.subscriptionId;
    assert.equal(created.subscription.state, "SUBSCRIPTION_STATE_UNBLOCKED");
    assert.equal((await json(["subscriptions", "get", "--id", subscriptionId])).subscription.tier, "Unlimited");
    const listed = await json(["subscriptions", "list", "--app-id", appId]);
    assert.deepEqual(
      listed.subscriptions.map((s: { subscriptionId: string }) => s.subscriptionId),
      [subscriptionId],
    );
  });

  test("tokens: issue (secret from stdin), introspect, validate, then blocked by subscriptions update, revoke", async () => {
    const issued = await json(["tokens", "issue", "--consumer-key", consumerKey, "--consumer-secret", "-"], { stdin: consumerSecret });
    const token: string = issued.token.accessToken;
    assert.ok(token);
    const meta = await json(["tokens", "introspect", token]);
    assert.equal(meta.token.tokenValid, true);
    assert.equal(meta.token.consumerKey, consumerKey);

    const routed = await json(["tokens", "route", "-", "--key-manager", "Resident Key Manager"], { stdin: token });
    assert.deepEqual(routed, { keyManager: "Resident Key Manager", type: "resident", routing: "TOKEN_ROUTING_DEFAULT", canHandle: true });

    const allowed = await json(["tokens", "validate", token, "--context", "/pizzashack", "--version", "1.0.0", "--resource", "/menu"]);
    assert.equal(allowed.authorized, true, JSON.stringify(allowed));
    assert.equal(allowed.applicationId, appId);
    const byPath = await json(["tokens", "validate", "-", "--context", "/pizzashack", "--version", "1.0.0", "--path", "/pizzashack/1.0.0/menu/7"], {
      stdin: token,
    });
    assert.equal(byPath.matchedResource, "/menu/{item}", JSON.stringify(byPath));

    const blocked = await json(["subscriptions", "update", "--id", subscriptionId, "--state", "blocked"]);
    assert.equal(blocked.subscription.state, "SUBSCRIPTION_STATE_BLOCKED");
    assert.equal(blocked.subscription.tier, "Unlimited");
    const refused = await json(["tokens", "validate", token, "--context", "/pizzashack", "--version", "1.0.0", "--resource", "/menu"]);
    assert.equal(refused.authorized ?? false, false, "proto3 JSON leaves false out");
    assert.equal(refused.statusCode, 900907);

    assert.deepEqual(await json(["tokens", "revoke", token]), {});
    const revoked = await json(["tokens", "introspect", token]);
    assert.equal(revoked.token.tokenValid ?? false, false);
  });

  test("users: create (password from stdin), get, list, set-password, delete", async () => {
    assert.equal((await json(["users", "create", "--username", "alice", "--password", "-"], { stdin: "correct horse battery\n" })).user.username, "alice");
    assert.equal((await json(["users", "get", "--username", "alice"])).user.username, "alice");
    assert.deepEqual(
      (await json(["users", "list"])).users.map((u: { username: string }) => u.username),
      ["alice"],
    );
    // The new password works for the password grant, through the CLI too.
    await json(["users", "set-password", "--username", "alice", "--password", "staple battery horse"]);
    const userToken = await json([
      "tokens",
      "issue",
      "--consumer-key",
      consumerKey,
      "--consumer-secret",
      consumerSecret,
      "--grant-type",
      "password",
      "--username",
      "alice",
      "--password",
      "staple battery horse",
    ]);
    assert.equal((await json(["tokens", "introspect", userToken.token.accessToken])).token.endUserName, "alice");
    assert.deepEqual(await json(["users", "delete", "--username", "alice"]), {});
    assert.deepEqual((await json(["users", "list"])).users ?? [], []);
  });

  test("signing-keys: rotate, list", async () => {
    const before = (await json(["signing-keys", "list"])).signingKeys ?? [];
    const rotated = await json(["signing-keys", "rotate"]);
    assert.equal(rotated.signingKey.active, true);
    const keys = (await json(["signing-keys", "list"])).signingKeys;
    assert.equal(keys.length, before.length + 1);
    assert.equal(keys[0].kid, rotated.signingKey.kid);
  });

  test("trusted-issuers: create, get, list, update, delete", async () => {
    const { publicKey } = await generateKeyPair("ES256");
    const jwk = JSON.stringify(await exportJWK(publicKey));
    const iss = "https://idp.example.com";
    const created = await json([
      "trusted-issuers",
      "create",
      "--issuer",
      iss,
      "--jwk",
      jwk,
      "--subject",
      "svc-a",
      "--subject",
      "svc-b",
      "--scope",
      "read",
      "--max-token-seconds",
      "600",
      "--description",
      "partner IdP",
    ]);
    assert.equal(created.trustedIssuer.issuer, iss);
    assert.deepEqual(created.trustedIssuer.allowedSubjects, ["svc-a", "svc-b"]);
    assert.deepEqual(created.trustedIssuer.allowedScopes, ["read"]);
    assert.equal(created.trustedIssuer.maxTokenSeconds, "600");
    assert.equal((await json(["trusted-issuers", "get", "--issuer", iss])).trustedIssuer.description, "partner IdP");

    const updated = await json(["trusted-issuers", "update", "--issuer", iss, "--subject", "svc-c", "--max-assertion-seconds", "120"]);
    assert.deepEqual(updated.trustedIssuer.allowedSubjects, ["svc-c"], "--subject replaces the list");
    assert.equal(updated.trustedIssuer.maxAssertionSeconds, "120");
    assert.deepEqual(updated.trustedIssuer.allowedScopes, ["read"], "what was not given is kept");
    assert.deepEqual(
      (await json(["trusted-issuers", "list"])).trustedIssuers.map((t: { issuer: string }) => t.issuer),
      [iss],
    );

    // The server's refusal (no key source) is exit code 1, its code on stderr; a mistake in the
    // command line is 2 and calls nothing.
    const refused = await km(["trusted-issuers", "create", "--issuer", "https://other.example.com", "--subject", "x"]);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /InvalidArgument/);
    const mistake = await km(["trusted-issuers", "update", "--issuer", iss, "--max-token-seconds", "ten"]);
    assert.equal(mistake.code, 2, mistake.stderr);
    assert.equal(mistake.stdout, "");
    assert.equal((await json(["trusted-issuers", "get", "--issuer", iss])).trustedIssuer.maxTokenSeconds, "600");

    assert.deepEqual(await json(["trusted-issuers", "delete", "--issuer", iss]), {});
    assert.deepEqual((await json(["trusted-issuers", "list"])).trustedIssuers ?? [], []);
  });

  test("scopes: register, get, list, update, exists, validate, attach, for-apis, set, detach, delete", async () => {
    await json(["apis", "create", "--api-id", "scoped", "--name", "Scoped", "--context", "/scoped", "--version", "1.0.0"]);
    await json(["resources", "register", "--api-id", "scoped", "--resource", "GET /menu", "--resource", "POST /order/{id}"]);
    const registered = await json(["scopes", "register", "--name", "order:write", "--display-name", "Order", "--role", "chef", "--role", "waiter"]);
    assert.deepEqual(registered.scope.roles, ["chef", "waiter"]);
    await json(["scopes", "register", "--name", "menu:edit"]);
    assert.equal((await json(["scopes", "get", "--name", "order:write"])).scope.displayName, "Order");
    const updated = await json(["scopes", "update", "--name", "order:write", "--role", "chef"]);
    assert.deepEqual(updated.scope.roles, ["chef"], "--role replaces the roles");
    assert.equal(updated.scope.displayName, "Order", "what was not given is kept");
    assert.deepEqual(
      (await json(["scopes", "list"])).scopes.map((s: { name: string }) => s.name),
      ["menu:edit", "order:write"],
    );
    assert.equal((await json(["scopes", "exists", "--name", "order:write"])).exists, true);
    assert.deepEqual(await json(["scopes", "validate", "--name", "order:write", "--name", "nope"]), { unknownNames: ["nope"] });

    const attached = await json(["scopes", "attach", "--api-id", "scoped", "--resource", "POST /order/{id} order:write,menu:edit"]);
    assert.deepEqual(attached.resource.resources[1].scopes, ["order:write", "menu:edit"]);
    assert.deepEqual(
      (await json(["scopes", "for-apis", "--api-id", "scoped"])).apis[0].scopes.map((s: { name: string }) => s.name),
      ["menu:edit", "order:write"],
    );
    const refused = await km(["scopes", "delete", "--name", "order:write"]);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /FailedPrecondition/);
    const mistake = await km(["scopes", "attach", "--api-id", "scoped"]);
    assert.equal(mistake.code, 2, mistake.stderr);
    assert.equal(
      (await json(["scopes", "set", "--api-id", "scoped", "--resource", "POST /order/{id} order:write"])).resource.resources[1].scopes[0],
      "order:write",
    );
    assert.deepEqual((await json(["scopes", "detach", "--api-id", "scoped", "--resource", "POST /order/{id}"])).resource.resources[1].scopes ?? [], []);
    assert.deepEqual(await json(["scopes", "delete", "--name", "order:write"]), {});
    assert.equal((await json(["scopes", "exists", "--name", "order:write"])).exists ?? false, false);
    // Leaves the server's APIs as it found them (later tests list them).
    await json(["resources", "delete", "--api-id", "scoped"]);
    await json(["apis", "delete", "--api-id", "scoped"]);
  });

  test("config: show, reload, check a file offline", async () => {
    const shown = await json(["config", "show"]);
    assert.equal(shown.configuration.httpPort, server.httpPort);
    const reloaded = await json(["config", "reload"]);
    assert.equal(reloaded.configuration.name, shown.configuration.name);

    const file = join(server.dataDir, "check.toml");
    writeFileSync(file, '[key_manager]\nname = "checked"\n[key_manager.grpc]\nport = 6000\n[key_manager.database]\nurl = "postgres://km:hunter2@db:5432/km"\n');
    const checked = await json(["config", "check", file], { env: {} });
    assert.equal(checked.valid, true);
    assert.equal(checked.configuration.name, "checked");
    assert.equal(checked.configuration.grpcPort, 6000);
    assert.doesNotMatch(JSON.stringify(checked), /hunter2/, "secrets are not printed");

    writeFileSync(file, '[key_manager]\ntoken_type = "bogus"\n[key_manager.grpc]\nport = "x"\n');
    const bad = await km(["config", "check", file, "--json"], { env: {} });
    assert.equal(bad.code, 1);
    const answer = JSON.parse(bad.stdout);
    assert.equal(answer.valid, false);
    assert.equal(answer.problems.length, 2, bad.stdout);
  });

  test("deletes: subscription, resources, API", async () => {
    assert.deepEqual(await json(["subscriptions", "delete", "--id", subscriptionId]), {});
    assert.deepEqual(await json(["resources", "delete", "--api-id", "pizza"]), {});
    assert.deepEqual(await json(["apis", "delete", "--api-id", "pizza"]), {});
    assert.deepEqual((await json(["apis", "list"])).apis ?? [], []);
  });

  test("--data gives any field of the request in the contract's JSON form", async () => {
    const created = await json(["apis", "create", "--api-id", "weather", "--data", '{"api":{"name":"Weather","context":"/weather","version":"2"}}']);
    assert.deepEqual([created.api.apiId, created.api.name, created.api.version], ["weather", "Weather", "2"]);
  });
});

describe("km: mistakes and help", () => {
  test("an unknown command or option says so, exit code 2, nothing on stdout", async () => {
    for (const args of [
      ["nope"],
      ["apis", "nope"],
      ["apis", "get", "--bogus", "1"],
      ["apps", "create", "--key-type", "staging", "--app-id", "a"],
      ["apis", "get"],
    ]) {
      const run = await km(args);
      assert.equal(run.code, 2, args.join(" "));
      assert.equal(run.stdout, "");
      assert.ok(run.stderr.length > 0);
    }
    assert.match((await km(["nope"])).stderr, /unknown command "nope"/);
    assert.match((await km(["apps", "create", "--key-type", "staging", "--app-id", "a"])).stderr, /not one of production, sandbox/);
  });

  test("no credentials: says how to give them, exit code 2", async () => {
    const run = await km(["apis", "list"], { env: { KM_URL: env.KM_URL } });
    assert.equal(run.code, 2);
    assert.match(run.stderr, /KM_TOKEN/);
    const wrong = await km(["apis", "list"], { env: { KM_URL: env.KM_URL, KM_CLIENT_ID: "nobody", KM_CLIENT_SECRET: "wrong" } });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /invalid_client/);
  });

  test("--help on every command and group", async () => {
    const main = await km(["--help"]);
    assert.equal(main.code, 0);
    for (const [name, entry] of Object.entries(COMMANDS)) {
      assert.match(main.stdout, new RegExp(`^  ${name} `, "m"));
      const paths = "commands" in entry ? [[name], ...Object.keys(entry.commands).map((c) => [name, c])] : [[name]];
      for (const path of paths) {
        const run = await km([...path, "--help"]);
        assert.equal(run.code, 0, path.join(" "));
        assert.match(run.stdout, new RegExp(`^usage: km ${path.join(" ")} `), path.join(" "));
        assert.equal(run.stderr, "");
      }
    }
  });

  test("human output without --json", async () => {
    const run = await km(["health"]);
    assert.equal(run.stdout, "status: SERVING");
  });
});

describe("the km bin as a process", () => {
  test("npx km: only the answer on stdout (parses as JSON); unknown command exit code 2", async () => {
    const childEnv = { ...process.env, KM_URL: env.KM_URL, KM_TOKEN: server.token };
    const { stdout } = await exec("npx", ["km", "apis", "list", "--json"], { cwd: ROOT, env: childEnv });
    assert.deepEqual(
      JSON.parse(stdout).apis.map((a: { apiId: string }) => a.apiId),
      ["weather"],
    );
    await assert.rejects(
      exec(process.execPath, ["bin/km.mjs", "frobnicate"], { cwd: ROOT, env: childEnv }),
      (err: { code: number; stdout: string; stderr: string }) => {
        assert.equal(err.code, 2);
        assert.equal(err.stdout, "");
        assert.match(err.stderr, /unknown command "frobnicate"/);
        return true;
      },
    );
  });
});
