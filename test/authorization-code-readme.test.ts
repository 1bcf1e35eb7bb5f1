import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { FormBrowser } from "./support/form-browser.js";
import { startServer, type TestServer } from "./support/server.js";
import { environmentWithoutKm, readmeSection, readmeShellBlocks } from "./support/readme.js";

// README's "Sign users in" section, as written: its `sh` blocks run in one bash session against a
// real server on port 0 (KM_HTTP, KM_GRPC, KM_DATA_DIR as the README reads them); where the
// example asks a person to open a URL, this test signs in and allows with plain HTTP requests
// following the pages' forms, then checks what the example prints.

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const SECTION = "Sign users in: authorization code, PKCE and OpenID Connect";
const EXAMPLE = "examples/authorization-code/sign-in.ts";

/** A port free on loopback now (the example's callback listens on it). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

let server: TestServer;
before(async () => {
  server = await startServer();
});
after(() => server.close());

test("the README shows the sign-in example as it is", () => {
  assert.ok(readmeSection(SECTION).includes(readFileSync(new URL(`../${EXAMPLE}`, import.meta.url), "utf8")), `README.md shows ${EXAMPLE} verbatim`);
});

test("the README's sign-in blocks and example, as written: tokens, id_token claims, userinfo", { timeout: 120_000 }, async () => {
  const blocks = readmeShellBlocks(SECTION);
  assert.equal(blocks.length, 2, "the blocks this test knows how to run");
  const port = await freePort();
  const child = spawn("bash", ["-c", ["set -euo pipefail", ...blocks].join("\n")], {
    cwd: ROOT,
    env: {
      ...environmentWithoutKm(),
      KM_HTTP: `http://127.0.0.1:${server.httpPort}`,
      KM_GRPC: `http://127.0.0.1:${server.grpcPort}`,
      KM_DATA_DIR: server.dataDir,
      KM_LOG_LEVEL: "silent",
      CALLBACK_PORT: String(port),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stderr.on("data", (chunk) => {
    stderr += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on("data", (chunk) => {
      stdout += chunk;
      const found = /Open this URL in a browser: (\S+)/.exec(stdout);
      if (found) resolve(found[1] as string);
    });
    void exited.then((code) => reject(new Error(`the example ended (${code}) before asking for a browser:\n${stdout}\n${stderr}`)));
  });

  // The person at the browser: signs in as alice and allows.
  const browser = new FormBrowser(`http://127.0.0.1:${server.httpPort}`);
  const login = await browser.get(url);
  assert.equal(login.status, 200);
  const consent = await browser.submit(await login.text(), { username: "alice", password: "alice-password" });
  assert.equal(consent.status, 200);
  const consentHtml = await consent.text();
  assert.match(consentHtml, /Pizza CLI/);
  const back = await browser.submit(consentHtml, {}, { button: "consent" });
  assert.equal(back.status, 303);
  const callback = back.headers.get("location") ?? "";
  assert.ok(callback.startsWith(`http://127.0.0.1:${port}/callback?`), callback);
  assert.equal((await fetch(callback)).status, 200);

  assert.equal(await exited, 0, stderr);
  const printed = JSON.parse(stdout.slice(stdout.indexOf("{")));
  assert.equal(printed.scope, "openid profile email");
  assert.equal(printed.refresh, true);
  assert.equal(printed.claims.sub, "alice");
  assert.equal(printed.claims.email, "alice@example.com");
  assert.equal(printed.claims.name, "Alice Liddell");
  assert.deepEqual(printed.userinfo, { sub: "alice", name: "Alice Liddell", email: "alice@example.com" });
});
