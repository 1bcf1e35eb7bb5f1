import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { UnavailableError } from "../src/domain/errors.js";
import { BREAKER_FAILURES, BREAKER_PAUSE_MS, OAuth2HttpClient } from "../src/keymanager/oauth2/http-client.js";

test("an external server's oversized answer is not read past 1 MiB", async () => {
  let sent = 0;
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const write = () => {
      // 64 MiB of blanks at most: the client stops reading long before.
      while (sent < 64 * 1024 * 1024) {
        sent += chunk.length;
        if (!res.write(chunk)) return void res.once("drain", write);
      }
      res.end("{}");
    };
    res.on("close", () => res.destroy());
    write();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  try {
    const client = new OAuth2HttpClient("big-idp", 5_000);
    const answer = await client.send({ method: "GET", url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`, idempotent: false });
    assert.equal(answer.status, 200);
    assert.equal(answer.body, undefined, "too large: no body");
    assert.ok(sent < 16 * 1024 * 1024, `the server got to send ${sent} bytes`);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

test("a server found unavailable 5 times in a row is not called for 5 s; then one call tries it again", async () => {
  let now = 1_000_000;
  let calls = 0;
  let up = false;
  const fetchStub = (async () => {
    calls++;
    if (!up) throw Object.assign(new TypeError("fetch failed"), { cause: { code: "ECONNREFUSED" } });
    return new Response("{}", { status: 200 });
  }) as typeof fetch;
  const client = new OAuth2HttpClient("down-idp", 1_000, fetchStub, () => now);
  const get = () => client.send({ method: "GET", url: "http://idp.invalid/", idempotent: true });
  const unavailable = (pattern: RegExp) => (err: unknown) => err instanceof UnavailableError && /down-idp/.test(err.message) && pattern.test(err.message);

  for (let i = 0; i < BREAKER_FAILURES; i++) await assert.rejects(get(), unavailable(/ECONNREFUSED/));
  assert.equal(calls, 2 * BREAKER_FAILURES, "each idempotent call was tried twice");
  await assert.rejects(get(), unavailable(/5 calls in a row failed; the next try in 5 s/));
  assert.equal(calls, 2 * BREAKER_FAILURES, "the open circuit sends nothing");

  now += BREAKER_PAUSE_MS;
  await assert.rejects(get(), unavailable(/ECONNREFUSED/));
  assert.equal(calls, 2 * BREAKER_FAILURES + 2, "after the pause one call tried the server");
  await assert.rejects(get(), unavailable(/next try/), "still down: open again");

  now += BREAKER_PAUSE_MS;
  up = true;
  const [probe, meanwhile] = await Promise.allSettled([get(), get()]);
  assert.equal(probe.status, "fulfilled", "the probe reaches the server, back up");
  assert.ok(meanwhile.status === "rejected" && unavailable(/trying it again/)(meanwhile.reason), "a call during the probe fails at once");
  assert.equal((await get()).status, 200, "closed again");
});
