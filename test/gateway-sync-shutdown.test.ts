import assert from "node:assert/strict";
import { test } from "node:test";
import { Code } from "@connectrpc/connect";
import { GatewaySyncService } from "../gen/keymanager/v1/gateway_sync_service_pb.js";
import { SubscriptionService } from "../gen/keymanager/v1/subscription_service_pb.js";
import { SCOPES } from "../src/auth/scopes.js";
import { startServer } from "./support/server.js";
import { Watcher } from "./support/watcher.js";

/** App.close's grace for calls in flight (src/app.ts SHUTDOWN_GRACE_MS). */
const GRACE_MS = 10_000;

test("shutdown ends every Watch stream at once with UNAVAILABLE naming the version to resume from, on both ports; the stop does not wait the grace out", async () => {
  const server = await startServer({ overrides: { gateway_sync: { heartbeat_interval_ms: 60_000 } } });
  let closed = false;
  try {
    const token = (await server.caller([SCOPES.gateway])).token;
    const watchers = [
      new Watcher(server.client(GatewaySyncService, { protocol: "grpc", token })),
      new Watcher(server.client(GatewaySyncService, { protocol: "grpc", token })),
      new Watcher(server.client(GatewaySyncService, { protocol: "connect", token })),
    ];
    for (const w of watchers) await w.until("the snapshot", (x) => x.snapshot() !== undefined);
    await server.client(SubscriptionService).createApi({
      api: { apiId: "api-shutdown", name: "Pizza", context: "/shutdown", version: "1.0.0", publisher: "admin", apiTier: "Gold" },
    });
    for (const w of watchers) await w.until("the API's event", (x) => x.events().length >= 1);

    const started = performance.now();
    const endedAt = watchers.map((w) => w.done.then(() => performance.now() - started));
    await server.close();
    closed = true;
    const stopMs = performance.now() - started;
    const ended = await Promise.all(endedAt);
    for (const [i, w] of watchers.entries()) {
      assert.equal(w.error?.code, Code.Unavailable, `watcher ${i}: ${w.error?.message}`);
      assert.match(w.error?.rawMessage ?? "", /shutting down/);
      assert.match(w.error?.rawMessage ?? "", new RegExp(`from_version ${w.lastVersion()}\\b`), "the version to resume from");
      assert.ok((ended[i] ?? GRACE_MS) < GRACE_MS, `watcher ${i} ended after ${ended[i]} ms, not before the grace`);
    }
    assert.ok(stopMs < GRACE_MS, `the stop took ${Math.round(stopMs)} ms: it waited the grace out`);
    console.log(`# streams ended ${ended.map((ms) => `${Math.round(ms)} ms`).join(", ")} after the stop began; the stop took ${Math.round(stopMs)} ms`);
  } finally {
    if (!closed) await server.close();
  }
});
