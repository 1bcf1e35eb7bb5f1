import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createRequire } from "node:module";
import { after, before, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { fromBinary, toBinary, create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { GatewaySyncService, type WatchResponse, WatchRequestSchema, WatchResponseSchema } from "../gen/keymanager/v1/gateway_sync_service_pb.js";
import { SubscriptionService } from "../gen/keymanager/v1/subscription_service_pb.js";
import { AuthLevel } from "../gen/keymanager/v1/types_pb.js";
import { SCOPES } from "../src/auth/scopes.js";
import { parseScrape, total } from "./support/prometheus.js";
import { startServer, type TestServer } from "./support/server.js";
import { upserted, Watcher } from "./support/watcher.js";

// Watch through clients other than the generated one (plain grpc-js, buf curl), and a watcher
// that stops reading.

const run = promisify(execFile);
const require = createRequire(import.meta.url);
const BUF = require.resolve("@bufbuild/buf/bin/buf");
const MAX_BUFFERED = 5;

let server: TestServer;
let gatewayToken: string;
before(async () => {
  server = await startServer({ overrides: { gateway_sync: { heartbeat_interval_ms: 1000, max_buffered_messages: MAX_BUFFERED } } });
  gatewayToken = (await server.caller([SCOPES.gateway])).token;
  await server.client(SubscriptionService).createApi({ api: { apiId: "clients", name: "Clients", context: "/clients", version: "1.0.0", publisher: "admin" } });
  await server.grpc.registerNewResource({ resource: { apiId: "clients", resources: resources(0) } });
});
after(() => server?.close());

/** Forty resources (some 4 KiB of event), different for each `round`. */
function resources(round: number) {
  return Array.from({ length: 40 }, (_, i) => ({
    uriTemplate: `/round${round}/resource${i}/{id}/with/a/fairly/long/path/to/fill/the/event`,
    httpVerb: "GET",
    authLevel: AuthLevel.ANY,
    scopes: [`scope:${round}:${i}`],
    throttlingTier: "Unlimited",
  }));
}

function rawWatch(client: grpc.Client, request: Parameters<typeof create<typeof WatchRequestSchema>>[1] = {}) {
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${gatewayToken}`);
  return client.makeServerStreamRequest(
    `/${GatewaySyncService.typeName}/Watch`,
    (r: Uint8Array) => Buffer.from(r),
    (b: Buffer) => fromBinary(WatchResponseSchema, b),
    toBinary(WatchRequestSchema, create(WatchRequestSchema, request)),
    metadata,
  ) as grpc.ClientReadableStream<WatchResponse>;
}

/** Bytes waiting in the replica's Watch buffers (keymanager_stream_buffered_bytes). */
async function bufferedBytes(): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${server.httpPort}/metrics`);
  return total(parseScrape(await res.text()), "keymanager_stream_buffered_bytes");
}

async function watchers(): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${server.httpPort}/metrics`);
  return total(parseScrape(await res.text()), "keymanager_stream_watchers");
}

function status(call: grpc.ClientReadableStream<WatchResponse>): Promise<grpc.StatusObject> {
  return new Promise((resolve) => {
    call.on("error", () => {});
    call.on("status", resolve);
  });
}

test("plain grpc-js: a snapshot, then heartbeats", async () => {
  const client = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
  try {
    const call = rawWatch(client);
    const ended = status(call);
    const messages: WatchResponse[] = [];
    await new Promise<void>((resolve) => {
      call.on("data", (m: WatchResponse) => {
        messages.push(m);
        if (m.message.case === "heartbeat") resolve();
      });
    });
    const chunk = messages[0]?.message;
    assert.equal(chunk?.case, "snapshotChunk");
    assert.ok(chunk.value.lastChunk);
    assert.ok(chunk.value.entities.some((e) => e.entity.case === "api" && e.entity.value.apiId === "clients" && e.entity.value.resources.length === 40));
    const beat = messages.at(-1)?.message;
    assert.ok(beat?.case === "heartbeat" && beat.value.version === chunk.value.version);
    assert.equal(await watchers(), 1, "the keymanager_stream_watchers gauge counts it");
    call.cancel();
    assert.equal((await ended).code, grpc.status.CANCELLED);
    for (let i = 0; (await watchers()) !== 0; i++) {
      assert.ok(i < 200, "the gauge drops when the stream ends");
      await sleep(50);
    }
  } finally {
    client.close();
  }
});

test("buf curl: Watch prints the snapshot and heartbeats as JSON until its --timeout", async () => {
  const args = ["curl", "--protocol", "grpc", "--http2-prior-knowledge", "-H", `authorization: Bearer ${gatewayToken}`, "--timeout", "2s"];
  const url = `http://127.0.0.1:${server.grpcPort}/keymanager.v1.GatewaySyncService/Watch`;
  const result = await run(BUF, [...args, "-d", '{"apiContexts":["/clients"]}', url], { timeout: 30_000 }).catch(
    (err: { stdout: string; stderr: string }) => err,
  );
  assert.match(result.stderr, /deadline_exceeded|DeadlineExceeded/i, "it ends at its own deadline: the stream goes on");
  assert.match(result.stdout, /"snapshotChunk"/);
  assert.match(result.stdout, /"lastChunk": true/);
  assert.match(result.stdout, /"context": "\/clients"/);
  assert.match(result.stdout, /"heartbeat"/);
});

test("a watcher that stops reading is cut off RESOURCE_EXHAUSTED (its buffer dropped) and resumes exactly where it was", async () => {
  const steady = new Watcher(server.client(GatewaySyncService, { token: gatewayToken }));
  const client = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
  try {
    await steady.until("a snapshot", (w) => w.snapshot() !== undefined);
    const call = rawWatch(client);
    const ended = status(call);
    const received: WatchResponse[] = [];
    call.on("data", (m: WatchResponse) => received.push(m));
    while (!received.some((m) => m.message.case === "snapshotChunk" && m.message.value.lastChunk)) await sleep(10);
    // It stops reading: HTTP/2 flow control fills, then the server's buffer for it.
    call.pause();
    const ROUNDS = 120;
    // What the server holds for it stays bounded (max_buffered_messages of some 4 KiB events),
    // then is dropped at the cut, however many changes follow.
    let most = 0;
    for (let round = 1; round <= ROUNDS; round++) {
      await server.grpc.updateRegisteredResource({ resource: { apiId: "clients", resources: resources(round) }, updateMask: { paths: ["resources"] } });
      most = Math.max(most, await bufferedBytes());
    }
    await steady.until(`all ${ROUNDS} changes`, (w) => w.events().length >= ROUNDS);
    assert.ok(most > 0, "events waited for it");
    assert.ok(most <= MAX_BUFFERED * 8192, `at most ${MAX_BUFFERED} events of under 8 KiB waited for it: ${most} bytes`);
    assert.equal(await bufferedBytes(), 0, "its buffer dropped at the cut");
    call.resume();
    const end = await ended;
    assert.equal(end.code, grpc.status.RESOURCE_EXHAUSTED, end.details);
    assert.match(end.details, /fell behind.*Watch again with from_version \d+/);
    const events = received.flatMap((m) => (m.message.case === "event" ? [m.message.value] : []));
    assert.ok(events.length < ROUNDS, `${events.length} of ${ROUNDS} events reached it before the cut`);
    const last = events.at(-1)?.version ?? received.find((m) => m.message.case === "snapshotChunk")?.message.value?.version ?? 0n;

    const resumed = new Watcher(server.client(GatewaySyncService, { token: gatewayToken }), { fromVersion: last });
    await resumed.until("the rest", (w) => w.events().length >= steady.events().filter((e) => e.version > last).length);
    const rest = steady.events().filter((e) => e.version > last);
    assert.deepEqual(
      resumed.events().map((e) => e.version),
      rest.map((e) => e.version),
      "none lost, none twice",
    );
    const final = resumed.events().at(-1);
    assert.ok(final);
    assert.equal(upserted(final, "api")?.resources[0]?.uriTemplate, `/round${ROUNDS}/resource0/{id}/with/a/fairly/long/path/to/fill/the/event`);
    await resumed.close();
  } finally {
    client.close();
    await steady.close();
  }
});

test("1,000 watchers on one replica (10 connections of 100 streams) each get the snapshot and every change", { timeout: 180_000 }, async () => {
  const clients = Array.from({ length: 10 }, () => server.client(GatewaySyncService, { token: gatewayToken }));
  const many = Array.from({ length: 1000 }, (_, i) => new Watcher(clients[i % clients.length] as (typeof clients)[number]));
  try {
    await Promise.all(many.map((w) => w.until("a snapshot", (x) => x.snapshot() !== undefined, 120_000)));
    assert.equal(await watchers(), 1000);
    await server.grpc.updateRegisteredResource({ resource: { apiId: "clients", resources: resources(1000) }, updateMask: { paths: ["resources"] } });
    const changed = (w: Watcher) => w.events().some((e) => upserted(e, "api")?.resources[0]?.uriTemplate.startsWith("/round1000/") === true);
    await Promise.all(many.map((w) => w.until("the change", changed, 60_000)));
    const versions = new Set(many.map((w) => w.events().find((e) => upserted(e, "api"))?.version));
    assert.equal(versions.size, 1, "one version for every watcher");
  } finally {
    await Promise.all(many.map((w) => w.close()));
  }
});
