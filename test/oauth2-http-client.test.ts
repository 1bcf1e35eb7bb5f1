import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { test } from "node:test";
import { OAuth2HttpClient } from "../src/keymanager/oauth2/http-client.js";

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
