import assert from "node:assert/strict";
import * as http2 from "node:http2";
import type * as net from "node:net";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { ConfigError, loadConfig } from "../src/config/load.js";
import { closedWithin, ENHANCE_YOUR_CALM, PREFACE, rawH2, REFUSED_STREAM, tcp } from "./support/raw-h2.js";
import { startServer, type TestServer } from "./support/server.js";

/**
 * Connections and streams on both ports (issue #11, point 6): idle connections closed, a cap on
 * connections that leaves an authenticated caller's connection working, a cap on streams per
 * connection, a slowloris client cut, gRPC keepalive enforcement. Small limits keep it fast; the bounds asserted are
 * generous (a loaded 2-core machine).
 */

const MiB = 1024 * 1024;
const rssMiB = () => Math.round(process.memoryUsage().rss / MiB);

/** Connections of which the server closed at least `refused` at once, the rest still open. */
async function flood(port: number, count: number, settle = 1000): Promise<{ open: net.Socket[]; refused: number }> {
  const sockets = await Promise.all(Array.from({ length: count }, () => tcp(port).catch(() => undefined)));
  await sleep(settle);
  const open = sockets.filter((s): s is net.Socket => s !== undefined && !s.destroyed && !s.closed);
  return { open, refused: count - open.length };
}

/** A Connect unary call on an existing HTTP/2 session: its HTTP status. */
function connectCall(session: http2.ClientHttp2Session, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = session.request({
      ":method": "POST",
      ":path": "/keymanager.v1.KeyManagerService/GetKeyManagerConfiguration",
      "content-type": "application/json",
      authorization: `Bearer ${token}`,
    });
    req.on("response", (headers) => resolve(Number(headers[":status"])));
    req.on("error", reject);
    req.resume();
    req.end("{}");
  });
}

function h2session(port: number): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.once("connect", () => resolve(session));
    session.once("error", reject);
  });
}

test("the limits are configured, with their defaults, and an impossible combination is refused by name", () => {
  const defaults = loadConfig({ file: undefined, env: {} });
  assert.equal(defaults.http.connections.maxConnections, 4096);
  assert.equal(defaults.http.connections.maxConcurrentStreams, 100);
  assert.deepEqual(defaults.grpc.connections, {
    maxConnections: 4096,
    idleTimeoutMs: 120_000,
    maxConnectionAgeMs: 0,
    maxConnectionAgeGraceMs: 30_000,
    maxConcurrentStreams: 100,
    keepaliveMinPingIntervalMs: 300_000,
    keepalivePermitWithoutCalls: false,
    keepaliveMaxPingStrikes: 2,
  });
  assert.equal(loadConfig({ file: undefined, env: { KM_GRPC_MAX_CONNECTIONS: "33" } }).grpc.connections.maxConnections, 33);
  const set = loadConfig({ file: undefined, env: { KM_HTTP_MAX_CONNECTIONS: "17" }, overrides: { http: { idle_timeout_ms: 900 } } });
  assert.equal(set.http.connections.maxConnections, 17);
  assert.equal(set.http.connections.idleTimeoutMs, 900);
  assert.throws(
    () => loadConfig({ file: undefined, env: {}, overrides: { http: { headers_timeout_ms: 70_000, request_timeout_ms: 60_000 } } }),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.match(err.message, /headers_timeout_ms cannot exceed request_timeout_ms/);
      return true;
    },
  );
  assert.throws(() => loadConfig({ file: undefined, env: {}, overrides: { http: { max_connections: 0 } } }), /max_connections/);
});

describe("HTTP port: connections and streams", () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({
      overrides: {
        http: {
          host: "127.0.0.1",
          port: 0,
          max_connections: 40,
          headers_timeout_ms: 1000,
          request_timeout_ms: 5000,
          keep_alive_timeout_ms: 500,
          idle_timeout_ms: 800,
          max_concurrent_streams: 10,
        },
      },
    });
  });
  after(() => server.close());

  test("idle connections are closed: HTTP/2 without streams after idle_timeout_ms, HTTP/1.1 after keep_alive_timeout_ms, silent ones after headers_timeout_ms", async () => {
    const h2 = await rawH2(server.httpPort);
    const h1 = await tcp(server.httpPort);
    h1.write("GET /healthz HTTP/1.1\r\nHost: km\r\n\r\n");
    const silent = await tcp(server.httpPort);
    const [h2Ms, h1Ms, silentMs] = await Promise.all([closedWithin(h2.socket, 10_000), closedWithin(h1, 10_000), closedWithin(silent, 10_000)]);
    console.log(`HTTP port: idle HTTP/2 closed after ${Math.round(h2Ms)} ms, HTTP/1.1 after ${Math.round(h1Ms)} ms, silent after ${Math.round(silentMs)} ms`);
    assert.equal(h2.goaway, 0, "the HTTP/2 connection was told GOAWAY NO_ERROR");
    assert.ok(h2Ms >= 600, `HTTP/2 closed only once idle (${h2Ms} ms)`);
  });

  test("a slowloris HTTP/1.1 client is cut at the headers timeout though it keeps sending", async () => {
    const socket = await tcp(server.httpPort);
    let answer = "";
    socket.on("data", (d: Buffer) => {
      answer += d.toString("latin1");
    });
    socket.write("POST /oauth2/token HTTP/1.1\r\nHost: km\r\n");
    const drip = setInterval(() => socket.write("x-slow: a\r\n"), 100);
    try {
      const ms = await closedWithin(socket, 10_000);
      console.log(`HTTP port: slowloris cut after ${Math.round(ms)} ms (headers_timeout_ms 1000): ${answer.split("\r\n", 1)[0]}`);
      assert.match(answer, /^HTTP\/1\.1 408/);
    } finally {
      clearInterval(drip);
    }
  });

  test("connections above max_connections are refused while an authenticated caller's connection still works; RSS stays bounded", async () => {
    const session = await h2session(server.httpPort);
    try {
      assert.equal(await connectCall(session, server.token), 200);
      const rssBefore = rssMiB();
      const { open, refused } = await flood(server.httpPort, 300, 300);
      const rssAfter = rssMiB();
      console.log(`HTTP port: 300 idle connections with max_connections 40: ${refused} refused, ${open.length} open; RSS ${rssBefore} -> ${rssAfter} MiB`);
      assert.ok(open.length <= 39, `at most the cap is open beside the caller's (${open.length})`);
      assert.ok(refused >= 261, `the rest were refused (${refused})`);
      assert.equal(await connectCall(session, server.token), 200, "the caller's existing connection still works");
      // The flood's connections say nothing: closed after the headers timeout, and new connections are served again.
      await Promise.all(open.map((s) => closedWithin(s, 10_000)));
      const again = await h2session(server.httpPort);
      assert.equal(await connectCall(again, server.token), 200);
      again.close();
      assert.ok(rssAfter - rssBefore < 100, `RSS grew ${rssAfter - rssBefore} MiB`);
    } finally {
      session.close();
    }
  });

  test("streams above max_concurrent_streams are refused (REFUSED_STREAM) and RSS stays bounded", async () => {
    const rssBefore = rssMiB();
    const connections = await Promise.all(Array.from({ length: 10 }, () => rawH2(server.httpPort)));
    // Half-open: the token endpoint waits for the body, which never comes.
    for (const c of connections) c.openStreams(60, { ":authority": "km", ":path": "/oauth2/token", "content-type": "application/x-www-form-urlencoded" });
    await sleep(1000);
    const rssAfter = rssMiB();
    let refused = 0;
    for (const c of connections) {
      const r = c.resets.get(REFUSED_STREAM) ?? 0;
      refused += r;
      assert.ok(r >= 50, `of 60 streams on one connection, at least 50 refused (${r}; GOAWAY ${c.goaway})`);
    }
    console.log(`HTTP port: 600 half-open streams on 10 connections, max_concurrent_streams 10: ${refused} refused; RSS ${rssBefore} -> ${rssAfter} MiB`);
    assert.ok(rssAfter - rssBefore < 100, `RSS grew ${rssAfter - rssBefore} MiB`);
    for (const c of connections) c.socket.destroy();
  });

  test("a connection that starts HTTP/2's preface and stops is closed after headers_timeout_ms", async () => {
    const socket = await tcp(server.httpPort);
    socket.write(PREFACE.subarray(0, 10));
    const ms = await closedWithin(socket, 10_000);
    assert.ok(ms >= 800, `closed after the timeout, not before (${ms} ms)`);
  });
});

/** A gRPC unary call (GetKeyManagerConfiguration, an empty message) on an existing HTTP/2 session: its grpc-status. */
function grpcCall(session: http2.ClientHttp2Session, token: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = session.request({
      ":method": "POST",
      ":path": "/keymanager.v1.KeyManagerService/GetKeyManagerConfiguration",
      "content-type": "application/grpc",
      te: "trailers",
      authorization: `Bearer ${token}`,
    });
    // A trailers-only answer (an error before any message) carries grpc-status in its headers.
    req.on("response", (headers) => {
      if (headers["grpc-status"] !== undefined) resolve(String(headers["grpc-status"]));
    });
    req.on("trailers", (trailers) => resolve(String(trailers["grpc-status"])));
    req.on("close", () => reject(new Error("the call ended without a grpc-status")));
    req.on("error", reject);
    req.resume();
    req.end(Buffer.alloc(5));
  });
}

describe("gRPC port: connections, streams and pings", () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({
      overrides: {
        grpc: {
          host: "127.0.0.1",
          port: 0,
          max_connections: 40,
          idle_timeout_ms: 3000,
          max_concurrent_streams: 10,
          keepalive_min_ping_interval_ms: 200,
          keepalive_max_ping_strikes: 2,
        },
      },
    });
  });
  after(() => server.close());

  test("idle connections get GOAWAY and are closed after idle_timeout_ms, silent ones too", async () => {
    const h2 = await rawH2(server.grpcPort);
    const silent = await tcp(server.grpcPort);
    const [h2Ms, silentMs] = await Promise.all([closedWithin(h2.socket, 15_000), closedWithin(silent, 15_000)]);
    console.log(`gRPC port: idle HTTP/2 connection closed after ${Math.round(h2Ms)} ms, silent TCP after ${Math.round(silentMs)} ms (idle_timeout_ms 3000)`);
    assert.equal(h2.goaway, 0, "GOAWAY NO_ERROR");
    assert.ok(h2Ms >= 2500, `closed only once idle (${h2Ms} ms)`);
  });

  test("connections above max_connections are refused while an authenticated caller's connection still works; RSS stays bounded", async () => {
    const session = await h2session(server.grpcPort);
    try {
      assert.equal(await grpcCall(session, server.token), "0");
      const rssBefore = rssMiB();
      const { open, refused } = await flood(server.grpcPort, 300, 300);
      const rssAfter = rssMiB();
      console.log(`gRPC port: 300 idle connections with max_connections 40: ${refused} refused, ${open.length} open; RSS ${rssBefore} -> ${rssAfter} MiB`);
      assert.ok(open.length <= 39, `at most the cap is open beside the caller's (${open.length})`);
      assert.ok(refused >= 261, `the rest were refused (${refused})`);
      assert.equal(await grpcCall(session, server.token), "0", "the caller's existing connection still works");
      assert.equal(await grpcCall(session, ""), "16", "and still asks for credentials");
      assert.ok(rssAfter - rssBefore < 100, `RSS grew ${rssAfter - rssBefore} MiB`);
      // The flood's idle connections are closed after idle_timeout_ms; new connections are served again.
      await Promise.all(open.map((s) => closedWithin(s, 15_000)));
      const again = await h2session(server.grpcPort);
      assert.equal(await grpcCall(again, server.token), "0");
      again.close();
    } finally {
      session.close();
    }
  });

  test("calls above max_concurrent_streams are refused (REFUSED_STREAM) and RSS stays bounded", async () => {
    const rssBefore = rssMiB();
    const connections = await Promise.all(Array.from({ length: 10 }, () => rawH2(server.grpcPort)));
    // Half-open calls: their request message never comes.
    for (const c of connections) {
      c.openStreams(60, {
        ":authority": "km",
        ":path": "/keymanager.v1.KeyManagerService/GetKeyManagerConfiguration",
        "content-type": "application/grpc",
        te: "trailers",
      });
    }
    await sleep(1000);
    const rssAfter = rssMiB();
    let refused = 0;
    for (const c of connections) {
      const r = c.resets.get(REFUSED_STREAM) ?? 0;
      refused += r;
      assert.ok(r >= 50, `of 60 calls on one connection, at least 50 refused (${r}; GOAWAY ${c.goaway})`);
    }
    console.log(`gRPC port: 600 half-open calls on 10 connections, max_concurrent_streams 10: ${refused} refused; RSS ${rssBefore} -> ${rssAfter} MiB`);
    assert.ok(rssAfter - rssBefore < 100, `RSS grew ${rssAfter - rssBefore} MiB`);
    for (const c of connections) c.socket.destroy();
  });

  test("keepalive enforcement: pings without a call, or too often, close the connection with GOAWAY ENHANCE_YOUR_CALM; pings spaced as allowed during a call do not", async () => {
    const flooding = await rawH2(server.grpcPort);
    const pinger = setInterval(() => flooding.ping(), 20);
    try {
      await closedWithin(flooding.socket, 10_000);
    } finally {
      clearInterval(pinger);
    }
    assert.equal(flooding.goaway, ENHANCE_YOUR_CALM);
    assert.equal(flooding.goawayData, "too_many_pings");

    const polite = await rawH2(server.grpcPort);
    polite.openStreams(1, {
      ":authority": "km",
      ":path": "/keymanager.v1.KeyManagerService/GetKeyManagerConfiguration",
      "content-type": "application/grpc",
      te: "trailers",
    });
    for (let i = 0; i < 5; i++) {
      polite.ping();
      await sleep(350);
    }
    assert.equal(polite.goaway, undefined, "five pings 350 ms apart during a call are allowed");
    assert.ok(!polite.socket.destroyed);
    polite.socket.destroy();
  });
});
